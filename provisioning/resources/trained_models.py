"""Trained models: traced by eland, uploaded in parts, recognised afterwards by their fingerprint.

Models are immutable in Elasticsearch (``PUT _ml/trained_models/<id>`` then
``PUT .../definition/<part>`` and ``PUT .../vocabulary``), so a model whose fingerprint changed (its
source, revision or tracing settings) is a replace: a new upload. The fingerprint is recorded in
the model's ``metadata``, which is how a converged apply knows not to trace or upload anything.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from provisioning.changes import MANAGED_BY, Action, Change, Desired, Live
from provisioning.cluster import ClusterError
from provisioning.embedding.tracing import Fingerprint, fingerprint, toolchain, torch_warning
from provisioning.json_types import JsonObject, JsonValue, as_list, as_object, as_str
from provisioning.resources.base import ApplyContext, Comparison, ResourceKind, Survey, owner_of
from provisioning.resources.deployments import force_stop
from provisioning.resources.diff import DiffEntry, body_hash, diff
from provisioning.stackfile.schema import ModelSpec
from provisioning.stackfile.stack import Stack

log = logging.getLogger("provisioning.models")

DEFINITION_CHUNK_BYTES = 4 * 1024 * 1024
# Counted so tests can prove a converged apply uploads nothing.
upload_counters: Counter[str] = Counter()


@dataclass(frozen=True, kw_only=True)
class ModelDesired(Desired):
    """A declared model: its spec, where relative paths start, and the fingerprint it must carry."""

    spec_name: str
    spec: ModelSpec = field(repr=False)
    fingerprint: Fingerprint = field(repr=False)
    base_dir: Path
    stack_name: str


class TrainedModels(ResourceKind[ModelDesired]):
    kind = "trained_model"
    title = "trained model"
    desired_type = ModelDesired

    def desired(self, stack: Stack) -> list[ModelDesired]:
        out = []
        for name, spec in stack.spec.models.items():
            print_ = fingerprint(spec, stack.base_dir)
            body: JsonObject = {
                "task_type": spec.task_type,
                "metadata": {
                    "managed_by": MANAGED_BY,
                    "stack": stack.spec.name,
                    "fingerprint": print_.digest,
                },
            }
            out.append(
                ModelDesired(
                    self.kind,
                    spec.model_id,
                    body,
                    ("models", name),
                    spec_name=name,
                    spec=spec,
                    fingerprint=print_,
                    base_dir=stack.base_dir,
                    stack_name=stack.spec.name,
                )
            )
        return out

    def plan_notes(self, actions: list[Action]) -> list[str]:
        """Warn about the tracing torch only when something will be traced and uploaded; a converged
        plan then needs no ``GET /``."""
        if not {"create", "replace"} & set(actions) or self.cluster.is_sandbox:
            return []
        warning = torch_warning(self.cluster.version(), toolchain()["torch"])
        return [warning] if warning else []

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        found = self.call_or_none(
            "read trained models",
            self.client.ml.get_trained_models,
            model_id="_all",
            size=10000,
            include="definition_status",
        )
        out: dict[str, Live] = {}
        for config in as_list((found or {}).get("trained_model_configs")):
            body = as_object(config)
            model_id = as_str(body.get("model_id"), "") or ""
            managed_by, owner = owner_of(body.get("metadata"))
            if model_id in names or owner == stack.spec.name:
                out[model_id] = Live(self.kind, model_id, body, owner, managed_by)
        return out

    def describe(self, body: JsonObject) -> JsonObject:
        keep = ("model_id", "task_type", "description", "metadata", "fully_defined", "model_size_bytes")
        return {k: v for k, v in body.items() if k in keep}

    def compare(self, desired: ModelDesired, live: Live, survey: Survey) -> Comparison:
        want = desired.fingerprint.digest
        have = as_object(live.body.get("metadata")).get("fingerprint")
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

    def create(self, desired: ModelDesired, context: ApplyContext) -> None:
        spec = desired.spec
        traced = context.tracer.trace(desired.spec_name, spec, desired.base_dir, self.cluster.version())
        config: JsonObject = dict(traced.config)
        metadata = as_object(config.get("metadata"))
        toolchain_used: JsonValue = dict(traced.fingerprint.toolchain)
        metadata.update(
            {
                "managed_by": MANAGED_BY,
                "stack": desired.stack_name,
                "spec_hash": body_hash(desired.body),
                "fingerprint": traced.fingerprint.digest,
                "source": spec.source.hub or spec.source.path,
                "traced_with": toolchain_used,
            }
        )
        config["metadata"] = metadata
        if spec.description:
            config["description"] = spec.description
        self.upload(desired.name, config, traced.definition, traced.vocabulary)

    def upload(self, model_id: str, config: JsonObject, definition: Path, vocabulary: Path) -> None:
        """Config, then the definition streamed in base64 parts (memory: one chunk), then the vocabulary."""
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

    def replace(self, change: Change, desired: ModelDesired, context: ApplyContext) -> None:
        force_stop(self.cluster, desired.name)
        self.call_or_none(
            f"delete trained model {desired.name}",
            self.client.ml.delete_trained_model,
            model_id=desired.name,
            force=True,
        )
        self.create(desired, context)

    def delete(self, live: Live, context: ApplyContext) -> None:
        try:
            self.call_or_none(
                f"delete trained model {live.name}", self.client.ml.delete_trained_model, model_id=live.name
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
