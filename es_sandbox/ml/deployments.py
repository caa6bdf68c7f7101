"""Deployments of trained models: start, wait, update, stop, memory accounting, inference.

A deployment's progress (``starting`` -> ``started`` -> ``fully_allocated``) is a function of the
clock and the configured delays (``deployment_start_delay_s``, ``allocation_delay_s``); nothing runs
in the background, so a sandbox with many deployments costs nothing while idle.

Memory is accounted as Elasticsearch's ML node does (``StartTrainedModelDeploymentAction``,
``TrainedModelAssignmentRebalancer``): each deployment needs ``estimate_memory`` bytes, the node adds
``NATIVE_EXECUTABLE_CODE_OVERHEAD`` once, and a deployment that does not fit is refused with 429.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from es_sandbox import versions
from es_sandbox.http import ApiError
from es_sandbox.ml import runtime
from es_sandbox.ml.configs import inference_config_name, per_allocation_memory, per_deployment_memory
from es_sandbox.ml.node import discovery_node, node_id
from es_sandbox.ml.references import model_references
from es_sandbox.ml.store import Deployment, MlState, TrainedModel, ml_state
from es_sandbox.ml.tokenizers import build_tokenizer
from es_sandbox.ml.values import (
    ByteSize,
    human_bytes,
    license_error,
    missing_deployment,
    missing_model,
    status_error,
    validation_error,
)
from es_sandbox.state import SandboxState

MB = 1024 * 1024
MEMORY_OVERHEAD = 240 * MB  # per model process (StartTrainedModelDeploymentAction.MEMORY_OVERHEAD)
ELSER_MEMORY = 2004 * MB  # ELSER v1/v2 fixed estimate
NATIVE_EXECUTABLE_CODE_OVERHEAD = 30 * MB  # once per node with any ML process
MAX_TRAINED_MODEL_DEPLOYMENTS = 100
MAX_THREADS_PER_ALLOCATION = 32
MAX_QUEUE_CAPACITY = 100_000
DEFAULT_QUEUE_CAPACITY = 10_000
DEFAULT_TIMEOUT_S = 30.0
WAIT_STATES = ("starting", "started", "fully_allocated")
LICENSED_FOR_ML = ("trial", "platinum", "enterprise")


def check_ml_license(state: SandboxState) -> None:
    """``MachineLearningField.ML_API_FEATURE``: platinum or better (a trial counts)."""
    if str(state.license_type).lower() not in LICENSED_FOR_ML:
        raise license_error("ml")


def estimate_memory(
    model_id: str, model_bytes: int, per_deployment: int, per_allocation: int, allocations: int
) -> int:
    """``StartTrainedModelDeploymentAction.estimateMemoryUsageBytes`` (ES 8.11+).

    ELSER v1/v2: a fixed 2004MB. Otherwise 240MB + 2 x model size, or, when the model's metadata gives
    ``per_deployment_memory_bytes``/``per_allocation_memory_bytes`` (eland writes them), the larger of
    that and per_deployment + per_allocation x allocations + model size.
    """
    if (
        model_id.startswith((".elser_model_1", ".elser_model_2"))
        and per_deployment == 0
        and per_allocation == 0
    ):
        return ELSER_MEMORY
    base = MEMORY_OVERHEAD + 2 * model_bytes
    if per_deployment == 0 and per_allocation == 0:
        return base
    return max(base, per_deployment + per_allocation * allocations + model_bytes)


def deployment_memory(d: Deployment, allocations: int | None = None) -> int:
    """``TaskParams.estimateMemoryUsageBytes``: the estimate, plus a cache larger than the model."""
    count = d.number_of_allocations if allocations is None else allocations
    if count == 0:
        return 0
    memory = estimate_memory(
        d.model_id, d.model_bytes, d.per_deployment_memory_bytes, d.per_allocation_memory_bytes, count
    )
    if d.cache_size_given and d.cache_size_bytes > d.model_bytes:
        memory += d.cache_size_bytes - d.model_bytes
    return memory


def _insufficient_memory(state: SandboxState, ml: MlState, memory: int, exclude: str | None) -> str | None:
    """The node's explanation when ``memory`` more bytes do not fit, else None."""
    others = [d for d in ml.deployments.values() if d.deployment_id != exclude]
    used = sum(deployment_memory(d) for d in others)
    total = state.config.ml_memory_bytes
    if others:
        free, required = total - used - NATIVE_EXECUTABLE_CODE_OVERHEAD, memory
    else:
        free, required = total, memory + NATIVE_EXECUTABLE_CODE_OVERHEAD
    if required <= free:
        return None
    return (
        f"Could not assign (more) allocations on node [{node_id(state)}]. Reason: This node has insufficient "
        f"available memory. Available memory for ML [{total} ({human_bytes(total)})], free memory "
        f"[{free} ({human_bytes(max(free, 0))})], estimated memory required for this model "
        f"[{required} ({human_bytes(required)})]."
    )


