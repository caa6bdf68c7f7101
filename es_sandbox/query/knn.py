"""Exact kNN over a searcher's float32 vector matrix, with Elasticsearch's score formulas.

ES approximates (HNSW) and the sandbox is exact, so its results are what ES returns at best
recall. Scores follow DenseVectorFieldMapper.VectorSimilarity: cosine ``(1+cos)/2``; dot_product
``(1+dot)/2`` for floats and ``0.5+dot/(dims*32768)`` for bytes; l2_norm ``1/(1+d^2)`` (bits:
``(dims-hamming)/dims``); max_inner_product ``dot<0 ? 1/(1-dot) : dot+1``. The whole matrix is
scored with one float32 matrix-vector product; the best candidates are then rescored in float64,
so l2 distances between large vectors do not lose precision to cancellation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from es_sandbox.mapper.dense_vector import check_vector
from es_sandbox.query.context import ShardContext, shard_error
from es_sandbox.util import es_str

_REFINE_EXTRA = 128


def score_function(similarity: str, element: str, dims: int) -> Any:
    """Raw similarity -> ES score, vectorised."""

    def score(raw: np.ndarray) -> np.ndarray:
        return np.asarray(_score(raw), dtype=np.float64)

    def _score(raw: np.ndarray) -> Any:
        if similarity == "l2_norm":
            if element == "bit":
                return (dims - raw) / dims
            return 1.0 / (1.0 + raw * raw)
        if similarity == "cosine":
            return (1.0 + raw) / 2.0
        if similarity == "dot_product":
            if element == "byte":
                return 0.5 + raw / (dims * 32768.0)
            return (1.0 + raw) / 2.0
        return np.where(raw < 0, 1.0 / (1.0 - raw), raw + 1.0)

    return score


def knn_search(
    ctx: ShardContext,
    field_name: str,
    vector: np.ndarray,
    k: int,
    filter_mask: np.ndarray | None,
    similarity_threshold: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k best rows of one index for a query vector: (rows, ES scores), best first."""
    leaf = ctx.field(field_name)
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    if leaf is None:
        if not ctx.allow_unmapped:
            raise ctx.no_mapping_error(field_name)
        return empty
    if leaf.type != "dense_vector":
        raise shard_error(ctx, "[knn] queries are only supported on [dense_vector] fields")
    if not leaf.indexed:
        raise shard_error(
            ctx, f"to perform knn search on field [{field_name}], its mapping must have [index] set to [true]"
        )
    element = leaf.element_type
    similarity = leaf.similarity
    dims = leaf.dims
    query = np.asarray(vector, dtype=np.float64)
    query_dims = len(query) * 8 if element == "bit" else len(query)
    if dims is not None and query_dims != dims:
        raise shard_error(
            ctx,
            f"The query vector has a different number of dimensions [{query_dims}] than the document vectors [{dims}].",
        )
    problem = check_vector(query, element, similarity if similarity in ("dot_product", "cosine") else None)
    if problem is not None:
        raise shard_error(ctx, problem)
    if leaf.nested_path is not None:
        rows, scores, _children = nested_knn(ctx, leaf.path, query, k, filter_mask, similarity_threshold)
        return rows, scores
    view = ctx.searcher.vectors.get(leaf.path)
    if view is None or ctx.n == 0:
        return empty
    n = ctx.n
    candidates = ctx.live()[:n] & view.present[:n]
    if filter_mask is not None:
        candidates &= filter_mask
    valid = int(candidates.sum())
    if valid == 0:
        return empty
    data = view.data[:n]
    assert dims is not None
    score = score_function(similarity, element, dims)
    if element == "bit":
        a = data.astype(np.int64).astype(np.uint8)
        b = query.astype(np.int64).astype(np.uint8)
        raw = np.unpackbits(a ^ b, axis=1).sum(axis=1).astype(np.float64)
        scores = score(raw)
        scores[~candidates] = -np.inf
        order = np.argsort(-scores, kind="stable")[: min(k, valid)]
        return _threshold(order, scores[order], score, similarity_threshold)
    q32 = query.astype(np.float32)
    dots = data @ q32
    if similarity == "cosine":
        qnorm = float(np.linalg.norm(query))
        with np.errstate(divide="ignore", invalid="ignore"):
            approx = dots / (view.norms[:n] * np.float32(qnorm))
    elif similarity == "l2_norm":
        approx = view.norms[:n] ** 2 + np.float32(float(query @ query)) - 2 * dots
    else:
        approx = dots
    approx = np.asarray(approx, dtype=np.float32)
    keyed = -approx if similarity == "l2_norm" else approx
    keyed = np.where(candidates, keyed, -np.inf)
    take = min(valid, k + _REFINE_EXTRA)
    top = np.argpartition(-keyed, take - 1)[:take] if take < n else np.arange(n)
    top = top[candidates[top]]
    exact = data[top].astype(np.float64)
    if similarity == "cosine":
        norms = np.linalg.norm(exact, axis=1)
        raw = (exact @ query) / (norms * np.linalg.norm(query))
    elif similarity == "l2_norm":
        raw = np.sqrt(((exact - query) ** 2).sum(axis=1))
    else:
        raw = exact @ query
    final = score(raw).astype(np.float64)
    order = np.lexsort((top, -final))[: min(k, len(top))]
    return _threshold(top[order], final[order], score, similarity_threshold)


