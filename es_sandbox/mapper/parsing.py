"""Parsing mapping definitions into Elasticsearch's canonical form (what ``GET _mapping`` returns).

Defaults are left out, dense vectors' ``index_options`` are filled in, properties are sorted, and
every error is the ``mapper_parsing_exception`` Elasticsearch raises for the same definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_sandbox import analysis, versions
from es_sandbox.dates import DateFormat
from es_sandbox.http import ApiError
from es_sandbox.mapper.dense_vector import finish_dense_vector, parse_index_options
from es_sandbox.mapper.parameters import (
    DYNAMIC_VALUES,
    NESTED_PARAMS,
    OBJECT_PARAMS,
    ROOT_PARAMS,
    TYPE_PARAMS,
    P,
    mapper_error,
    param_bool,
    param_float,
    param_int,
)
from es_sandbox.util import es_str
from provisioning.vectors import SIMILARITIES

OUT_OF_SCOPE_TYPES = {
    "semantic_text": "it needs the inference service integration of a real cluster",
    "percolator": "percolation is not implemented",
    "join": "parent/child joins are not implemented",
    "completion": "suggesters are not implemented",
}


class MappingContext:
    """What parsing a mapping needs to know about the index: its settings (for analyzers) and the
    Elasticsearch version it is created with (defaults and types that differ between 9.x minors)."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.emulation = versions.current().for_index(self.settings)

    def has_analyzer(self, name: str) -> bool:
        return analysis.resolve(name, self.settings) is not None

    def has_normalizer(self, name: str) -> bool:
        if name == "lowercase":
            return True
        return any(k.startswith(f"index.analysis.normalizer.{name}.") for k in self.settings)


def parse_mapping(source: Any, ctx: MappingContext | None = None) -> dict[str, Any]:
    """Validate a mapping body (``mappings`` of create index / put mapping) into canonical form."""
    ctx = ctx or MappingContext()
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise mapper_error(
            "Failed to parse mapping: Expected map for property [mappings] but got a " + _java_class(source)
        )
    if len(source) == 1 and "_doc" in source and isinstance(source["_doc"], dict):
        source = source["_doc"]
    out: dict[str, Any] = {}
    unknown = [k for k in source if k not in ROOT_PARAMS]
    if unknown:
        shown = ", ".join(f"{k} : {es_str(source[k])}" for k in unknown)
        raise mapper_error(f"Root mapping definition has unsupported parameters:  [{shown}]")
    if "dynamic" in source:
        out["dynamic"] = _dynamic_value(source["dynamic"])
    if "enabled" in source:
        enabled = param_bool(source["enabled"], "enabled")
        if not enabled:
            out["enabled"] = False
    if "subobjects" in source:
        subobjects = (
            param_bool(source["subobjects"], "subobjects") if source["subobjects"] != "auto" else "auto"
        )
        if subobjects is not True:
            out["subobjects"] = subobjects
    if "_routing" in source:
        routing = source["_routing"]
        if not isinstance(routing, dict):
            raise mapper_error("Failed to parse mapping: [_routing] must be an object")
        for key in routing:
            if key != "required":
                raise mapper_error(
                    f"Mapping definition for [_routing] has unsupported parameters:  [{key} : {es_str(routing[key])}]"
                )
        if param_bool(routing.get("required", False), "required"):
            out["_routing"] = {"required": True}
    if "_source" in source:
        src = _parse_source_meta(source["_source"])
        if src:
            out["_source"] = src
    if "_meta" in source:
        meta = source["_meta"]
        if meta is not None and not isinstance(meta, dict):
            raise mapper_error("Failed to parse mapping: [_meta] must be an object, got " + es_str(meta))
        if meta:
            out["_meta"] = meta
    if source.get("runtime"):
        raise mapper_error(
            "runtime fields are out of the provision sandbox's scope (they need painless scripts)"
        )
    if "dynamic_date_formats" in source:
        formats = source["dynamic_date_formats"]
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list):
            raise mapper_error("Failed to parse mapping: [dynamic_date_formats] must be a list of strings")
        for fmt in formats:
            _compile_format(str(fmt))
        out["dynamic_date_formats"] = [str(f) for f in formats]
    if "dynamic_templates" in source:
        out["dynamic_templates"] = _parse_dynamic_templates(source["dynamic_templates"], ctx)
    if "date_detection" in source and not param_bool(source["date_detection"], "date_detection"):
        out["date_detection"] = False
    if "numeric_detection" in source and param_bool(source["numeric_detection"], "numeric_detection"):
        out["numeric_detection"] = True
    if "properties" in source:
        props = _parse_properties(source["properties"], "", ctx)
        if props:
            out["properties"] = props
    return out


