"""Index settings: which ones exist, their values' validation, and the defaults ES reports.

ES refuses unknown settings ("unknown setting [index.knn] please check that any required plugins
are installed...") and malformed values; so does the sandbox. Settings are kept flat
(``index.number_of_shards``) with string values, the form ES stores and returns them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_sandbox import versions
from es_sandbox.http import ApiError, bad_request
from es_sandbox.suggestions import levenshtein_similarity
from es_sandbox.util import flatten_settings, parse_time_value

# setting -> (kind, dynamic); kinds: int>=N, bool, time, str, list
KNOWN: dict[str, tuple[str, bool]] = {
    "index.number_of_shards": ("int>=1", False),
    "index.number_of_replicas": ("int>=0", True),
    "index.number_of_routing_shards": ("int>=1", False),
    "index.auto_expand_replicas": ("str", True),
    "index.refresh_interval": ("time", True),
    "index.default_pipeline": ("str", True),
    "index.final_pipeline": ("str", True),
    "index.max_result_window": ("int>=1", True),
    "index.max_inner_result_window": ("int>=1", True),
    "index.max_rescore_window": ("int>=1", True),
    "index.max_docvalue_fields_search": ("int>=0", True),
    "index.max_script_fields": ("int>=0", True),
    "index.max_ngram_diff": ("int>=0", True),
    "index.max_shingle_diff": ("int>=0", True),
    "index.max_terms_count": ("int>=1", True),
    "index.max_regex_length": ("int>=1", True),
    "index.mapping.total_fields.limit": ("int>=0", True),
    "index.mapping.total_fields.ignore_dynamic_beyond_limit": ("bool", True),
    "index.mapping.depth.limit": ("int>=1", True),
    "index.mapping.nested_fields.limit": ("int>=0", True),
    "index.mapping.nested_objects.limit": ("int>=0", True),
    "index.mapping.field_name_length.limit": ("int>=1", True),
    "index.mapping.ignore_malformed": ("bool", True),
    "index.mapping.coerce": ("bool", True),
    "index.mapping.exclude_source_vectors": ("bool", False),
    "index.mapping.source.mode": ("str", False),
    "index.hidden": ("bool", True),
    "index.codec": ("str", False),
    "index.priority": ("int>=0", True),
    "index.mode": ("mode", False),
    "index.query.parse.allow_unmapped_fields": ("bool", False),
    "index.search.idle.after": ("time", True),
    "index.query.default_field": ("list", True),
    "index.gc_deletes": ("time", True),
    "index.requests.cache.enable": ("bool", True),
    "index.write.wait_for_active_shards": ("str", True),
    "index.dense_vector.hnsw_filter_heuristic": ("str", True),
    "index.dense_vector.hnsw_early_termination": ("bool", True),
    "index.unassigned.node_left.delayed_timeout": ("time", True),
    "index.load_fixed_bitset_filters_eagerly": ("bool", False),
    "index.shard.check_on_startup": ("str", False),
    "index.soft_deletes.enabled": ("bool", False),
    "index.soft_deletes.retention_lease.period": ("time", True),
    "index.blocks.read_only": ("bool", True),
    "index.blocks.read_only_allow_delete": ("bool", True),
    "index.blocks.read": ("bool", True),
    "index.blocks.write": ("bool", True),
    "index.blocks.metadata": ("bool", True),
    "index.verified_before_close": ("bool", False),
    "index.format": ("int>=0", False),
}
# Settings that exist only from the version that introduced them (es_sandbox.versions keys).
VERSIONED: dict[str, str] = {
    "index.mapping.exclude_source_vectors": "index.mapping.exclude_source_vectors",
}
INDEX_MODES = ("standard", "time_series", "logsdb", "lookup")

# Whole families of settings ES accepts (analysis chains, allocation filters, slowlogs, ...).
KNOWN_PREFIXES = (
    "index.analysis.",
    "index.routing.",
    "index.lifecycle.",
    "index.similarity.",
    "index.sort.",
    "index.translog.",
    "index.merge.",
    "index.store.",
    "index.indexing.slowlog.",
    "index.search.slowlog.",
    "index.search.throttled",
    "index.queries.",
    "index.highlight.",
    "index.fielddata.",
    "index.look_ahead_time",
    "index.time_series.",
    "index.routing_path",
    "index.default_allocation",
    "index.shard_limit.",
)
PRIVATE = (
    "index.uuid",
    "index.creation_date",
    "index.provided_name",
    "index.version.created",
    "index.version.compatibility",
)


def normalize(raw: Any, what: str = "settings") -> dict[str, Any]:
    """``{"number_of_shards": 1}`` / ``{"index": {...}}`` / ``{"index.x": ..}`` -> flat, prefixed, stringified."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApiError(400, "parse_exception", f"Failed to load settings from [{raw}]")
    flat = flatten_settings(raw)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        full = key if key.startswith("index.") else f"index.{key}"
        out[full] = value
    return out


