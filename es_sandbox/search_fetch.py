"""The parts of a search hit beyond ``_source`` and ``fields``: ``docvalue_fields`` and ``inner_hits``.

``docvalue_fields`` reads fields as their doc values give them: keywords, numbers and dates as
``fields`` formats them, and a ``dense_vector`` as one vector (a list of its values) per document,
whether or not it is indexed or in ``_source``.

``inner_hits`` renders what a kNN on a nested vector recorded in the query phase
(es_sandbox.query.inner_hits): for each hit, its nested objects by score, each with ``_nested``
(the path and the object's offset, nested levels chained), its ``_score`` and its ``_source`` or
``fields`` (grouped under the nested path, as Elasticsearch shows nested fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from es_sandbox.fetch import format_field_value, parse_source_spec
from es_sandbox.metadata import Index
from es_sandbox.query.context import parsing_error
from es_sandbox.query.inner_hits import InnerHitsResult
from es_sandbox.util import es_str, filter_source, get_path, simple_match


def nested_vector_paths(index: Index) -> list[str]:
    """The dense_vector fields inside nested objects (kept in the stored ``_source``)."""
    return [
        path
        for path, leaf in index.compiled.fields.items()
        if leaf.type == "dense_vector" and leaf.nested_path is not None
    ]


def docvalue_fields(
    index: Index, record: Any, patterns: list[Any], searcher: Any, row: int
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    source: dict[str, Any] | None = None
    for pattern in patterns:
        name = pattern.get("field") if isinstance(pattern, dict) else pattern
        if not isinstance(name, str):
            raise parsing_error("[docvalue_fields] entries must be strings or objects with a [field]")
        for path, leaf in index.compiled.fields.items():
            if not simple_match(name, path) or leaf.nested_path is not None:
                continue
            if leaf.type == "dense_vector":
                if source is None:
                    source = index.store.source_with_vectors(record, searcher, row)
                values = get_path(source, path)
                if values:
                    out[path] = [[_vector_value(v, leaf.element_type) for v in values]]
                continue
            values = get_path(record.source, leaf.multi_field_of or path)
            formatted = [format_field_value(leaf, v) for v in values if not isinstance(v, dict)]
            if formatted:
                out[path] = formatted
    return out


def _vector_value(value: Any, element_type: str) -> Any:
    return int(value) if element_type in ("byte", "bit") else float(value)


def render_inner_hits(
    index: Index, record: Any, row: int, results: Mapping[str, InnerHitsResult], exclude_vectors: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    full_source: dict[str, Any] | None = None
    for name, result in results.items():
        children = result.children.get(row, [])
        spec = result.spec
        page = children[spec.from_ : spec.from_ + spec.size]
        hits = []
        for offsets, score in page:
            if full_source is None:
                full_source = index.store.source_with_vectors(record)
            child = _child_source(index, full_source, result.path, offsets)
            hit: dict[str, Any] = {
                "_index": index.name,
                "_id": record.id,
                "_nested": _nested_identity(index, result.path, offsets),
                "_score": float(str(_f32(score))),
            }
            source_spec = parse_source_spec(spec.source) if spec.source is not None else None
            if (source_spec is None or source_spec.enabled) and child is not None:
                shown = child
                if exclude_vectors:
                    relative = [
                        p[len(result.path) + 1 :]
                        for p in nested_vector_paths(index)
                        if p.startswith(result.path + ".")
                    ]
                    shown = filter_source(child, None, relative) if relative else child
                if source_spec is not None and (source_spec.includes or source_spec.excludes):
                    shown = filter_source(shown, source_spec.includes, source_spec.excludes)
                hit["_source"] = shown
            if spec.fields and child is not None:
                fields = _child_fields(index, result.path, child, spec.fields)
                if fields:
                    hit["fields"] = fields
            hits.append(hit)
        out[name] = {
            "hits": {
                "total": {"value": len(children), "relation": "eq"},
                "max_score": float(str(_f32(children[0][1]))) if children else None,
                "hits": hits,
            }
        }
    return out


def _f32(value: float) -> Any:
    return np.float32(value)


def _nested_chain(index: Index, path: str) -> list[str]:
    """The nested objects from the outermost down to ``path``."""
    return sorted(
        (p for p in index.compiled.nested if p == path or path.startswith(p + ".")),
        key=lambda p: p.count("."),
    )


def _nested_identity(index: Index, path: str, offsets: tuple[int, ...]) -> dict[str, Any]:
    chain = _nested_chain(index, path)
    identity: dict[str, Any] = {}
    node = identity
    previous = ""
    for level, (nested_path, offset) in enumerate(zip(chain, offsets, strict=False)):
        relative = nested_path[len(previous) + 1 :] if previous else nested_path
        if level:
            node["_nested"] = {}
            node = node["_nested"]
        node["field"] = relative
        node["offset"] = offset
        previous = nested_path
    return identity


def _child_source(
    index: Index, source: dict[str, Any], path: str, offsets: tuple[int, ...]
) -> dict[str, Any] | None:
    node: Any = source
    previous = ""
    for nested_path, offset in zip(_nested_chain(index, path), offsets, strict=False):
        relative = nested_path[len(previous) + 1 :] if previous else nested_path
        items = _lookup(node, relative)
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or offset >= len(items):
            return None
        node = items[offset]
        previous = nested_path
    return node if isinstance(node, dict) else None


def _lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _child_fields(index: Index, path: str, child: Mapping[str, Any], patterns: list[Any]) -> dict[str, Any]:
    values: dict[str, list[Any]] = {}
    for pattern in patterns:
        name = pattern.get("field") if isinstance(pattern, dict) else pattern
        for full, leaf in index.compiled.fields.items():
            if not full.startswith(path + ".") or not simple_match(es_str(name), full):
                continue
            relative = full[len(path) + 1 :]
            raw = get_path(child, leaf.multi_field_of[len(path) + 1 :] if leaf.multi_field_of else relative)
            if leaf.type == "dense_vector":
                formatted = [float(v) for v in raw]
            else:
                formatted = [format_field_value(leaf, v) for v in raw if not isinstance(v, dict)]
            if formatted:
                values[relative] = formatted
    if not values:
        return {}
    top = path.split(".")[0] if "." not in path else path.rsplit(".", 1)[-1]
    return {top: [values]}