@dataclass
class StartRequest:
    """The parsed parameters of ``_start`` (query string and body)."""

    model_id: str
    deployment_id: str
    number_of_allocations: int | None = None
    threads_per_allocation: int = 1
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY
    priority: str = "normal"
    cache_size: ByteSize | None = None
    adaptive_allocations: dict[str, Any] | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    wait_for: str = "started"

    def allocations(self) -> int:
        """``computeNumberOfAllocations``: explicit, else the adaptive minimum, else 1."""
        if self.number_of_allocations is not None:
            return self.number_of_allocations
        minimum = (self.adaptive_allocations or {}).get("min_number_of_allocations")
        return int(minimum) if minimum else 1

    def validate(self) -> None:
        errors: list[str] = []
        if self.wait_for not in WAIT_STATES:
            errors.append(
                f"invalid [wait_for] state [{self.wait_for}]; must be one of [started,starting,fully_allocated"
            )
        if self.number_of_allocations is not None:
            if self.number_of_allocations < 1:
                errors.append("[number_of_allocations] must be a positive integer")
            if self.adaptive_allocations and self.adaptive_allocations.get("enabled") is True:
                errors.append("[number_of_allocations] cannot be set if adaptive allocations is enabled")
        if self.threads_per_allocation < 1:
            errors.append("[threads_per_allocation] must be a positive integer")
        errors.extend(validate_adaptive(self.adaptive_allocations))
        t = self.threads_per_allocation
        if t > MAX_THREADS_PER_ALLOCATION or t < 1 or (t & (t - 1)) != 0:
            errors.append(
                f"[threads_per_allocation] must be a power of 2 less than or equal to {MAX_THREADS_PER_ALLOCATION}"
            )
        if self.queue_capacity < 1:
            errors.append("[queue_capacity] must be a positive integer")
        if self.queue_capacity > MAX_QUEUE_CAPACITY:
            errors.append(f"[queue_capacity] must be less than {MAX_QUEUE_CAPACITY}")
        if self.timeout_s <= 0:
            errors.append("[timeout] must be positive")
        if self.priority == "low":
            if self.number_of_allocations is not None and self.number_of_allocations > 1:
                errors.append("[number_of_allocations] must be 1 when [priority] is low")
            if self.threads_per_allocation > 1:
                errors.append("[threads_per_allocation] must be 1 when [priority] is low")
            errors.extend(low_priority_adaptive_errors(self.adaptive_allocations))
        if errors:
            raise validation_error(*errors)


def low_priority_adaptive_errors(adaptive: dict[str, Any] | None) -> list[str]:
    """From 9.2.5 (es_sandbox.versions: ml.low_priority_adaptive_max) a low-priority deployment's
    adaptive allocations may not scale past one allocation."""
    if not versions.current().has("ml.low_priority_adaptive_max") or not adaptive:
        return []
    maximum = adaptive.get("max_number_of_allocations")
    if adaptive.get("enabled") is True and maximum is not None and int(maximum) > 1:
        return ["[max_number_of_allocations] must be 1 when [priority] is low"]
    return []


def validate_adaptive(settings: dict[str, Any] | None) -> list[str]:
    """``AdaptiveAllocationsSettings.validate``."""
    if not settings:
        return []
    errors = []
    low, high = settings.get("min_number_of_allocations"), settings.get("max_number_of_allocations")
    if low is not None and low < 0:
        errors.append("[min_number_of_allocations] must be a non-negative integer")
    if high is not None and high < 1:
        errors.append("[max_number_of_allocations] must be a positive integer")
    if low is not None and high is not None and low > high:
        errors.append("[min_number_of_allocations] must not be larger than [max_number_of_allocations]")
    return errors


