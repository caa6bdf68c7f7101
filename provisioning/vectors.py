"""Elasticsearch 9's rules for ``dense_vector`` fields, shared by ``provision validate`` and the sandbox.

One definition, so that the offline checks and the sandbox (which must refuse what Elasticsearch
refuses, with its words) cannot drift apart. The rules and messages are DenseVectorFieldMapper's
(``server/src/main/java/org/elasticsearch/index/mapper/vectors/DenseVectorFieldMapper.java``):
dims per element type, similarity per element type, what ``index: false`` forbids, and per
``index_options.type`` the element types, dims and parameters it takes, with their ranges.
This module imports nothing from the rest of the product.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_DIMS = 4096
MAX_DIMS_BIT = 4096 * 8
SIMILARITIES = ("l2_norm", "dot_product", "cosine", "max_inner_product")
ELEMENT_TYPES = ("float", "byte", "bit")
FLOAT_ELEMENT_TYPES = ("float", "bfloat16")  # what quantised index types accept
INDEX_OPTION_TYPES = (
    "hnsw",
    "int8_hnsw",
    "int4_hnsw",
    "bbq_hnsw",
    "flat",
    "int8_flat",
    "int4_flat",
    "bbq_flat",
    "bbq_disk",
)
QUANTIZED = frozenset(
    {"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat", "bbq_disk"}
)
BBQ_MIN_DIMS = 64  # bbq_hnsw and bbq_flat; bbq_disk has no minimum
EVEN_DIMS = frozenset({"int4_hnsw", "int4_flat"})
HNSW_PARAMS = ("m", "ef_construction")
# The parameters each index type takes besides ``type``.
INDEX_OPTION_PARAMS: dict[str, frozenset[str]] = {
    "hnsw": frozenset(HNSW_PARAMS),
    "flat": frozenset(),
    "int8_hnsw": frozenset({*HNSW_PARAMS, "confidence_interval", "rescore_vector", "on_disk_rescore"}),
    "int4_hnsw": frozenset({*HNSW_PARAMS, "confidence_interval", "rescore_vector", "on_disk_rescore"}),
    "int8_flat": frozenset({"confidence_interval", "rescore_vector"}),
    "int4_flat": frozenset({"confidence_interval", "rescore_vector"}),
    "bbq_hnsw": frozenset({*HNSW_PARAMS, "rescore_vector", "on_disk_rescore"}),
    "bbq_flat": frozenset({"rescore_vector"}),
    "bbq_disk": frozenset({"cluster_size", "default_visit_percentage", "rescore_vector", "on_disk_rescore"}),
}
MAX_M = 512
MAX_EF_CONSTRUCTION = 3200

Problem = tuple[str, str]  # (the parameter's path inside the field, Elasticsearch's message)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def dims_problems(element_type: str, dims: int) -> list[Problem]:
    lo, hi = (8, MAX_DIMS_BIT) if element_type == "bit" else (1, MAX_DIMS)
    if not lo <= dims <= hi:
        return [("dims", f"The number of dimensions should be in the range [{lo}, {hi}] but was [{dims}]")]
    if element_type == "bit" and dims % 8:
        return [("dims", f"The number of dimensions for should be a multiple of 8 but was [{dims}]")]
    return []


def index_options_problems(index_type: str, element_type: str, dims: int | None) -> list[Problem]:
    """What index type ``index_type`` refuses of a field's element type and dims."""
    out: list[Problem] = []
    if index_type in QUANTIZED and element_type not in FLOAT_ELEMENT_TYPES:
        out.append(
            (
                "element_type",
                f"[element_type] cannot be [{element_type}] when using index type [{index_type}]",
            )
        )
    if dims is not None and index_type in EVEN_DIMS and dims % 2:
        out.append(("index_options.type", f"{index_type} only supports even dimensions; provided={dims}"))
    if dims is not None and index_type in ("bbq_hnsw", "bbq_flat") and dims < BBQ_MIN_DIMS:
        out.append(
            (
                "index_options.type",
                f"{index_type} does not support dimensions fewer than {BBQ_MIN_DIMS}; provided={dims}",
            )
        )
    return out


