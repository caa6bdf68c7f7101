"""Which ingest pipelines refer to which trained models.

Elasticsearch refuses to delete a model, or stop a deployment, that an ``inference`` processor still
names (by model id, alias or deployment id) unless forced; ``_stats`` reports ``pipeline_count``.
Pipelines are owned by :mod:`es_sandbox.pipelines`: ``state.parts["pipelines"]`` maps a pipeline
id to its body. Processors nested in ``on_failure`` and ``foreach`` count too, as in Elasticsearch's
``InferenceProcessorInfoExtractor``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from es_sandbox.state import SandboxState


def model_references(state: SandboxState) -> dict[str, set[str]]:
    """Model reference (id, alias or deployment id) -> ids of the pipelines that use it."""
    pipelines = state.parts.get("pipelines", {})
    out: dict[str, set[str]] = {}
    if not isinstance(pipelines, dict):
        return out
    for pipeline_id, body in pipelines.items():
        if not isinstance(body, dict):
            continue
        for ref in _inference_refs(body):
            out.setdefault(ref, set()).add(str(pipeline_id))
    return out


def _inference_refs(body: dict[str, Any]) -> Iterator[str]:
    for key in ("processors", "on_failure"):
        yield from _walk(body.get(key))


def _walk(processors: Any) -> Iterator[str]:
    if not isinstance(processors, list):
        return
    for processor in processors:
        if not isinstance(processor, dict):
            continue
        for kind, config in processor.items():
            if not isinstance(config, dict):
                continue
            if kind == "inference" and isinstance(config.get("model_id"), str):
                yield config["model_id"]
            if kind == "foreach" and isinstance(config.get("processor"), dict):
                yield from _walk([config["processor"]])
            yield from _walk(config.get("on_failure"))