def start(state: SandboxState, request: StartRequest) -> Deployment:
    """Create the deployment (checks as ``TransportStartTrainedModelDeploymentAction``); no waiting."""
    request.validate()
    check_ml_license(state)
    with state.lock:
        ml = ml_state(state)
        if len(ml.deployments) >= MAX_TRAINED_MODEL_DEPLOYMENTS:
            raise status_error(
                429,
                f"Could not start model deployment because existing deployments reached the limit of "
                f"[{MAX_TRAINED_MODEL_DEPLOYMENTS}]",
            )
        if request.deployment_id in ml.deployments:
            raise status_error(
                400,
                f"Could not start model deployment because an existing deployment with the same id "
                f"[{request.deployment_id}] exist",
            )
        if request.model_id in ml.endpoints:
            raise status_error(
                400,
                f"Model IDs must be unique. Requested model ID [{request.model_id}] matches existing model IDs but must not.",
            )
        model = ml.models.get(ml.resolve_model_id(request.model_id))
        if model is None:
            raise missing_model(request.model_id)
        if model.model_type != "pytorch":
            raise status_error(
                400,
                f"model [{model.model_id}] of type [{model.model_type or 'tree_ensemble'}] cannot be deployed. "
                "Only PyTorch models can be deployed",
            )
        if request.deployment_id != request.model_id and request.deployment_id in ml.models:
            raise status_error(
                400,
                f"Deployment id [{request.deployment_id}] is the same as an another model which is not the model "
                "being deployed. Deployment id can be the same as the model being deployed but cannot match a "
                "different model",
            )
        if model.download_pending:
            raise status_error(
                408,
                f"Model download task is currently running. Wait for trained model [{model.model_id}] download "
                "task to complete then try again",
            )
        model_bytes = _check_definition(model)
        if inference_config_name(model.config) is not None and model.vocabulary is None:
            raise status_error(
                500,
                f"Could not start trained model deployment, the following nodes failed with errors "
                f"[{{{node_id(state)}=Could not find vocabulary document [{model.model_id}_vocabulary] for "
                f"trained model [{model.model_id}]}}]",
            )
        now = time.time()
        cache = request.cache_size or ByteSize.of_bytes(model_bytes)
        deployment = Deployment(
            deployment_id=request.deployment_id,
            model_id=model.model_id,
            model_bytes=model_bytes,
            number_of_allocations=request.allocations(),
            threads_per_allocation=request.threads_per_allocation,
            queue_capacity=request.queue_capacity,
            priority=request.priority,
            cache_size=cache.rep,
            cache_size_bytes=cache.bytes,
            cache_size_given=request.cache_size is not None,
            per_deployment_memory_bytes=per_deployment_memory(model.config),
            per_allocation_memory_bytes=per_allocation_memory(model.config),
            adaptive_allocations=request.adaptive_allocations,
            start_time=now,
            started_delay_s=state.config.deployment_start_delay_s,
            allocation_delay_s=state.config.allocation_delay_s,
        )
        reason = _insufficient_memory(state, ml, deployment_memory(deployment), exclude=None)
        if reason is not None:
            error = status_error(
                429, "Could not start deployment because no ML nodes with sufficient capacity were found"
            )
            error.caused_by = ApiError(
                500,
                "illegal_state_exception",
                f"Could not start deployment because no suitable nodes were found, allocation explanation [{reason}]",
            )
            raise error
        ml.deployments[deployment.deployment_id] = deployment
        return deployment


def _check_definition(model: TrainedModel) -> int:
    """``checkFullModelDefinitionIsPresent``: all parts there, lengths consistent; the model size."""
    if not model.parts:
        raise ApiError(
            404, "resource_not_found_exception", f"Could not find trained model definition [{model.model_id}]"
        )
    if model.definition_length() != model.total_definition_length:
        raise status_error(
            400,
            f"Model definition truncated. Unable to deserialize trained model definition [{model.model_id}]",
        )
    return model.total_definition_length


