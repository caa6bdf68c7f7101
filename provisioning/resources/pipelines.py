"""Ingest pipelines: stored and returned by Elasticsearch exactly as sent, so compared exactly."""

from __future__ import annotations

from typing import Any

from provisioning.resources.base import Comparison, Desired, Live, ResourceKind, owner_of, ownership_meta
from provisioning.resources.diff import diff, drop_none
from provisioning.spec.stack import Stack


class Pipelines(ResourceKind):
    kind = "pipeline"
    title = "ingest pipeline"

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.pipelines.items():
            body: dict[str, Any] = drop_none(
                {
                    "description": spec.description,
                    "processors": spec.processors,
                    "on_failure": spec.on_failure,
                    "version": spec.version,
                }
            )
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("pipelines", name)))
        return out

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        found = self.call("read ingest pipelines", self.client.ingest.get_pipeline, missing_ok=True)
        out: dict[str, Live] = {}
        for name, body in (found.body if found else {}).items():
            managed_by, owner = owner_of(body.get("_meta"))
            if name in names or owner == stack.spec.name:
                out[name] = Live(self.kind, name, dict(body), owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live) -> Comparison:
        changes = diff(desired.body, live.body)
        return Comparison(changes, "update" if changes else None)

    def create(self, desired: Desired) -> None:
        self.call(
            f"put ingest pipeline {desired.name}",
            self.client.ingest.put_pipeline,
            id=desired.name,
            body=desired.body,
        )

    def delete(self, live: Live) -> None:
        self.call(
            f"delete ingest pipeline {live.name}",
            self.client.ingest.delete_pipeline,
            id=live.name,
            missing_ok=True,
        )
