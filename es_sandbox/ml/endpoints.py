"""``_inference`` endpoints of service ``elasticsearch`` backed by trained model deployments.

An endpoint either attaches to an existing deployment (``service_settings.deployment_id``) or names
a trained model (``service_settings.model_id``) and starts its own deployment, whose id is the
endpoint id; deleting such an endpoint stops that deployment, as Elasticsearch does.

Out of scope: every other service (they call hosted APIs), Elastic's built-in default endpoints
(``.elser-2-elasticsearch`` ...), packaged models (nothing can be downloaded offline), ``_update``
of endpoints, streaming and ``completion``/``chat_completion`` task types.
"""

from __future__ import annotations

import time
from typing import Any

from es_sandbox import http
from es_sandbox.http import ApiError
from es_sandbox.ml import deployments
from es_sandbox.ml.configs import inference_config_name
from es_sandbox.ml.deployments import StartRequest
from es_sandbox.ml.references import model_references
from es_sandbox.ml.store import InferenceEndpoint, ml_state
from es_sandbox.ml.values import invalid_id_message, is_valid_id, license_error, status_error
from es_sandbox.state import SandboxState

TASK_TYPES = ("text_embedding", "sparse_embedding", "rerank", "completion", "chat_completion", "any")
SERVICE_TASKS = ("text_embedding", "sparse_embedding", "rerank")
# The trained model inference config each task type needs (checkTaskTypeForMlNodeModel).
TASK_TO_CONFIG = {
    "text_embedding": "text_embedding",
    "sparse_embedding": "text_expansion",
    "rerank": "text_similarity",
}
DEFAULT_CHUNKING = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
SETTINGS = "service_settings"


def check_license(state: SandboxState) -> None:
    """``InferencePlugin.INFERENCE_API_FEATURE``: enterprise (a trial counts) for non-EIS services."""
    if str(state.license_type).lower() not in ("trial", "enterprise", "platinum"):
        raise license_error("inference")


def parse_task_type(value: str) -> str:
    if value.lower() not in TASK_TYPES:
        raise status_error(400, f"Unknown task_type [{value}]")
    return value.lower()


def resolve_task_type(url_task: str, body_task: Any) -> str:
    """``ServiceUtils.resolveTaskType``: the URL and the body may each name it, but must agree."""
    if body_task is None:
        if url_task == "any":
            raise status_error(400, "model is missing required setting [task_type]")
        return url_task
    parsed = parse_task_type(str(body_task))
    if parsed == "any":
        raise status_error(400, "task_type [any] is not valid type for inference")
    if url_task not in ("any", parsed):
        raise status_error(
            400,
            f"Cannot resolve conflicting task_type parameter in the request URL [{url_task}] and the request body [{body_task}]",
        )
    return parsed


def _validation(*messages: str) -> ApiError:
    body = "".join(f"{i}: {m};" for i, m in enumerate(messages, start=1))
    return ApiError(400, "validation_exception", f"Validation Failed: {body}")


def _positive_int(settings: dict[str, Any], key: str, errors: list[str], *, required: bool) -> int | None:
    if key not in settings or settings[key] is None:
        if required:
            errors.append(f"[{SETTINGS}] does not contain the required setting [{key}]")
        return None
    value = settings.pop(key)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(
            f"field [{key}] is not of the expected type. The value [{value}] cannot be converted to a [Integer]"
        )
        return None
    if value <= 0:
        errors.append(f"[{SETTINGS}] Invalid value [{value}]. [{key}] must be a positive integer")
    return value


