"""BM25 scoring: Lucene 8+'s formula for text (k1=1.2, b=0.75, without the (k1+1) factor); the idf
alone for a match in a field without frequencies and norms (keyword).

Collection statistics (documents with the field, average field length) are over the searcher's live
documents, cached per request in the :class:`~es_sandbox.query.context.ShardContext`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from es_sandbox.query.context import Result, ShardContext

K1 = 1.2
B = 0.75


def bm25(ctx: ShardContext, path: str, term: Any, is_text: bool, boost: float) -> Result:
    """BM25 for one term in one field (Lucene 8+ formula), mask of the docs containing it."""
    values = ctx.column(path)
    n = ctx.n
    mask = np.zeros(n, dtype=bool)
    freqs = np.zeros(n, dtype=np.float32)
    for row in range(n):
        entry = values[row]
        if entry is not None and term in entry:
            mask[row] = True
            freqs[row] = entry.count(term) if is_text else 1
    live_mask = mask & ctx.live()
    doc_count, avgdl = ctx.text_stats(path) if is_text else (_docs_with_field(ctx, path), 1.0)
    df = int(live_mask.sum())
    scores = np.zeros(n, dtype=np.float32)
    if df == 0:
        return mask, scores
    idf = math.log(1 + (doc_count - df + 0.5) / (df + 0.5))
    rows = np.flatnonzero(mask)
    if is_text:
        lengths_col = ctx.column(f"{path}\x00len")
        dl = np.array([float(sum(lengths_col[r] or [len(values[r] or [])])) for r in rows], dtype=np.float64)
    else:
        dl = np.ones(len(rows), dtype=np.float64)
    if not is_text:
        # Fields indexed without frequencies and norms (keyword, numbers as terms, ...): a match
        # scores its idf, which is what Elasticsearch's YAML REST tests observe (see
        # search.vectors/45_knn_search_byte "kNN search plus query", 190_knn_query-with-k-param
        # "dis_max query with knn query").
        scores[rows] = np.float32(boost * idf)
        return mask, scores
    tf = freqs[rows].astype(np.float64)
    norm = K1 * (1 - B + B * dl / avgdl)
    scores[rows] = (boost * idf * tf / (tf + norm)).astype(np.float32)
    return mask, scores


def _docs_with_field(ctx: ShardContext, path: str) -> int:
    cached = ctx._stats.get(path)
    if cached is None:
        values = ctx.column(path)
        live = ctx.live()
        count = sum(1 for row in range(ctx.n) if live[row] and values[row] is not None)
        cached = (count, 1.0)
        ctx._stats[path] = cached
    return cached[0]