def _java_class(value: Any) -> str:
    if isinstance(value, str):
        return "class java.lang.String"
    if isinstance(value, bool):
        return "class java.lang.Boolean"
    if isinstance(value, int):
        return "class java.lang.Integer"
    if isinstance(value, float):
        return "class java.lang.Double"
    if isinstance(value, list):
        return "class java.util.ArrayList"
    return "class java.lang.Object"


def _dynamic_value(value: Any) -> str:
    text = es_str(value).lower() if isinstance(value, bool) else str(value)
    if text not in DYNAMIC_VALUES:
        raise mapper_error(
            f"Failed to parse mapping: Invalid dynamic value [{text}]; must be one of [true, false, strict, runtime]"
        )
    return text


def _parse_source_meta(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise mapper_error("Failed to parse mapping: [_source] must be an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "enabled":
            if not param_bool(item, key):
                out["enabled"] = False
        elif key in ("includes", "excludes"):
            items = [item] if isinstance(item, str) else item
            if not isinstance(items, list):
                raise mapper_error(f"Failed to parse mapping: [_source.{key}] must be a list of strings")
            if items:
                out[key] = [str(i) for i in items]
        elif key == "mode":
            raise mapper_error(
                "Failed to parse mapping: Parameter [mode] on mapper [_source] is deprecated, use [index.mapping.source.mode]"
            )
        else:
            raise mapper_error(
                f"Mapping definition for [_source] has unsupported parameters:  [{key} : {es_str(item)}]"
            )
    return out


def _parse_dynamic_templates(value: Any, ctx: MappingContext) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise mapper_error(
            "Failed to parse mapping: Dynamic template syntax error. An array of named objects is expected."
        )
    out = []
    allowed = {
        "match",
        "unmatch",
        "path_match",
        "path_unmatch",
        "match_mapping_type",
        "unmatch_mapping_type",
        "match_pattern",
        "mapping",
        "runtime",
    }
    for item in value:
        if not isinstance(item, dict) or len(item) != 1:
            raise mapper_error(
                "Failed to parse mapping: Dynamic template syntax error. An array of named objects is expected."
            )
        name, body = next(iter(item.items()))
        if not isinstance(body, dict):
            raise mapper_error(f"Failed to parse mapping: Dynamic template [{name}] must be an object")
        for key in body:
            if key not in allowed:
                raise mapper_error(f"Failed to parse mapping: Illegal dynamic template parameter: [{key}]")
        if "mapping" not in body and "runtime" not in body:
            raise mapper_error(
                f"Failed to parse mapping: template [{name}] must have either mapping or runtime set"
            )
        if "runtime" in body:
            raise mapper_error(
                "runtime fields are out of the provision sandbox's scope (they need painless scripts)"
            )
        out.append({name: body})
    return out


def _expand_dotted(props: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": {...}}`` in properties means object ``a`` with property ``b`` (ES expands dots)."""
    out: dict[str, Any] = {}
    for name, definition in props.items():
        if "." in name and name.strip("."):
            head, rest = name.split(".", 1)
            wrapper = out.setdefault(head, {"properties": {}})
            if isinstance(wrapper, dict):
                wrapper.setdefault("properties", {})[rest] = definition
        else:
            out[name] = definition
    return out


def _parse_properties(props: Any, prefix: str, ctx: MappingContext) -> dict[str, Any]:
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise mapper_error(
            f"Failed to parse mapping: Expected map for property [properties] on field [{prefix.rstrip('.') or '_doc'}] but got a {_java_class(props)}"
        )
    out: dict[str, Any] = {}
    for name, definition in _expand_dotted(props).items():
        if not name or not name.strip():
            raise mapper_error("Failed to parse mapping: field name cannot be an empty string").with_cause(
                ApiError(400, "illegal_argument_exception", "field name cannot be an empty string")
            )
        full = prefix + name
        out[name] = parse_field(full, definition, ctx)
    return dict(sorted(out.items()))


def parse_field(full: str, definition: Any, ctx: MappingContext, multi_field: bool = False) -> dict[str, Any]:
    if not isinstance(definition, dict):
        raise mapper_error(
            f"Failed to parse mapping: Expected map for property [fields] on field [{full}] but got a {_java_class(definition)}"
            if multi_field
            else f"Expected map for property [{full.rsplit('.', 1)[-1]}] on field [{full}] but got a {_java_class(definition)}"
        )
    ftype = definition.get("type")
    if ftype is None or ftype in ("object", "nested"):
        if multi_field:
            raise mapper_error(f"Type [{ftype or 'object'}] cannot be used in multi field")
        return _parse_object(full, definition, ftype or "object", ctx)
    if not isinstance(ftype, str):
        raise mapper_error(f"No handler for type [{es_str(ftype)}] declared on field [{full}]")
    if ftype in OUT_OF_SCOPE_TYPES:
        raise mapper_error(
            f"The field type [{ftype}] of field [{full}] is out of the provision sandbox's scope: {OUT_OF_SCOPE_TYPES[ftype]}"
        )
    specs = TYPE_PARAMS.get(ftype)
    if specs is None:
        raise mapper_error(f"No handler for type [{ftype}] declared on field [{full}]")
    if multi_field and ftype == "dense_vector":
        raise mapper_error(f"Field [{full}] of type [dense_vector] can't be used in multifields")
    by_name = {p.name: p for p in specs}
    values: dict[str, Any] = {}
    for key, raw in definition.items():
        if key == "type":
            continue
        spec = by_name.get(key)
        if spec is None:
            raise mapper_error(f"unknown parameter [{key}] on mapper [{full}] of type [{ftype}]")
        values[key] = _parse_param(full, ftype, spec, raw, ctx)
    if ftype == "dense_vector":
        return finish_dense_vector(full, values, ctx.emulation)
    if ftype == "scaled_float" and "scaling_factor" not in values:
        raise mapper_error("Field [scaling_factor] is required")
    if "script" in values and values["script"] is not None:
        raise mapper_error(
            f"Field [{full}]: index-time scripts are out of the provision sandbox's scope (painless)"
        )
    out: dict[str, Any] = {"type": ftype}
    for spec in specs:
        if spec.name in values and (values[spec.name] != spec.default or spec.always):
            out[spec.name] = values[spec.name]
    return out


def _parse_param(full: str, ftype: str, spec: P, raw: Any, ctx: MappingContext) -> Any:
    kind = spec.kind
    name = spec.name
    if raw is None and kind not in ("meta", "similarity", "index_options"):
        if name == "null_value":
            return None
        raise mapper_error(f"[{name}] on mapper [{full}] of type [{ftype}] must not have a [null] value")
    if kind == "bool":
        return param_bool(raw, name)
    if kind == "int":
        return param_int(raw, name)
    if kind == "float":
        return param_float(raw, name)
    if kind == "str":
        if isinstance(raw, (dict, list)):
            raise mapper_error(
                f"Failed to parse mapping: [{name}] on mapper [{full}] of type [{ftype}] must be a string"
            )
        text = es_str(raw)
        if name in ("analyzer", "search_analyzer", "search_quote_analyzer") and not ctx.has_analyzer(text):
            raise mapper_error(
                f"Failed to parse mapping: analyzer [{text}] has not been configured in mappings"
            )
        if name == "normalizer" and not ctx.has_normalizer(text):
            raise mapper_error(f"normalizer [{text}] not found for field [{full}]")
        return text
    if kind == "enum":
        text = es_str(raw)
        choices = ctx.emulation.element_types() if name == "element_type" else spec.choices
        if text not in choices:
            raise mapper_error(
                f"Unknown value [{text}] for field [{name}] - accepted values are [{', '.join(choices)}]"
            )
        return text
    if kind == "format":
        text = es_str(raw)
        _compile_format(text)
        return text
    if kind == "meta":
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise mapper_error(
                f"[meta] must be an object, got {_java_class(raw)}[{es_str(raw)}] for field [{full}]"
            )
        if len(raw) > 5:
            raise mapper_error(f"[meta] can't have more than 5 entries, but got {len(raw)} on field [{full}]")
        for key, value in raw.items():
            if len(key) > 20:
                raise mapper_error(
                    f"[meta] keys can't be longer than 20 chars, but got [{key}] for field [{full}]"
                )
            if isinstance(value, (dict, list)):
                raise mapper_error(
                    f"[meta] values can only be strings, but got {_java_class(value)}[{es_str(value)}] for field [{full}]"
                )
        return raw or None
    if kind == "copy_to":
        targets = [raw] if isinstance(raw, str) else raw
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise mapper_error(
                f"Failed to parse mapping: [copy_to] on mapper [{full}] must be a string or a list of strings"
            )
        return targets or None
    if kind == "fields":
        if not isinstance(raw, dict):
            raise mapper_error(
                f"Failed to parse mapping: Expected map for property [fields] on field [{full}] but got a {_java_class(raw)}"
            )
        subs = {sub: parse_field(f"{full}.{sub}", d, ctx, multi_field=True) for sub, d in raw.items()}
        return dict(sorted(subs.items())) or None
    if kind == "script":
        return raw
    if kind == "dims":
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise mapper_error(
                f"Property [dims] on field [{full}] must be an integer but got [{es_str(raw)}]"
            )
        return raw
    if kind == "similarity":
        if raw is None:
            return None
        text = es_str(raw)
        if text not in SIMILARITIES:
            raise mapper_error(
                f"Unknown value [{text}] for field [similarity] - accepted values are "
                "[l2_norm, dot_product, cosine, max_inner_product]"
            )
        return text
    if kind == "index_options":
        if raw is None:
            return None
        return parse_index_options(full, raw, ctx.emulation)
    if kind == "obj":
        return raw
    return raw


def _compile_format(text: str) -> DateFormat:
    try:
        return DateFormat(text)
    except ValueError as exc:
        raise mapper_error(f"Invalid format: [{text}]: {exc}") from exc


def _parse_object(
    full: str, definition: Mapping[str, Any], otype: str, ctx: MappingContext
) -> dict[str, Any]:
    allowed = NESTED_PARAMS if otype == "nested" else OBJECT_PARAMS
    unknown = [k for k in definition if k not in allowed]
    if unknown:
        shown = ", ".join(f"{k} : {es_str(definition[k])}" for k in unknown)
        raise mapper_error(
            f"Mapping definition for [{full.rsplit('.', 1)[-1]}] has unsupported parameters:  [{shown}]"
        )
    out: dict[str, Any] = {}
    if otype == "nested":
        out["type"] = "nested"
    if "dynamic" in definition:
        out["dynamic"] = _dynamic_value(definition["dynamic"])
    if "enabled" in definition and not param_bool(definition["enabled"], "enabled"):
        out["enabled"] = False
    if "subobjects" in definition:
        value = definition["subobjects"]
        sub = value if value == "auto" else param_bool(value, "subobjects")
        if sub is not True:
            out["subobjects"] = sub
    for flag in ("include_in_parent", "include_in_root"):
        if flag in definition and param_bool(definition[flag], flag):
            out[flag] = True
    props = _parse_properties(definition.get("properties"), full + ".", ctx)
    if props:
        out["properties"] = props
    elif otype == "object":
        out = {"type": "object", **out}
    return out