def put_endpoint(
    state: SandboxState, url_task: str, inference_id: str, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """``PUT _inference/[<task_type>/]<inference_id>``."""
    config = dict(body)
    task_type = resolve_task_type(url_task, config.pop("task_type", None))
    if not is_valid_id(inference_id):
        raise _validation(invalid_id_message("inference_id", inference_id))
    service = config.pop("service", None)
    if service is None:
        raise _validation("Model configuration is missing [service]")
    check_license(state)
    if service not in ("elasticsearch", "elser"):
        raise status_error(
            400,
            f"The sandbox only runs the [elasticsearch] inference service (trained models deployed to its ML node), "
            f"not [{service}]",
        )
    if task_type not in SERVICE_TASKS:
        raise status_error(400, f"The [elasticsearch] service does not support task type [{task_type}]")
    settings = config.pop(SETTINGS, None)
    if not isinstance(settings, dict):
        raise _validation(f"Model configuration is missing [{SETTINGS}]")
    settings = dict(settings)
    task_settings = config.pop("task_settings", None) or {}
    chunking = config.pop("chunking_settings", None)
    if config:
        raise status_error(
            400, f"Model configuration contains settings {config} unknown to the [{service}] service"
        )
    if inference_id.startswith("."):
        raise status_error(
            400,
            f"[{inference_id}] is a reserved inference Id. Cannot create a new inference endpoint with a reserved Id",
        )
    chunking_settings = _chunking(chunking) if task_type in ("text_embedding", "sparse_embedding") else None

    with state.lock:
        ml = ml_state(state)
        if inference_id in ml.endpoints:
            raise ApiError(
                400,
                "resource_already_exists_exception",
                f"Inference endpoint [{inference_id}] already exists",
            )
        if inference_id in ml.models:
            raise status_error(
                400,
                f"Inference endpoint IDs must be unique. Requested inference endpoint ID [{inference_id}] matches "
                "existing trained model ID(s) but must not.",
            )
        deployment_id = settings.pop("deployment_id", None)
        model_id = settings.get("model_id")
        if deployment_id is not None:
            endpoint = _attach(
                state, inference_id, task_type, deployment_id, model_id, chunking_settings, task_settings
            )
            ml.endpoints[inference_id] = endpoint
            return render(endpoint)
        if model_id is None:
            raise status_error(400, "Error parsing service settings, model_id must be provided")
        model = ml.models.get(ml.resolve_model_id(model_id))
        if model is None:
            raise status_error(
                400,
                "Error parsing request config, model id does not match any models available on this platform. Was "
                f"[{model_id}]. You may need to load it into the cluster using eland.",
            )
        _check_task(model_id, task_type, inference_config_name(model.config))
        settings.pop("model_id")
        errors: list[str] = []
        allocations = _positive_int(settings, "num_allocations", errors, required=False)
        threads = _positive_int(settings, "num_threads", errors, required=True)
        adaptive = settings.pop("adaptive_allocations", None)
        if allocations is None and adaptive is None:
            errors.append(
                f"[{SETTINGS}] does not contain one of the required settings [num_allocations, adaptive_allocations]"
            )
        if errors:
            raise _validation(*errors)
        if settings:
            raise status_error(
                400, f"Model configuration contains settings {settings} unknown to the [{service}] service"
            )
        service_settings: dict[str, Any] = {}
        if allocations is not None:
            service_settings["num_allocations"] = allocations
        service_settings["num_threads"] = threads
        service_settings["model_id"] = model_id
        if adaptive is not None:
            service_settings["adaptive_allocations"] = adaptive
        endpoint = InferenceEndpoint(
            inference_id=inference_id,
            task_type=task_type,
            service="elasticsearch",
            service_settings=service_settings,
            task_settings=dict(task_settings),
            chunking_settings=chunking_settings,
            deployment_id=inference_id,
            owns_deployment=True,
        )
        ml.endpoints[inference_id] = endpoint
    try:
        _start_own(state, endpoint, timeout_s)
    except ApiError as exc:
        if exc.status != 408:
            with state.lock:
                ml_state(state).endpoints.pop(inference_id, None)
        raise
    if task_type == "text_embedding":
        _add_embedding_details(state, endpoint, model.config)
    return render(endpoint)


def _attach(
    state: SandboxState,
    inference_id: str,
    task_type: str,
    deployment_id: str,
    model_id: str | None,
    chunking: dict[str, Any] | None,
    task_settings: dict[str, Any],
) -> InferenceEndpoint:
    """``validateAgainstDeployment``: the endpoint takes its settings from the running deployment."""
    ml = ml_state(state)
    deployment = ml.deployments.get(deployment_id)
    if deployment is None:
        raise status_error(404, f"Cannot find deployment [{deployment_id}]")
    if model_id is not None and model_id != deployment.model_id:
        raise status_error(
            400,
            f"Deployment [{deployment_id}] uses model [{deployment.model_id}] which does not match the model "
            f"[{model_id}] in the request.",
        )
    model = ml.models.get(deployment.model_id)
    _check_task(deployment.model_id, task_type, inference_config_name(model.config) if model else None)
    settings: dict[str, Any] = {
        "num_allocations": deployment.number_of_allocations,
        "num_threads": deployment.threads_per_allocation,
        "model_id": deployment.model_id,
    }
    if deployment.adaptive_allocations is not None:
        settings["adaptive_allocations"] = deployment.adaptive_allocations
    settings["deployment_id"] = deployment_id
    endpoint = InferenceEndpoint(
        inference_id=inference_id,
        task_type=task_type,
        service="elasticsearch",
        service_settings=settings,
        task_settings=dict(task_settings),
        chunking_settings=chunking,
        deployment_id=deployment_id,
        owns_deployment=False,
    )
    if task_type == "text_embedding" and model is not None:
        size = (model.config["inference_config"].get("text_embedding") or {}).get("embedding_size")
        if size:
            settings.update({"dimensions": size, "similarity": "cosine", "element_type": "float"})
    return endpoint


def _check_task(model_id: str, task_type: str, config_name: str | None) -> None:
    if TASK_TO_CONFIG.get(task_type) != config_name:
        raise status_error(
            400,
            f"Task type [{task_type}] is not compatible with the trained model [{model_id}] of type [{config_name}]",
        )


def _chunking(raw: Any) -> dict[str, Any]:
    if raw is None:
        return dict(DEFAULT_CHUNKING)
    if not isinstance(raw, dict):
        raise _validation("[chunking_settings] must be an object")
    strategy = raw.get("strategy", "sentence")
    allowed = {
        "sentence": {"strategy", "max_chunk_size", "sentence_overlap"},
        "word": {"strategy", "max_chunk_size", "overlap"},
        "none": {"strategy"},
    }.get(strategy)
    if allowed is None:
        raise _validation(f"Invalid chunkingStrategy {strategy}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _validation(f"Chunking settings contain unknown settings {unknown}")
    out = {"strategy": strategy}
    if strategy == "sentence":
        out.update(
            {
                "max_chunk_size": raw.get("max_chunk_size", 250),
                "sentence_overlap": raw.get("sentence_overlap", 1),
            }
        )
    elif strategy == "word":
        out.update({"max_chunk_size": raw.get("max_chunk_size", 250), "overlap": raw.get("overlap", 100)})
    return out


def _start_own(state: SandboxState, endpoint: InferenceEndpoint, timeout_s: float) -> None:
    """Start the endpoint's deployment (id = endpoint id) and wait until it is started."""
    began = time.time()
    settings = endpoint.service_settings
    request = StartRequest(
        model_id=str(settings["model_id"]),
        deployment_id=endpoint.deployment_id,
        number_of_allocations=settings.get("num_allocations"),
        threads_per_allocation=int(settings["num_threads"]),
        adaptive_allocations=settings.get("adaptive_allocations"),
        timeout_s=timeout_s,
        wait_for="started",
    )
    with state.lock:
        exists = endpoint.deployment_id in ml_state(state).deployments
    if not exists:
        deployments.start(state, request)
        with state.lock:
            ml_state(state).deployments[endpoint.deployment_id].inference_endpoint = endpoint.inference_id
    deployments.wait_for(state, endpoint.deployment_id, "started", timeout_s, began)


def _add_embedding_details(state: SandboxState, endpoint: InferenceEndpoint, config: dict[str, Any]) -> None:
    """Dimensions of a custom embedding model: from ``embedding_size``, else from a test inference."""
    size = (config["inference_config"].get("text_embedding") or {}).get("embedding_size")
    if not size:
        probe = deployments.infer_texts(state, endpoint.deployment_id, ["how big"])
        size = len(next(iter(probe[0].values())))
    with state.lock:
        endpoint.service_settings.update(
            {"dimensions": size, "similarity": "cosine", "element_type": "float"}
        )


def render(endpoint: InferenceEndpoint) -> dict[str, Any]:
    """``ModelConfigurations.toXContent``."""
    out: dict[str, Any] = {
        "inference_id": endpoint.inference_id,
        "task_type": endpoint.task_type,
        "service": endpoint.service,
        "service_settings": dict(endpoint.service_settings),
    }
    if endpoint.task_settings:
        out["task_settings"] = dict(endpoint.task_settings)
    if endpoint.chunking_settings is not None:
        out["chunking_settings"] = dict(endpoint.chunking_settings)
    return out


def _find(state: SandboxState, url_task: str, inference_id: str) -> InferenceEndpoint:
    endpoint = ml_state(state).endpoints.get(inference_id)
    if endpoint is None:
        raise ApiError(404, "resource_not_found_exception", f"Inference endpoint not found [{inference_id}]")
    if url_task not in ("any", endpoint.task_type):
        raise status_error(
            400,
            f"Requested task type [{url_task}] does not match the inference endpoint's task type [{endpoint.task_type}]",
        )
    return endpoint


def get_endpoints(state: SandboxState, url_task: str, inference_id: str | None) -> dict[str, Any]:
    with state.lock:
        ml = ml_state(state)
        if inference_id in (None, "_all", "*"):
            found = [e for e in ml.endpoints.values() if url_task in ("any", e.task_type)]
        else:
            found = [_find(state, url_task, str(inference_id))]
        return {"endpoints": [render(e) for e in sorted(found, key=lambda e: e.inference_id)]}


def delete_endpoint(
    state: SandboxState, url_task: str, inference_id: str, *, force: bool, dry_run: bool
) -> dict[str, Any]:
    """``DELETE _inference/...``: refused while pipelines use it; stops the deployment it started."""
    with state.lock:
        ml = ml_state(state)
        endpoint = _find(state, url_task, inference_id)
        pipelines = sorted(model_references(state).get(inference_id, set()))
        if dry_run:
            return {"acknowledged": not pipelines, "pipelines": pipelines, "indexes": []}
        if pipelines and not force:
            raise status_error(
                400,
                f"Inference endpoint {inference_id} is referenced by pipelines: {pipelines}. Ensure that no pipelines "
                "are using this inference endpoint, or use force to ignore this warning and delete the inference "
                "endpoint.",
            )
        del ml.endpoints[inference_id]
        if endpoint.owns_deployment and endpoint.deployment_id in ml.deployments:
            del ml.deployments[endpoint.deployment_id]
            ml.runtime.forget(endpoint.deployment_id)
        return {"acknowledged": True, "pipelines": pipelines, "indexes": []}


def infer(
    state: SandboxState, url_task: str, inference_id: str, body: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """``POST _inference/[<task_type>/]<inference_id>`` with ``input`` (a string or a list)."""
    known = {"input", "query", "task_settings", "input_type", "return_documents", "top_n"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise http.unknown_field("inference_request", unknown[0], known)
    raw = body.get("input")
    if raw is None:
        raise _validation("Field [input] cannot be empty")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _validation("Field [input] cannot be empty")
    check_license(state)
    with state.lock:
        endpoint = _find(state, "any", inference_id)
        if url_task not in ("any", endpoint.task_type):
            raise status_error(
                400,
                f"Incompatible task_type, the requested type [{url_task}] does not match the model type [{endpoint.task_type}]",
            )
        missing = endpoint.deployment_id not in ml_state(state).deployments
    if missing and endpoint.owns_deployment:
        _start_own(
            state, endpoint, timeout_s
        )  # maybeStartDeployment: an endpoint restarts its own deployment
    input_type = str(body.get("input_type") or "").lower()
    prefix = input_type if input_type in ("ingest", "search") else None
    if endpoint.task_type == "rerank":
        raise status_error(400, "The sandbox does not run rerank (text_similarity) models")
    results = deployments.infer_texts(state, endpoint.deployment_id, texts, prefix_type=prefix)
    if endpoint.task_type == "text_embedding":
        return {"text_embedding": [{"embedding": next(iter(r.values()))} for r in results]}
    return {
        "sparse_embedding": [
            {"is_truncated": bool(r.get("is_truncated", False)), "embedding": next(iter(r.values()))}
            for r in results
        ]
    }
