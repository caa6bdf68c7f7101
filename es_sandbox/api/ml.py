"""``_ml`` REST endpoints: trained models, aliases, deployments, ``_infer``, ``_ml/info``.

Handlers parse the request exactly as Elasticsearch's REST actions do (path, query parameters,
body; unknown parameters rejected) and delegate to ``es_sandbox.ml``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from es_sandbox.http import ApiError, Request, Response, RouteTable
from es_sandbox.ml import deployments, trained_models
from es_sandbox.ml.deployments import StartRequest
from es_sandbox.ml.node import allocated_processors
from es_sandbox.ml.values import (
    ByteSize,
    expect_type,
    human_bytes,
    parse_bool,
    parse_error,
    parse_int,
    parse_time,
    reject_unknown,
    status_error,
    validation_error,
)
from es_sandbox.state import SandboxState

routes = RouteTable()

TM = "/_ml/trained_models"
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"})
DEPRECATED_INFER_WARNING = (
    "[POST /_ml/trained_models/{model_id}/deployment/_infer] is deprecated! "
    "Use [POST /_ml/trained_models/{model_id}/_infer] instead."
)

_STOPWORDS = [
    *("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    *("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    *("January", "February", "March", "April", "May", "June", "July", "August", "September"),
    *("October", "November", "December", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug"),
    *("Sep", "Oct", "Nov", "Dec", "GMT", "UTC"),
]

Handler = Callable[[SandboxState, Request], "Response | dict[str, Any]"]


def es_api(*params: str) -> Callable[[Handler], Handler]:
    """Reject unknown query parameters like Elasticsearch; keep Java stack traces only on ``error_trace``."""
    allowed = COMMON_PARAMS | set(params)

    def deco(func: Handler) -> Handler:
        @functools.wraps(func)
        def wrapper(state: SandboxState, request: Request) -> Response | dict[str, Any]:
            unknown = sorted(p for p in request.params if p not in allowed)
            try:
                if unknown:
                    noun = "parameter" if len(unknown) == 1 else "parameters"
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"request [{request.path}] contains unrecognized {noun}: "
                        + ", ".join(f"[{p}]" for p in unknown),
                    )
                return func(state, request)
            except ApiError as exc:
                if request.params.get("error_trace") not in ("", "true"):
                    exc.extra.pop("stack_trace", None)
                raise

        return wrapper

    return deco


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.params.get(name)
    return default if value is None else parse_bool(name, value)


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.params.get(name)
    return default if value is None else parse_int(name, value)


def _page(request: Request) -> tuple[int, int]:
    start, size = _int_param(request, "from", 0), _int_param(request, "size", 100)
    if start < 0:
        raise ApiError(400, "illegal_argument_exception", "Parameter [from] cannot be < 0")
    if size < 0:
        raise ApiError(400, "illegal_argument_exception", "Parameter [size] cannot be < 0")
    if start + size > 10_000:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "The sum of parameters [from] and [size] cannot be higher than 10000.",
        )
    return start, size


# ---------------------------------------------------------------------------------------------
# _ml/info


@routes.route("GET", "/_ml/info")
@es_api()
def ml_info(state: SandboxState, request: Request) -> dict[str, Any]:
    memory = state.config.ml_memory_bytes
    processors = allocated_processors()
    return {
        "defaults": {
            "anomaly_detectors": {
                "categorization_analyzer": {
                    "char_filter": ["first_line_with_letters"],
                    "tokenizer": "ml_standard",
                    "filter": [
                        {
                            "type": "stop",
                            "stopwords": _STOPWORDS,
                        },
                        {"type": "limit", "max_token_count": "100"},
                    ],
                },
                "model_memory_limit": "1gb",
                "categorization_examples_limit": 4,
                "model_snapshot_retention_days": 10,
                "daily_model_snapshot_retention_after_days": 1,
            },
            "datafeeds": {"scroll_size": 1000},
        },
        "upgrade_mode": False,
        "native_code": {"version": state.emulation.number, "build_hash": "sandbox"},
        "limits": {
            "max_single_ml_node_processors": processors,
            "total_ml_processors": processors,
            "max_model_memory_limit": human_bytes(memory - deployments.NATIVE_EXECUTABLE_CODE_OVERHEAD),
            "effective_max_model_memory_limit": human_bytes(
                memory - deployments.NATIVE_EXECUTABLE_CODE_OVERHEAD
            ),
            "total_ml_memory": human_bytes(memory),
        },
    }


# ---------------------------------------------------------------------------------------------
# Trained models


@routes.route("PUT", TM + "/{model_id}")
@es_api("defer_definition_decompression", "wait_for_completion", "timeout", "master_timeout")
def put_trained_model(state: SandboxState, request: Request) -> dict[str, Any]:
    _flag(request, "defer_definition_decompression", False)
    _flag(request, "wait_for_completion", False)
    body = request.json_object(required=True)
    return trained_models.put_model(state, request.path_params["model_id"], body)


@routes.route("GET", TM, TM + "/{model_id}")
@es_api("allow_no_match", "include", "decompress_definition", "from", "size", "tags", "exclude_generated")
def get_trained_models(state: SandboxState, request: Request) -> dict[str, Any]:
    includes = {i.strip() for i in (request.params.get("include") or "").split(",") if i.strip()}
    known = {
        "definition",
        "total_feature_importance",
        "feature_importance_baseline",
        "hyperparameters",
        "definition_status",
    }
    for include in includes:
        if include not in known:
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"unrecognized include [{include}]; must be one of {sorted(known)}",
            )
    start, size = _page(request)
    tags = [t for t in (request.params.get("tags") or "").split(",") if t]
    result = trained_models.get_models(
        state,
        request.path_params.get("model_id"),
        allow_no_match=_flag(request, "allow_no_match", True),
        includes=includes,
        decompress=_flag(request, "decompress_definition", True),
        start=start,
        size=size,
        tags=tags,
    )
    if _flag(request, "exclude_generated", False):
        for config in result["trained_model_configs"]:
            for key in (
                "created_by",
                "version",
                "create_time",
                "model_size_bytes",
                "estimated_operations",
                "license_level",
            ):
                config.pop(key, None)
    return result


@routes.route("GET", TM + "/_stats", TM + "/{model_id}/_stats")
@es_api("allow_no_match", "from", "size")
def get_trained_models_stats(state: SandboxState, request: Request) -> dict[str, Any]:
    start, size = _page(request)
    return trained_models.get_stats(
        state,
        request.path_params.get("model_id"),
        allow_no_match=_flag(request, "allow_no_match", True),
        start=start,
        size=size,
    )


@routes.route("DELETE", TM + "/{model_id}")
@es_api("force", "timeout", "master_timeout")
def delete_trained_model(state: SandboxState, request: Request) -> dict[str, Any]:
    if "timeout" in request.params:
        parse_time("timeout", request.params["timeout"])
    trained_models.delete_model(state, request.path_params["model_id"], force=_flag(request, "force", False))
    return {"acknowledged": True}


@routes.route("PUT", TM + "/{model_id}/definition/{part}")
@es_api()
def put_definition_part(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    trained_models.put_definition_part(
        state, request.path_params["model_id"], request.path_params["part"], body
    )
    return {"acknowledged": True}


@routes.route("PUT", TM + "/{model_id}/vocabulary")
@es_api()
def put_vocabulary(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    trained_models.put_vocabulary(state, request.path_params["model_id"], body)
    return {"acknowledged": True}


@routes.route("PUT", TM + "/{model_id}/model_aliases/{model_alias}")
@es_api("reassign", "timeout", "master_timeout")
def put_model_alias(state: SandboxState, request: Request) -> dict[str, Any]:
    trained_models.put_alias(
        state,
        request.path_params["model_id"],
        request.path_params["model_alias"],
        reassign=_flag(request, "reassign", False),
    )
    return {"acknowledged": True}


@routes.route("DELETE", TM + "/{model_id}/model_aliases/{model_alias}")
@es_api("timeout", "master_timeout")
def delete_model_alias(state: SandboxState, request: Request) -> dict[str, Any]:
    trained_models.delete_alias(state, request.path_params["model_id"], request.path_params["model_alias"])
    return {"acknowledged": True}


# ---------------------------------------------------------------------------------------------
# Deployments

_START_BODY = frozenset(
    {
        "model_id",
        "deployment_id",
        "timeout",
        "wait_for",
        "threads_per_allocation",
        "inference_threads",
        "number_of_allocations",
        "model_threads",
        "queue_capacity",
        "cache_size",
        "priority",
        "adaptive_allocations",
    }
)
_START_PARAMS = (
    "cache_size",
    "deployment_id",
    "number_of_allocations",
    "threads_per_allocation",
    "priority",
    "queue_capacity",
    "timeout",
    "wait_for",
    "master_timeout",
)


def parse_adaptive(raw: Any) -> dict[str, Any] | None:
    """``AdaptiveAllocationsSettings.PARSER``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise parse_error(
            "start_trained_model_deployment",
            "[adaptive_allocations] failed to parse field [adaptive_allocations]",
        )
    reject_unknown(
        "adaptive_allocations_settings",
        raw,
        {"enabled", "min_number_of_allocations", "max_number_of_allocations"},
    )
    out: dict[str, Any] = {}
    if "enabled" in raw:
        out["enabled"] = expect_type(
            "adaptive_allocations_settings", "enabled", raw["enabled"], bool, "a boolean"
        )
    for key in ("min_number_of_allocations", "max_number_of_allocations"):
        if key in raw and raw[key] is not None:
            out[key] = expect_type("adaptive_allocations_settings", key, raw[key], int, "an integer")
    return out


