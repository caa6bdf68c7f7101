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

from es_sandbox.http import ApiError, unknown_field
from es_sandbox.mapping import check_vector
from es_sandbox.query import Knn, Query, ShardContext, parse_query, shard_error
from es_sandbox.util import es_str, json_type

NUM_CANDS_LIMIT = 10_000
KNN_KEYS = (
    "field",
    "query_vector",
    "query_vector_builder",
    "k",
    "num_candidates",
    "filter",
    "similarity",
    "boost",
    "_name",
    "rescore_vector",
    "inner_hits",
    "visit_percentage",
)
_REFINE_EXTRA = 128


def _int_field(body: dict[str, Any], name: str, parser: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(
            400,
            "x_content_parse_exception",
            f"[{parser}] {name} doesn't support values of type: {json_type(value)}",
        )
    try:
        number = float(value)
    except ValueError as exc:
        raise ApiError(
            400, "x_content_parse_exception", f"[{parser}] failed to parse field [{name}]"
        ).with_cause(ApiError(400, "number_format_exception", f'For input string: "{value}"')) from exc
    if not number.is_integer():
        raise ApiError(400, "x_content_parse_exception", f"[{parser}] failed to parse field [{name}]")
    return int(number)


def parse_knn_clause(body: Any, parser: str, size: int | None, as_query: bool = False) -> Knn:
    """A ``knn`` section (or knn query) validated as KnnSearchBuilder does, defaults applied."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "x_content_parse_exception",
            f"[{parser}] knn search must be an object or an array of objects",
        )
    for key in body:
        if key not in KNN_KEYS:
            raise unknown_field(parser, key, KNN_KEYS)
    if "inner_hits" in body:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "[knn] inner_hits are out of the provision sandbox's scope (nested vectors)",
        )
    if "field" not in body or not isinstance(body.get("field"), str):
        raise ApiError(400, "illegal_argument_exception", "Required [field]")
    k = _int_field(body, "k", parser)
    num_candidates = _int_field(body, "num_candidates", parser)
    vector = body.get("query_vector")
    builder = body.get("query_vector_builder")
    if vector is None and builder is None:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "either [query_vector_builder] or [query_vector] must be provided",
        )
    if vector is not None and builder is not None:
        raise ApiError(
            400, "illegal_argument_exception", "cannot provide both [query_vector_builder] and [query_vector]"
        )
    if vector is not None:
        if isinstance(vector, str):
            try:
                vector = [int(b) if b < 128 else int(b) - 256 for b in bytes.fromhex(vector)]
            except ValueError as exc:
                raise ApiError(
                    400, "x_content_parse_exception", f"[{parser}] failed to parse field [query_vector]"
                ) from exc
        elif not isinstance(vector, list) or not set(map(type, vector)) <= {int, float}:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [query_vector]"
            )
    if builder is not None:
        if not isinstance(builder, dict) or len(builder) != 1:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [query_vector_builder]"
            )
        ((kind, spec),) = builder.items()
        if kind != "text_embedding":
            raise ApiError(
                400,
                "x_content_parse_exception",
                f"[{parser}] failed to parse field [query_vector_builder]",
            ).with_cause(ApiError(400, "named_object_not_found_exception", f"unknown field [{kind}]"))
        if not isinstance(spec, dict) or "model_text" not in spec:
            raise ApiError(400, "illegal_argument_exception", "Required [model_text]")
        for key in spec:
            if key not in ("model_id", "model_text"):
                raise unknown_field("text_embedding", key, ("model_id", "model_text"))
        if not spec.get("model_id"):
            raise ApiError(400, "illegal_argument_exception", "[model_id] must not be null.")
    similarity = body.get("similarity")
    if similarity is not None:
        try:
            similarity = float(similarity)
        except (TypeError, ValueError) as exc:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [similarity]"
            ) from exc
    boost = body.get("boost", 1.0)
    try:
        boost = float(boost)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "x_content_parse_exception", f"[{parser}] failed to parse field [boost]") from exc
    request_size = size if size is not None and size >= 0 else 10
    if as_query:
        if num_candidates is None:
            num_candidates = round(min(NUM_CANDS_LIMIT, 1.5 * (k if k is not None else request_size)))
        if k is None:
            k = num_candidates
    else:
        if k is None:
            k = request_size
        if num_candidates is None:
            num_candidates = round(min(NUM_CANDS_LIMIT, 1.5 * k))
    if k < 1:
        raise ApiError(400, "illegal_argument_exception", "[k] must be greater than 0")
    if num_candidates < k:
        raise ApiError(400, "illegal_argument_exception", "[num_candidates] cannot be less than [k]")
    if num_candidates > NUM_CANDS_LIMIT:
        raise ApiError(
            400, "illegal_argument_exception", f"[num_candidates] cannot exceed [{NUM_CANDS_LIMIT}]"
        )
    filters_raw = body.get("filter")
    filters: list[Query] = []
    if filters_raw is not None:
        items = filters_raw if isinstance(filters_raw, list) else [filters_raw]
        filters = [parse_query(item) for item in items]
    name = body.get("_name")
    return Knn(
        name=str(name) if name is not None else None,
        boost=boost,
        field=body["field"],
        query_vector=vector,
        builder=builder,
        k=k,
        num_candidates=num_candidates,
        filters=filters,
        similarity=similarity,
        resolved_vector=np.asarray(vector, dtype=np.float64) if vector is not None else None,
    )


def resolve_vector(state: Any, clause: Knn) -> None:
    """Run query_vector_builder (text_embedding through the ML area) into a concrete vector."""
    if clause.resolved_vector is not None or clause.builder is None:
        return
    from es_sandbox import ml

    spec = clause.builder["text_embedding"]
    results = ml.infer(state, str(spec["model_id"]), [str(spec["model_text"])], prefix_type="search")
    value = results[0].get("predicted_value") if results else None
    if not isinstance(value, list):
        raise ApiError(
            400,
            "illegal_argument_exception",
            "[query_vector_builder] with name [text_embedding] returned null query_vector",
        )
    clause.resolved_vector = np.asarray(value, dtype=np.float64)


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
            raise shard_error(ctx, f"field [{field_name}] does not exist in the mapping")
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
