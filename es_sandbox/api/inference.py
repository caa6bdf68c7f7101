"""``_inference`` REST endpoints for the ``elasticsearch`` service (trained models on the ML node)."""

from __future__ import annotations

from typing import Any

from es_sandbox.api.ml import es_api
from es_sandbox.http import Request, RouteTable
from es_sandbox.ml import endpoints
from es_sandbox.ml.values import parse_bool, parse_time
from es_sandbox.state import SandboxState

routes = RouteTable()

DEFAULT_TIMEOUT_S = 30.0


def _task(request: Request) -> str:
    task = request.path_params.get("task_type")
    return endpoints.parse_task_type(task) if task is not None else "any"


def _timeout(request: Request) -> float:
    raw = request.params.get("timeout")
    return DEFAULT_TIMEOUT_S if raw is None else parse_time("timeout", raw)


@routes.route("PUT", "/_inference/{inference_id}", "/_inference/{task_type}/{inference_id}")
@es_api("timeout")
def put_inference(state: SandboxState, request: Request) -> dict[str, Any]:
    task = _task(request)
    timeout = _timeout(request)
    body = request.json_object(required=True)
    return endpoints.put_endpoint(state, task, request.path_params["inference_id"], body, timeout)


@routes.route("GET", "/_inference", "/_inference/{inference_id}", "/_inference/{task_type}/{inference_id}")
@es_api()
def get_inference(state: SandboxState, request: Request) -> dict[str, Any]:
    return endpoints.get_endpoints(state, _task(request), request.path_params.get("inference_id"))


@routes.route("DELETE", "/_inference/{inference_id}", "/_inference/{task_type}/{inference_id}")
@es_api("dry_run", "force")
def delete_inference(state: SandboxState, request: Request) -> dict[str, Any]:
    force = parse_bool("force", request.params.get("force", "false"))
    dry_run = parse_bool("dry_run", request.params.get("dry_run", "false"))
    return endpoints.delete_endpoint(
        state, _task(request), request.path_params["inference_id"], force=force, dry_run=dry_run
    )


@routes.route("POST", "/_inference/{inference_id}", "/_inference/{task_type}/{inference_id}", write=False)
@es_api("timeout")
def post_inference(state: SandboxState, request: Request) -> dict[str, Any]:
    task = _task(request)
    timeout = _timeout(request)
    return endpoints.infer(
        state, task, request.path_params["inference_id"], request.json_object(required=True), timeout
    )