def _enum(value: str, allowed: tuple[str, ...], java_enum: str) -> str:
    if value.lower() not in allowed:
        raise ApiError(400, "illegal_argument_exception", f"No enum constant {java_enum}.{value.upper()}")
    return value.lower()


def parse_start(model_id: str, params: dict[str, str], body: dict[str, Any]) -> StartRequest:
    """``RestStartTrainedModelDeploymentAction``: the body first, then query parameters over it."""
    parser = "cluster:admin/xpack/ml/trained_models/deployment/start"
    reject_unknown(parser, body, _START_BODY)
    body_id = body.get("model_id")
    if body_id is not None and body_id != model_id:
        raise status_error(
            400,
            f"Inconsistent model_id; '{body_id}' specified in the body differs from '{model_id}' specified as a URL argument",
        )

    def value(name: str, alias: str | None = None) -> Any:
        if name in params:
            return params[name]
        if name in body:
            return body[name]
        return body.get(alias) if alias else None

    request = StartRequest(model_id=model_id, deployment_id=str(value("deployment_id") or model_id))
    allocations = value("number_of_allocations", "model_threads")
    if allocations is not None:
        request.number_of_allocations = parse_int("number_of_allocations", allocations)
    threads = value("threads_per_allocation", "inference_threads")
    if threads is not None:
        request.threads_per_allocation = parse_int("threads_per_allocation", threads)
    queue = value("queue_capacity")
    if queue is not None:
        request.queue_capacity = parse_int("queue_capacity", queue)
    cache = value("cache_size")
    if cache is not None:
        request.cache_size = ByteSize.parse("cache_size", cache)
    priority = value("priority")
    if priority is not None:
        request.priority = _enum(
            str(priority), ("normal", "low"), "org.elasticsearch.xpack.core.ml.inference.assignment.Priority"
        )
    timeout = value("timeout")
    if timeout is not None:
        request.timeout_s = parse_time("timeout", timeout)
    wait = value("wait_for")
    if wait is not None:
        request.wait_for = _enum(
            str(wait),
            deployments.WAIT_STATES,
            "org.elasticsearch.xpack.core.ml.inference.assignment.AllocationStatus.State",
        )
    request.adaptive_allocations = parse_adaptive(body.get("adaptive_allocations"))
    return request


