"""When pipelines and templates were created and last changed (Elasticsearch 9.2+).

From 9.2 (es_sandbox.versions: ``tracking_info``) Elasticsearch stamps ingest pipelines, component
templates and index templates with ``created_date`` / ``modified_date``: kept from the first PUT and
renewed by each one, shown by GET as ISO-8601 instants and as epoch milliseconds (``*_millis``), and
refused in a request body ("managed by the system"). Before 9.2 these keys are unknown fields. The
dates are kept apart from the stored bodies (the ``tracking`` state part).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from es_sandbox import versions
from es_sandbox.http import ApiError
from es_sandbox.state import SandboxState

TRACKED = ("created_date", "created_date_millis", "modified_date", "modified_date_millis")


def enabled() -> bool:
    return versions.current().has("tracking_info")


def refuse_managed(kind: str, body: Mapping[str, Any]) -> None:
    """ES's refusal of a system-managed property in a PUT body (``kind``: pipeline or template)."""
    for key in TRACKED:
        if key not in body:
            continue
        if kind == "pipeline":
            raise ApiError(
                400, "parse_exception", f"Provided a pipeline property which is managed by the system: {key}."
            )
        raise ApiError(
            400,
            "action_request_validation_exception",
            f"Validation Failed: 1: Provided a template property which is managed by the system: {key};",
        )


def dates(state: SandboxState, kind: str) -> dict[str, list[int]]:
    """name -> [created, modified] (epoch millis) of one kind of object, in the ``tracking`` part."""
    part: dict[str, dict[str, list[int]]] = state.part("tracking", dict)
    return part.setdefault(kind, {})


def record(state: SandboxState, kind: str, name: str) -> None:
    """A PUT of ``name``: created kept from an earlier PUT, modified now (no-op before 9.2)."""
    if not enabled():
        return
    now = int(time.time() * 1000)
    known = dates(state, kind)
    known[name] = [known.get(name, [now])[0], now]


def forget(state: SandboxState, kind: str, name: str) -> None:
    dates(state, kind).pop(name, None)


def view(state: SandboxState, kind: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A stored body as GET shows it: with its dates as ISO-8601 instants and as epoch millis."""
    out = dict(body)
    stamped = dates(state, kind).get(name)
    if stamped is not None:
        created, modified = stamped
        out["created_date"] = iso_instant(created)
        out["created_date_millis"] = created
        out["modified_date"] = iso_instant(modified)
        out["modified_date_millis"] = modified
    return out


def iso_instant(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