def wait_for(
    state: SandboxState, deployment_id: str, wait_state: str, timeout_s: float, started: float
) -> Deployment:
    """Block (without the state lock) until the deployment reaches ``wait_state`` or time runs out.

    On timeout Elasticsearch answers 408 and leaves the deployment to keep starting.
    """
    deadline = started + timeout_s
    while True:
        with state.lock:
            deployment = ml_state(state).deployments.get(deployment_id)
            if deployment is None:
                raise status_error(
                    400,
                    "Error waiting for the model deployment to start. The trained model assignment was removed while waiting",
                )
            ready_at = deployment.reached_at(wait_state)
        now = time.time()
        if now >= ready_at:
            return deployment
        if now >= deadline:
            raise ApiError(
                408,
                "model_deployment_timeout_exception",
                f"Timed out after [{_time_rep(timeout_s)}] waiting for trained model deployment [{deployment_id}] to "
                "start. Use the trained model stats API to track the state of the deployment and try again once it "
                "has started.",
            )
        time.sleep(max(0.001, min(ready_at, deadline) - now))


def _time_rep(seconds: float) -> str:
    """``TimeValue.toString()`` of a timeout, e.g. ``30s``, ``100ms``, ``10m``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    if seconds >= 1:
        return f"{seconds:.1f}s"
    return f"{round(seconds * 1000)}ms"


def stop(state: SandboxState, deployment_id: str, *, force: bool, allow_no_match: bool) -> None:
    """``TransportStopTrainedModelDeploymentAction``: by deployment id; refused while pipelines use it."""
    with state.lock:
        ml = ml_state(state)
        deployment = ml.deployments.get(deployment_id)
        if deployment is None:
            if not allow_no_match:
                raise missing_deployment(deployment_id)
            return
        if not force:
            refs = model_references(state)
            if deployment_id in refs:
                raise status_error(
                    409,
                    f"Cannot stop deployment [{deployment_id}] as it is referenced by ingest processors; use force to "
                    "stop the deployment",
                )
            for alias in ml.aliases_of(deployment_id):
                if alias in refs:
                    raise status_error(
                        409,
                        f"Cannot stop deployment [{deployment_id}] as it has a model_alias [{alias}] that is still "
                        "referenced by ingest processors; use force to stop the deployment",
                    )
        del ml.deployments[deployment_id]
        ml.runtime.forget(deployment_id)


def update(
    state: SandboxState,
    deployment_id: str,
    number_of_allocations: int | None,
    adaptive: dict[str, Any] | None,
) -> Deployment:
    """``TrainedModelAssignmentClusterService.updateDeployment``."""
    check_ml_license(state)
    with state.lock:
        ml = ml_state(state)
        deployment = ml.deployments.get(deployment_id)
        if deployment is None:
            raise missing_deployment(deployment_id)
        merged = deployment.adaptive_allocations
        if adaptive is not None:
            merged = {**(deployment.adaptive_allocations or {}), **adaptive}
        if merged is not None:
            if merged.get("enabled") is True and number_of_allocations is not None:
                raise validation_error(
                    "[number_of_allocations] cannot be set if adaptive allocations is enabled"
                )
            errors = validate_adaptive(merged)
            if deployment.priority == "low":
                errors += low_priority_adaptive_errors(merged)
            if errors:
                raise validation_error(*errors)
        if (
            deployment.priority == "low"
            and number_of_allocations is not None
            and number_of_allocations > 1
            and versions.current().has("ml.low_priority_update_allocations")
        ):
            # 9.2.4+ (es_sandbox.versions: ml.low_priority_update_allocations)
            raise validation_error("[number_of_allocations] must be 1 when [priority] is low")
        changes = (
            number_of_allocations is not None and number_of_allocations != deployment.number_of_allocations
        ) or (adaptive is not None and merged != deployment.adaptive_allocations)
        if not changes:
            return deployment
        if deployment.assignment_state() != "started":
            raise status_error(409, "cannot update deployment that is not in [started] state")
        if number_of_allocations is not None and number_of_allocations > deployment.number_of_allocations:
            needed = deployment_memory(deployment, number_of_allocations)
            if _insufficient_memory(state, ml, needed, exclude=deployment_id) is not None:
                raise status_error(
                    429,
                    "Could not update deployment because there are not enough resources to provide all requested allocations",
                )
        deployment.adaptive_allocations = merged
        if number_of_allocations is not None:
            deployment.set_allocations(number_of_allocations)
        return deployment


# ---------------------------------------------------------------------------------------------
# Rendering


def iso_millis(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(epoch_s * 1000) % 1000:03d}Z"
    )


def assignment_json(state: SandboxState, d: Deployment, now: float | None = None) -> dict[str, Any]:
    """``TrainedModelAssignment.toXContent``: what ``_start`` and ``_update`` answer."""
    now = time.time() if now is None else now
    current = d.current_allocations(now)
    routing = "started" if current > 0 else "starting"
    return {
        "task_parameters": {
            "model_id": d.model_id,
            "deployment_id": d.deployment_id,
            "model_bytes": d.model_bytes,
            "threads_per_allocation": d.threads_per_allocation,
            "number_of_allocations": d.number_of_allocations,
            "queue_capacity": d.queue_capacity,
            "cache_size": d.cache_size,
            "priority": d.priority,
            "per_deployment_memory_bytes": d.per_deployment_memory_bytes,
            "per_allocation_memory_bytes": d.per_allocation_memory_bytes,
        },
        "routing_table": {
            node_id(state): {
                "current_allocations": current,
                "target_allocations": d.number_of_allocations,
                "routing_state": routing,
                "reason": "",
            }
        },
        "assignment_state": d.assignment_state(now),
        "start_time": iso_millis(d.start_time),
        "max_assigned_allocations": max(current, d.previous_allocations),
        "adaptive_allocations": d.adaptive_allocations,
    }


def deployment_stats(state: SandboxState, d: Deployment, now: float | None = None) -> dict[str, Any]:
    """``AssignmentStats.toXContent`` for one deployment on the sandbox's one node."""
    now = time.time() if now is None else now
    current = d.current_allocations(now)
    node: dict[str, Any] = {"node": discovery_node(state)}
    if current > 0:
        node["routing_state"] = {"routing_state": "started"}
        node["inference_count"] = d.inference_count
        if d.inference_count > 0:
            node["average_inference_time_ms"] = d.total_inference_ms / d.inference_count
            misses = d.inference_count - d.cache_hit_count
            node["average_inference_time_ms_excluding_cache_hits"] = (
                d.total_inference_ms_excluding_cache / misses if misses else 0.0
            )
        node["inference_cache_hit_count"] = d.cache_hit_count
        if d.last_access is not None:
            node["last_access"] = int(d.last_access * 1000)
        node["number_of_pending_requests"] = 0
        if d.error_count:
            node["error_count"] = d.error_count
        if d.timeout_count:
            node["timeout_count"] = d.timeout_count
        node["start_time"] = int(d.started_at() * 1000)
        node["threads_per_allocation"] = d.threads_per_allocation
        node["number_of_allocations"] = current
        node["peak_throughput_per_minute"] = d.inference_count
        node["throughput_last_minute"] = (
            d.inference_count if d.last_access and now - d.last_access < 60 else 0
        )
        node["inference_cache_hit_count_last_minute"] = (
            d.cache_hit_count if d.last_access and now - d.last_access < 60 else 0
        )
    else:
        node["routing_state"] = {"routing_state": "starting", "reason": ""}
        node["peak_throughput_per_minute"] = 0
        node["throughput_last_minute"] = 0
    out: dict[str, Any] = {
        "deployment_id": d.deployment_id,
        "model_id": d.model_id,
        "threads_per_allocation": d.threads_per_allocation,
        "number_of_allocations": d.number_of_allocations,
    }
    if d.adaptive_allocations is not None:
        out["adaptive_allocations"] = d.adaptive_allocations
    out["queue_capacity"] = d.queue_capacity
    out["state"] = d.assignment_state(now)
    out["allocation_status"] = {
        "allocation_count": current,
        "target_allocation_count": d.number_of_allocations,
        "state": d.allocation_state(now),
    }
    out["cache_size"] = human_bytes(max(d.cache_size_bytes, 0))
    out["priority"] = d.priority
    out["start_time"] = int(d.start_time * 1000)
    if d.error_count:
        out["error_count"] = d.error_count
    if d.timeout_count:
        out["timeout_count"] = d.timeout_count
    if d.inference_count:
        out["inference_count"] = d.inference_count
    out["peak_throughput_per_minute"] = d.inference_count
    out["nodes"] = [node]
    return out


