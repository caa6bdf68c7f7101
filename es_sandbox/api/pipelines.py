"""Ingest pipeline APIs: put/get/delete, simulate, and the grok pattern listing."""

from __future__ import annotations

import copy
from typing import Any

from es_sandbox import tracking
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request
from es_sandbox.ingest_document import Dropped, IngestDocument
from es_sandbox.metadata import indices_part
from es_sandbox.pipelines import compile_pipeline, execute_pipeline, is_traced, stored_pipelines
from es_sandbox.state import SandboxState
from es_sandbox.util import simple_match, split_names

routes = RouteTable()

GROK_PATTERNS = {
    "WORD": "\\b\\w+\\b",
    "NUMBER": "(?:%{BASE10NUM})",
    "BASE10NUM": "(?<![0-9.+-])(?>[+-]?(?:(?:[0-9]+(?:\\.[0-9]+)?)|(?:\\.[0-9]+)))",
    "IP": "(?:%{IPV6}|%{IPV4})",
    "GREEDYDATA": ".*",
    "DATA": ".*?",
    "SPACE": "\\s*",
    "NOTSPACE": "\\S+",
    "INT": "(?:[+-]?(?:[0-9]+))",
    "USERNAME": "[a-zA-Z0-9._-]+",
}


@routes.route("PUT", "/_ingest/pipeline/{id}", api="ingest.put_pipeline")
def put_pipeline(state: SandboxState, request: Request) -> dict[str, Any]:
    pipeline_id = request.path_params["id"]
    body = request.json_object(required=True)
    if tracking.enabled():
        tracking.refuse_managed("pipeline", body)
    compile_pipeline(pipeline_id, body)
    if_version = request.param("if_version")
    with state.lock:
        stored = stored_pipelines(state)
        if if_version is not None:
            current = stored.get(pipeline_id)
            if current is None:
                raise bad_request(
                    f"version conflict, required version [{if_version}] for pipeline [{pipeline_id}] but no pipeline was found"
                )
            if str(current.get("version")) != if_version:
                raise bad_request(
                    f"version conflict, required version [{if_version}] for pipeline [{pipeline_id}] but current version is [{current.get('version')}]"
                )
        stored[pipeline_id] = copy.deepcopy(body)
        tracking.record(state, "pipeline", pipeline_id)
    return {"acknowledged": True}


@routes.route("GET", "/_ingest/pipeline", "/_ingest/pipeline/{id}", write=False, api="ingest.get_pipeline")
def get_pipeline(state: SandboxState, request: Request) -> Response:
    patterns = split_names(request.path_params.get("id")) or ["*"]
    summary = request.flag("summary")
    with state.lock:
        stored = stored_pipelines(state)
        out = {
            name: ({} if summary else tracking.view(state, "pipeline", name, copy.deepcopy(body)))
            for name, body in sorted(stored.items())
            if any(simple_match(p, name) for p in patterns)
        }
    if not out and request.path_params.get("id"):
        return Response(404, {})
    return Response(200, out)


@routes.route("DELETE", "/_ingest/pipeline/{id}", api="ingest.delete_pipeline")
def delete_pipeline(state: SandboxState, request: Request) -> dict[str, Any]:
    patterns = split_names(request.path_params["id"])
    with state.lock:
        stored = stored_pipelines(state)
        victims = [name for name in stored if any(simple_match(p, name) for p in patterns)]
        if not victims:
            raise ApiError(
                404, "resource_not_found_exception", f"pipeline [{request.path_params['id']}] is missing"
            )
        for name in victims:
            users = [
                index.name
                for index in indices_part(state).indices.values()
                if name
                in (index.settings.get("index.default_pipeline"), index.settings.get("index.final_pipeline"))
            ]
            if users:
                kind = (
                    "default"
                    if any(
                        indices_part(state).indices[u].settings.get("index.default_pipeline") == name
                        for u in users
                    )
                    else "final"
                )
                raise bad_request(
                    f"pipeline [{name}] cannot be deleted because it is the {kind} pipeline for {len(users)} index(es) "
                    f"including [{', '.join(sorted(users)[:3])}]"
                )
        for name in victims:
            del stored[name]
            tracking.forget(state, "pipeline", name)
    return {"acknowledged": True}


