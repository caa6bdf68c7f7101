"""Comparing what a stack wants with what Elasticsearch has, field by field.

Elasticsearch hands bodies back normalised: settings nested under ``index`` with string values,
defaults added to mappings, fields added by dynamic mapping. Comparing raw JSON would report drift
on every freshly applied stack, so bodies are canonicalised first, and each resource kind chooses
whether keys only present on the live side count (exact) or not (subset).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from provisioning.canonical import canonical_mappings, same_value
from provisioning.json_types import JsonObject, JsonValue

Op = Literal["add", "remove", "change"]
STATE_PATH = "state"  # the diff path of an observed state short of the declared one (not a body field)


@dataclass(frozen=True)
class DiffEntry:
    """One field that differs: ``add`` exists only in the desired body, ``remove`` only live."""

    path: str
    op: Op
    before: JsonValue = None
    after: JsonValue = None

    def to_json(self) -> JsonObject:
        return {"path": self.path, "op": self.op, "before": self.before, "after": self.after}


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def equal(a: JsonValue, b: JsonValue) -> bool:
    """Equality that treats 1 and 1.0 alike, as Elasticsearch's JSON does."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff(desired: JsonValue, live: JsonValue, *, prefix: str = "", exact: bool = True) -> list[DiffEntry]:
    """Field-level differences. With ``exact=False``, keys only present live are ignored."""
    if isinstance(desired, dict) and isinstance(live, dict):
        out: list[DiffEntry] = []
        for key in desired:
            path = _join(prefix, str(key))
            if key not in live:
                out.append(DiffEntry(path, "add", None, desired[key]))
            else:
                out.extend(diff(desired[key], live[key], prefix=path, exact=exact))
        if exact:
            out.extend(
                DiffEntry(_join(prefix, str(k)), "remove", live[k], None) for k in live if k not in desired
            )
        return out
    if equal(desired, live):
        return []
    return [DiffEntry(prefix or "(body)", "change", live, desired)]


# Field parameters Elasticsearch leaves out of GET _mapping when they hold their default value:
# a declared default that is absent live is not drift. (type, parameter) -> default; type None
# applies to every field type.
FIELD_DEFAULTS: dict[tuple[str | None, str], JsonValue] = {
    (None, "index"): True,
    (None, "doc_values"): True,
    (None, "store"): False,
    (None, "coerce"): True,
    (None, "ignore_malformed"): False,
    ("text", "norms"): True,
    ("keyword", "norms"): False,
    ("dense_vector", "element_type"): "float",
    ("dense_vector", "similarity"): "cosine",
    ("date", "format"): "strict_date_optional_time||epoch_millis",
    ("object", "enabled"): True,
}


def _is_default(field: Mapping[str, JsonValue], param: str, value: JsonValue) -> bool:
    declared = field.get("type", "object" if "properties" in field else None)
    kind = declared if isinstance(declared, str) else None
    for key in ((kind, param), (None, param)):
        if key in FIELD_DEFAULTS and same_value(FIELD_DEFAULTS[key], value):
            return True
    return False


def mapping_diff(
    desired: Mapping[str, JsonValue],
    live: Mapping[str, JsonValue],
    *,
    prefix: str = "",
    fields_exact: bool = True,
) -> list[DiffEntry]:
    """Two ``mappings`` objects compared in Elasticsearch's normal form (:mod:`.canonical`), on what
    the stack says: live-only field parameters are Elasticsearch defaults, values compare parsed.

    With ``fields_exact`` (templates), a field present live but not declared is drift; without it
    (indices), such fields came from dynamic mapping and are not.
    """
    return _mapping_diff(
        canonical_mappings(desired), canonical_mappings(live), prefix=prefix, root=prefix, exact=fields_exact
    )


def _mapping_diff(
    desired: Mapping[str, JsonValue], live: Mapping[str, JsonValue], *, prefix: str, root: str, exact: bool
) -> list[DiffEntry]:
    out: list[DiffEntry] = []
    in_field = not prefix.endswith("properties") and prefix.rsplit(".", 2)[-2:-1] == ["properties"]
    for key, want in desired.items():
        path = _join(prefix, str(key))
        if key not in live:
            if in_field and _is_default(desired, str(key), want):
                continue
            out.append(DiffEntry(path, "add", None, want))
        elif isinstance(want, dict) and isinstance(have := live[key], dict):
            out.extend(_mapping_diff(want, have, prefix=path, root=root, exact=exact))
        elif not same_value(want, live[key]):
            out.append(DiffEntry(path, "change", live[key], want))
    if exact and (prefix.endswith("properties") or prefix == root):
        out.extend(
            DiffEntry(_join(prefix, str(k)), "remove", live[k], None) for k in live if k not in desired
        )
    return out


def body_hash(body: JsonValue) -> str:
    """A short stable hash of a body, recorded as ``spec_hash`` so a reader sees which spec wrote it."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def drop_none(body: Mapping[str, JsonValue]) -> JsonObject:
    return {k: v for k, v in body.items() if v is not None}
