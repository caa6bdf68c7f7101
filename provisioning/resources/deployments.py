"""Trained model deployments: started, scaled in place, restarted when anything else changes.

``POST _ml/trained_models/<model>/deployment/_start`` with a short ``wait_for: starting`` returns at
once; progress is then polled through ``GET _ml/trained_models/<model>/_stats`` until the declared
``wait_for`` (``started`` or ``fully_allocated``) or the timeout, since ``_start``'s own wait answers
408 while the deployment keeps starting and cannot report progress. Only the number of allocations
and adaptive allocations change in place (``.../deployment/_update``); any other difference, or a
replaced model, restarts the deployment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.canonical import canonical_bytes
from provisioning.changes import Change, Desired, Live
from provisioning.cluster import Cluster, ClusterError
from provisioning.errors import ProvisionError
from provisioning.json_types import JsonObject, JsonValue, as_int, as_list, as_object, as_str
from provisioning.resources.base import ApplyContext, Comparison, ResourceKind, Survey, owner_of
from provisioning.resources.diff import STATE_PATH, DiffEntry, diff
from provisioning.stackfile.schema import duration_seconds
from provisioning.stackfile.stack import Stack

log = logging.getLogger("provisioning.models")

WaitFor = Literal["started", "fully_allocated"]
_UPDATABLE = ("number_of_allocations", "adaptive_allocations")


def _comparable(body: JsonObject) -> JsonObject:
    return {k: canonical_bytes(v) if k == "cache_size" else v for k, v in body.items()}


class DeploymentError(ProvisionError):
    """A deployment did not reach its declared state; says which, what it reached, and the counts."""


@dataclass(frozen=True)
class DeploymentState:
    """A deployment's ``state`` and ``allocation_status`` as ``_stats`` reports them."""

    state: str
    allocation_state: str | None
    allocations: int
    target: int

    def reached(self, wait_for: WaitFor) -> bool:
        if self.state != "started":
            return False
        return wait_for == "started" or self.allocation_state == "fully_allocated"

    def __str__(self) -> str:
        return f"state {self.state}, allocation {self.allocation_state or 'n/a'} ({self.allocations}/{self.target} allocations)"

    def summary(self) -> str:
        """``starting, 0/1 allocations``: what a pending change or a refused smoke test says."""
        return f"{self.state}, {self.allocations}/{self.target} allocations"

    @classmethod
    def from_stats(cls, stats: JsonObject) -> DeploymentState:
        alloc = as_object(stats.get("allocation_status"))
        return cls(
            as_str(stats.get("state"), "unknown") or "unknown",
            as_str(alloc.get("state")),
            as_int(alloc.get("allocation_count")),
            as_int(alloc.get("target_allocation_count")),
        )


@dataclass(frozen=True, kw_only=True)
class DeploymentDesired(Desired):
    """A declared deployment: the model it serves and the state ``apply`` waits for."""

    spec_name: str
    model_id: str
    wait_for: WaitFor
    timeout_s: float


@dataclass(frozen=True, kw_only=True)
class DeploymentLive(Live):
    """A running deployment with the state it reported."""

    model_id: str
    state: DeploymentState


def force_stop(cluster: Cluster, ref: str) -> None:
    """Stop every deployment of a model (or one deployment) before it is replaced, even if in use:
    the replacement starts at once, so a pipeline that uses it only pauses."""
    try:
        cluster.client.ml.stop_trained_model_deployment(model_id=ref, force=True, allow_no_match=True)
    except NotFoundError:
        return
    except (ApiError, TransportError) as exc:
        raise cluster.error(exc, f"stop deployments of {ref}") from None


def _deployment_body(stats: JsonObject) -> JsonObject:
    body: JsonObject = {
        "model_id": stats.get("model_id"),
        "threads_per_allocation": stats.get("threads_per_allocation"),
        "priority": stats.get("priority", "normal"),
        "queue_capacity": stats.get("queue_capacity"),
        "state": stats.get("state"),
        "allocation_status": as_object(stats.get("allocation_status")),
    }
    adaptive = as_object(stats.get("adaptive_allocations"))
    if adaptive.get("enabled"):
        body["adaptive_allocations"] = adaptive
    else:
        body["number_of_allocations"] = stats.get("number_of_allocations")
    if stats.get("cache_size") is not None:
        body["cache_size"] = stats.get("cache_size")
    return body


