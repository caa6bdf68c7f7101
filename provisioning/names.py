"""Elasticsearch's naming rules, checked before any request so a bad name fails at validate time.

Each kind of object follows its own rule, exactly as Elasticsearch applies it (neither looser nor
stricter): index and alias names (MetadataCreateIndexService.validateIndexOrAliasName), index
template patterns and template names (MetadataIndexTemplateService.validate), trained model ids
(MlStrings: ``[a-z0-9](?:[a-z0-9_\\-\\.]*[a-z0-9])?``, at most 64 characters), model aliases
(PutTrainedModelAliasAction: ``[a-z0-9](?:[a-z0-9_\\-\\.]*[a-z])?``), inference endpoint ids
(PutInferenceModelAction: the MlStrings pattern, no length limit). Ingest pipeline ids have no rule.
"""

from __future__ import annotations

import re

MODEL_ID_MAX = 64
_MODEL_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?$")
_INDEX_FORBIDDEN = set('\\/*?"<>| ,#:')


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


_TEMPLATE_FILENAME_FORBIDDEN = set('\\/?"<>|')


def index_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an index template pattern (MetadataIndexTemplateService.validate:
    no space, ',', '#' or ':', not starting with '_', lowercase, a valid file name but for '*')."""
    if not pattern:
        return "must not be empty"
    for char, name in ((" ", "a space"), (",", "a ','"), ("#", "a '#'"), (":", "a ':'")):
        if char in pattern:
            return f"must not contain {name}"
    if pattern.startswith("_"):
        return "must not start with '_'"
    if pattern != pattern.lower():
        return "must be lower cased"
    bad = sorted(set(pattern) & _TEMPLATE_FILENAME_FORBIDDEN)
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    return None


def template_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an index or component template (MetadataIndexTemplateService)."""
    if not name:
        return "must not be empty"
    for char, what in ((" ", "a space"), (",", "a ','"), ("#", "a '#'"), ("*", "a '*'")):
        if char in name:
            return f"must not contain {what}"
    if name.startswith("_"):
        return "must not start with '_'"
    if name != name.lower():
        return "must be lower cased"
    return None


def pipeline_id_problem(name: str) -> str | None:
    """Ingest pipeline ids: Elasticsearch has no rule beyond not being empty."""
    return "must not be empty" if not name else None


def inference_id_problem(name: str) -> str | None:
    """Why ``name`` cannot be an ``_inference`` endpoint id (the MlStrings pattern, any length)."""
    if not _MODEL_ID.match(name):
        return (
            "must use only lowercase letters, digits, '-', '_' and '.', and start and end with a "
            "letter or digit"
        )
    return None


_MODEL_ALIAS = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z])?$")


def model_alias_problem(alias: str) -> str | None:
    """Why ``alias`` is not a valid trained model alias: lowercase letters, digits, '-', '_' and '.',
    starting with a letter or digit and not ending with a digit (so it cannot be mistaken for a
    versioned model id)."""
    if not _MODEL_ALIAS.match(alias):
        return (
            "must use only lowercase letters, digits, '-', '_' and '.', start with a letter or digit "
            "and not end with a digit"
        )
    return None
