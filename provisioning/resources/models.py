"""Trained models, their deployments and aliases, and the license ML needs.

Models are immutable in Elasticsearch, so a model whose fingerprint changed is a replace (a new
upload); a deployment is updated in place when only its allocations change and restarted for
anything else. Waiting is done by polling ``_stats``: ``_start`` with a short timeout answers 408
while the deployment keeps starting, and its ``wait_for`` cannot report progress.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.cluster import ClusterError
from provisioning.embedding.tracing import Tracer, fingerprint, toolchain, torch_warning
from provisioning.errors import ProvisionError
from provisioning.resources.base import MANAGED_BY, Comparison, Desired, Live, ResourceKind, owner_of
from provisioning.resources.diff import DiffEntry, body_hash, diff
from provisioning.spec.model import ModelSpec, duration_seconds
from provisioning.spec.stack import Stack

log = logging.getLogger("provisioning.models")

DEFINITION_CHUNK_BYTES = 4 * 1024 * 1024
# Counted so tests can prove a converged apply uploads nothing.
upload_counters: Counter[str] = Counter()

ML_LICENSES = ("trial", "platinum", "enterprise")


class DeploymentError(ProvisionError):
    """A deployment did not reach its declared state; says which, what it reached, and the counts."""


def force_stop(kind: ResourceKind, ref: str) -> None:
    """Stop every deployment of a model (or one deployment) before it is replaced, even if in use:
    the replacement starts at once, so a pipeline that uses it only pauses."""
    kind.call(
        f"stop deployments of {ref}",
        kind.client.ml.stop_trained_model_deployment,
        model_id=ref,
        force=True,
        allow_no_match=True,
        missing_ok=True,
    )


# -- license ----------------------------------------------------------------------------------
class License(ResourceKind):
    """Starts a trial license when the stack opts in (``cluster.license: trial``) and ML needs one."""

    kind = "license"
    title = "license"
    prunable = False

    def desired(self, stack: Stack) -> list[Desired]:
        if stack.spec.cluster.license != "trial":
            return []
        return [Desired(self.kind, "trial", {"type": "trial"}, ("cluster", "license"))]

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        if not names:
            return {}
        found = self.call("read license", self.client.license.get)
        kind = str(found.body.get("license", {}).get("type", "basic"))
        return {"trial": Live(self.kind, "trial", {"type": kind}, stack.spec.name, MANAGED_BY)}

    def compare(self, desired: Desired, live: Live) -> Comparison:
        if live.body["type"] in ML_LICENSES:
            return Comparison([], None)
        status = self.call("read trial status", self.client.license.get_trial_status)
        changes = [DiffEntry("type", "change", live.body["type"], "trial")]
        if not status.body.get("eligible_to_start_trial", False):
            return Comparison(
                changes,
                "update",
                blocked="the cluster has a basic license and its trial was already used; ML needs a platinum or enterprise license",
            )
        return Comparison(changes, "update", reason="start a 30-day trial license (ML deployments need it)")

    def create(self, desired: Desired) -> None:
        self.call("start trial license", self.client.license.post_start_trial, acknowledge=True)

    def delete(self, live: Live) -> None:
        """Licenses are never removed."""


# -- trained models ---------------------------------------------------------------------------
class TrainedModels(ResourceKind):
    kind = "trained_model"
    title = "trained model"

    def __init__(self, *args: Any, tracer: Tracer | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracer = tracer or Tracer()

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.models.items():
            print_ = fingerprint(spec, stack.base_dir)
            body = {
                "task_type": spec.task_type,
                "metadata": {
                    "managed_by": MANAGED_BY,
                    "stack": stack.spec.name,
                    "fingerprint": print_.digest,
                },
            }
            extra = {
                "spec_name": name,
                "spec": spec,
                "fingerprint": print_,
                "base_dir": stack.base_dir,
                "stack": stack,
            }
            out.append(Desired(self.kind, spec.model_id, body, ("models", name), extra=extra))
        return out

    def plan_notes(self, actions: list[str]) -> list[str]:
        """Warn about the tracing torch only when something will be traced and uploaded; a converged
        plan then needs no ``GET /``."""
        if not {"create", "replace"} & set(actions) or self.cluster.is_sandbox:
            return []
        warning = torch_warning(self.cluster.version(), toolchain()["torch"])
        return [warning] if warning else []

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        found = self.call(
            "read trained models",
            self.client.ml.get_trained_models,
            model_id="_all",
            size=10000,
            include="definition_status",
            missing_ok=True,
        )
        out: dict[str, Live] = {}
        for config in found.body.get("trained_model_configs", []) if found else []:
            model_id = config["model_id"]
            managed_by, owner = owner_of(config.get("metadata"))
            if model_id in names or owner == stack.spec.name:
                out[model_id] = Live(self.kind, model_id, dict(config), owner, managed_by)
        return out

    def describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        keep = ("model_id", "task_type", "description", "metadata", "fully_defined", "model_size_bytes")
        return {k: v for k, v in body.items() if k in keep}

    def compare(self, desired: Desired, live: Live) -> Comparison:
        want = desired.body["metadata"]["fingerprint"]
        have = (live.body.get("metadata") or {}).get("fingerprint")
        changes = diff({"metadata": {"fingerprint": want}}, {"metadata": {"fingerprint": have}})
        if changes:
            return Comparison(
                changes, "replace", reason="models are immutable: the source or tracing settings changed"
            )
        if live.body.get("fully_defined") is False:
            return Comparison(
                [DiffEntry("fully_defined", "change", False, True)],
                "replace",
                reason="the upload is incomplete (an earlier apply was interrupted)",
            )
        return Comparison([], None)

    def create(self, desired: Desired) -> None:
        spec: ModelSpec = desired.extra["spec"]
        name: str = desired.extra["spec_name"]
        stack: Stack = desired.extra["stack"]
        traced = self.tracer.trace(name, spec, desired.extra["base_dir"], self.cluster.version())
        config = dict(traced.config)
        metadata = dict(config.get("metadata") or {})
        metadata.update(
            {
                "managed_by": MANAGED_BY,
                "stack": stack.spec.name,
                "spec_hash": body_hash(desired.body),
                "fingerprint": traced.fingerprint.digest,
                "source": spec.source.hub or spec.source.path,
                "traced_with": traced.fingerprint.facts["toolchain"],
            }
        )
        config["metadata"] = metadata
        if spec.description:
            config["description"] = spec.description
        self.upload(desired.name, config, traced.definition, traced.vocabulary)

    def upload(self, model_id: str, config: dict[str, Any], definition: Any, vocabulary: Any) -> None:
        """Config, then the definition streamed in base64 parts (memory: one chunk), then the vocabulary."""
        import json

        upload_counters["models"] += 1
        self.call(
            f"put trained model {model_id}", self.client.ml.put_trained_model, model_id=model_id, body=config
        )
        size = definition.stat().st_size
        parts = max(1, math.ceil(size / DEFINITION_CHUNK_BYTES))
        log.info("uploading %s: %d bytes in %d part(s)", model_id, size, parts)
        with definition.open("rb") as handle:
            for part in range(parts):
                chunk = handle.read(DEFINITION_CHUNK_BYTES)
                upload_counters["definition_parts"] += 1
                self.call(
                    f"put definition part {part + 1}/{parts} of {model_id}",
                    self.client.ml.put_trained_model_definition_part,
                    model_id=model_id,
                    part=part,
                    definition=base64.b64encode(chunk).decode(),
                    total_definition_length=size,
                    total_parts=parts,
                )
        vocab = json.loads(vocabulary.read_text())
        self.call(
            f"put vocabulary of {model_id}",
            self.client.ml.put_trained_model_vocabulary,
            model_id=model_id,
            vocabulary=vocab["vocabulary"],
            merges=vocab.get("merges"),
            scores=vocab.get("scores"),
        )

    def replace(self, desired: Desired, live: Live) -> None:
        force_stop(self, live.name)
        self.call(
            f"delete trained model {live.name}",
            self.client.ml.delete_trained_model,
            model_id=live.name,
            force=True,
            missing_ok=True,
        )
        self.create(desired)

    def delete(self, live: Live) -> None:
        try:
            self.call(
                f"delete trained model {live.name}",
                self.client.ml.delete_trained_model,
                model_id=live.name,
                missing_ok=True,
            )
        except ClusterError as exc:
            if exc.status == 409 or "referenced" in str(exc):
                raise ClusterError(
                    f"cannot delete trained model {live.name}: it is still referenced (by an ingest pipeline, an "
                    f"inference endpoint or a deployment this stack does not manage): {exc}",
                    status=exc.status,
                    error_type=exc.error_type,
                ) from None
            raise


# -- deployments ------------------------------------------------------------------------------
_UPDATABLE = ("number_of_allocations", "adaptive_allocations")


@dataclass(frozen=True)
class DeploymentState:
    state: str
    allocation_state: str | None
    allocations: int
    target: int

    def reached(self, wait_for: str) -> bool:
        if self.state != "started":
            return False
        return wait_for == "started" or self.allocation_state == "fully_allocated"

    def __str__(self) -> str:
        return f"state {self.state}, allocation {self.allocation_state or 'n/a'} ({self.allocations}/{self.target} allocations)"


def _deployment_body(stats: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_id": stats.get("model_id"),
        "threads_per_allocation": stats.get("threads_per_allocation"),
        "priority": stats.get("priority", "normal"),
        "queue_capacity": stats.get("queue_capacity"),
        "state": stats.get("state"),
        "allocation_status": stats.get("allocation_status") or {},
    }
    adaptive = stats.get("adaptive_allocations")
    if adaptive and adaptive.get("enabled"):
        body["adaptive_allocations"] = adaptive
    else:
        body["number_of_allocations"] = stats.get("number_of_allocations")
    if stats.get("cache_size") is not None:
        body["cache_size"] = stats.get("cache_size")
    return body


class Deployments(ResourceKind):
    kind = "deployment"
    title = "deployment"

    poll_interval_s = 0.25
    max_poll_interval_s = 5.0

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.models.items():
            dep = spec.deployment
            if dep is None:
                continue
            body: dict[str, Any] = {
                "model_id": spec.model_id,
                "threads_per_allocation": dep.threads_per_allocation,
                "priority": dep.priority,
                "queue_capacity": dep.queue_capacity,
            }
            if dep.adaptive_allocations is not None and dep.adaptive_allocations.enabled:
                body["adaptive_allocations"] = dep.adaptive_allocations.model_dump(exclude_none=True)
            else:
                body["number_of_allocations"] = dep.number_of_allocations or 1
            if dep.cache_size is not None:
                body["cache_size"] = dep.cache_size
            extra = {"spec_name": name, "wait_for": dep.wait_for, "timeout_s": duration_seconds(dep.timeout)}
            out.append(
                Desired(
                    self.kind,
                    dep.deployment_id or spec.model_id,
                    body,
                    ("models", name, "deployment"),
                    extra=extra,
                )
            )
        return out

    def _model_owners(self, stack: Stack, model_ids: set[str]) -> dict[str, tuple[str | None, str | None]]:
        known = self.context.live.get("trained_model")
        if known is not None:
            return {m: (known[m].managed_by, known[m].owner) for m in model_ids if m in known}
        if not model_ids:
            return {}
        found = self.call(
            "read trained models",
            self.client.ml.get_trained_models,
            model_id=",".join(sorted(model_ids)),
            allow_no_match=True,
            missing_ok=True,
        )
        return {
            c["model_id"]: owner_of(c.get("metadata"))
            for c in (found.body.get("trained_model_configs", []) if found else [])
        }

    def _stats(self, model_id: str = "_all") -> list[dict[str, Any]]:
        found = self.call(
            "read deployment stats",
            self.client.ml.get_trained_models_stats,
            model_id=model_id,
            size=10000,
            missing_ok=True,
        )
        return [
            s["deployment_stats"]
            for s in (found.body.get("trained_model_stats", []) if found else [])
            if s.get("deployment_stats")
        ]

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        stats = self._stats()
        owners = self._model_owners(stack, {str(s.get("model_id")) for s in stats})
        out: dict[str, Live] = {}
        for item in stats:
            deployment_id = str(item.get("deployment_id"))
            managed_by, owner = owners.get(str(item.get("model_id")), (None, None))
            if deployment_id in names or owner == stack.spec.name:
                out[deployment_id] = Live(self.kind, deployment_id, _deployment_body(item), owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live) -> Comparison:
        model_action = self.context.planned.get(f"trained_model/{desired.body['model_id']}")
        if model_action == "replace":
            return Comparison([], "replace", reason="its model is replaced, so it must be started again")
        changes = diff(
            desired.body, {k: v for k, v in live.body.items() if k in desired.body or k in _UPDATABLE}
        )
        state = live.body.get("state")
        if state in ("failed", "stopping"):
            return Comparison(
                [*changes, DiffEntry("state", "change", state, "started")],
                "replace",
                reason=f"the deployment is {state}",
            )
        if not changes:
            return Comparison([], None)
        restart = [c for c in changes if c.path.split(".")[0] not in _UPDATABLE]
        if restart:
            fields = ", ".join(sorted({c.path.split(".")[0] for c in restart}))
            return Comparison(changes, "replace", reason=f"changing {fields} needs a restart")
        return Comparison(changes, "update", reason="allocations change in place (_update)")

    def describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != "allocation_status"}

    def status_details(self, live: Live) -> dict[str, Any]:
        alloc = live.body.get("allocation_status") or {}
        return {
            "state": live.body.get("state"),
            "allocation": alloc.get("state"),
            "allocations": f"{alloc.get('allocation_count', 0)}/{alloc.get('target_allocation_count', 0)}",
        }

    def create(self, desired: Desired) -> None:
        body = desired.body
        params: dict[str, Any] = {
            "model_id": body["model_id"],
            "deployment_id": desired.name,
            "threads_per_allocation": body["threads_per_allocation"],
            "priority": body["priority"],
            "queue_capacity": body["queue_capacity"],
            "wait_for": "starting",
            "timeout": "30s",
        }
        if "number_of_allocations" in body:
            params["number_of_allocations"] = body["number_of_allocations"]
        if "cache_size" in body:
            params["cache_size"] = body["cache_size"]
        if "adaptive_allocations" in body:
            params["adaptive_allocations"] = body["adaptive_allocations"]
        try:
            self.call(
                f"start deployment {desired.name}", self.client.ml.start_trained_model_deployment, **params
            )
        except ClusterError as exc:
            raise self._explain_start_failure(desired, exc) from None
        self.wait(desired)

    def _explain_start_failure(self, desired: Desired, exc: ClusterError) -> ClusterError:
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
                alloc = item.get("allocation_status") or {}
                return DeploymentState(
                    str(item.get("state")),
                    alloc.get("state"),
                    int(alloc.get("allocation_count", 0)),
                    int(alloc.get("target_allocation_count", 0)),
                )
        return None

    def wait(self, desired: Desired) -> DeploymentState:
        """Poll ``_stats`` until the declared ``wait_for`` state or the timeout."""
        wait_for: str = desired.extra["wait_for"]
        timeout: float = desired.extra["timeout_s"]
        deadline = time.monotonic() + timeout
        interval = self.poll_interval_s
        last: DeploymentState | None = None
        while True:
            state = self.state_of(desired.body["model_id"], desired.name)
            if state != last:
                log.info("deployment %s: %s", desired.name, state or "not found")
                last = state
            if state is not None and state.reached(wait_for):
                return state
            if state is not None and state.state == "failed":
                raise DeploymentError(f"deployment {desired.name} failed while starting ({state})")
            if time.monotonic() >= deadline:
                reached = str(state) if state else "no deployment found"
                raise DeploymentError(
                    f"deployment {desired.name} did not reach {wait_for} within {timeout:g}s; it reached {reached}"
                )
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, self.max_poll_interval_s)

    def update(self, desired: Desired, live: Live) -> None:
        body: dict[str, Any] = {}
        if "adaptive_allocations" in desired.body:
            body["adaptive_allocations"] = desired.body["adaptive_allocations"]
        else:
            body["number_of_allocations"] = desired.body["number_of_allocations"]
            if "adaptive_allocations" in live.body:
                body["adaptive_allocations"] = {"enabled": False}
        self.call(
            f"update deployment {desired.name}",
            self.client.ml.update_trained_model_deployment,
            model_id=desired.name,
            body=body,
        )
        self.wait(desired)

    def replace(self, desired: Desired, live: Live) -> None:
        force_stop(self, live.name)
        self.create(desired)

    def delete(self, live: Live) -> None:
        try:
            self.call(
                f"stop deployment {live.name}",
                self.client.ml.stop_trained_model_deployment,
                model_id=live.name,
                allow_no_match=True,
                missing_ok=True,
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


# -- aliases ----------------------------------------------------------------------------------
class ModelAliases(ResourceKind):
    """A trained model alias pointing at a declared model; flipping it is how a rollover goes live."""

    kind = "model_alias"
    title = "model alias"
    prunable = False

    def desired(self, stack: Stack) -> list[Desired]:
        return [
            Desired(
                self.kind,
                spec.alias,
                {"model_id": spec.model_id},
                ("models", name, "alias"),
                extra={"spec_name": name},
            )
            for name, spec in stack.spec.models.items()
            if spec.alias
        ]

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        out: dict[str, Live] = {}
        models = self.context.live.get("trained_model", {})
        for alias in names:
            found = self.call(
                f"read model alias {alias}",
                self.client.ml.get_trained_models,
                model_id=alias,
                missing_ok=True,
            )
            configs = found.body.get("trained_model_configs", []) if found else []
            if not configs:
                continue
            target = str(configs[0]["model_id"])
            if target == alias:
                continue  # a model with that id, not an alias: the models kind reports it
            owner_model = models.get(target)
            managed_by, owner = (
                (owner_model.managed_by, owner_model.owner)
                if owner_model
                else owner_of(configs[0].get("metadata"))
            )
            out[alias] = Live(self.kind, alias, {"model_id": target}, owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live) -> Comparison:
        changes = diff(desired.body, live.body)
        if not changes:
            if self.context.planned.get(f"trained_model/{desired.body['model_id']}") == "replace":
                # Deleting a model deletes its aliases: put it back once the new upload is in.
                return Comparison([], "update", reason="its model is replaced, which removes the alias")
            return Comparison([], None)
        return Comparison(
            changes, "update", reason=f"roll over: point the alias at {desired.body['model_id']}"
        )

    def create(self, desired: Desired) -> None:
        self.call(
            f"put model alias {desired.name}",
            self.client.ml.put_trained_model_alias,
            model_id=desired.body["model_id"],
            model_alias=desired.name,
            reassign=True,
        )

    def update(self, desired: Desired, live: Live) -> None:
        gate = self.context.gate
        if gate is not None and live.body.get("model_id") != desired.body["model_id"]:
            gate(desired.extra["spec_name"], desired.body["model_id"])
        self.create(desired)

    def delete(self, live: Live) -> None:
        self.call(
            f"delete model alias {live.name}",
            self.client.ml.delete_trained_model_alias,
            model_id=live.body["model_id"],
            model_alias=live.name,
            missing_ok=True,
        )