def _option_value_problems(index_type: str, options: Mapping[str, object], field: str) -> list[Problem]:
    out: list[Problem] = []
    unknown = [k for k in options if k != "type" and k not in INDEX_OPTION_PARAMS[index_type]]
    if unknown:
        shown = ", ".join(f"{k} : {options[k]}" for k in unknown)
        out.append(
            ("index_options", f"Mapping definition for [{field}] has unsupported parameters:  [{shown}]")
        )
    m = _integer(options.get("m")) if "m" in options else None
    if "m" in options and (m is None or not 0 < m <= MAX_M):
        out.append(
            (
                "index_options.m",
                f"maxConn must be positive and less than or equal to {MAX_M}; maxConn={options['m']}",
            )
        )
    ef = _integer(options.get("ef_construction")) if "ef_construction" in options else None
    if "ef_construction" in options and (ef is None or not 0 < ef <= MAX_EF_CONSTRUCTION):
        out.append(
            (
                "index_options.ef_construction",
                f"beamWidth must be positive and less than or equal to {MAX_EF_CONSTRUCTION}; "
                f"beamWidth={options['ef_construction']}",
            )
        )
    if "confidence_interval" in options:
        ci = _number(options["confidence_interval"])
        if ci is None or not (ci == 0 or 0.9 <= ci <= 1.0):
            out.append(
                (
                    "index_options.confidence_interval",
                    f"confidenceInterval must be between 0.9 and 1.0 or 0; confidenceInterval={options['confidence_interval']}",
                )
            )
    if "rescore_vector" in options:
        rescore = options["rescore_vector"]
        if not isinstance(rescore, Mapping) or "oversample" not in rescore:
            out.append(
                (
                    "index_options.rescore_vector",
                    "Invalid rescore_vector value. Missing required field oversample",
                )
            )
        else:
            oversample = _number(rescore["oversample"])
            if oversample is None or (oversample < 1 and oversample != 0):
                out.append(
                    (
                        "index_options.rescore_vector.oversample",
                        "oversample must be greater than 1 or exactly 0",
                    )
                )
            elif oversample > 10:
                out.append(
                    ("index_options.rescore_vector.oversample", "oversample must be less than or equal to 10")
                )
    if "cluster_size" in options:
        size = _integer(options["cluster_size"])
        if size is None or not 64 <= size <= 65536:
            out.append(
                (
                    "index_options.cluster_size",
                    f"cluster_size must be between 64 and 65536, got: {options['cluster_size']}",
                )
            )
    if "default_visit_percentage" in options:
        pct = _number(options["default_visit_percentage"])
        if pct is None or not 0 <= pct <= 100:
            out.append(
                (
                    "index_options.default_visit_percentage",
                    f"default_visit_percentage must be between 0.0 and 100.0, got: {options['default_visit_percentage']} "
                    f"for field [{field}]",
                )
            )
    return out


def dense_vector_problems(field: str, mapping: Mapping[str, object]) -> list[Problem]:
    """Every rule of Elasticsearch's ``dense_vector`` mapper that ``mapping`` (one field's definition,
    as declared) breaks: ``(parameter path, Elasticsearch's message)``, in the order it checks them.
    Empty when Elasticsearch would accept the field."""
    out: list[Problem] = []
    element_type = str(mapping.get("element_type", "float"))
    if element_type not in (*ELEMENT_TYPES, "bfloat16"):
        choices = ", ".join((*ELEMENT_TYPES, "bfloat16"))
        return [("element_type", f"invalid element_type [{element_type}]; available types are [{choices}]")]
    raw_dims = mapping.get("dims")
    # The mapper takes an integer and nothing else: not "4", not 4.0 (the parameter's parser checks
    # ``instanceof Integer``).
    dims = raw_dims if isinstance(raw_dims, int) and not isinstance(raw_dims, bool) else None
    if raw_dims is not None and dims is None:
        out.append(("dims", f"Property [dims] on field [{field}] must be an integer but got [{raw_dims}]"))
    elif dims is not None:
        out += dims_problems(element_type, dims)
    similarity = mapping.get("similarity")
    if similarity is not None and similarity not in SIMILARITIES:
        out.append(
            (
                "similarity",
                f"Unknown vector similarity [{similarity}]; expected one of {', '.join(SIMILARITIES)}",
            )
        )
    if element_type == "bit" and similarity not in (None, "l2_norm"):
        out.append(
            ("similarity", "The [l2_norm] similarity is the only supported similarity for bit vectors")
        )
    indexed = mapping.get("index", True) not in (False, "false")
    options = mapping.get("index_options")
    if not indexed:
        if similarity is not None:
            out.append(
                (
                    "similarity",
                    "Field [similarity] can only be specified for a field of type [dense_vector] when it is indexed",
                )
            )
        if options is not None:
            out.append(
                (
                    "index_options",
                    "Field [index_options] can only be specified for a field of type [dense_vector] when it is indexed",
                )
            )
        return out
    if options is None:
        return out
    if not isinstance(options, Mapping):
        return [
            *out,
            (
                "index_options",
                f"Failed to parse mapping: [index_options] on field [{field}] must be an object",
            ),
        ]
    index_type = options.get("type")
    if index_type is None:
        return [*out, ("index_options", "[index_options] requires field [type] to be configured")]
    if index_type not in INDEX_OPTION_TYPES:
        return [
            *out,
            ("index_options.type", f"Unknown vector index options type [{index_type}] for field [{field}]"),
        ]
    out += _option_value_problems(str(index_type), options, field)
    out += index_options_problems(str(index_type), element_type, dims)
    return out


def knn_problem(field: str, mapping: Mapping[str, object]) -> str | None:
    """Why a kNN search on ``field`` (its definition ``mapping``) is refused (DenseVectorFieldType)."""
    if mapping.get("index", True) in (False, "false"):
        return f"to perform knn search on field [{field}], its mapping must have [index] set to [true]"
    return None
