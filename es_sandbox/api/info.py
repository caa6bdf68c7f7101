"""The root endpoint (``GET /``: name, cluster, version) and ``GET /_capabilities``."""

from __future__ import annotations

from typing import Any

from es_sandbox.config import ES_VERSION, LUCENE_VERSION
from es_sandbox.http import ApiError, Request, RouteTable
from es_sandbox.node import BUILD_DATE, BUILD_HASH, CLUSTER_UUID
from es_sandbox.state import SandboxState

routes = RouteTable()


@routes.route("GET", "/", api="info")
def info(state: SandboxState, request: Request) -> dict[str, Any]:
    return {
        "name": state.config.node_name,
        "cluster_name": state.config.cluster_name,
        "cluster_uuid": CLUSTER_UUID,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "sandbox",
            "build_hash": BUILD_HASH,
            "build_date": BUILD_DATE,
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }


# -- capabilities -----------------------------------------------------------------------------------------

# Capabilities ES 9 advertises that the sandbox implements, by (method, path pattern).
CAPABILITIES: dict[tuple[str, str], frozenset[str]] = {
    ("PUT", "/_component_template/{name}"): frozenset(
        {"dlm.downsampling_method", "dlm.frozen_after", "failure_store.lifecycle.frozen_after_rejected"}
    ),
    ("POST", "/_component_template/{name}"): frozenset(
        {"dlm.downsampling_method", "dlm.frozen_after", "failure_store.lifecycle.frozen_after_rejected"}
    ),
    ("GET", "/_component_template"): frozenset({"local_param_deprecated"}),
    ("GET", "/_component_template/{name}"): frozenset({"local_param_deprecated"}),
}


@routes.route(
    "GET",
    "/_capabilities",
    write=False,
    params=("method", "path", "parameters", "capabilities", "local_only"),
)
def capabilities(state: SandboxState, request: Request) -> dict[str, Any]:
    """``GET /_capabilities``: whether this node supports an endpoint, its parameters and features."""
    from es_sandbox.params import COMMON, allowed_params

    method = (request.param("method", "GET") or "GET").upper()
    path = request.param("path")
    if not path:
        raise ApiError(400, "action_request_validation_exception", "Validation Failed: 1: path is missing;")
    wanted_params = [p for p in (request.param("parameters") or "").split(",") if p]
    wanted_caps = [c for c in (request.param("capabilities") or "").split(",") if c]
    sandbox_routes = getattr(state, "router_routes", [])
    route = next((r for r in sandbox_routes if r.pattern == path and r.method == method), None)
    if route is None:
        return {"supported": False}
    accepted = route.params | COMMON if route.params is not None else allowed_params(route.api)
    if accepted is not None and any(p not in accepted for p in wanted_params):
        return {"supported": False}
    known = CAPABILITIES.get((method, path), frozenset())
    return {"supported": all(c in known for c in wanted_caps)}
