"""The root endpoint (``GET /``: name, cluster, version) and ``GET /_capabilities``."""

from __future__ import annotations

from typing import Any

from es_sandbox.http import ApiError, Request, RouteTable
from es_sandbox.node import BUILD_HASH, CLUSTER_UUID
from es_sandbox.state import SandboxState
from es_sandbox.versions import path_shape

routes = RouteTable()


@routes.route("GET", "/", api="info")
def info(state: SandboxState, request: Request) -> dict[str, Any]:
    emulation = state.emulation
    return {
        "name": state.config.node_name,
        "cluster_name": state.config.cluster_name,
        "cluster_uuid": CLUSTER_UUID,
        "version": {
            "number": emulation.number,
            "build_flavor": "default",
            "build_type": "sandbox",
            "build_hash": BUILD_HASH,
            "build_date": emulation.release.build_date,
            "build_snapshot": False,
            "lucene_version": emulation.release.lucene,
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }


# -- capabilities -----------------------------------------------------------------------------------------


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
    # ES matches the path against its handlers' path trie, so placeholder names do not matter.
    shape = path_shape(path)
    route = next((r for r in sandbox_routes if path_shape(r.pattern) == shape and r.method == method), None)
    if route is None:
        return {"supported": False}
    accepted = route.params | COMMON if route.params is not None else allowed_params(route.api)
    if accepted is not None and any(p not in accepted for p in wanted_params):
        return {"supported": False}
    known = state.emulation.capabilities(method, route.pattern)
    return {"supported": all(c in known for c in wanted_caps)}
