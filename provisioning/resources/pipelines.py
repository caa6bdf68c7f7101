"""Ingest pipelines (``PUT _ingest/pipeline/<id>``): stored and returned exactly as sent, so compared
exactly; ownership is recorded in the pipeline's ``_meta``."""

from __future__ import annotations

from provisioning.changes import Desired, Live
from provisioning.json_types import JsonObject, JsonValue, as_object
from provisioning.resources.base import (
    ApplyContext,
    Comparison,
    ResourceKind,
    Survey,
    owner_of,
    ownership_meta,
)
from provisioning.resources.diff import diff, drop_none
from provisioning.stackfile.stack import Stack


class Pipelines(ResourceKind[Desired]):
    kind = "pipeline"
    title = "ingest pipeline"
    desired_type = Desired

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.pipelines.items():
            processors: list[JsonValue] = list(spec.processors)
            on_failure: list[JsonValue] | None = (
                list(spec.on_failure) if spec.on_failure is not None else None
            )
            body = drop_none(
                {
                    "description": spec.description,
                    "processors": processors,
                    "on_failure": on_failure,
                    "version": spec.version,
                }
            )
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("pipelines", name)))
        return out

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        found = self.call_or_none("read ingest pipelines", self.client.ingest.get_pipeline)
        out: dict[str, Live] = {}
        for name, item in (found or {}).items():
            body = as_object(item)
            managed_by, owner = owner_of(body.get("_meta"))
            if name in names or owner == stack.spec.name:
                out[name] = Live(self.kind, name, body, owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live, survey: Survey) -> Comparison:
        changes = diff(desired.body, live.body)
        return Comparison(changes, "update" if changes else None)

    def create(self, desired: Desired, context: ApplyContext) -> None:
        body: JsonObject = desired.body
        self.call(
            f"put ingest pipeline {desired.name}", self.client.ingest.put_pipeline, id=desired.name, body=body
        )

    def delete(self, live: Live, context: ApplyContext) -> None:
        self.call_or_none(
            f"delete ingest pipeline {live.name}", self.client.ingest.delete_pipeline, id=live.name
        )