def validate(settings: Mapping[str, Any], *, creating: bool, allow_private: bool = False) -> None:
    """Raise ES's errors for unknown settings and bad values."""
    emulation = versions.current()
    for key, value in settings.items():
        if key in PRIVATE:
            if allow_private:
                continue
            raise bad_request(f"private index setting [{key}] can not be set explicitly")
        spec = KNOWN.get(key) if key not in VERSIONED or emulation.has(VERSIONED[key]) else None
        if spec is None:
            if any(key.startswith(p) for p in KNOWN_PREFIXES):
                continue
            candidates = [
                k
                for k in KNOWN
                if levenshtein_similarity(key, k) > 0.7
                and (k not in VERSIONED or emulation.has(VERSIONED[k]))
            ]
            message = f"unknown setting [{key}]"
            if candidates:
                candidates.sort(key=lambda c: -levenshtein_similarity(key, c))
                message += (
                    f" did you mean [{candidates[0]}]?"
                    if len(candidates) == 1
                    else f" did you mean any of {'[' + ', '.join(candidates) + ']'}?"
                )
            else:
                message += (
                    " please check that any required plugins are installed, or check the breaking changes "
                    "documentation for removed settings"
                )
            raise bad_request(message)
        if value is None:
            continue
        kind = spec[0]
        text = value if isinstance(value, str) else str(value)
        if kind.startswith("int>="):
            minimum = int(kind[5:])
            try:
                number = int(text)
            except ValueError as exc:
                raise bad_request(f"Failed to parse value [{text}] for setting [{key}]").with_cause(
                    ApiError(400, "number_format_exception", f'For input string: "{text}"')
                ) from exc
            if number < minimum:
                raise bad_request(f"Failed to parse value [{text}] for setting [{key}] must be >= {minimum}")
            if key == "index.number_of_shards" and number > 1024:
                raise bad_request(f"Failed to parse value [{text}] for setting [{key}] must be <= 1024")
        elif kind == "bool":
            if text not in ("true", "false"):
                raise bad_request(f"Failed to parse value [{text}] as only [true] or [false] are allowed.")
        elif kind == "time":
            parse_time_value(text, key)
        elif kind == "mode" and text not in INDEX_MODES:
            raise bad_request(f"[{key}] must be one of [{', '.join(INDEX_MODES)}], but was [{text}]")
    _cross_checks(settings, creating)


def _cross_checks(settings: Mapping[str, Any], creating: bool) -> None:
    """Rules between settings (MetadataCreateIndexService, IndexMode.validateWithOtherSettings)."""
    if creating and str(settings.get("index.soft_deletes.enabled", "true")) == "false":
        raise bad_request(
            "Creating indices with soft-deletes disabled is no longer supported. Please do not specify a value "
            "for setting [index.soft_deletes.enabled]."
        )
    if settings.get("index.mode") == "lookup" and str(settings.get("index.number_of_shards", "1")) != "1":
        raise bad_request("index with [lookup] mode must have [index.number_of_shards] set to 1")


def dynamic_check(key: str) -> None:
    """A settings update on an open index may only touch dynamic settings."""
    spec = KNOWN.get(key)
    if spec is not None and not spec[1]:
        raise bad_request(
            f"Can't update non dynamic settings [[{key}]] for open indices [[...]]",
        )


def defaults() -> dict[str, str]:
    """Settings a new index gets when nothing sets them (what GET index shows)."""
    return {
        "index.number_of_shards": "1",
        "index.number_of_replicas": "1",
        "index.routing.allocation.include._tier_preference": "data_content",
    }


def reported_defaults(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What ``include_defaults=true`` adds for an index with ``settings`` (its version's defaults)."""
    emulation = versions.current().for_index(settings)
    out = {k: v for k, v in REPORTED_DEFAULTS.items() if k not in settings}
    if emulation.has("index.mapping.exclude_source_vectors"):
        out.setdefault("index.mapping.exclude_source_vectors", "true")
    else:
        out.pop("index.mapping.exclude_source_vectors", None)
    return out


# Shown by ``include_defaults=true`` (a representative subset of ES's list).
REPORTED_DEFAULTS: dict[str, Any] = {
    "index.refresh_interval": "1s",
    "index.max_result_window": "10000",
    "index.mapping.total_fields.limit": "1000",
    "index.mapping.depth.limit": "20",
    "index.mapping.nested_fields.limit": "50",
    "index.mapping.exclude_source_vectors": "true",
    "index.search.idle.after": "30s",
    "index.hidden": "false",
    "index.codec": "default",
    "index.auto_expand_replicas": "false",
    "index.priority": "1",
    "index.gc_deletes": "60s",
    "index.default_pipeline": "_none",
    "index.final_pipeline": "_none",
}