# ---------------------------------------------------------------------------------------------
# Inference


def pick_deployment(state: SandboxState, ref: str) -> tuple[Deployment, TrainedModel]:
    """``TransportInternalInferModelAction.doInfer``: alias -> model id -> deployment (call under lock)."""
    ml = ml_state(state)
    concrete = ml.aliases.get(ref, ref)
    deployment = ml.deployments.get(concrete)
    candidates = [deployment] if deployment is not None else ml.deployments_of(concrete)
    if not candidates:
        model = ml.models.get(concrete)
        if model is None:
            raise missing_model(ref)
        if model.model_type == "pytorch":
            raise status_error(
                409,
                f"Model [{ref}] must be deployed to use. Please deploy with the start trained model deployment API.",
            )
        raise status_error(
            400,
            f"The sandbox does not run models of type [{model.model_type}]; only deployed PyTorch models infer",
        )
    now = time.time()
    candidates.sort(key=lambda d: (d.assignment_state(now) != "started", d.deployment_id))
    chosen = candidates[0]
    if chosen.current_allocations(now) == 0:
        raise status_error(409, f"Trained model deployment [{ref}] is not allocated to any nodes")
    model = ml.models.get(chosen.model_id)
    if model is None:
        raise missing_model(chosen.model_id)
    if model.config.get("license_level") != "basic":
        check_ml_license(state)
    return chosen, model


