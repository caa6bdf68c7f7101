"""The ``dense_vector`` field type: ``index_options``, their version's defaults, and vector checks.

Quantised index types and their defaults (HNSW ``m``/``ef_construction``; which type a field gets
when it names none, and rescore oversampling, come from the emulated version: es_sandbox.versions),
how options print and which updates are allowed, and the checks a vector value must pass (finite,
unit length for ``dot_product``, non-zero for ``cosine``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from es_sandbox import versions
from es_sandbox.mapper.parameters import mapper_error, param_float, param_int
from es_sandbox.util import es_str, java_float_str
from provisioning.vectors import INDEX_OPTION_TYPES, dims_problems, index_options_problems

DEFAULT_M = versions.DEFAULT_M
DEFAULT_EF_CONSTRUCTION = versions.DEFAULT_EF_CONSTRUCTION
DEFAULT_OVERSAMPLE = versions.DEFAULT_OVERSAMPLE
MIN_DIMS_DYNAMIC_VECTOR = 128
_INDEX_OPTION_TYPES = INDEX_OPTION_TYPES
_QUANTIZED = frozenset(
    {"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat", "bbq_disk"}
)


def parse_index_options(full: str, raw: Any, emulation: versions.Emulation | None = None) -> dict[str, Any]:
    """``index_options`` as the emulated version parses and stores them (its types, its defaults)."""
    emulation = emulation or versions.current()
    if not isinstance(raw, dict):
        raise mapper_error(f"Failed to parse mapping: [index_options] on field [{full}] must be an object")
    options = dict(raw)
    itype = options.pop("type", None)
    if itype is None:
        raise mapper_error("[index_options] requires field [type] to be configured")
    itype = es_str(itype)
    if itype not in _INDEX_OPTION_TYPES or itype not in emulation.index_option_types():
        raise mapper_error(f"Unknown vector index options type [{itype}] for field [{full}]")
    out: dict[str, Any] = {"type": itype}
    if itype.endswith("hnsw"):
        out["m"] = param_int(options.pop("m", DEFAULT_M), "m")
        out["ef_construction"] = param_int(
            options.pop("ef_construction", DEFAULT_EF_CONSTRUCTION), "ef_construction"
        )
    if itype in ("int8_hnsw", "int4_hnsw", "int8_flat", "int4_flat"):
        ci = options.pop("confidence_interval", None)
        if ci is not None:
            # Stored as given: ES checks the range only when it builds the vectors format, that is
            # when a vector is indexed (see confidence_interval_problem).
            out["confidence_interval"] = param_float(ci, "confidence_interval")
        elif itype.startswith("int4"):
            out["confidence_interval"] = 0.0
    if itype == "bbq_disk":
        if "cluster_size" in options:
            size = param_int(options.pop("cluster_size"), "cluster_size")
            if not 64 <= size <= 65536:
                raise mapper_error(f"cluster_size must be between 64 and 65536, got: {size}")
            out["cluster_size"] = size
        else:
            out["cluster_size"] = 384
        if "default_visit_percentage" in options:
            pct = param_float(options.pop("default_visit_percentage"), "default_visit_percentage")
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
            oversample = param_float(rescore["oversample"], "oversample")
            if oversample < 1 and oversample != 0:
                raise mapper_error("oversample must be greater than 1 or exactly 0")
            if oversample > 10:
                raise mapper_error("oversample must be less than or equal to 10")
            out["rescore_vector"] = {"oversample": oversample}
        elif itype in ("bbq_hnsw", "bbq_flat", "bbq_disk") and emulation.bbq_default_oversample():
            out["rescore_vector"] = {"oversample": DEFAULT_OVERSAMPLE}
    if options:
        shown = ", ".join(f"{k} : {es_str(v)}" for k, v in options.items())
        raise mapper_error(f"Mapping definition for [{full}] has unsupported parameters:  [{shown}]")
    return out


def confidence_interval_problem(options: Mapping[str, Any] | None) -> str | None:
    """Lucene's check when the scalar-quantized format is built (at indexing time in ES)."""
    value = (options or {}).get("confidence_interval")
    if value is None or value == 0 or 0.9 <= value <= 1.0:
        return None
    return f"confidenceInterval must be between 0.9 and 1.0 or 0; confidenceInterval={java_float_str(value)}"


def finish_dense_vector(
    full: str, values: dict[str, Any], emulation: versions.Emulation | None = None
) -> dict[str, Any]:
    emulation = emulation or versions.current()
    element_type = values.get("element_type", "float")
    indexed = values.get("index", True)
    dims = values.get("dims")
    similarity = values.get("similarity")
    options = values.get("index_options")
    if dims is not None:
        for _param, message in dims_problems(element_type, dims):
            raise mapper_error(message)
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
        for _param, message in index_options_problems(options["type"], element_type, dims):
            raise mapper_error(message)
    elif dims is not None:
        options = emulation.default_index_options(element_type, dims, indexed)
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


def options_str(options: Mapping[str, Any] | None) -> str:
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


def options_updatable(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
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
    floating = element in ("float", "bfloat16")
    if floating and (math.isnan(squared) or math.isinf(squared)):
        return (
            "NaN or Infinite magnitude detected, this usually means the vector values are too extreme to fit within a float."
            + _vector_preview(vector)
        )
    if floating and similarity == "dot_product" and abs(squared - 1.0) > 1e-3:
        return "The [dot_product] similarity can only be used with unit-length vectors." + _vector_preview(
            vector
        )
    if (floating or element == "byte") and similarity == "cosine" and math.sqrt(squared) == 0.0:
        return "The [cosine] similarity does not support vectors with zero magnitude." + _vector_preview(
            vector
        )
    return None