Children = dict[int, list[tuple[tuple[int, ...], float]]]


def nested_knn(
    ctx: ShardContext,
    path: str,
    query: np.ndarray,
    k: int,
    filter_mask: np.ndarray | None,
    similarity_threshold: float | None,
) -> tuple[np.ndarray, np.ndarray, Children]:
    """kNN over vectors in nested objects, as ES's diversifying-children query: a document scores as
    its best nested vector, and the k best documents win. Also each winner's nested objects with
    their scores, best first (what ``inner_hits`` shows)."""
    leaf = ctx.field(path)
    assert leaf is not None and leaf.dims is not None
    view = ctx.searcher.nested.get(path)
    empty: tuple[np.ndarray, np.ndarray, Children] = (
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.float32),
        {},
    )
    if view is None or len(view.rows) == 0:
        return empty
    eligible = view.rows < ctx.n
    parents_ok = ctx.live()[: ctx.n].copy()
    if filter_mask is not None:
        parents_ok &= filter_mask
    eligible[eligible] &= parents_ok[view.rows[eligible]]
    entries = np.flatnonzero(eligible)
    if len(entries) == 0:
        return empty
    score = score_function(leaf.similarity, leaf.element_type, leaf.dims)
    raw = _exact_raw(view.data[entries].astype(np.float64), query, leaf.similarity, leaf.element_type)
    entry_scores = score(raw)
    if similarity_threshold is not None:
        minimum = float(score(np.array([similarity_threshold], dtype=np.float64))[0])
        keep = entry_scores >= minimum - 1e-7 * max(1.0, abs(minimum))
        entries, entry_scores = entries[keep], entry_scores[keep]
    children: Children = {}
    for entry, value in zip(entries, entry_scores, strict=True):
        children.setdefault(int(view.rows[entry]), []).append((view.offsets[entry], float(value)))
    best = {row: max(v for _, v in items) for row, items in children.items()}
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]
    for row in list(children):
        children[row].sort(key=lambda item: (-item[1], item[0]))
    rows = np.array([row for row, _ in ranked], dtype=np.int64)
    scores = np.array([value for _, value in ranked], dtype=np.float32)
    return rows, scores, {int(row): children[int(row)] for row in rows}


def _exact_raw(data: np.ndarray, query: np.ndarray, similarity: str, element: str) -> np.ndarray:
    """The raw similarity of each row of ``data`` to ``query``, in float64."""
    if element == "bit":
        a = data.astype(np.int64).astype(np.uint8)
        b = query.astype(np.int64).astype(np.uint8)
        raw: np.ndarray = np.unpackbits(a ^ b, axis=1).sum(axis=1).astype(np.float64)
        return raw
    if similarity == "cosine":
        norms = np.linalg.norm(data, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos: np.ndarray = (data @ query) / (norms * np.linalg.norm(query))
        return cos
    if similarity == "l2_norm":
        distance: np.ndarray = np.sqrt(((data - query) ** 2).sum(axis=1))
        return distance
    dot: np.ndarray = data @ query
    return dot


def _threshold(
    rows: np.ndarray, scores: np.ndarray, score: Any, threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    if threshold is not None:
        minimum = float(score(np.array([threshold], dtype=np.float64))[0])
        keep = scores >= minimum - 1e-7 * max(1.0, abs(minimum))
        rows, scores = rows[keep], scores[keep]
    return rows.astype(np.int64), scores.astype(np.float32)


def knn_describe(value: Any) -> str:
    return es_str(value) if not isinstance(value, float) or not math.isnan(value) else "NaN"
