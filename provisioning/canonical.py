"""Elasticsearch's normal form of what it stores, so a body compares equal to what a GET returns.

Elasticsearch accepts many spellings of one definition and answers with one of them. Comparing
what the stack declares with what the cluster returns must go through the same normalisation, or
a freshly applied stack shows drift forever and every apply writes again. What is normalised here,
each with where Elasticsearch does it:

- mappings (``DocumentMapper`` parsing, ``GET _mapping``): a dotted field name in ``properties``
  (``exif.date``) is the object path it stands for (``exif: {properties: {date: ...}}``), except
  under an object with ``subobjects: false``; ``type: object`` is the default of a field with
  ``properties`` and is not printed back; parameter values are parsed, so ``"256"`` and ``256``,
  ``"true"`` and ``true`` are the same value (:func:`same_value`);
- settings (``Settings``): nested or dotted keys, with or without the ``index.`` prefix, and every
  value a string (:func:`canonical_settings`);
- aliases (``AliasMetadata``): ``routing`` is stored as ``index_routing`` and ``search_routing``;
- templates and pipelines (9.x ``*_tracking_info``): ``created_date``, ``modified_date`` (and their
  ``_millis`` forms) are added by the cluster and are never the stack's;
- byte sizes (``ByteSizeValue``): ``10mb``, ``10MB`` and ``10485760b`` are one size.
"""

from __future__ import annotations

from collections.abc import Mapping

from provisioning.json_types import JsonObject, JsonValue
from provisioning.mappings import deep_merge
from provisioning.units import parse_bytes

# Keys Elasticsearch adds to stored templates and pipelines (tracking info, 9.x).
SERVER_MANAGED_KEYS = frozenset(
    {"created_date", "modified_date", "created_date_millis", "modified_date_millis"}
)


def scalar(value: JsonValue) -> JsonValue:
    """Elasticsearch's string form of a setting value (``1`` and ``"1"`` are the same setting)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, list):
        return [scalar(v) for v in value]
    return value


def flatten_settings(settings: Mapping[str, JsonValue] | None, *, index_prefix: bool = True) -> JsonObject:
    """``{"index": {"number_of_shards": 1}}`` and ``{"number_of_shards": "1"}`` both become
    ``{"index.number_of_shards": "1"}``."""
    out: JsonObject = {}

    def walk(node: Mapping[str, JsonValue], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                walk(value, path)
            else:
                out[path] = scalar(value)

    walk(settings or {}, "")
    if index_prefix:
        out = {(k if k.startswith("index.") else f"index.{k}"): v for k, v in out.items()}
    return out


def without_server_managed(body: Mapping[str, JsonValue]) -> JsonObject:
    """``body`` without the keys the cluster manages itself (:data:`SERVER_MANAGED_KEYS`)."""
    return {k: v for k, v in body.items() if k not in SERVER_MANAGED_KEYS}


def same_value(a: JsonValue, b: JsonValue) -> bool:
    """Equality of two parsed parameter values: numbers by value, and a string equal to the other
    side's Elasticsearch string form (``"256"`` = ``256``, ``"true"`` = ``true``, ``1`` = ``1.0``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return scalar(a) == scalar(b)


def _expand(properties: Mapping[str, JsonValue], *, subobjects: bool) -> JsonObject:
    """Field definitions with dotted names turned into the object paths they stand for."""
    out: JsonObject = {}
    for name, definition in properties.items():
        field = canonical_field(definition)
        parts = name.split(".")
        if subobjects and len(parts) > 1 and all(parts):
            head = parts[0]
            nested: JsonValue = field
            for part in reversed(parts[1:]):
                nested = {"properties": {part: nested}}
            field = nested
            name = head
        current = out.get(name)
        if isinstance(current, dict) and isinstance(field, dict):
            out[name] = canonical_field(deep_merge(current, field))
        else:
            out[name] = field
    return out


def canonical_field(definition: JsonValue) -> JsonValue:
    """One field's definition in normal form (objects expanded, default ``type: object`` dropped)."""
    if not isinstance(definition, dict):
        return definition
    field: JsonObject = dict(definition)
    properties = field.get("properties")
    if isinstance(properties, dict):
        field["properties"] = _expand(properties, subobjects=not same_value(field.get("subobjects"), False))
        if field.get("type") == "object":
            del field["type"]
    multi = field.get("fields")
    if isinstance(multi, dict):
        field["fields"] = {k: canonical_field(v) for k, v in multi.items()}
    return field


def canonical_mappings(mappings: Mapping[str, JsonValue]) -> JsonObject:
    """A ``mappings`` object in normal form; the root's own parameters (``dynamic``, ``_meta``,
    ``_source``...) are kept as they are."""
    out: JsonObject = dict(mappings)
    properties = out.get("properties")
    if isinstance(properties, dict):
        out["properties"] = _expand(properties, subobjects=not same_value(out.get("subobjects"), False))
    return out


def canonical_settings(settings: Mapping[str, JsonValue] | None) -> JsonObject:
    """Settings flattened to ``index.*`` keys with string values (see :func:`flatten_settings`)."""
    return flatten_settings(settings)


def canonical_alias(body: JsonValue) -> JsonObject:
    """One alias's body as ``GET`` returns it: ``routing`` split into index and search routing."""
    alias: JsonObject = dict(body) if isinstance(body, dict) else {}
    routing = alias.pop("routing", None)
    if routing is not None:
        alias.setdefault("index_routing", routing)
        alias.setdefault("search_routing", routing)
    return alias


def canonical_aliases(aliases: Mapping[str, JsonValue] | None) -> JsonObject:
    return {name: canonical_alias(body) for name, body in (aliases or {}).items()}


def canonical_bytes(value: JsonValue) -> JsonValue:
    """A byte size as a number of bytes (``10mb`` -> 10485760); anything else unchanged."""
    if isinstance(value, str):
        try:
            return parse_bytes(value)
        except ValueError:
            return value
    return value
