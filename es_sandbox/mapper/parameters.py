"""Mapping parameters: each field type's parameter table, and how a parameter's value is read.

Like Elasticsearch's ``FieldMapper.Parameter`` lists, every field type names its parameters with
their defaults, whether a mapping update may change them, and the kind of value each takes; parsing
(:mod:`es_sandbox.mapper.parsing`) and merging (:mod:`es_sandbox.mapper.merging`) both read these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_sandbox.dates import DEFAULT_FORMAT
from es_sandbox.http import ApiError
from es_sandbox.util import es_str
from provisioning.vectors import ELEMENT_TYPES

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


def mapper_error(reason: str) -> ApiError:
    return ApiError(400, "mapper_parsing_exception", reason)


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
        P("element_type", "float", False, "enum", (*ELEMENT_TYPES, "bfloat16")),  # per version: parsing
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


def param_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise mapper_error(f"Failed to parse value [{es_str(value)}] as only [true] or [false] are allowed.")


def param_int(value: Any, what: str) -> int:
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


def param_float(value: Any, what: str) -> float:
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


def is_object(definition: Mapping[str, Any]) -> bool:
    return definition.get("type", "object") in ("object", "nested")