def infer_texts(
    state: SandboxState,
    ref: str,
    texts: list[str],
    *,
    prefix_type: str | None = None,
) -> list[dict[str, Any]]:
    """Run the deployment behind ``ref`` (model id, alias or deployment id) on each text."""
    with state.lock:
        deployment, model = pick_deployment(state, ref)
        ml = ml_state(state)
        rt = ml.runtime
        deployment_id = deployment.deployment_id
        config = model.config
        vocabulary = list((model.vocabulary or {}).get("vocabulary", []))
        definition = model.definition() if deployment_id not in rt.modules else b""
    task = inference_config_name(config) or ""
    task_config = dict(next(iter(config["inference_config"].values()))) if task else {}
    kind, tok_settings = next(iter(task_config.get("tokenization", {"bert": {}}).items()))
    prefix = (config.get("prefix_strings") or {}).get(prefix_type or "", "")
    results: list[dict[str, Any]] = []
    timings: list[tuple[float, bool]] = []
    failure: ApiError | None = None
    with rt.lock_for(deployment_id):
        module = rt.modules.get(deployment_id)
        if module is None:
            module = runtime.load_module(definition, deployment_id)
            rt.modules[deployment_id] = module
        tokenizer = rt.tokenizers.get(deployment_id)
        if tokenizer is None:
            tokenizer = build_tokenizer(kind, tok_settings, vocabulary)
            rt.tokenizers[deployment_id] = tokenizer
        cache = rt.caches.setdefault(deployment_id, OrderedDict())
        for text in texts:
            started = time.perf_counter()
            key = prefix + text
            hit = cache.get(key) if deployment.cache_size_bytes > 0 else None
            if hit is not None:
                cache.move_to_end(key)
                results.append(dict(hit[1]))
                timings.append(((time.perf_counter() - started) * 1000, True))
                continue
            try:
                result = runtime.run_one(module, tokenizer, kind, task, task_config, key, vocabulary)
            except ApiError as exc:
                failure = exc
                break
            _cache_put(cache, key, result, deployment.cache_size_bytes)
            results.append(result)
            timings.append(((time.perf_counter() - started) * 1000, False))
    # Counters are updated after the deployment lock is released: a caller may already hold
    # state.lock (the ingest processor does), and taking it inside would invert the lock order.
    with state.lock:
        if failure is not None:
            deployment.error_count += 1
            raise failure
        for ms, was_hit in timings:
            deployment.inference_count += 1
            deployment.total_inference_ms += ms
            if was_hit:
                deployment.cache_hit_count += 1
            else:
                deployment.total_inference_ms_excluding_cache += ms
        deployment.last_access = time.time()
    return results


def _cache_put(
    cache: OrderedDict[str, tuple[int, dict[str, Any]]], key: str, result: dict[str, Any], capacity: int
) -> None:
    """An LRU bounded in bytes, as the native process's inference cache is bounded by ``cache_size``."""
    if capacity <= 0:
        return
    size = len(key.encode()) + _result_size(result)
    if size > capacity:
        return
    cache[key] = (size, result)
    total = sum(entry[0] for entry in cache.values())
    while total > capacity and cache:
        _, (evicted, _) = cache.popitem(last=False)
        total -= evicted


def _result_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(str(k)) + _result_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_result_size(v) for v in value)
    return 8


def clear_cache(state: SandboxState, deployment_id: str) -> None:
    with state.lock:
        ml = ml_state(state)
        if deployment_id not in ml.deployments:
            raise missing_deployment(deployment_id)
        ml.runtime.caches.pop(deployment_id, None)
