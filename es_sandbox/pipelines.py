"""Ingest pipelines: stored pipelines, their validation, and running them on documents.

A pipeline body is validated when it is stored (``PUT _ingest/pipeline``) and its processors are
compiled again when it runs: on the write path (request ``pipeline``, the index's
``default_pipeline``, then ``final_pipeline``), in ``_simulate`` and from the ``pipeline`` processor,
which this module registers. ``on_failure`` handlers run as Elasticsearch runs them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.ingest_document import Dropped, IngestDocument
from es_sandbox.processors import (
    Processor,
    ProcessorConfig,
    compile_processors,
    config_error,
    register_processor,
)
from es_sandbox.state import SandboxState
from es_sandbox.text_processors import html_strip  # noqa: F401 (registers split, join, gsub, html_strip)

PIPELINE_KEYS = (
    "description",
    "processors",
    "on_failure",
    "version",
    "_meta",
    "deprecated",
)


def stored_pipelines(state: SandboxState) -> dict[str, dict[str, Any]]:
    """The stored pipelines (id -> body as GET returns it); shared with the ML area by contract."""
    part: dict[str, dict[str, Any]] = state.part("pipelines", dict)
    return part


def compile_pipeline(pipeline_id: str, body: Any) -> tuple[list[Processor], list[Processor]]:
    """Validate a pipeline body; its processors and on_failure handlers."""
    if not isinstance(body, dict):
        raise ApiError(400, "parse_exception", "request body is required")
    unknown = [k for k in body if k not in PIPELINE_KEYS]
    if unknown:
        raise ApiError(
            400,
            "parse_exception",
            f"pipeline [{pipeline_id}] doesn't support one or more provided configuration parameters [{', '.join(unknown)}]",
        )
    if "processors" not in body:
        raise config_error(None, None, "processors", "required property is missing")
    if "version" in body and body["version"] is not None and not isinstance(body["version"], int):
        raise ApiError(400, "parse_exception", "[version] must be an integer")
    if "_meta" in body and body["_meta"] is not None and not isinstance(body["_meta"], dict):
        raise ApiError(400, "parse_exception", "[_meta] must be an object")
    processors = compile_processors(body.get("processors"))
    on_failure = compile_processors(body.get("on_failure"), "on_failure")
    if "on_failure" in body and not on_failure:
        raise config_error(
            None, None, "on_failure", "pipeline on_failure must contain at least one processor"
        )
    return processors, on_failure


def _build_pipeline(p: Processor, cfg: ProcessorConfig) -> None:
    name = cfg.string("name")
    ignore_missing = cfg.boolean("ignore_missing_pipeline", False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        target = str(doc.render(name))
        body = stored_pipelines(state).get(target)
        if body is None:
            if ignore_missing:
                return
            # PipelineProcessor: an IllegalStateException (status 500), as is a cycle below.
            raise ApiError(
                500,
                "illegal_state_exception",
                f"Pipeline processor configured for non-existent pipeline [{target}]",
            )
        execute_pipeline(state, target, body, doc)

    p.run = run


register_processor("pipeline", _build_pipeline)


def _ingest_timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _run_processors(
    state: SandboxState,
    pipeline_id: str,
    processors: list[Processor],
    on_failure: list[Processor],
    doc: IngestDocument,
    trace: list[dict[str, Any]] | None,
) -> None:
    for processor in processors:
        try:
            assert processor.run is not None
            processor.run(processor, doc, state)
            if trace is not None:
                trace.append({**_trace_head(processor, "success"), "doc": copy.deepcopy(doc.to_simulate())})
        except Dropped:
            if trace is not None:
                trace.append(_trace_head(processor, "dropped"))
            raise
        except ApiError as error:
            if processor.ignore_failure:
                if trace is not None:
                    trace.append(
                        {
                            **_trace_head(processor, "error_ignored"),
                            "ignored_error": {"error": error.to_error()},
                            "doc": copy.deepcopy(doc.to_simulate()),
                        }
                    )
                continue
            handlers = processor.on_failure or on_failure
            if trace is not None and handlers:
                trace.append(
                    {
                        **_trace_head(processor, "error"),
                        "error": _wrap(error, processor, pipeline_id).to_error(),
                    }
                )
            if not handlers:
                if trace is not None:
                    trace.append(
                        {
                            **_trace_head(processor, "error"),
                            "error": _wrap(error, processor, pipeline_id).to_error(),
                        }
                    )
                    raise _TraceRecorded(_wrap(error, processor, pipeline_id)) from None
                raise _wrap(error, processor, pipeline_id) from None
            previous = {
                k: doc.ingest.get(k)
                for k in (
                    "on_failure_message",
                    "on_failure_processor_type",
                    "on_failure_processor_tag",
                    "on_failure_pipeline",
                )
            }
            doc.ingest["on_failure_message"] = error.reason
            doc.ingest["on_failure_processor_type"] = processor.type
            if processor.tag:
                doc.ingest["on_failure_processor_tag"] = processor.tag
            doc.ingest["on_failure_pipeline"] = pipeline_id
            _run_processors(state, pipeline_id, handlers, [], doc, trace)
            for key, value in previous.items():
                if value is None:
                    doc.ingest.pop(key, None)
                else:
                    doc.ingest[key] = value
            if not processor.on_failure:
                return  # pipeline-level on_failure ends the pipeline


class _TraceRecorded(ApiError):
    """A processor error already written to the verbose simulate trace (not to be added again)."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.status, error.type, error.reason, **error.extra)
        self.caused_by = error.caused_by