@routes.route(
    "GET|POST",
    "/_ingest/pipeline/_simulate",
    "/_ingest/pipeline/{id}/_simulate",
    write=False,
    api="ingest.simulate",
)
def simulate(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    pipeline_id = request.path_params.get("id")
    verbose = request.flag("verbose")
    for key in body:
        if key not in ("docs", "pipeline"):
            raise ApiError(400, "parse_exception", f"unknown field [{key}]")
    with state.lock:
        if pipeline_id is not None:
            pipeline_body = stored_pipelines(state).get(pipeline_id)
            if pipeline_body is None:
                raise bad_request(f"pipeline [{pipeline_id}] does not exist")
            pipeline_body = copy.deepcopy(pipeline_body)
        else:
            pipeline_body = body.get("pipeline")
            if pipeline_body is None:
                raise ApiError(
                    400,
                    "parse_exception",
                    "[pipeline] required property is missing",
                    property_name="pipeline",
                )
    name = pipeline_id or "_simulate_pipeline"
    compile_pipeline(name, pipeline_body)
    docs = body.get("docs")
    if not isinstance(docs, list):
        raise ApiError(400, "parse_exception", "[docs] required property is missing", property_name="docs")
    results: list[dict[str, Any] | None] = []
    for raw in docs:
        if not isinstance(raw, dict):
            raise ApiError(400, "parse_exception", "[docs] must be a list of objects")
        if "_source" not in raw:
            raise ApiError(
                400, "parse_exception", "[_source] required property is missing", property_name="_source"
            )
        meta = {"_index": raw.get("_index", "_index"), "_id": raw.get("_id", "_id")}
        if raw.get("_routing") is not None:
            meta["_routing"] = raw["_routing"]
        document = IngestDocument(copy.deepcopy(raw["_source"]), meta)
        trace: list[dict[str, Any]] | None = [] if verbose else None
        try:
            execute_pipeline(state, name, pipeline_body, document, trace)
        except Dropped:
            results.append({"processor_results": trace} if verbose else None)
            continue
        except ApiError as error:
            if verbose:
                assert trace is not None
                if not is_traced(error):
                    trace.append({"status": "error", "error": error.to_error()})
                results.append({"processor_results": trace})
            else:
                results.append({"error": error.to_error()})
            continue
        results.append({"processor_results": trace} if verbose else {"doc": document.to_simulate()})
    return {"docs": results}


@routes.route(
    "GET|POST", "/_ingest/_simulate", "/_ingest/{index}/_simulate", write=False, api="simulate.ingest"
)
def simulate_ingest(state: SandboxState, request: Request) -> dict[str, Any]:
    """``simulate.ingest``: the pipelines a write would run for each doc (the index's default and final
    pipelines, or ``?pipeline``), with ``pipeline_substitutions`` in place of stored ones; nothing is
    indexed. Each doc shows its result and ``executed_pipelines``, or its ``error``."""
    body = request.json_object(required=True)
    for key in body:
        if key not in ("docs", "pipeline_substitutions"):
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"[simulate.ingest] [{key}] is out of the provision sandbox's scope "
                "(docs and pipeline_substitutions are implemented)",
            )
    docs = body.get("docs")
    if not isinstance(docs, list):
        raise ApiError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
    substitutions = body.get("pipeline_substitutions") or {}
    for name, pipeline_body in substitutions.items():
        compile_pipeline(name, pipeline_body)
    default_index = request.path_params.get("index")
    requested = request.param("pipeline")
    results: list[dict[str, Any]] = []
    for raw in docs:
        if not isinstance(raw, dict) or "_source" not in raw:
            raise ApiError(
                400, "parse_exception", "[_source] required property is missing", property_name="_source"
            )
        index_name = str(raw.get("_index") or default_index or "")
        with state.lock:
            stored = {**stored_pipelines(state), **substitutions}
            index = indices_part(state).write_index(index_name) if index_name else None
            settings = index.settings if index is not None else {}
            chain = [
                requested or settings.get("index.default_pipeline"),
                settings.get("index.final_pipeline"),
            ]
        meta = {"_index": index_name, "_id": raw.get("_id", "_id")}
        document = IngestDocument(copy.deepcopy(raw["_source"]), meta)
        executed: list[str] = []
        result: dict[str, Any] = {}
        try:
            for pipeline_id in [p for p in chain if p and p != "_none"]:
                pipeline_body = stored.get(pipeline_id)
                if pipeline_body is None:
                    raise bad_request(f"pipeline with id [{pipeline_id}] does not exist")
                executed.append(pipeline_id)
                execute_pipeline(state, pipeline_id, pipeline_body, document)
        except Dropped:
            results.append({"doc": None})
            continue
        except ApiError as error:
            result["error"] = error.to_error()
        results.append(
            {
                "doc": {
                    "_id": document.meta.get("_id"),
                    "_index": document.meta.get("_index"),
                    "_version": -3,
                    "_source": document.source,
                    "executed_pipelines": executed,
                    **result,
                }
            }
        )
    return {"docs": results}


@routes.route("GET", "/_ingest/processor/grok", write=False, api="ingest.processor_grok")
def grok_patterns(state: SandboxState, request: Request) -> dict[str, Any]:
    return {"patterns": GROK_PATTERNS}