@routes.route("POST", TM + "/{model_id}/deployment/_start")
@es_api(*_START_PARAMS)
def start_deployment(state: SandboxState, request: Request) -> dict[str, Any]:
    began = time.time()
    start = parse_start(request.path_params["model_id"], request.params, request.json_object())
    deployment = deployments.start(state, start)
    deployment = deployments.wait_for(state, deployment.deployment_id, start.wait_for, start.timeout_s, began)
    with state.lock:
        return {"assignment": deployments.assignment_json(state, deployment)}


@routes.route("POST", TM + "/{model_id}/deployment/_stop")
@es_api("allow_no_match", "force", "timeout", "master_timeout")
def stop_deployment(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object()
    reject_unknown(
        "stop_trained_model_deployment_request", body, {"model_id", "allow_no_match", "force", "id"}
    )
    allow = _flag(request, "allow_no_match", bool(body.get("allow_no_match", True)))
    force = _flag(request, "force", bool(body.get("force", False)))
    deployments.stop(state, request.path_params["model_id"], force=force, allow_no_match=allow)
    return {"stopped": True}


@routes.route("POST", TM + "/{model_id}/deployment/_update")
@es_api("number_of_allocations", "timeout", "master_timeout")
def update_deployment(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object()
    reject_unknown(
        "update_trained_model_deployment_request",
        body,
        {"model_id", "number_of_allocations", "adaptive_allocations"},
    )
    raw = request.params.get("number_of_allocations", body.get("number_of_allocations"))
    allocations = parse_int("number_of_allocations", raw) if raw is not None else None
    adaptive = parse_adaptive(body.get("adaptive_allocations"))
    if allocations is None and adaptive is None:
        raise validation_error("Either [number_of_allocations] or [adaptive_allocations] must be set")
    if allocations is not None and allocations < 1:
        raise validation_error("[number_of_allocations] must be a positive integer")
    deployment = deployments.update(state, request.path_params["model_id"], allocations, adaptive)
    with state.lock:
        return {"assignment": deployments.assignment_json(state, deployment)}


@routes.route("POST", TM + "/{model_id}/deployment/cache/_clear")
@es_api()
def clear_deployment_cache(state: SandboxState, request: Request) -> dict[str, Any]:
    deployments.clear_cache(state, request.path_params["model_id"])
    return {"cleared": True}


# ---------------------------------------------------------------------------------------------
# Inference


def _extract(doc: dict[str, Any], field: str) -> Any:
    """``XContentMapValues.extractValue``: a dotted path through nested objects or a flat dotted key."""
    if field in doc:
        return doc[field]
    current: Any = doc
    for part in field.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def infer_docs(state: SandboxState, model_ref: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST _infer``: one result per doc, reading the model's input field from each doc."""
    reject_unknown("infer_trained_model_request", body, {"docs", "inference_config", "timeout"})
    docs = body.get("docs")
    if docs is None:
        raise validation_error("[docs] must not be null")
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise parse_error("infer_trained_model_request", "[docs] failed to parse field [docs]")
    if not docs:
        raise validation_error("at least one document is required")
    with state.lock:
        _, model = deployments.pick_deployment(state, model_ref)
        field = model.config["input"]["field_names"][0]
    texts = []
    for doc in docs:
        value = _extract(doc, field)
        if value is None:
            raise status_error(400, f"Input field [{field}] does not exist in the request document")
        if not isinstance(value, str):
            raise status_error(400, f"Input value [{value}] for field [{field}] must be a string")
        texts.append(value)
    return {"inference_results": deployments.infer_texts(state, model_ref, texts)}


@routes.route("POST", TM + "/{model_id}/_infer", write=False)
@es_api("timeout")
def infer_trained_model(state: SandboxState, request: Request) -> dict[str, Any]:
    if "timeout" in request.params:
        parse_time("timeout", request.params["timeout"])
    return infer_docs(state, request.path_params["model_id"], request.json_object(required=True))


@routes.route("POST", TM + "/{model_id}/deployment/_infer", write=False)
@es_api("timeout")
def infer_trained_model_deprecated(state: SandboxState, request: Request) -> dict[str, Any]:
    if "timeout" in request.params:
        parse_time("timeout", request.params["timeout"])
    request.warn(DEPRECATED_INFER_WARNING)  # sent as "Warning: 299 Elasticsearch-..." by the server
    return infer_docs(state, request.path_params["model_id"], request.json_object(required=True))