class Deployments(ResourceKind[DeploymentDesired]):
    kind = "deployment"
    title = "deployment"
    desired_type = DeploymentDesired

    poll_interval_s = 0.25
    max_poll_interval_s = 5.0

    def desired(self, stack: Stack) -> list[DeploymentDesired]:
        out = []
        for name, spec in stack.spec.models.items():
            dep = spec.deployment
            if dep is None:
                continue
            body: JsonObject = {
                "model_id": spec.model_id,
                "threads_per_allocation": dep.threads_per_allocation,
                "priority": dep.priority,
                "queue_capacity": dep.queue_capacity,
            }
            if dep.adaptive_allocations is not None and dep.adaptive_allocations.enabled:
                adaptive: JsonObject = dict(dep.adaptive_allocations.model_dump(exclude_none=True))
                body["adaptive_allocations"] = adaptive
            else:
                body["number_of_allocations"] = dep.number_of_allocations or 1
            if dep.cache_size is not None:
                body["cache_size"] = dep.cache_size
            out.append(
                DeploymentDesired(
                    self.kind,
                    dep.deployment_id or spec.model_id,
                    body,
                    ("models", name, "deployment"),
                    spec_name=name,
                    model_id=spec.model_id,
                    wait_for=dep.wait_for,
                    timeout_s=duration_seconds(dep.timeout),
                )
            )
        return out

    def _model_owners(self, model_ids: set[str], survey: Survey) -> dict[str, tuple[str | None, str | None]]:
        known = survey.live.get("trained_model")
        if known is not None:
            return {m: (known[m].managed_by, known[m].owner) for m in model_ids if m in known}
        if not model_ids:
            return {}
        found = self.call_or_none(
            "read trained models",
            self.client.ml.get_trained_models,
            model_id=",".join(sorted(model_ids)),
            allow_no_match=True,
        )
        out: dict[str, tuple[str | None, str | None]] = {}
        for config in as_list((found or {}).get("trained_model_configs")):
            body = as_object(config)
            out[as_str(body.get("model_id"), "") or ""] = owner_of(body.get("metadata"))
        return out

    def _stats(self, model_id: str = "_all") -> list[JsonObject]:
        found = self.call_or_none(
            "read deployment stats", self.client.ml.get_trained_models_stats, model_id=model_id, size=10000
        )
        stats = [as_object(s) for s in as_list((found or {}).get("trained_model_stats"))]
        return [as_object(s.get("deployment_stats")) for s in stats if s.get("deployment_stats")]

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        stats = self._stats()
        owners = self._model_owners({as_str(s.get("model_id"), "") or "" for s in stats}, survey)
        out: dict[str, Live] = {}
        for item in stats:
            deployment_id = as_str(item.get("deployment_id"), "") or ""
            model_id = as_str(item.get("model_id"), "") or ""
            managed_by, owner = owners.get(model_id, (None, None))
            if deployment_id in names or owner == stack.spec.name:
                out[deployment_id] = DeploymentLive(
                    self.kind,
                    deployment_id,
                    _deployment_body(item),
                    owner,
                    managed_by,
                    model_id=model_id,
                    state=DeploymentState.from_stats(item),
                )
        return out

    def compare(self, desired: DeploymentDesired, live: Live, survey: Survey) -> Comparison:
        """The parameters compared in normal form (byte sizes as bytes), then the observed state: a
        deployment short of its ``wait_for`` is not done, so it is a pending change (apply waits
        for it again) rather than in sync."""
        if survey.planned.get(f"trained_model/{desired.model_id}") == "replace":
            return Comparison([], "replace", reason="its model is replaced, so it must be started again")
        compared: JsonObject = {k: v for k, v in live.body.items() if k in desired.body or k in _UPDATABLE}
        changes = diff(_comparable(desired.body), _comparable(compared))
        state = live.body.get("state")
        if state in ("failed", "stopping"):
            return Comparison(
                [*changes, DiffEntry("state", "change", state, "started")],
                "replace",
                reason=f"the deployment is {state}",
            )
        restart = [c for c in changes if c.path.split(".")[0] not in _UPDATABLE]
        if restart:
            fields = ", ".join(sorted({c.path.split(".")[0] for c in restart}))
            return Comparison(changes, "replace", reason=f"changing {fields} needs a restart")
        if changes:
            return Comparison(changes, "update", reason="allocations change in place (_update)")
        if isinstance(live, DeploymentLive) and not live.state.reached(desired.wait_for):
            return Comparison(
                [DiffEntry(STATE_PATH, "change", str(live.state), desired.wait_for)],
                "update",
                reason=f"wait for deployment {desired.name}: {live.state.summary()}",
            )
        return Comparison([], None)

    def describe(self, body: JsonObject) -> JsonObject:
        return {k: v for k, v in body.items() if k != "allocation_status"}

    def status_details(self, live: Live) -> JsonObject:
        if not isinstance(live, DeploymentLive):
            return {}
        state = live.state
        return {
            "state": state.state,
            "allocation": state.allocation_state,
            "allocations": f"{state.allocations}/{state.target}",
        }

    def create(self, desired: DeploymentDesired, context: ApplyContext) -> None:
        body = desired.body
        try:
            self.call(
                f"start deployment {desired.name}",
                self.client.ml.start_trained_model_deployment,
                model_id=desired.model_id,
                deployment_id=desired.name,
                threads_per_allocation=as_int(body.get("threads_per_allocation"), 1),
                priority=as_str(body.get("priority"), "normal"),
                queue_capacity=as_int(body.get("queue_capacity"), 1024),
                number_of_allocations=as_int(body["number_of_allocations"])
                if "number_of_allocations" in body
                else None,
                cache_size=as_str(body.get("cache_size")),
                adaptive_allocations=as_object(body["adaptive_allocations"])
                if "adaptive_allocations" in body
                else None,
                wait_for="starting",
                timeout="30s",
            )
        except ClusterError as exc:
            raise self._explain_start_failure(desired, exc) from None
        self.wait(desired)

    def _explain_start_failure(self, desired: DeploymentDesired, exc: ClusterError) -> ClusterError:
        text = str(exc)
        if exc.status == 403 or "non-compliant" in text or "license" in text:
            hint = "ML deployments need a trial, platinum or enterprise license; set `cluster.license: trial` to start a trial"
        elif exc.status == 429 or "memory" in text.lower() or "sufficient" in text:
            hint = "the ML nodes do not have enough free memory for this model: add ML memory, stop other deployments, or lower allocations"
        else:
            return exc
        return ClusterError(
            f"deployment {desired.name}: {hint}. {text}", status=exc.status, error_type=exc.error_type
        )

    def state_of(self, model_id: str, deployment_id: str) -> DeploymentState | None:
        for item in self._stats(model_id):
            if item.get("deployment_id") == deployment_id:
                return DeploymentState.from_stats(item)
        return None

    def wait(self, desired: DeploymentDesired) -> DeploymentState:
        """Poll ``_stats`` until the declared ``wait_for`` state or the timeout (a DeploymentError
        that names the deployment, the state it reached and its allocation counts)."""
        deadline = time.monotonic() + desired.timeout_s
        interval = self.poll_interval_s
        last: DeploymentState | None = None
        while True:
            state = self.state_of(desired.model_id, desired.name)
            if state != last:
                log.info("deployment %s: %s", desired.name, state or "not found")
                last = state
            if state is not None and state.reached(desired.wait_for):
                return state
            if state is not None and state.state == "failed":
                raise DeploymentError(f"deployment {desired.name} failed while starting ({state})")
            if time.monotonic() >= deadline:
                reached = str(state) if state else "no deployment found"
                raise DeploymentError(
                    f"deployment {desired.name} did not reach {desired.wait_for} within {desired.timeout_s:g}s; "
                    f"it reached {reached}"
                )
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, self.max_poll_interval_s)

    def update(self, change: Change, desired: DeploymentDesired, context: ApplyContext) -> None:
        """Allocations change in place (``_update``); a deployment that is only short of its declared
        state is waited for, without a write."""
        if any(entry.path != STATE_PATH for entry in change.diff):
            body: JsonObject = {}
            if "adaptive_allocations" in desired.body:
                body["adaptive_allocations"] = desired.body["adaptive_allocations"]
            else:
                body["number_of_allocations"] = desired.body["number_of_allocations"]
                if change.live is not None and "adaptive_allocations" in change.live.body:
                    disabled: JsonValue = {"enabled": False}
                    body["adaptive_allocations"] = disabled
            self.call(
                f"update deployment {desired.name}",
                self.client.ml.update_trained_model_deployment,
                model_id=desired.name,
                body=body,
            )
        self.wait(desired)

    def replace(self, change: Change, desired: DeploymentDesired, context: ApplyContext) -> None:
        force_stop(self.cluster, desired.name)
        self.create(desired, context)

    def delete(self, live: Live, context: ApplyContext) -> None:
        try:
            self.call_or_none(
                f"stop deployment {live.name}",
                self.client.ml.stop_trained_model_deployment,
                model_id=live.name,
                allow_no_match=True,
            )
        except ClusterError as exc:
            if exc.status != 409 and "referenced" not in str(exc):
                raise
            raise ClusterError(
                f"cannot stop deployment {live.name}: it is still used (by an ingest pipeline or inference endpoint "
                f"this stack does not manage): {exc}",
                status=exc.status,
                error_type=exc.error_type,
            ) from None
