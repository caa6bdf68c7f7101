"""Ingest pipelines (``PUT _ingest/pipeline/<id>``): stored and returned exactly as sent, so compared
exactly; ownership is recorded in the pipeline's ``_meta``."""

from __future__ import annotations

import math

import numpy as np
from elasticsearch import ApiError, TransportError

from provisioning.canonical import without_server_managed
from provisioning.changes import Desired, Live
from provisioning.cluster import error_reason, error_text
from provisioning.image_ingest.decode import ImageFacts
from provisioning.image_ingest.documents import build_document
from provisioning.json_types import JsonObject, JsonValue, as_int, as_list, as_object, as_str, to_json_object
from provisioning.mappings import find_field
from provisioning.resources.base import (
    ApplyContext,
    Comparison,
    ResourceKind,
    Survey,
    body_of,
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

    def dry_run(self, desired: Desired, stack: Stack) -> str | None:
        """``POST _ingest/pipeline/_simulate`` with the declared body on a sample of the documents the
        stack's ingest jobs write (:func:`sample_document`): a processor Elasticsearch cannot build
        refuses the whole request, one it cannot run on such a document fails that document. A
        failure only because a model the stack declares is not deployed yet is expected before
        apply and is not a refusal."""
        request: JsonObject = {
            "pipeline": without_ownership(desired.body),
            "docs": [sample_document(stack, desired.name)],
        }
        try:
            answer = body_of(self.client.ingest.simulate(body=request))
        except ApiError as exc:
            return error_text(exc)
        except TransportError as exc:
            raise self.cluster.error(exc, f"simulate ingest pipeline {desired.name}") from None
        for doc in as_list(answer.get("docs")):
            error = as_object(as_object(doc).get("error"))
            if error and not _waits_for_declared_model(error, stack):
                kind, reason = error_reason({"error": error})
                return f"{kind}: {reason}" if kind else reason
        return None

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        found = self.call_or_none("read ingest pipelines", self.client.ingest.get_pipeline)
        out: dict[str, Live] = {}
        for name, item in (found or {}).items():
            body = without_server_managed(as_object(item))
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


_NOT_READY_TYPES = ("resource_not_found_exception", "status_exception")


def _waits_for_declared_model(error: JsonObject, stack: Stack) -> bool:
    """Whether a document's failure only says that a model this stack declares is not there (or
    not allocated) yet: true before the first apply, not a refusal of the pipeline."""
    if as_str(error.get("type")) not in _NOT_READY_TYPES:
        return False
    reason = as_str(error.get("reason"), "") or ""
    refs = [
        r
        for m in stack.spec.models.values()
        for r in (m.model_id, m.alias, m.deployment and m.deployment.deployment_id)
        if r
    ]
    refs += list(stack.spec.inference_endpoints)
    return any(f"[{ref}]" in reason or f" {ref} " in f" {reason} " for ref in refs)


def without_ownership(body: JsonObject) -> JsonObject:
    """A pipeline body without its ``_meta`` (a simulated pipeline has no owner)."""
    return {k: v for k, v in body.items() if k != "_meta"}


def sample_document(stack: Stack, pipeline: str) -> JsonObject:
    """A document shaped like those the stack's ingest jobs send through ``pipeline`` (the first job
    that names it; a generic one otherwise), with a short text in every field its ``inference``
    processors read, so that the processors run: ``{"_index", "_id", "_source"}``."""
    job = next((j for j in stack.spec.ingest.values() if j.pipeline == pipeline), None)
    source: JsonObject = {}
    index = "sample-index"
    if job is not None:
        index = job.index
        field = find_field(stack.effective_mappings(job.index), job.vector_field) or {}
        dims = as_int(field.get("dims"), 1) or 1
        vector = np.full(dims, 1 / math.sqrt(dims), dtype=np.float32)
        facts = ImageFacts(width=640, height=480, date="2024-01-01T00:00:00", location=(48.85, 2.35))
        document = build_document(
            doc_id="0" * 64,
            relative_path="sample/sample.jpg",
            facts=facts,
            vector=vector,
            vector_field=job.vector_field,
            static_fields=job.fields,
        )
        source = to_json_object(document)
    spec = stack.spec.pipelines[pipeline]
    for processor in [*spec.processors, *(spec.on_failure or [])]:
        for kind, config in processor.items():
            if kind != "inference" or not isinstance(config, dict):
                continue
            inputs = [as_object(io).get("input_field") for io in as_list(config.get("input_output"))]
            inputs += list(as_object(config.get("field_map")))
            for name in inputs:
                if isinstance(name, str) and name not in source:
                    source[name] = "a red circle"
    return {"_index": index, "_id": "provision-dry-run", "_source": source}
