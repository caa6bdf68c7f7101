"""``inner_hits`` of kNN searches on vectors inside ``nested`` objects.

A kNN on a nested vector (the ``knn`` query or section, alone or in a ``nested`` query) finds, per
document, its best nested object (ES's diversifying-children query); ``inner_hits`` then lists the
hit's nested objects by score, ``size`` of them (3 by default), each with ``_nested`` (the path and
the object's offset) and its ``fields`` / ``_source``. The query phase records what it found here,
on the index's context; the fetch phase (es_sandbox.search_fetch) renders it per hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.query.context import Result, ShardContext, parsing_error
from es_sandbox.query.knn import Children, nested_knn
from es_sandbox.util import json_type

if TYPE_CHECKING:
    from es_sandbox.query.nodes import Knn

INNER_HITS_KEYS = ("name", "size", "from", "_source", "fields", "docvalue_fields", "sort", "ignore_unmapped")
DEFAULT_INNER_HITS_SIZE = 3


@dataclass
class InnerHitsSpec:
    """An ``inner_hits`` section: which nested objects of a hit to show, and how."""

    name: str | None = None
    size: int = DEFAULT_INNER_HITS_SIZE
    from_: int = 0
    source: Any = None  # the raw ``_source`` option (None: as the top-level request)
    fields: list[Any] = dc_field(default_factory=list)


@dataclass
class InnerHitsResult:
    """What a query found for ``inner_hits`` on one index: each document's nested objects, scored."""

    spec: InnerHitsSpec
    path: str
    children: Children  # row -> [(offsets, score)], best first


def parse_inner_hits(raw: Any) -> InnerHitsSpec:
    if not isinstance(raw, dict):
        raise parsing_error(f"[inner_hits] must be an object, got {json_type(raw)}")
    for key in raw:
        if key not in INNER_HITS_KEYS:
            raise parsing_error(f"[inner_hits] unknown field [{key}]")
    if raw.get("sort") is not None:
        raise ApiError(
            400, "illegal_argument_exception", "[inner_hits] sort is out of the provision sandbox's scope"
        )
    fields = list(raw.get("fields") or []) + list(raw.get("docvalue_fields") or [])
    return InnerHitsSpec(
        name=str(raw["name"]) if raw.get("name") is not None else None,
        size=int(raw.get("size", DEFAULT_INNER_HITS_SIZE)),
        from_=int(raw.get("from", 0)),
        source=raw.get("_source"),
        fields=fields,
    )


def knn_under_nested(
    ctx: ShardContext, knn: Knn, inner_hits: InnerHitsSpec | None, path: str | None = None
) -> Result:
    """A ``knn`` on a nested vector: best nested object per document (scores before the query's
    boost), each hit's nested objects recorded for ``inner_hits`` (boosted, as ES shows them)."""
    leaf = ctx.field(knn.field)
    assert leaf is not None and leaf.nested_path is not None
    filter_mask = None
    if knn.filters:
        filter_mask = np.ones(ctx.n, dtype=bool)
        for clause in knn.filters:
            matched, _ = clause.evaluate(ctx)
            filter_mask &= matched
    k = knn.k if knn.k is not None else 10
    rows, scores, children = nested_knn(ctx, knn.field, knn.vector(ctx), k, filter_mask, knn.similarity)
    mask = np.zeros(ctx.n, dtype=bool)
    out = np.zeros(ctx.n, dtype=np.float32)
    mask[rows] = True
    out[rows] = scores
    if inner_hits is not None:
        boosted = {
            row: [(offsets, value * knn.boost) for offsets, value in items] for row, items in children.items()
        }
        nested_path = path or leaf.nested_path
        name = inner_hits.name or nested_path
        ctx.inner_hits[name] = InnerHitsResult(inner_hits, nested_path, boosted)
    return mask, out
