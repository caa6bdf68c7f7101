"""Small helpers shared by the sandbox's API areas, each mirroring an Elasticsearch convention.

They live here, not in the API modules, because the same rule (how ES parses a boolean, a time
value or an index name) must give the same answer and the same error everywhere.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from es_sandbox.http import ApiError, bad_request

# Characters Elasticsearch refuses in index and alias names (MetadataCreateIndexService).
_INVALID_NAME_CHARS = ("\\", "/", "*", "?", '"', "<", ">", "|", " ", ",", "#", ":")


def now_millis() -> int:
    return int(time.time() * 1000)


def new_uuid() -> str:
    """A 22-character url-safe id, the shape of Elasticsearch's index and document uuids."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def simple_match(pattern: str, value: str) -> bool:
    """Elasticsearch's Regex.simpleMatch: only ``*`` is special (no ``?`` or character classes)."""
    if "*" not in pattern:
        return pattern == value
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def is_wildcard(pattern: str) -> bool:
    return "*" in pattern


def split_names(value: str | None) -> list[str]:
    """A comma-separated path or query parameter as a list (empty items dropped)."""
    if value is None:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_bool(value: Any, name: str) -> bool:
    """A strict boolean as Elasticsearch parses parameters: only true/false (and "" for flags)."""
    if isinstance(value, bool):
        return value
    if value in ("true", ""):
        return True
    if value == "false":
        return False
    raise bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def parse_body_bool(value: Any, field: str, parser: str) -> bool:
    """A boolean from a JSON body; ES accepts the strings "true"/"false" too."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ApiError(
        400,
        "x_content_parse_exception",
        f"[{parser}] failed to parse field [{field}]",
    ).with_cause(bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed."))


_TIME_UNITS = {
    "nanos": 1e-9,
    "micros": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_time_value(value: Any, setting: str) -> float:
    """Seconds from an Elasticsearch time value ("1s", "500ms", "-1"); -1 means disabled."""
    text = str(value).strip()
    if text in ("-1", "-1s"):
        return -1.0
    if text == "0":
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)", text.lower())
    if not match:
        raise bad_request(
            f"failed to parse setting [{setting}] with value [{text}] as a time value: "
            "unit is missing or unrecognized"
        )
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def validate_index_name(name: str, kind: str = "index") -> None:
    """Raise invalid_index_name_exception the way ES does when creating an index (or alias)."""

    def fail(why: str) -> ApiError:
        if kind == "index":
            return ApiError(
                400,
                "invalid_index_name_exception",
                f"Invalid index name [{name}], {why}",
                index_uuid="_na_",
                index=name,
            )
        return ApiError(400, "invalid_alias_name_exception", f"Invalid alias name [{name}]: {why}")

    if not name:
        raise fail("must not be empty")
    if name != name.lower():
        raise fail("must be lowercase")
    for char in _INVALID_NAME_CHARS:
        if char in name:
            bad = ", ".join(c if c != " " else " " for c in _INVALID_NAME_CHARS)
            raise fail(f"must not contain the following characters [{bad}]")
    if name[0] in "_-+":
        raise fail("must not start with '_', '-', or '+'")
    if name in (".", ".."):
        raise fail("must not be '.' or '..'")
    if len(name.encode()) > 255:
        raise fail("index name is too long, (" + str(len(name.encode())) + " > 255)")


def json_type(value: Any) -> str:
    """The XContent token name ES prints for a JSON value in parse errors."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


def es_str(value: Any) -> str:
    """A value as Java's toString would print it in an ES message (1.0 stays 1.0, true not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def java_float_str(value: float) -> str:
    """Java's Float.toString for a float32 value: shortest repr that round-trips as float32."""
    import numpy as np

    f32 = np.float32(value)
    if np.isnan(f32):
        return "NaN"
    if np.isinf(f32):
        return "Infinity" if f32 > 0 else "-Infinity"
    text = np.format_float_positional(f32, unique=True, trim="0")
    if "." not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    absval = abs(float(f32))
    if absval != 0 and (absval >= 1e7 or absval < 1e-3):
        sci = np.format_float_scientific(f32, unique=True, trim="0")
        mantissa, exponent = sci.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        if mantissa.endswith("."):
            mantissa += "0"
        return f"{mantissa}E{int(exponent)}"
    return text


def stringify_setting(value: Any) -> Any:
    """Settings values as ES stores and returns them: strings (lists of strings for arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [stringify_setting(v) for v in value]
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"index": {"number_of_shards": 1}}`` -> ``{"index.number_of_shards": "1"}``."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_settings(value, full + "."))
        else:
            out[full] = stringify_setting(value)
    return out


def nest_settings(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_settings`, the shape GET APIs return without flat_settings."""
    out: dict[str, Any] = {}
    for key in sorted(flat):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a value and an object at one key: keep the flat key
                node = out
                parts = [key]
                break
            node = child
        node[parts[-1]] = flat[key]
    return out


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge, ``override`` winning; used to compose templates and mappings."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def get_path(source: Any, path: str) -> list[Any]:
    """Values at a dotted path in a document, flattening arrays of objects (as ES field lookup)."""
    values: list[Any] = []

    def walk(node: Any, parts: list[str]) -> None:
        if not parts:
            if isinstance(node, list):
                values.extend(v for v in node if v is not None)
            elif node is not None:
                values.append(node)
            return
        if isinstance(node, list):
            for item in node:
                walk(item, parts)
            return
        if not isinstance(node, dict):
            return
        # ES accepts both {"a": {"b": 1}} and {"a.b": 1} for the path a.b.
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in node:
                walk(node[key], parts[i:])

    walk(source, path.split("."))
    return values


def filter_source(
    source: dict[str, Any],
    includes: list[str] | None,
    excludes: list[str] | None,
) -> dict[str, Any]:
    """Source filtering as ES's XContentMapValues.filter: dotted paths with ``*`` wildcards."""
    incl = [p for p in (includes or []) if p]
    excl = [p for p in (excludes or []) if p]

    def matches_any(patterns: list[str], path: str) -> bool:
        return any(simple_match(p, path) for p in patterns)

    def could_match_below(patterns: list[str], path: str) -> bool:
        prefix = path + "."
        for p in patterns:
            if p.startswith(prefix) or simple_match(p, path) or ("*" in p and _prefix_compatible(p, prefix)):
                return True
        return False

    def walk(node: Any, path: str, included: bool) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                child = f"{path}.{key}" if path else key
                if excl and matches_any(excl, child):
                    continue
                child_included = included or not incl or matches_any(incl, child)
                if child_included:
                    filtered = walk(value, child, True)
                    out[key] = filtered
                elif isinstance(value, (dict, list)) and could_match_below(incl, child):
                    filtered = walk(value, child, False)
                    if filtered not in ({}, []):
                        out[key] = filtered
            return out
        if isinstance(node, list):
            items = []
            for item in node:
                if isinstance(item, (dict, list)):
                    filtered = walk(item, path, included)
                    if included or filtered not in ({}, []):
                        items.append(filtered)
                elif included:
                    items.append(item)
            return items
        return node

    result = walk(source, "", False)
    return result if isinstance(result, dict) else {}


def _prefix_compatible(pattern: str, prefix: str) -> bool:
    """Whether a wildcard pattern could match some path starting with ``prefix``."""
    fixed = pattern.split("*", 1)[0]
    return fixed.startswith(prefix) or prefix.startswith(fixed)


def fnmatch_any(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)
