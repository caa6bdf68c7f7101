"""Filters a person can put on a kNN query: exact values of the keyword fields a stack declares.

A filter is given as ``field:value`` pairs (the search page's field/value controls, the API's
repeatable ``filter`` parameter). Only fields the stack's mapping of the index declares as
``keyword`` (including keyword multi-fields such as ``caption.keyword``) may be named, so a typo
is an error that lists the choices instead of a query that silently matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from provisioning.mappings import iter_fields
from provisioning.queries import SearchError
from provisioning.stackfile.stack import Stack


class FilterError(SearchError):
    """A filter that names a field the index does not declare as keyword, or has no value."""


def keyword_fields(stack: Stack, index: str) -> list[str]:
    """The keyword fields of ``index`` as the stack maps it (templates composed), sorted."""
    names: list[str] = []
    for name, body in iter_fields(stack.effective_mappings(index)):
        if body.get("type") == "keyword":
            names.append(name)
        for sub, sub_body in (body.get("fields") or {}).items():
            if isinstance(sub_body, dict) and sub_body.get("type") == "keyword":
                names.append(f"{name}.{sub}")
    return sorted(names)


def parse_filter(text: str) -> tuple[str, str]:
    """``field:value`` as (field, value); the value may itself hold colons."""
    field, sep, value = text.partition(":")
    if not sep or not field.strip():
        raise FilterError(f"filter {text!r} is not field:value")
    return field.strip(), value


def term_filter(
    stack: Stack, index: str, pairs: Iterable[tuple[str, str]], *, allowed: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """A ``bool`` filter with one ``terms`` clause per pair (all must match), or None for no pairs.

    ``terms`` with one value rather than ``term``: the same query, and one that Elastic's OpenAPI
    description of the API validates (its ``term`` value is an ambiguous ``oneOf``).

    ``allowed`` is :func:`keyword_fields` of ``index`` when the caller holds it already (the mapping
    is composed from the stack's templates otherwise). Raises FilterError for a field that is not a
    keyword field of ``index`` or an empty value.
    """
    if allowed is None:
        allowed = keyword_fields(stack, index)
    terms: list[dict[str, Any]] = []
    for field, value in pairs:
        if field not in allowed:
            choices = ", ".join(allowed) or "none"
            raise FilterError(
                f"cannot filter on {field!r}: not a keyword field of index {index} (keyword fields: {choices})"
            )
        if value == "":
            raise FilterError(f"filter on {field!r} has no value")
        terms.append({"terms": {field: [value]}})
    if not terms:
        return None
    return {"bool": {"filter": terms}}


def without_document(doc_id: str, filter: dict[str, Any] | None) -> dict[str, Any]:
    """``filter`` (or none) and "not the document ``doc_id``", for "more like this" queries."""
    clauses: dict[str, Any] = {"must_not": [{"ids": {"values": [doc_id]}}]}
    if filter is not None:
        clauses["filter"] = [filter]
    return {"bool": clauses}
