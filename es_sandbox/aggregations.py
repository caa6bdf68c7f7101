"""Aggregations over a search's matching documents: ``terms`` and the single-value metrics.

``terms`` (``field``, ``size``, ``min_doc_count``, ``order`` by ``_count`` or ``_key``) buckets the
documents by the indexed values of a keyword, numeric or boolean field; ``min``, ``max``, ``avg``,
``sum`` and ``value_count`` reduce a field's values. They run on what the query (with ``knn``)
matched, across indices, before ``post_filter``, as in Elasticsearch. Sub-aggregations and the
other aggregation types are out of the sandbox's scope and refused by name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.mapper.parameters import NUMERIC_TYPES
from es_sandbox.query.context import ShardContext, parsing_error
from es_sandbox.util import json_type

METRICS = ("min", "max", "avg", "sum", "value_count")
INTEGER_TYPES = ("long", "integer", "short", "byte", "unsigned_long")


@dataclass
class Aggregation:
    name: str
    kind: str
    field: str
    size: int = 10
    min_doc_count: int = 1
    order: tuple[str, str] | None = None  # (_count|_key, asc|desc)


def parse_aggregations(raw: Any) -> list[Aggregation]:
    if not isinstance(raw, dict):
        raise parsing_error(f"Found [{json_type(raw)}] in [aggs], expected an object")
    out = []
    for name, body in raw.items():
        if not isinstance(body, dict) or not body:
            raise parsing_error(
                f"Expected [START_OBJECT] under [{name}], but got a [{json_type(body)}] in [aggs]"
            )
        kinds = [k for k in body if k not in ("meta",)]
        if any(k in ("aggs", "aggregations") for k in kinds):
            raise _out_of_scope("sub-aggregations")
        if len(kinds) != 1:
            raise parsing_error(f"Found two aggregation type definitions in [{name}]: {kinds}")
        kind = kinds[0]
        spec = body[kind]
        if kind not in ("terms", *METRICS):
            raise _out_of_scope(f"[{kind}] aggregations")
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            raise parsing_error(
                f"Required one of fields [field, script], but none were specified. in [{name}]"
            )
        for key in spec:
            allowed = (
                ("field", "size", "min_doc_count", "order", "missing") if kind == "terms" else ("field",)
            )
            if key not in allowed:
                raise parsing_error(f"[{kind}] unknown field [{key}]")
        agg = Aggregation(name, kind, spec["field"])
        if kind == "terms":
            agg.size = int(spec.get("size", 10))
            agg.min_doc_count = int(spec.get("min_doc_count", 1))
            order = spec.get("order")
            if order is not None:
                if not isinstance(order, dict) or len(order) != 1:
                    raise _out_of_scope("a terms order other than one of _count or _key")
                ((key, direction),) = order.items()
                if key not in ("_count", "_key") or direction not in ("asc", "desc"):
                    raise _out_of_scope(f"terms order [{key}: {direction}]")
                agg.order = (key, direction)
        out.append(agg)
    return out


def _out_of_scope(what: str) -> ApiError:
    return ApiError(
        400,
        "illegal_argument_exception",
        f"[aggs] {what} are out of the provision sandbox's scope (terms, min, max, avg, sum and value_count are implemented)",
    )


def collect(aggs: list[Aggregation], shards: list[tuple[ShardContext, np.ndarray]]) -> dict[str, Any]:
    """Each aggregation over the matching rows of every index, merged."""
    out: dict[str, Any] = {}
    for agg in aggs:
        values: list[Any] = []
        field_type: str | None = None
        for ctx, mask in shards:
            leaf = ctx.field(agg.field)
            if leaf is None:
                continue
            field_type = leaf.type
            column = ctx.column(leaf.path)
            for row in np.flatnonzero(mask):
                entry = column[int(row)]
                if entry:
                    values.extend(entry if agg.kind != "terms" else set(entry))
        out[agg.name] = (
            _terms(agg, values, field_type) if agg.kind == "terms" else _metric(agg, values, field_type)
        )
    return out


def _key(value: Any, field_type: str | None) -> Any:
    if field_type in INTEGER_TYPES:
        return int(float(value))
    if field_type in NUMERIC_TYPES:
        return float(value)
    if field_type == "boolean":
        return 1 if value in (True, "true") else 0
    return value


def _terms(agg: Aggregation, values: list[Any], field_type: str | None) -> dict[str, Any]:
    counts = Counter(_key(v, field_type) for v in values)
    order_key, direction = agg.order or ("_count", "desc")

    def sort_key(item: tuple[Any, int]) -> tuple[Any, ...]:
        key, count = item
        if order_key == "_count":
            return (-count if direction == "desc" else count, key)
        return (key,)

    ranked = sorted(((k, c) for k, c in counts.items() if c >= agg.min_doc_count), key=sort_key)
    if order_key == "_key" and direction == "desc":
        ranked.reverse()
    shown = ranked[: agg.size]
    buckets: list[dict[str, Any]] = []
    for key, count in shown:
        bucket: dict[str, Any] = {"key": key, "doc_count": count}
        if field_type == "boolean":
            bucket["key_as_string"] = "true" if key else "false"
        buckets.append(bucket)
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(c for _, c in ranked[agg.size :]),
        "buckets": buckets,
    }


def _metric(agg: Aggregation, values: list[Any], field_type: str | None) -> Mapping[str, Any]:
    if agg.kind == "value_count":
        return {"value": len(values)}
    if (
        field_type is not None
        and field_type not in NUMERIC_TYPES
        and field_type not in ("date", "date_nanos")
    ):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Field [{agg.field}] of type [{field_type}] is not supported for aggregation [{agg.kind}]",
        )
    numbers = [float(v) for v in values]
    if agg.kind == "sum":
        return {"value": float(sum(numbers))}
    if not numbers:
        return {"value": None}
    if agg.kind == "min":
        return {"value": min(numbers)}
    if agg.kind == "max":
        return {"value": max(numbers)}
    return {"value": sum(numbers) / len(numbers)}
