"""``GET``/``PUT _cluster/settings``: persistent and transient cluster settings, validated by prefix."""

from __future__ import annotations

from typing import Any

from es_sandbox.http import ApiError, Request, RouteTable, bad_request
from es_sandbox.metadata import cluster_settings
from es_sandbox.state import SandboxState
from es_sandbox.suggestions import levenshtein_similarity
from es_sandbox.util import flatten_settings, nest_settings, parse_bool, simple_match

_CLUSTER_SETTING_PREFIXES = (
    "action.",
    "cluster.",
    "indices.",
    "search.",
    "xpack.",
    "logger.",
    "ingest.",
    "script.",
    "persistent_tasks.",
    "transport.",
    "http.",
    "network.breaker.",
    "thread_pool.",
    "stack.templates.enabled",
    "data_streams.",
    "health.",
    "index.",
)

routes = RouteTable()


@routes.route("GET", "/_cluster/settings", write=False, api="cluster.get_settings")
def get_cluster_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    flat = request.flag("flat_settings")
    with state.lock:
        current = cluster_settings(state)
        body = {
            scope: dict(current[scope]) if flat else nest_settings(current[scope])
            for scope in ("persistent", "transient")
        }
    if request.flag("include_defaults"):
        defaults = {"action.destructive_requires_name": "true", "action.auto_create_index": "true"}
        body["defaults"] = defaults if flat else nest_settings(defaults)
    return body


@routes.route("PUT", "/_cluster/settings", api="cluster.put_settings")
def put_cluster_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    for key in body:
        if key not in ("persistent", "transient"):
            raise ApiError(400, "parse_exception", f"[cluster_update_settings_request] unknown field [{key}]")
    if not body.get("persistent") and not body.get("transient"):
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no settings to update;",
        )
    flat = request.flag("flat_settings")
    applied: dict[str, dict[str, Any]] = {"persistent": {}, "transient": {}}
    with state.lock:
        current = cluster_settings(state)
        for scope in ("persistent", "transient"):
            updates = flatten_settings(body.get(scope) or {})
            for key in [k for k in updates if "*" in k]:
                if updates.pop(key) is not None:
                    raise bad_request(f"{scope} setting [{key}], not recognized")
                for existing in [k for k in current[scope] if simple_match(key, k)]:
                    updates[existing] = None  # "x.*": null resets every matching setting
            for key in updates:
                if not key.startswith(_CLUSTER_SETTING_PREFIXES):
                    raise bad_request(f"{scope} setting [{key}], not recognized")
                if key == "action.destructive_requires_name" and updates[key] is not None:
                    parse_bool(updates[key], key)
            for key, value in updates.items():
                if value is None:
                    current[scope].pop(key, None)
                else:
                    current[scope][key] = value
                    applied[scope][key] = value
    return {
        "acknowledged": True,
        "persistent": applied["persistent"] if flat else nest_settings(applied["persistent"]),
        "transient": applied["transient"] if flat else nest_settings(applied["transient"]),
    }


def unknown_setting_message(key: str, known: list[str]) -> str:
    close = [k for k in known if levenshtein_similarity(key, k) > 0.7]
    return f"unknown setting [{key}]" + (f" did you mean [{close[0]}]?" if close else "")
