"""Elasticsearch's naming rules, checked before any request so a bad name fails at validate time.

The rules mirror MetadataCreateIndexService.validateIndexOrAliasName and the trained model id check
in MlStrings (``[a-z0-9](?:[a-z0-9_\\-\\.]*[a-z0-9])?``, at most 64 characters).
"""

from __future__ import annotations

import re

MODEL_ID_MAX = 64
_MODEL_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?$")
_INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')
_GENERIC_FORBIDDEN = set('\\/*?"<>| ,#')


def model_id_problem(model_id: str) -> str | None:
    """Why ``model_id`` is not a valid trained model (or deployment) id, or None."""
    if len(model_id) > MODEL_ID_MAX:
        return f"is {len(model_id)} characters long; Elasticsearch allows at most {MODEL_ID_MAX}"
    if model_id.endswith("__"):
        return "must not end with '__' (eland derives such ids from hub ids with a trailing slash)"
    if not _MODEL_ID.match(model_id):
        return (
            "must use only lowercase letters, digits, '-', '_' and '.', and start and end with a "
            "letter or digit"
        )
    return None


def index_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid index or alias name, or None."""
    if not name:
        return "must not be empty"
    if name != name.lower():
        return "must be lowercase"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name[0] in "-_+":
        return "must not start with '-', '_' or '+'"
    bad = sorted(set(name) & _INDEX_FORBIDDEN)
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if len(name.encode()) > 255:
        return "must be at most 255 bytes long"
    return None


def index_pattern_problem(pattern: str) -> str | None:
    """Index template patterns may use '*' but otherwise follow index name rules."""
    if not pattern:
        return "must not be empty"
    if " " in pattern or "," in pattern:
        return "must not contain spaces or commas"
    if pattern != pattern.lower():
        return "must be lowercase"
    return index_name_problem(pattern.replace("*", "x")) if pattern.replace("*", "") else None


def resource_name_problem(name: str) -> str | None:
    """Template and pipeline names: no whitespace or path-like characters, not starting with '_'."""
    if not name:
        return "must not be empty"
    if name.startswith("_"):
        return "must not start with '_'"
    bad = sorted(set(name) & _GENERIC_FORBIDDEN)
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if any(ch.isspace() for ch in name):
        return "must not contain whitespace"
    return None


_MODEL_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


def model_alias_problem(alias: str) -> str | None:
    """Why ``alias`` is not a valid trained model alias (stricter than model ids: no dots, no
    trailing digit, so an alias can never be mistaken for a versioned model id)."""
    if len(alias) > MODEL_ID_MAX:
        return f"is {len(alias)} characters long; Elasticsearch allows at most {MODEL_ID_MAX}"
    if not _MODEL_ALIAS.match(alias) or alias[-1].isdigit():
        return "must be lowercase letters, digits, '-' or '_', start with a letter or digit and not end with a digit"
    return None
