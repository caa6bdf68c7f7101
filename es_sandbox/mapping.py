"""Index mappings: validation, ES's canonical form, merging, and parsing documents against them.

A mapping is kept as the canonical dict Elasticsearch returns from ``GET _mapping`` (defaults
left out, ``index_options`` of dense vectors filled in, properties sorted). Each field type has a
parameter table like ES's ``FieldMapper.Parameter`` list: name, default, whether a mapping update
may change it. Merging compares every parameter with its default filled in, which is how ES
decides that ``PUT _mapping`` with ``{"type": "keyword"}`` over ``ignore_above: 256`` drops the
limit but that changing ``dims`` is a conflict.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_sandbox import analysis
from es_sandbox.dates import DEFAULT_FORMAT, DateFormat, DateFormatError
from es_sandbox.http import ApiError
from es_sandbox.util import es_str, java_float_str, simple_match
from provisioning.vectors import ELEMENT_TYPES, INDEX_OPTION_TYPES, MAX_DIMS, MAX_DIMS_BIT, SIMILARITIES

BBQ_MIN_DIMS = 64
BBQ_DEFAULT_THRESHOLD = 384
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 100
DEFAULT_OVERSAMPLE = 3.0
MIN_DIMS_DYNAMIC_VECTOR = 128

METADATA_FIELDS = frozenset(
    {
        "_id",
        "_index",
        "_routing",
        "_source",
        "_version",
        "_seq_no",
        "_primary_term",
        "_ignored",
        "_field_names",
        "_tier",
        "_data_stream_timestamp",
        "_doc_count",
        "_nested_path",
        "_ignored_source",
        "_feature",
    }
)

NUMERIC_TYPES = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)
_INT_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
OUT_OF_SCOPE_TYPES = {
    "semantic_text": "it needs the inference service integration of a real cluster",
    "percolator": "percolation is not implemented",
    "join": "parent/child joins are not implemented",
    "completion": "suggesters are not implemented",
}


def mapper_error(reason: str) -> ApiError:
    return ApiError(400, "mapper_parsing_exception", reason)


def doc_error(reason: str, cause: ApiError | None = None) -> ApiError:
    error = ApiError(400, "document_parsing_exception", reason)
    if cause is not None:
        error.with_cause(cause)
    return error


# ---------------------------------------------------------------------------------------------
# parameter tables


@dataclass(frozen=True)
class P:
    """One mapping parameter: its default, whether updates may change it, and how to read it."""

    name: str
    default: Any = None
    updateable: bool = False
    kind: str = "any"  # bool | int | float | str | meta | copy_to | fields | obj | format | enum
    choices: tuple[str, ...] = ()
    always: bool = False


_META = P("meta", None, True, "meta")
_COPY_TO = P("copy_to", None, True, "copy_to")
_FIELDS = P("fields", None, True, "fields")
_STORE = P("store", False, False, "bool")
_INDEX = P("index", True, False, "bool")
_DOC_VALUES = P("doc_values", True, False, "bool")
_SCRIPT = P("script", None, False, "script")
_ON_SCRIPT_ERROR = P("on_script_error", None, False, "enum", ("fail", "continue"))
_IGNORE_MALFORMED = P("ignore_malformed", False, True, "bool")
_TS_DIM = P("time_series_dimension", False, False, "bool")


def _numeric_params(null_kind: str) -> list[P]:
    return [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        P("null_value", None, False, null_kind),
        P("coerce", True, True, "bool"),
        _IGNORE_MALFORMED,
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _TS_DIM,
        P("time_series_metric", None, False, "enum", ("gauge", "counter")),
        _META,
        _FIELDS,
        _COPY_TO,
    ]


TYPE_PARAMS: dict[str, list[P]] = {
    "keyword": [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        P("eager_global_ordinals", False, True, "bool"),
        P("index_options", "docs", False, "enum", ("docs", "freqs")),
        P("norms", False, False, "bool"),
        P("similarity", None, False, "str"),
        P("normalizer", None, False, "str"),
        P("split_queries_on_whitespace", False, True, "bool"),
        P("null_value", None, False, "str"),
        P("ignore_above", 2147483647, True, "int"),
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _TS_DIM,
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "constant_keyword": [P("value", None, True, "str"), _META],
    "wildcard": [
        P("null_value", None, False, "str"),
        P("ignore_above", 2147483647, True, "int"),
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "text": [
        _INDEX,
        _STORE,
        P("analyzer", None, False, "str"),
        P("search_analyzer", None, True, "str"),
        P("search_quote_analyzer", None, True, "str"),
        P("index_options", "positions", False, "enum", ("docs", "freqs", "positions", "offsets")),
        P("norms", True, False, "bool"),
        P("similarity", None, False, "str"),
        P(
            "term_vector",
            "no",
            False,
            "enum",
            (
                "no",
                "yes",
                "with_positions",
                "with_offsets",
                "with_positions_offsets",
                "with_positions_payloads",
                "with_positions_offsets_payloads",
            ),
        ),
        P("fielddata", False, True, "bool"),
        P("fielddata_frequency_filter", None, True, "obj"),
        P("eager_global_ordinals", False, True, "bool"),
        P("index_phrases", False, False, "bool"),
        P("index_prefixes", None, False, "obj"),
        P("position_increment_gap", None, False, "int"),
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "match_only_text": [_META, _FIELDS, _COPY_TO],
    "date": [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        P("format", DEFAULT_FORMAT, False, "format"),
        P("locale", None, False, "str"),
        P("null_value", None, False, "str"),
        _IGNORE_MALFORMED,
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "boolean": [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        P("null_value", None, False, "bool"),
        _IGNORE_MALFORMED,
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _TS_DIM,
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "geo_point": [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        _IGNORE_MALFORMED,
        P("ignore_z_value", True, True, "bool"),
        P("null_value", None, False, "any"),
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _META,
        _COPY_TO,
    ],
    "ip": [
        _INDEX,
        _DOC_VALUES,
        _STORE,
        P("null_value", None, False, "str"),
        _IGNORE_MALFORMED,
        _SCRIPT,
        _ON_SCRIPT_ERROR,
        _TS_DIM,
        _META,
        _FIELDS,
        _COPY_TO,
    ],
    "binary": [P("doc_values", False, False, "bool"), _STORE, _META, _COPY_TO],
    "flattened": [
        _INDEX,
        _DOC_VALUES,
        P("depth_limit", 20, True, "int"),
        P("ignore_above", 2147483647, True, "int"),
        P("null_value", None, False, "str"),
        P("eager_global_ordinals", False, True, "bool"),
        P("split_queries_on_whitespace", False, True, "bool"),
        P("similarity", None, False, "str"),
        _META,
        _COPY_TO,
    ],
    "sparse_vector": [_STORE, _META],
    "rank_feature": [P("positive_score_impact", True, False, "bool"), _META],
    "dense_vector": [
        P("element_type", "float", False, "enum", ELEMENT_TYPES),
        P("dims", None, True, "dims"),
        P("index", True, False, "bool", always=True),
        P("similarity", None, False, "similarity"),
        P("index_options", None, True, "index_options"),
        _META,
    ],
}
for _num in ("long", "integer", "short", "byte", "unsigned_long"):
    TYPE_PARAMS[_num] = _numeric_params("int")
for _num in ("double", "float", "half_float"):
    TYPE_PARAMS[_num] = _numeric_params("float")
TYPE_PARAMS["scaled_float"] = [P("scaling_factor", None, False, "float"), *_numeric_params("float")]
TYPE_PARAMS["date_nanos"] = TYPE_PARAMS["date"]

OBJECT_PARAMS = ("type", "properties", "dynamic", "enabled", "subobjects")
NESTED_PARAMS = ("type", "properties", "dynamic", "enabled", "include_in_parent", "include_in_root")
ROOT_PARAMS = (
    "properties",
    "dynamic",
    "enabled",
    "subobjects",
    "date_detection",
    "numeric_detection",
    "dynamic_date_formats",
    "dynamic_templates",
    "_source",
    "_meta",
    "_routing",
    "runtime",
    "_field_names",
    "_data_stream_timestamp",
)
DYNAMIC_VALUES = ("true", "false", "strict", "runtime")
DEFAULT_DYNAMIC_DATE_FORMATS = ["strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"]


# ---------------------------------------------------------------------------------------------
# parsing mapping definitions into canonical form


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise mapper_error(f"Failed to parse value [{es_str(value)}] as only [true] or [false] are allowed.")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise mapper_error(f"Failed to parse mapping: [{what}] must be a number, got [{es_str(value)}]")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise mapper_error(f'For input string: "{es_str(value)}"')


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise mapper_error(f"[{what}] must be a number, got [{es_str(value)}]")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise mapper_error(f'For input string: "{es_str(value)}"')


class MappingContext:
    """What parsing a mapping needs to know about the index: its settings (for analyzers)."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

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
        enabled = _bool(source["enabled"], "enabled")
        if not enabled:
            out["enabled"] = False
    if "subobjects" in source:
        subobjects = _bool(source["subobjects"], "subobjects") if source["subobjects"] != "auto" else "auto"
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
        if _bool(routing.get("required", False), "required"):
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
    if "date_detection" in source and not _bool(source["date_detection"], "date_detection"):
        out["date_detection"] = False
    if "numeric_detection" in source and _bool(source["numeric_detection"], "numeric_detection"):
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
            if not _bool(item, key):
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
            raise mapper_error("Failed to parse mapping: field name cannot be an empty string")
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
        return _finish_dense_vector(full, values)
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
        return _bool(raw, name)
    if kind == "int":
        return _int(raw, name)
    if kind == "float":
        return _float(raw, name)
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
        if text not in spec.choices:
            raise mapper_error(
                f"Unknown value [{text}] for field [{name}] - accepted values are [{', '.join(spec.choices)}]"
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
        return _parse_index_options(full, raw)
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
    if "enabled" in definition and not _bool(definition["enabled"], "enabled"):
        out["enabled"] = False
    if "subobjects" in definition:
        value = definition["subobjects"]
        sub = value if value == "auto" else _bool(value, "subobjects")
        if sub is not True:
            out["subobjects"] = sub
    for flag in ("include_in_parent", "include_in_root"):
        if flag in definition and _bool(definition[flag], flag):
            out[flag] = True
    props = _parse_properties(definition.get("properties"), full + ".", ctx)
    if props:
        out["properties"] = props
    elif otype == "object":
        out = {"type": "object", **out}
    return out


# dense_vector ---------------------------------------------------------------------------------

_INDEX_OPTION_TYPES = INDEX_OPTION_TYPES
_QUANTIZED = frozenset(
    {"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat", "bbq_disk"}
)


def _parse_index_options(full: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise mapper_error(f"Failed to parse mapping: [index_options] on field [{full}] must be an object")
    options = dict(raw)
    itype = options.pop("type", None)
    if itype is None:
        raise mapper_error("[index_options] requires field [type] to be configured")
    itype = es_str(itype)
    if itype not in _INDEX_OPTION_TYPES:
        raise mapper_error(f"Unknown vector index options type [{itype}] for field [{full}]")
    out: dict[str, Any] = {"type": itype}
    if itype.endswith("hnsw"):
        out["m"] = _int(options.pop("m", DEFAULT_M), "m")
        out["ef_construction"] = _int(
            options.pop("ef_construction", DEFAULT_EF_CONSTRUCTION), "ef_construction"
        )
    if itype in ("int8_hnsw", "int4_hnsw", "int8_flat", "int4_flat"):
        ci = options.pop("confidence_interval", None)
        if ci is not None:
            value = _float(ci, "confidence_interval")
            if not (value == 0 or 0.9 <= value <= 1.0):
                raise mapper_error(
                    f"confidenceInterval must be between 0.9 and 1.0 or 0; confidenceInterval={java_float_str(value)}"
                )
            out["confidence_interval"] = value
        elif itype.startswith("int4"):
            out["confidence_interval"] = 0.0
    if itype == "bbq_disk":
        if "cluster_size" in options:
            size = _int(options.pop("cluster_size"), "cluster_size")
            if not 64 <= size <= 65536:
                raise mapper_error(f"cluster_size must be between 64 and 65536, got: {size}")
            out["cluster_size"] = size
        else:
            out["cluster_size"] = 384
        if "default_visit_percentage" in options:
            pct = _float(options.pop("default_visit_percentage"), "default_visit_percentage")
            if not 0 <= pct <= 100:
                raise mapper_error(
                    f"default_visit_percentage must be between 0.0 and 100.0, got: {pct} for field [{full}]"
                )
            out["default_visit_percentage"] = pct
    if itype in _QUANTIZED:
        rescore = options.pop("rescore_vector", None)
        if rescore is not None:
            if not isinstance(rescore, dict):
                raise mapper_error("Failed to parse mapping: [rescore_vector] must be an object")
            if "oversample" not in rescore:
                raise mapper_error("Invalid rescore_vector value. Missing required field oversample")
            oversample = _float(rescore["oversample"], "oversample")
            if oversample < 1 and oversample != 0:
                raise mapper_error("oversample must be greater than 1 or exactly 0")
            if oversample > 10:
                raise mapper_error("oversample must be less than or equal to 10")
            out["rescore_vector"] = {"oversample": oversample}
        elif itype in ("bbq_hnsw", "bbq_flat", "bbq_disk"):
            out["rescore_vector"] = {"oversample": DEFAULT_OVERSAMPLE}
    if options:
        shown = ", ".join(f"{k} : {es_str(v)}" for k, v in options.items())
        raise mapper_error(f"Mapping definition for [{full}] has unsupported parameters:  [{shown}]")
    return out


def default_index_options(element_type: str, dims: int | None, indexed: bool) -> dict[str, Any] | None:
    """ES 9.1+ defaults: bbq_hnsw for float vectors of >= 384 dims, int8_hnsw below; none for byte/bit."""
    if element_type != "float" or not indexed or dims is None:
        return None
    if dims >= BBQ_DEFAULT_THRESHOLD:
        return {
            "type": "bbq_hnsw",
            "m": DEFAULT_M,
            "ef_construction": DEFAULT_EF_CONSTRUCTION,
            "rescore_vector": {"oversample": DEFAULT_OVERSAMPLE},
        }
    return {"type": "int8_hnsw", "m": DEFAULT_M, "ef_construction": DEFAULT_EF_CONSTRUCTION}


def _finish_dense_vector(full: str, values: dict[str, Any]) -> dict[str, Any]:
    element_type = values.get("element_type", "float")
    indexed = values.get("index", True)
    dims = values.get("dims")
    similarity = values.get("similarity")
    options = values.get("index_options")
    if dims is not None:
        lo, hi = (8, MAX_DIMS_BIT) if element_type == "bit" else (1, MAX_DIMS)
        if not lo <= dims <= hi:
            raise mapper_error(
                f"The number of dimensions should be in the range [{lo}, {hi}] but was [{dims}]"
            )
        if element_type == "bit" and dims % 8:
            raise mapper_error(f"The number of dimensions for should be a multiple of 8 but was [{dims}]")
    if element_type == "bit" and similarity not in (None, "l2_norm"):
        raise mapper_error("The [l2_norm] similarity is the only supported similarity for bit vectors")
    if not indexed:
        if similarity is not None:
            raise mapper_error(
                "Field [similarity] can only be specified for a field of type [dense_vector] when it is indexed"
            )
        if options is not None:
            raise mapper_error(
                "Field [index_options] can only be specified for a field of type [dense_vector] when it is indexed"
            )
    elif similarity is None:
        similarity = "l2_norm" if element_type == "bit" else "cosine"
    if options is not None:
        itype = options["type"]
        if itype in _QUANTIZED and element_type != "float":
            raise mapper_error(f"[element_type] cannot be [{element_type}] when using index type [{itype}]")
        if dims is not None:
            _validate_options_dims(itype, dims)
    elif dims is not None:
        options = default_index_options(element_type, dims, indexed)
    out: dict[str, Any] = {"type": "dense_vector"}
    if element_type != "float":
        out["element_type"] = element_type
    if dims is not None:
        out["dims"] = dims
    out["index"] = indexed
    if similarity is not None:
        out["similarity"] = similarity
    if options is not None:
        out["index_options"] = options
    if values.get("meta"):
        out["meta"] = values["meta"]
    return out


def _validate_options_dims(itype: str, dims: int) -> None:
    if itype in ("int4_hnsw", "int4_flat") and dims % 2:
        raise mapper_error(f"{itype} only supports even dimensions; provided={dims}")
    if itype in ("bbq_hnsw", "bbq_flat") and dims < BBQ_MIN_DIMS:
        raise mapper_error(f"{itype} does not support dimensions fewer than {BBQ_MIN_DIMS}; provided={dims}")


def _options_str(options: Mapping[str, Any] | None) -> str:
    """Java's IndexOptions.toString, which ES prints in merge conflicts."""
    if options is None:
        return "null"
    parts = [f"type={options['type']}"]
    if "m" in options:
        parts += [f"m={options['m']}", f"ef_construction={options['ef_construction']}"]
    if options["type"] in ("int8_hnsw", "int4_hnsw", "int8_flat", "int4_flat"):
        ci = options.get("confidence_interval")
        parts.append(f"confidence_interval={java_float_str(ci) if ci is not None else 'null'}")
    if options["type"] in _QUANTIZED:
        rescore = options.get("rescore_vector")
        parts.append(
            f"rescore_vector={'{oversample=' + java_float_str(rescore['oversample']) + '}' if rescore else 'none'}"
        )
    return "{" + ", ".join(parts) + "}"


def _options_updatable(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """ES's IndexOptions.updatableTo: which index_options changes an existing field accepts."""
    ot, nt = old["type"], new["type"]
    m_ok = new.get("m", 0) >= old.get("m", 0)
    if ot == "flat":
        return True
    if ot == "int8_flat":
        return nt in ("int8_flat", "hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "int4_flat", "bbq_flat")
    if ot == "int4_flat":
        return nt in ("int4_flat", "hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "bbq_flat")
    if ot == "bbq_flat":
        return nt in ("bbq_flat", "bbq_hnsw")
    if ot == "hnsw":
        return nt in ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw") and m_ok
    if ot == "int8_hnsw":
        if nt == "int8_hnsw":
            ci_old, ci_new = old.get("confidence_interval"), new.get("confidence_interval")
            return bool(m_ok and (ci_old is None or ci_old == ci_new))
        return nt in ("int4_hnsw", "bbq_hnsw") and m_ok
    if ot == "int4_hnsw":
        if nt == "int4_hnsw":
            return bool(m_ok and old.get("confidence_interval") == new.get("confidence_interval"))
        return bool(nt == "bbq_hnsw" and m_ok)
    if ot in ("bbq_hnsw", "bbq_disk"):
        return bool(nt == ot)
    return False


# ---------------------------------------------------------------------------------------------
# merging


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


def _is_object(definition: Mapping[str, Any]) -> bool:
    return definition.get("type", "object") in ("object", "nested")


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
        if _is_object(old) or _is_object(new):
            if not _is_object(new):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"can't merge a non object mapping [{full}] with an object mapping",
                )
            if not _is_object(old):
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
                if a is None or b is None or _options_updatable(a, b):
                    value = b if b is not None else a
                else:
                    conflicts.append(
                        f"Cannot update parameter [index_options] from [{_options_str(a)}] to [{_options_str(b)}]"
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
        return _finish_dense_vector(full, {k: v for k, v in merged.items() if k != "type"})
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


# ---------------------------------------------------------------------------------------------
# compiled lookup


@dataclass
class LeafField:
    """A searchable field as queries and document parsing need it."""

    path: str
    type: str
    params: dict[str, Any]
    analyzer: Callable[[str], list[str]] | None = None
    search_analyzer: Callable[[str], list[str]] | None = None
    date_format: DateFormat | None = None
    multi_field_of: str | None = None

    @property
    def indexed(self) -> bool:
        return bool(self.params.get("index", True))

    @property
    def dims(self) -> int | None:
        value = self.params.get("dims")
        return int(value) if value is not None else None

    @property
    def similarity(self) -> str:
        return str(self.params.get("similarity", "cosine"))

    @property
    def element_type(self) -> str:
        return str(self.params.get("element_type", "float"))


@dataclass
class CompiledMapping:
    mapping: dict[str, Any]
    fields: dict[str, LeafField] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)


def compile_mapping(mapping: Mapping[str, Any], settings: Mapping[str, Any]) -> CompiledMapping:
    compiled = CompiledMapping(dict(mapping))

    def add_leaf(path: str, definition: Mapping[str, Any], parent: str | None) -> None:
        ftype = definition["type"]
        leaf = LeafField(path, ftype, dict(definition), multi_field_of=parent)
        if ftype in ("text", "match_only_text"):
            name = str(definition.get("analyzer", "standard"))
            leaf.analyzer = analysis.resolve(name, settings) or analysis.standard
            search_name = str(definition.get("search_analyzer", name))
            leaf.search_analyzer = analysis.resolve(search_name, settings) or leaf.analyzer
        elif ftype in ("date", "date_nanos"):
            leaf.date_format = DateFormat(str(definition.get("format", DEFAULT_FORMAT)))
        compiled.fields[path] = leaf
        for sub, sub_def in (definition.get("fields") or {}).items():
            add_leaf(f"{path}.{sub}", sub_def, path)

    def walk(props: Mapping[str, Any], prefix: str) -> None:
        for name, definition in props.items():
            path = prefix + name
            if _is_object(definition):
                compiled.objects[path] = dict(definition)
                walk(definition.get("properties", {}), path + ".")
            else:
                add_leaf(path, definition, None)

    walk(mapping.get("properties", {}), "")
    return compiled


# ---------------------------------------------------------------------------------------------
# documents


@dataclass
class ParsedDoc:
    """A document as the index stores it: indexed values per field, vectors, a mapping update."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    dynamic_update: dict[str, Any] | None = None


class DocumentParser:
    """Parses one document against a compiled mapping, collecting dynamic mapping additions."""

    def __init__(self, compiled: CompiledMapping, settings: Mapping[str, Any], doc_id: str | None) -> None:
        self.compiled = compiled
        self.mapping = compiled.mapping
        self.settings = settings
        self.doc_id = doc_id
        self.description = f"document with id '{doc_id}'" if doc_id is not None else "a document"
        self.doc = ParsedDoc()
        self.new_props: dict[str, Any] = {}  # canonical additions, nested like "properties"
        self.new_leaves: dict[str, LeafField] = {}
        self.limit = int(settings.get("index.mapping.total_fields.limit", 1000))
        self.ignore_malformed_default = str(settings.get("index.mapping.ignore_malformed", "false")) == "true"
        self.coerce_default = str(settings.get("index.mapping.coerce", "true")) == "true"

    # -- entry point ----------------------------------------------------------------------------
    def parse(self, source: Mapping[str, Any]) -> ParsedDoc:
        if self.mapping.get("enabled", True) is False:
            return self.doc
        self._parse_object(source, "", self.mapping, self.mapping.get("dynamic", "true"), is_root=True)
        if self.new_props:
            update = parse_mapping({"properties": self.new_props}, MappingContext(self.settings))
            merged = merge_mappings(self.mapping, update)
            added = count_fields(merged) - count_fields(self.mapping)
            if count_fields(merged) > self.limit:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"Limit of total fields [{self.limit}] has been exceeded while adding new fields [{added}]",
                )
            self.doc.dynamic_update = update
        return self.doc

    # -- objects ----------------------------------------------------------------------------------
    def _parse_object(
        self,
        obj: Mapping[str, Any],
        prefix: str,
        definition: Mapping[str, Any],
        dynamic: str,
        is_root: bool = False,
    ) -> None:
        for key, value in obj.items():
            if key == "":
                raise doc_error("failed to parse: Field name cannot be an empty string").with_cause(
                    ApiError(400, "illegal_argument_exception", "Field name cannot be an empty string")
                )
            if is_root and key in METADATA_FIELDS:
                raise doc_error(
                    f"Field [{key}] is a metadata field and cannot be added inside a document. "
                    "Use the index API request parameters."
                )
            if "." in key and key.strip("."):
                # {"a.b": 1} is the field a.b: descend as if it were {"a": {"b": 1}}.
                head, rest = key.split(".", 1)
                self._parse_object({head: {rest: value}}, prefix, definition, dynamic, is_root)
                continue
            path = prefix + key
            self._parse_value(path, key, value, definition, dynamic)

    def _child_definition(self, parent: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any] | None:
        props = parent.get("properties", {})
        if name in props:
            return props[name]  # type: ignore[no-any-return]
        return self._new_definition(path)

    def _new_definition(self, path: str) -> dict[str, Any] | None:
        node: dict[str, Any] = {"properties": self.new_props}
        for part in path.split("."):
            props = node.get("properties", {})
            if part not in props:
                return None
            node = props[part]
        return node

    def _parse_value(self, path: str, name: str, value: Any, parent: Mapping[str, Any], dynamic: str) -> None:
        definition = self._child_definition(parent, name, path)
        if definition is None:
            if value is None or value == []:
                return
            definition = self._dynamic(path, name, value, parent, dynamic)
            if definition is None:
                return
        if _is_object(definition):
            if value is None:
                return
            if definition.get("enabled", True) is False:
                return
            child_dynamic = str(definition.get("dynamic", dynamic))
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise doc_error(
                        f"object mapping for [{path}] tried to parse field [{name}] as object, but found a concrete value"
                    )
                self._parse_object(item, path + ".", definition, child_dynamic)
            return
        leaf = self.compiled.fields.get(path) or self.new_leaves.get(path)
        if leaf is None:
            leaf = self._leaf_for(path, definition)
        self._index_leaf(leaf, value)

    def _leaf_for(self, path: str, definition: Mapping[str, Any]) -> LeafField:
        compiled = compile_mapping(_wrap(path, definition), self.settings)
        self.new_leaves.update(compiled.fields)
        return compiled.fields[path]

    # -- dynamic mapping ----------------------------------------------------------------------------
    def _dynamic(
        self, path: str, name: str, value: Any, parent: Mapping[str, Any], dynamic: str
    ) -> dict[str, Any] | None:
        if dynamic == "strict":
            within = path.rsplit(".", 1)[0] if "." in path else "_doc"
            raise ApiError(
                400,
                "strict_dynamic_mapping_exception",
                f"mapping set to strict, dynamic introduction of [{name}] within [{within}] is not allowed",
            )
        if dynamic in ("false", "runtime"):
            return None
        definition = self._dynamic_definition(path, name, value)
        if definition is None:
            return None
        self._add_new(path, definition)
        return definition

    def _add_new(self, path: str, definition: dict[str, Any]) -> None:
        parts = path.split(".")
        node = self.new_props
        for part in parts[:-1]:
            # Intermediate objects (new or existing) get a properties holder; the merge sorts it out.
            entry = node.setdefault(part, {"properties": {}})
            node = entry.setdefault("properties", {})
        node[parts[-1]] = definition

    def _dynamic_definition(self, path: str, name: str, value: Any) -> dict[str, Any] | None:
        sample = value
        if isinstance(value, list):
            if MIN_DIMS_DYNAMIC_VECTOR <= len(value) <= MAX_DIMS and all(isinstance(v, float) for v in value):
                template = self._template_for(path, name, "double", value)
                if template is not None:
                    return template
                return _finish_dense_vector(path, {"dims": len(value), "index": True, "similarity": "cosine"})
            sample = next((v for v in value if v is not None), None)
            while isinstance(sample, list):
                sample = next((v for v in sample if v is not None), None)
            if sample is None:
                return None
        if isinstance(sample, dict):
            mtype = "object"
        elif isinstance(sample, bool):
            mtype = "boolean"
        elif isinstance(sample, int):
            mtype = "long"
        elif isinstance(sample, float):
            mtype = "double"
        elif isinstance(sample, str):
            mtype = "string"
            if self.mapping.get("date_detection", True):
                formats = self.mapping.get("dynamic_date_formats", DEFAULT_DYNAMIC_DATE_FORMATS)
                for fmt in formats:
                    try:
                        DateFormat(fmt).parse(sample)
                    except DateFormatError:
                        continue
                    template = self._template_for(path, name, "date", sample)
                    if template is not None:
                        return template
                    return (
                        {"type": "date"}
                        if fmt == formats[0] and formats == DEFAULT_DYNAMIC_DATE_FORMATS
                        else {"type": "date", "format": fmt}
                    )
            if self.mapping.get("numeric_detection", False):
                try:
                    int(sample)
                    mtype = "long"
                except ValueError:
                    try:
                        float(sample)
                        mtype = "double"
                    except ValueError:
                        pass
        else:
            return None
        template = self._template_for(path, name, mtype, sample)
        if template is not None:
            return template
        if mtype == "object":
            return {"type": "object"}
        if mtype == "string":
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if mtype == "double":
            return {"type": "float"}
        return {"type": mtype}

    def _template_for(self, path: str, name: str, mtype: str, value: Any) -> dict[str, Any] | None:
        for item in self.mapping.get("dynamic_templates", []):
            ((_tname, body),) = item.items()
            if not _template_matches(body, path, name, mtype):
                continue
            mapping = _substitute(body["mapping"], name, mtype)
            if "type" not in mapping and mtype != "object":
                mapping = {"type": _default_type(mtype), **mapping}
            return parse_field(path, mapping, MappingContext(self.settings))
        return None

    # -- leaf values ----------------------------------------------------------------------------------
    def _fail(self, leaf: LeafField, value: Any, cause: ApiError) -> ApiError:
        preview = _preview(value)
        return doc_error(
            f"failed to parse field [{leaf.path}] of type [{leaf.type}] in {self.description}. "
            f"Preview of field's value: '{preview}'",
            cause,
        )

    def _index_leaf(self, leaf: LeafField, value: Any) -> None:
        if leaf.type == "dense_vector":
            self._index_vector(leaf, value)
            return
        if leaf.type in ("flattened", "sparse_vector", "rank_feature", "binary") and isinstance(
            value, (dict, list)
        ):
            if leaf.type == "binary":
                for item in value if isinstance(value, list) else [value]:
                    self._index_scalar(leaf, item)
            return
        if (
            leaf.type == "geo_point"
            and isinstance(value, list)
            and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            items: list[Any] = [value]  # [lon, lat] is one point, not two values
        else:
            items = _flatten_list(value) if isinstance(value, list) else [value]
        for item in items:
            self._index_scalar(leaf, item)
        copy_to = leaf.params.get("copy_to") or []
        for target in copy_to:
            target_leaf = self.compiled.fields.get(target) or self.new_leaves.get(target)
            if target_leaf is None:
                if self.mapping.get("dynamic", "true") == "strict":
                    raise ApiError(
                        400,
                        "strict_dynamic_mapping_exception",
                        f"mapping set to strict, dynamic introduction of [{target}] within [_doc] is not allowed",
                    )
                definition = self._dynamic_definition(target, target.rsplit(".", 1)[-1], value)
                if definition is None or _is_object(definition):
                    continue
                self._add_new(target, definition)
                target_leaf = self._leaf_for(target, definition)
            for item in items:
                self._index_scalar(target_leaf, item)

    def _add(self, path: str, value: Any) -> None:
        self.doc.values.setdefault(path, []).append(value)

    def _index_scalar(self, leaf: LeafField, value: Any) -> None:
        if value is None:
            null_value = leaf.params.get("null_value")
            if null_value is None:
                return
            value = null_value
        if isinstance(value, (dict, list)) and leaf.type not in ("geo_point", "flattened"):
            raise self._fail(
                leaf,
                value,
                ApiError(400, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:2"),
            )
        try:
            converted = self._convert(leaf, value)
        except ApiError as cause:
            if leaf.params.get("ignore_malformed", self.ignore_malformed_default) and leaf.type not in (
                "keyword",
                "text",
            ):
                self.doc.ignored.append(leaf.path)
                return
            raise self._fail(leaf, value, cause) from None
        if converted is _SKIP:
            self.doc.ignored.append(leaf.path)
            return
        if converted is None:
            return
        if isinstance(converted, list):
            for item in converted:
                self._add(leaf.path, item)
            if leaf.type in ("text", "match_only_text"):
                self.doc.values.setdefault(f"{leaf.path}\x00len", []).append(len(converted))
        else:
            self._add(leaf.path, converted)
        for sub in leaf.params.get("fields") or {}:
            sub_leaf = self.compiled.fields.get(f"{leaf.path}.{sub}") or self.new_leaves.get(
                f"{leaf.path}.{sub}"
            )
            if sub_leaf is not None:
                self._index_scalar(sub_leaf, value)

    def _convert(self, leaf: LeafField, value: Any) -> Any:
        ftype = leaf.type
        params = leaf.params
        if ftype in ("keyword", "wildcard", "constant_keyword", "flattened"):
            text = es_str(value)
            if len(text) > int(params.get("ignore_above", 2147483647)):
                return _SKIP
            if params.get("normalizer") == "lowercase":
                text = text.lower()
            return text
        if ftype in ("text", "match_only_text"):
            analyzer = leaf.analyzer or analysis.standard
            return analyzer(es_str(value))
        if ftype in NUMERIC_TYPES:
            return _convert_number(ftype, value, bool(params.get("coerce", self.coerce_default)), params)
        if ftype in ("date", "date_nanos"):
            fmt = leaf.date_format or DateFormat(DEFAULT_FORMAT)
            try:
                return fmt.parse(value)
            except DateFormatError as exc:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"failed to parse date field [{es_str(value)}] with format [{fmt.spec}]",
                ).with_cause(
                    ApiError(400, "date_time_parse_exception", "Failed to parse with all enclosed parsers")
                ) from exc
        if ftype == "boolean":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            if value == "":
                return False
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Failed to parse value [{es_str(value)}] as only [true] or [false] are allowed.",
            )
        if ftype == "geo_point":
            return parse_geo_point(value, leaf.path)
        if ftype == "ip":
            try:
                return str(ipaddress.ip_address(str(value)))
            except ValueError as exc:
                raise ApiError(
                    400, "illegal_argument_exception", f"'{es_str(value)}' is not an IP string literal."
                ) from exc
        if ftype == "binary":
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError(400, "illegal_argument_exception", "Illegal base64 character") from exc
            return _SKIP_VALUE
        return _SKIP_VALUE

    def _index_vector(self, leaf: LeafField, value: Any) -> None:
        if value is None:
            return
        if leaf.path in self.doc.vectors:
            raise doc_error(
                f"failed to parse: Field [{leaf.path}] of type [dense_vector] doesn't support indexing multiple values for the same field in the same document"
            )
        element = leaf.element_type
        dims = leaf.dims
        if isinstance(value, str):
            vector = self._decode_vector_string(leaf, value)
        elif isinstance(value, list):
            if not set(map(type, value)) <= _NUMBER_TYPES:  # C-speed check of 512 elements
                bad = next(v for v in value if isinstance(v, (list, dict, str, bool)) or v is None)
                token = (
                    "START_ARRAY"
                    if isinstance(bad, list)
                    else "START_OBJECT"
                    if isinstance(bad, dict)
                    else (
                        "VALUE_STRING"
                        if isinstance(bad, str)
                        else "VALUE_BOOLEAN"
                        if isinstance(bad, bool)
                        else "VALUE_NULL"
                    )
                )
                raise doc_error(
                    f"failed to parse: Failed to parse object: expecting token of type [VALUE_NUMBER] but found [{token}]"
                )
            if element == "bit":
                vector = np.array(value, dtype=np.float64)
            else:
                vector = np.array(value, dtype=np.float64)
        else:
            raise doc_error(
                f"failed to parse field [{leaf.path}] of type [dense_vector] in {self.description}. "
                f"Preview of field's value: '{_preview(value)}'",
                ApiError(
                    400,
                    "parsing_exception",
                    f"Unsupported type [VALUE_NUMBER] for provided value [{es_str(value)}]",
                ),
            )
        count = len(vector) * (8 if element == "bit" and not isinstance(value, str) else 1)
        if isinstance(value, str) and element == "bit":
            count = len(vector) * 8
        if dims is None:
            dims = count
            update = dict(leaf.params)
            update["dims"] = dims
            definition = _finish_dense_vector(leaf.path, {k: v for k, v in update.items() if k != "type"})
            self._add_new(leaf.path, definition)
            leaf = self._leaf_for(leaf.path, definition)
        if count != dims:
            message = (
                f"The [dense_vector] field [{leaf.path}] in doc [{self.description}] has a different number of "
                f"dimensions [{count}] than defined in the mapping [{dims}]"
                if count < dims
                else f"The [dense_vector] field [{leaf.path}] in doc [{self.description}] has more dimensions than "
                f"defined in the mapping [{dims}]"
            )
            raise doc_error(
                f"failed to parse: {message}", ApiError(400, "illegal_argument_exception", message)
            )
        checked = check_vector(vector, element, leaf.similarity if leaf.indexed else None)
        if checked is not None:
            raise doc_error(
                f"failed to parse: {checked}", ApiError(400, "illegal_argument_exception", checked)
            )
        self.doc.vectors[leaf.path] = vector.astype(np.float32)

    def _decode_vector_string(self, leaf: LeafField, value: str) -> np.ndarray:
        element = leaf.element_type
        try:
            if element in ("byte", "bit"):
                raw = bytes.fromhex(value)
                return np.frombuffer(raw, dtype=np.int8).astype(np.float64)
            raw = base64.b64decode(value, validate=True)
            return np.frombuffer(raw, dtype=">f4").astype(np.float64)
        except (ValueError, binascii.Error) as exc:
            raise doc_error(
                f"failed to parse field [{leaf.path}] of type [dense_vector] in {self.description}. "
                f"Preview of field's value: '{value[:20]}'",
                ApiError(400, "illegal_argument_exception", f"Failed to decode vector: {exc}"),
            ) from exc


class _Skip:
    pass


_NUMBER_TYPES = {int, float}


_SKIP = _Skip()  # value not indexed (ignore_above), field listed in _ignored
_SKIP_VALUE = None


def _flatten_list(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        if isinstance(item, list):
            out.extend(_flatten_list(item))
        else:
            out.append(item)
    return out


def _wrap(path: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    parts = path.split(".")
    node: dict[str, Any] = {parts[-1]: definition}
    for part in reversed(parts[:-1]):
        node = {part: {"properties": node}}
    return {"properties": node}


def _preview(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_preview(v) for v in value) + "]"
    return es_str(value)


def _default_type(mtype: str) -> str:
    return {"string": "text", "double": "float"}.get(mtype, mtype)


def _template_matches(body: Mapping[str, Any], path: str, name: str, mtype: str) -> bool:
    regex = body.get("match_pattern") == "regex"

    def test(patterns: Any, value: str) -> bool:
        items = patterns if isinstance(patterns, list) else [patterns]
        if regex:
            return any(re.fullmatch(str(p), value) for p in items)
        return any(simple_match(str(p), value) for p in items)

    if "match_mapping_type" in body:
        types = body["match_mapping_type"]
        types = types if isinstance(types, list) else [types]
        if "*" not in types and mtype not in types:
            return False
    if "unmatch_mapping_type" in body:
        types = body["unmatch_mapping_type"]
        types = types if isinstance(types, list) else [types]
        if mtype in types:
            return False
    if "match" in body and not test(body["match"], name):
        return False
    if "unmatch" in body and test(body["unmatch"], name):
        return False
    if "path_match" in body and not test(body["path_match"], path):
        return False
    return not ("path_unmatch" in body and test(body["path_unmatch"], path))


def _substitute(value: Any, name: str, mtype: str) -> Any:
    if isinstance(value, str):
        return value.replace("{name}", name).replace("{dynamic_type}", mtype).replace("{dynamicType}", mtype)
    if isinstance(value, dict):
        return {_substitute(k, name, mtype): _substitute(v, name, mtype) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, name, mtype) for v in value]
    return value


def _convert_number(ftype: str, value: Any, coerce: bool, params: Mapping[str, Any]) -> Any:
    if isinstance(value, bool):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Current token (VALUE_{str(value).upper()}) not numeric, can not use numeric value accessors",
        )
    if isinstance(value, str):
        if not coerce:
            raise ApiError(
                400, "illegal_argument_exception", f"[{ftype}] is not allowed to be coerced from a string"
            )
        text = value.strip()
        try:
            number: float | int = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError as exc:
            raise ApiError(400, "number_format_exception", f'For input string: "{value}"') from exc
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise ApiError(400, "illegal_argument_exception", f"Can't parse number from {es_str(value)}")
    if ftype in _INT_RANGES:
        if isinstance(number, float):
            if math.isnan(number) or math.isinf(number):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"Value [{es_str(number)}] is out of range for a {ftype}",
                )
            if not number.is_integer() and not coerce:
                raise ApiError(
                    400, "illegal_argument_exception", f"Value [{es_str(number)}] has a decimal part"
                )
            number = int(number)
        lo, hi = _INT_RANGES[ftype]
        if not lo <= number <= hi:
            kind = {
                "long": "long",
                "integer": "an integer",
                "short": "a short",
                "byte": "a byte",
                "unsigned_long": "an unsigned long",
            }[ftype]
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Value [{number}] is out of range for {kind}"
                if ftype != "long"
                else f"Value [{number}] is out of range for a long",
            )
        return number
    result = float(number)
    if math.isnan(result) or math.isinf(result):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[{ftype}] supports only finite values, but got [{es_str(result)}]",
        )
    if ftype == "float":
        result = float(np.float32(result))
        if math.isinf(result):
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"[float] supports only finite values, but got [{es_str(number)}]",
            )
    elif ftype == "half_float":
        result = float(np.float16(result))
    elif ftype == "scaled_float":
        factor = float(params["scaling_factor"])
        result = round(result * factor) / factor
    return result


def parse_geo_point(value: Any, path: str) -> tuple[float, float]:
    """(lat, lon) from any of ES's geo_point formats: object, [lon, lat], "lat,lon", WKT, geohash."""
    lat: float
    lon: float
    if isinstance(value, dict):
        if "lat" not in value or "lon" not in value:
            if "type" in value and "coordinates" in value:
                coords = value["coordinates"]
                lon, lat = float(coords[0]), float(coords[1])
            else:
                missing = "lat" if "lat" not in value else "lon"
                raise ApiError(400, "illegal_argument_exception", f"field [{missing}] missing")
        else:
            lat, lon = _geo_number(value["lat"], "lat"), _geo_number(value["lon"], "lon")
    elif isinstance(value, list):
        if len(value) < 2:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "[geo_point] field type should have at least two dimensions",
            )
        lon, lat = _geo_number(value[0], "lon"), _geo_number(value[1], "lat")
    elif isinstance(value, str):
        text = value.strip()
        wkt = re.fullmatch(r"POINT\s*\(\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\)", text, re.IGNORECASE)
        if wkt:
            lon, lat = float(wkt.group(1)), float(wkt.group(2))
        elif "," in text:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) not in (2, 3):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"failed to parse [{text}], expected 2 or 3 coordinates but found: [{len(parts)}]",
                )
            lat, lon = _geo_number(parts[0], "lat"), _geo_number(parts[1], "lon")
        else:
            lat, lon = _geohash(text)
    else:
        raise ApiError(400, "illegal_argument_exception", "geo_point expected")
    if not -90 <= lat <= 90:
        raise ApiError(
            400, "illegal_argument_exception", f"illegal latitude value [{es_str(lat)}] for {path}"
        )
    if not -180 <= lon <= 180:
        raise ApiError(
            400, "illegal_argument_exception", f"illegal longitude value [{es_str(lon)}] for {path}"
        )
    return (lat, lon)


def _geo_number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ApiError(400, "illegal_argument_exception", f"[{name}] must be a number")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "number_format_exception", f'For input string: "{es_str(value)}"') from exc


_GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"


def _geohash(text: str) -> tuple[float, float]:
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    if not text or any(c not in _GEOHASH for c in text.lower()):
        raise ApiError(
            400, "illegal_argument_exception", f"unsupported symbol [{text[:1]}] in geohash [{text}]"
        )
    for char in text.lower():
        bits = _GEOHASH.index(char)
        for mask in (16, 8, 4, 2, 1):
            target = lon_range if even else lat_range
            mid = (target[0] + target[1]) / 2
            if bits & mask:
                target[0] = mid
            else:
                target[1] = mid
            even = not even
    return ((lat_range[0] + lat_range[1]) / 2, (lon_range[0] + lon_range[1]) / 2)


def _vector_preview(vector: np.ndarray) -> str:
    shown = ", ".join(java_float_str(float(v)) for v in vector[:5])
    return f" Preview of invalid vector: [{shown}{', ...' if len(vector) >= 5 else ''}]"


def check_vector(vector: np.ndarray, element: str, similarity: str | None) -> str | None:
    """ES's vector checks (NaN/infinite, byte range, unit length for dot_product, zero cosine).

    Vectorised: the per-element loop only runs to name the first offending dimension.
    """
    nan = np.isnan(vector)
    if nan.any():
        i = int(np.argmax(nan))
        return (
            f"element_type [{element}] vectors do not support NaN values but found [NaN] at dim [{i}];"
            + _vector_preview(vector)
        )
    inf = np.isinf(vector)
    if inf.any():
        i = int(np.argmax(inf))
        sign = "Infinity" if vector[i] > 0 else "-Infinity"
        return (
            f"element_type [{element}] vectors do not support infinite values but found [{sign}] at dim [{i}];"
            + _vector_preview(vector)
        )
    if element in ("byte", "bit"):
        decimal = np.mod(vector, 1) != 0
        out_of_range = (vector < -128) | (vector > 127)
        bad = decimal | out_of_range
        if bad.any():
            i = int(np.argmax(bad))
            if decimal[i]:
                return (
                    f"element_type [{element}] vectors only support non-decimal values but found decimal value "
                    f"[{java_float_str(float(vector[i]))}] at dim [{i}];" + _vector_preview(vector)
                )
            return (
                f"element_type [{element}] vectors only support integers between [-128, 127] but found "
                f"[{int(vector[i])}] at dim [{i}];" + _vector_preview(vector)
            )
    as32 = vector.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        squared = float(np.dot(as32, as32))
    if element == "float" and (math.isnan(squared) or math.isinf(squared)):
        return (
            "NaN or Infinite magnitude detected, this usually means the vector values are too extreme to fit within a float."
            + _vector_preview(vector)
        )
    if element == "float" and similarity == "dot_product" and abs(squared - 1.0) > 1e-3:
        return "The [dot_product] similarity can only be used with unit-length vectors." + _vector_preview(
            vector
        )
    if element in ("float", "byte") and similarity == "cosine" and math.sqrt(squared) == 0.0:
        return "The [cosine] similarity does not support vectors with zero magnitude." + _vector_preview(
            vector
        )
    return None
