"""What mapping an index will get, computed from the spec alone.

Validation needs the mapping an index will have before any cluster exists: the declared index's
own body on top of the highest-priority matching index template, itself composed of its component
templates in order. This module reproduces that composition (as MetadataIndexTemplateService does)
for the parts the checks need: field types and dense_vector parameters.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from provisioning.json_types import JsonObject, JsonValue


def deep_merge(base: Mapping[str, JsonValue], overlay: Mapping[str, JsonValue]) -> JsonObject:
    """Merge ``overlay`` onto ``base`` recursively; objects merge, everything else is replaced."""
    out: JsonObject = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = deep_merge(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def pattern_matches(pattern: str, name: str) -> bool:
    """Elasticsearch's simple wildcard match: only '*' is special."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]").replace("?", "[?]"))


def patterns_overlap(left: Iterable[str], right: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of patterns that can match a common index name.

    Exact for patterns whose only wildcard is a trailing '*' (the common case), and conservative
    otherwise: each pattern is tried against the other with its wildcards made literal.
    """
    pairs = []
    for a in left:
        for b in right:
            a_pre, b_pre = a.split("*", 1)[0], b.split("*", 1)[0]
            if "*" in a and "*" in b:
                overlap = a_pre.startswith(b_pre) or b_pre.startswith(a_pre)
                if overlap and not (
                    a.endswith("*") and a.count("*") == 1 and b.endswith("*") and b.count("*") == 1
                ):
                    overlap = pattern_matches(a, b.replace("*", "")) or pattern_matches(b, a.replace("*", ""))
            else:
                overlap = pattern_matches(a, b.replace("*", "")) or pattern_matches(b, a.replace("*", ""))
            if overlap:
                pairs.append((a, b))
    return pairs


def find_field(mappings: Mapping[str, Any] | None, dotted: str) -> dict[str, Any] | None:
    """The mapping of field ``dotted`` (``exif.location``), following object ``properties``."""
    if not mappings:
        return None
    props = mappings.get("properties")
    if not isinstance(props, Mapping):
        return None
    if dotted in props and isinstance(props[dotted], Mapping):
        return dict(props[dotted])
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        head, rest = ".".join(parts[:i]), ".".join(parts[i:])
        child = props.get(head)
        if isinstance(child, Mapping):
            found = find_field(child, rest)
            if found is not None:
                return found
    return None


def iter_fields(mappings: Mapping[str, Any] | None, prefix: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    """Every leaf or object field as (dotted name, mapping), depth first."""
    if not mappings:
        return
    props = mappings.get("properties")
    if not isinstance(props, Mapping):
        return
    for name, body in props.items():
        if not isinstance(body, Mapping):
            continue
        full = f"{prefix}{name}"
        yield full, dict(body)
        yield from iter_fields(body, full + ".")


def dense_vector_fields(mappings: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in iter_fields(mappings) if body.get("type") == "dense_vector"}
