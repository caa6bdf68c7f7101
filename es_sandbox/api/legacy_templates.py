"""Legacy (v1) index templates: ``_template`` put/get/exists/delete.

Deprecated since Elasticsearch 7.8 (every PUT warns), still accepted by 9.x: ``index_patterns``,
``order``, ``version``, ``settings``, ``mappings`` and ``aliases``. A new index takes them only when no
composable template matches it (es_sandbox.metadata.resolve_template, lowest ``order`` first);
a composable template whose patterns overlap one warns that it takes precedence, and
``_index_template/_simulate`` lists them among the overlapping templates.
"""

from __future__ import annotations

import copy
from typing import Any

from es_sandbox import settings as index_settings
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request
from es_sandbox.mapper.parsing import MappingContext, parse_mapping
from es_sandbox.metadata import parse_aliases, patterns_overlap, templates_part, wrap_mapping_error
from es_sandbox.state import SandboxState
from es_sandbox.util import nest_settings, simple_match, split_names

routes = RouteTable()

DEPRECATION = "Legacy index templates are deprecated in favor of composable templates."
KEYS = ("index_patterns", "order", "version", "settings", "mappings", "aliases")


@routes.route(
    "PUT|POST",
    "/_template/{name}",
    api="indices.put_template",
    params=("create", "order", "master_timeout", "cause"),
)
def put_template(state: SandboxState, request: Request) -> dict[str, Any]:
    name = request.path_params["name"]
    body = request.json_object(required=True)
    for key in body:
        if key not in KEYS:
            raise bad_request(f"unknown key [{key}] in the template ")
    patterns = body.get("index_patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
        )
    settings = index_settings.normalize(body.get("settings"))
    index_settings.validate(settings, creating=True)
    try:
        mappings = (
            parse_mapping(body.get("mappings"), MappingContext(settings)) if body.get("mappings") else {}
        )
    except ApiError as exc:
        raise wrap_mapping_error(exc) from exc
    order = body.get("order", request.param("order") or 0)
    stored: dict[str, Any] = {
        "order": int(order),
        "index_patterns": [str(p) for p in patterns],
        "settings": nest_settings(settings),
        "mappings": mappings,
        "aliases": parse_aliases(body.get("aliases")),
    }
    if body.get("version") is not None:
        stored["version"] = int(body["version"])
    request.warn(DEPRECATION)
    with state.lock:
        templates = templates_part(state)
        if request.flag("create") and name in templates.legacy:
            raise bad_request(f"index_template [{name}] already exists")
        templates.legacy[name] = stored
    return {"acknowledged": True}


@routes.route(
    "GET",
    "/_template",
    "/_template/{name}",
    write=False,
    api="indices.get_template",
    params=("flat_settings", "local", "master_timeout"),
)
def get_template(state: SandboxState, request: Request) -> Response:
    name = request.path_params.get("name")
    patterns = split_names(name) or ["*"]
    with state.lock:
        legacy = templates_part(state).legacy
        out = {
            n: copy.deepcopy(b)
            for n, b in sorted(legacy.items())
            if any(simple_match(p, n) for p in patterns)
        }
    if name and not out:
        return Response(404, {})
    return Response(200, out)


@routes.route(
    "HEAD",
    "/_template/{name}",
    write=False,
    api="indices.exists_template",
    params=("flat_settings", "local", "master_timeout"),
)
def exists_template(state: SandboxState, request: Request) -> Response:
    patterns = split_names(request.path_params["name"])
    with state.lock:
        found = any(simple_match(p, n) for n in templates_part(state).legacy for p in patterns)
    return Response(200 if found else 404, None)


@routes.route(
    "DELETE", "/_template/{name}", api="indices.delete_template", params=("master_timeout", "timeout")
)
def delete_template(state: SandboxState, request: Request) -> dict[str, Any]:
    patterns = split_names(request.path_params["name"])
    with state.lock:
        legacy = templates_part(state).legacy
        victims = [n for n in legacy if any(simple_match(p, n) for p in patterns)]
        if not victims:
            raise ApiError(
                404,
                "index_template_missing_exception",
                f"index_template [{request.path_params['name']}] missing",
            )
        for n in victims:
            del legacy[n]
    return {"acknowledged": True}


def overlapping_legacy(state: SandboxState, patterns: list[str]) -> dict[str, list[str]]:
    """Legacy templates whose patterns overlap ``patterns`` (name -> their patterns)."""
    out: dict[str, list[str]] = {}
    for name, body in sorted(templates_part(state).legacy.items()):
        theirs = body.get("index_patterns", [])
        if any(
            patterns_overlap(a, b) or simple_match(a, b) or simple_match(b, a)
            for a in patterns
            for b in theirs
        ):
            out[name] = list(theirs)
    return out


def precedence_warning(name: str, patterns: list[str], overlaps: dict[str, list[str]]) -> str:
    shown = ",".join(f"{other} => [{', '.join(p)}]" for other, p in overlaps.items())
    return (
        f"index template [{name}] has index patterns [{', '.join(patterns)}] matching patterns from existing older "
        f"templates [{', '.join(overlaps)}] with patterns ({shown}); this template [{name}] will take precedence "
        "during new index creation"
    )
