"""What a hit or a GET shows of its document: ``_source`` filtering and the ``fields`` option.

The fetch phase's rules, shared by ``_search`` hits and the document APIs (``GET``, ``_mget``,
``_source``): ``_source`` includes/excludes (and ``exclude_vectors``), and ``fields`` values
formatted per field type (dates in their format, numbers as their type prints them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from es_sandbox.dates import format_millis
from es_sandbox.mapper.geo import parse_geo_point
from es_sandbox.mapper.lookup import LeafField
from es_sandbox.mapper.parameters import NUMERIC_TYPES
from es_sandbox.metadata import Index
from es_sandbox.query.context import parsing_error
from es_sandbox.util import es_str, filter_source, get_path, json_type, simple_match, split_names


@dataclass
class SourceSpec:
    enabled: bool = True
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    exclude_vectors: bool | None = None


def parse_source_spec(raw: Any, params: Mapping[str, str] | None = None) -> SourceSpec:
    spec = SourceSpec()
    if raw is not None:
        if isinstance(raw, bool):
            spec.enabled = raw
        elif isinstance(raw, str):
            spec.includes = [raw]
        elif isinstance(raw, list):
            spec.includes = [str(v) for v in raw]
        elif isinstance(raw, dict):
            for key, value in raw.items():
                if key in ("includes", "include"):
                    spec.includes = [value] if isinstance(value, str) else [str(v) for v in value]
                elif key in ("excludes", "exclude"):
                    spec.excludes = [value] if isinstance(value, str) else [str(v) for v in value]
                elif key == "exclude_vectors":
                    spec.exclude_vectors = bool(value)
                else:
                    raise parsing_error(f"Unknown key for a {json_type(value)} in [{key}].")
        else:
            raise parsing_error(
                "Expected one of [VALUE_BOOLEAN, VALUE_STRING, START_ARRAY, START_OBJECT] but found ["
                + json_type(raw)
                + "]"
            )
    if params:
        value = params.get("_source")
        if value is not None:
            if value in ("true", "false"):
                spec.enabled = value == "true"
            else:
                spec.includes = split_names(value)
        if params.get("_source_includes") is not None:
            spec.includes = split_names(params["_source_includes"])
        if params.get("_source_excludes") is not None:
            spec.excludes = split_names(params["_source_excludes"])
        if params.get("_source_exclude_vectors") is not None:
            spec.exclude_vectors = params["_source_exclude_vectors"] in ("", "true")
    return spec


def render_source(
    index: Index, record: Any, spec: SourceSpec, searcher: Any = None, row: int | None = None
) -> dict[str, Any] | None:
    """The ``_source`` of a hit or GET: vectors back in unless excluded, then include/exclude."""
    if not spec.enabled:
        return None
    if index.mapping.get("_source", {}).get("enabled", True) is False:
        return None
    exclude_vectors = (
        spec.exclude_vectors if spec.exclude_vectors is not None else index.exclude_source_vectors
    )
    source = record.source if exclude_vectors else index.store.source_with_vectors(record, searcher, row)
    if exclude_vectors:
        # Vectors in nested objects stay in the stored _source (see store.NestedVectorColumn).
        nested = [
            p for p, leaf in index.compiled.fields.items() if leaf.type == "dense_vector" and leaf.nested_path
        ]
        if nested:
            source = filter_source(source, None, nested)
    stored = index.mapping.get("_source", {})
    if stored.get("includes") or stored.get("excludes"):
        source = filter_source(source, stored.get("includes"), stored.get("excludes"))
    if spec.includes or spec.excludes:
        source = filter_source(source, spec.includes, spec.excludes)
    return source


def format_field_value(leaf: LeafField, value: Any) -> Any:
    ftype = leaf.type
    if ftype in ("keyword", "text", "match_only_text", "wildcard", "constant_keyword", "ip", "flattened"):
        text = es_str(value)
        if ftype == "keyword" and leaf.params.get("normalizer") == "lowercase":
            text = text.lower()
        return text
    if ftype in NUMERIC_TYPES:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
            return int(number)
        return number
    if ftype in ("date", "date_nanos"):
        assert leaf.date_format is not None
        try:
            return format_millis(leaf.date_format.parse(value))
        except ValueError:
            return value
    if ftype == "boolean":
        return value if isinstance(value, bool) else value == "true"
    if ftype == "geo_point":
        lat, lon = parse_geo_point(value, leaf.path)
        return {"type": "Point", "coordinates": [lon, lat]}
    return value


def fetch_fields(
    index: Index, record: Any, patterns: list[Any], searcher: Any, row: int | None = None
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    source = None
    for pattern in patterns:
        name = pattern.get("field") if isinstance(pattern, dict) else pattern
        if not isinstance(name, str):
            raise parsing_error("[fields] entries must be strings or objects with a [field]")
        for path, leaf in index.compiled.fields.items():
            if not simple_match(name, path):
                continue
            if leaf.type == "dense_vector":
                if source is None:
                    source = index.store.source_with_vectors(record, searcher, row)
                values = get_path(source, path)
                if values:
                    out[path] = [float(v) for v in values]
                continue
            source_path = leaf.multi_field_of or path
            values = get_path(record.source, source_path)
            formatted = []
            for value in values:
                if isinstance(value, dict) and leaf.type != "geo_point":
                    continue
                if leaf.type == "keyword" and len(es_str(value)) > int(
                    leaf.params.get("ignore_above", 2147483647)
                ):
                    continue
                formatted.append(format_field_value(leaf, value))
            if formatted:
                out[path] = formatted
    return out
