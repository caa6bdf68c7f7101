"""Merging a mapping update into an existing mapping, as ``PUT _mapping`` and templates do.

Every parameter is compared with its default filled in, which is how Elasticsearch decides that
``{"type": "keyword"}`` over ``ignore_above: 256`` drops the limit but that changing ``dims`` is a
conflict (``illegal_argument_exception`` naming the parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.mapper.dense_vector import finish_dense_vector, options_str, options_updatable
from es_sandbox.mapper.parameters import TYPE_PARAMS, is_object
from es_sandbox.util import es_str


def merge_mappings(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """``incoming`` applied onto ``existing`` (both canonical), raising ES's conflict errors."""
    out = dict(existing)
    for key, value in incoming.items():
        if key == "properties":
            out["properties"] = _merge_properties(existing.get("properties", {}), value, "")
        elif key == "_source":
            if existing.get("_source", {}) != value:
                _source_conflict(existing.get("_source", {}), value)
            out[key] = value
        elif key in ("_meta", "dynamic_templates"):
            out[key] = value
        else:
            out[key] = value
    if "_source" not in incoming and existing.get("_source"):
        pass  # not mentioned: unchanged
    if "enabled" in existing and existing.get("enabled", True) != incoming.get(
        "enabled", existing.get("enabled", True)
    ):
        raise ApiError(
            400,
            "illegal_argument_exception",
            "the [enabled] parameter can't be updated for the object mapping [_doc]",
        )
    return _order_root(out)


def _source_conflict(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    conflicts = []
    for name, default in (("enabled", True), ("includes", []), ("excludes", [])):
        a, b = old.get(name, default), new.get(name, default)
        if a != b:
            conflicts.append(f"Cannot update parameter [{name}] from [{_param_str(a)}] to [{_param_str(b)}]")
    if conflicts:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "Mapper for [_source] conflicts with existing mapper:\n\t" + "\n\t".join(conflicts),
        )


def _order_root(mapping: Mapping[str, Any]) -> dict[str, Any]:
    order = [
        "dynamic",
        "enabled",
        "subobjects",
        "_meta",
        "_routing",
        "_source",
        "dynamic_date_formats",
        "dynamic_templates",
        "date_detection",
        "numeric_detection",
        "properties",
    ]
    out = {k: mapping[k] for k in order if k in mapping}
    out.update({k: v for k, v in mapping.items() if k not in out})
    return out


def _merge_properties(
    existing: Mapping[str, Any], incoming: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    out = dict(existing)
    for name, new in incoming.items():
        full = prefix + name
        old = existing.get(name)
        if old is None:
            out[name] = new
            continue
        if is_object(old) or is_object(new):
            if not is_object(new):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"can't merge a non object mapping [{full}] with an object mapping",
                )
            if not is_object(old):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"mapper [{full}] cannot be changed from type [{old['type']}] to [{new.get('type', 'object')}]",
                )
            old_nested = old.get("type") == "nested"
            new_nested = new.get("type") == "nested"
            if old_nested != new_nested:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"can't merge a non-nested mapping [{full}] with a nested mapping"
                    if new_nested
                    else f"can't merge a nested mapping [{full}] with a non-nested mapping",
                )
            if old.get("enabled", True) != new.get("enabled", old.get("enabled", True)):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"the [enabled] parameter can't be updated for the object mapping [{full}]",
                )
            merged = {k: v for k, v in old.items() if k not in ("properties", "type")}
            for key in ("dynamic", "enabled", "subobjects", "include_in_parent", "include_in_root"):
                if key in new:
                    merged[key] = new[key]
            props = _merge_properties(old.get("properties", {}), new.get("properties", {}), full + ".")
            result: dict[str, Any] = {}
            if old_nested:
                result["type"] = "nested"
            result.update(dict(merged.items()))
            if props:
                result["properties"] = dict(sorted(props.items()))
            elif not old_nested:
                result = {"type": "object", **result}
            out[name] = result
            continue
        out[name] = merge_field(full, old, new)
    return dict(sorted(out.items()))


def _param_str(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_param_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_param_str(v)}" for k, v in value.items()) + "}"
    return es_str(value)


def merge_field(full: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """One leaf field updated: same type, updateable params may change, others must be equal."""
    if old["type"] != new["type"]:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"mapper [{full}] cannot be changed from type [{old['type']}] to [{new['type']}]",
        )
    ftype = old["type"]
    conflicts: list[str] = []
    merged: dict[str, Any] = {"type": ftype}
    for spec in TYPE_PARAMS[ftype]:
        a = old.get(spec.name, spec.default)
        b = new.get(spec.name, spec.default)
        if spec.kind == "fields":
            subs = dict(a or {})
            for sub, definition in (b or {}).items():
                subs[sub] = merge_field(f"{full}.{sub}", subs[sub], definition) if sub in subs else definition
            if subs:
                merged["fields"] = dict(sorted(subs.items()))
            continue
        value = a
        if a != b:
            if ftype == "dense_vector" and spec.name == "dims":
                if a is None:
                    value = b
                else:
                    conflicts.append(
                        f"Cannot update parameter [dims] from [{_param_str(a)}] to [{_param_str(b)}]"
                    )
            elif ftype == "dense_vector" and spec.name == "index_options":
                if a is None or b is None or options_updatable(a, b):
                    value = b if b is not None else a
                else:
                    conflicts.append(
                        f"Cannot update parameter [index_options] from [{options_str(a)}] to [{options_str(b)}]"
                    )
            elif spec.name == "norms" and a is True and b is False:
                value = b  # norms may be disabled, never re-enabled
            elif spec.updateable:
                value = b
            else:
                conflicts.append(
                    f"Cannot update parameter [{spec.name}] from [{_param_str(a)}] to [{_param_str(b)}]"
                )
        if value != spec.default or spec.always:
            merged[spec.name] = value
    if conflicts:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Mapper for [{full}] conflicts with existing mapper:\n\t" + "\n\t".join(conflicts),
        )
    if ftype == "dense_vector":
        return finish_dense_vector(full, {k: v for k, v in merged.items() if k != "type"})
    return merged


def count_fields(mapping: Mapping[str, Any]) -> int:
    """Fields counted against ``index.mapping.total_fields.limit`` (objects and multi-fields too)."""

    def walk(props: Mapping[str, Any]) -> int:
        total = 0
        for definition in props.values():
            total += 1
            total += walk(definition.get("properties", {}))
            total += len(definition.get("fields") or {})
        return total

    return walk(mapping.get("properties", {}))