def is_traced(error: ApiError) -> bool:
    return isinstance(error, _TraceRecorded)


def _trace_head(processor: Processor, status: str) -> dict[str, Any]:
    """The start of a verbose simulate entry (SimulateProcessorResult): type, status, tag, description."""
    entry: dict[str, Any] = {"processor_type": processor.type, "status": status}
    description = processor.config.get("description")
    if description is not None:
        entry["description"] = description
    if processor.tag:
        entry["tag"] = processor.tag
    return entry


def _wrap(error: ApiError, processor: Processor, pipeline_id: str) -> ApiError:
    """Processor errors carry the processor's identity, as ES's IngestProcessorException does."""
    if "processor_type" in error.extra:
        return error
    wrapped = ApiError(error.status, error.type, error.reason, **error.extra)
    wrapped.caused_by = error.caused_by
    wrapped.extra.setdefault("processor_type", processor.type)
    if processor.tag:
        wrapped.extra.setdefault("processor_tag", processor.tag)
    return wrapped


def execute_pipeline(
    state: SandboxState,
    pipeline_id: str,
    body: Mapping[str, Any],
    doc: IngestDocument,
    trace: list[dict[str, Any]] | None = None,
) -> None:
    processors, on_failure = compile_pipeline(pipeline_id, dict(body))
    if pipeline_id in doc.pipeline_stack:
        # IngestDocument.executePipeline refuses to re-enter a pipeline it is running.
        raise ApiError(500, "illegal_state_exception", f"Cycle detected for pipeline: {pipeline_id}")
    doc.ingest.setdefault("timestamp", _ingest_timestamp())
    previous = doc.ingest.get("pipeline")
    doc.ingest["pipeline"] = pipeline_id
    doc.pipeline_stack.append(pipeline_id)
    try:
        _run_processors(state, pipeline_id, processors, on_failure, doc, trace)
    finally:
        doc.pipeline_stack.pop()
        if previous is not None:
            doc.ingest["pipeline"] = previous


def run_for_index(
    state: SandboxState,
    pipeline_ids: list[str],
    source: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any] | None:
    """Run the pipelines a write goes through; the new source, or None when a processor dropped it."""
    doc = IngestDocument(copy.deepcopy(source), dict(meta))
    stored = stored_pipelines(state)
    try:
        for pipeline_id in pipeline_ids:
            body = stored.get(pipeline_id)
            if body is None:
                raise ApiError(
                    400, "illegal_argument_exception", f"pipeline with id [{pipeline_id}] does not exist"
                )
            execute_pipeline(state, pipeline_id, body, doc)
    except Dropped:
        return None
    meta.update(doc.meta)
    return doc.source
