"""Document APIs: index/create, get/exists/_source, delete, update, _bulk, _mget.

Writes go through one path (:func:`write_document`): resolve the target (index or alias write
index, auto-creating from templates), run the ingest pipelines (request ``pipeline``, else the
index's ``default_pipeline``, then ``final_pipeline``) outside the cluster lock, then parse the
document against the mapping, apply dynamic mapping updates and store it. Documents are
searchable only after a refresh; GET is realtime.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_sandbox import ingest, jsonio
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request
from es_sandbox.mapper.documents import DocumentParser
from es_sandbox.mapper.merging import merge_mappings
from es_sandbox.metadata import (
    Index,
    create_index,
    index_not_found,
    indices_part,
    resolve_template,
    templates_part,
)
from es_sandbox.search import parse_source_spec, render_source
from es_sandbox.state import SandboxState
from es_sandbox.util import new_uuid, split_names, validate_index_name

routes = RouteTable()

BULK_META_KEYS = (
    "_index",
    "_id",
    "routing",
    "op_type",
    "version",
    "version_type",
    "if_seq_no",
    "if_primary_term",
    "retry_on_conflict",
    "pipeline",
    "require_alias",
    "require_data_stream",
    "dynamic_templates",
    "_source",
    "list_executed_pipelines",
)
UPDATE_KEYS = (
    "doc",
    "upsert",
    "doc_as_upsert",
    "detect_noop",
    "_source",
    "script",
    "scripted_upsert",
    "lang",
    "params",
)


def refresh_policy(request: Request) -> str:
    value = request.param("refresh")
    if value is None or value == "false":
        return "false"
    if value in ("", "true"):
        return "true"
    if value == "wait_for":
        return "wait_for"
    raise bad_request(f"Unknown value for refresh: [{value}].")


def _shards(index: Index) -> dict[str, int]:
    return {"total": 1 + index.replicas, "successful": 1, "failed": 0}


def _validate_id(doc_id: str | None) -> None:
    if doc_id is None:
        return
    if doc_id == "":
        raise bad_request("if _id is specified it must not be empty")
    size = len(doc_id.encode())
    if size > 512:
        raise bad_request(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: {size}")


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"Failed to parse int parameter [{name}] with value [{value}]") from exc


@dataclass
class WriteOptions:
    op_type: str = "index"  # index | create
    pipeline: str | None = None
    routing: str | None = None
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    version: int | None = None
    version_type: str = "internal"
    require_alias: bool = False
    run_pipelines: bool = True


def _target(state: SandboxState, name: str, require_alias: bool) -> Index | None:
    part = indices_part(state)
    if require_alias and name not in part.alias_names():
        raise ApiError(
            404,
            "index_not_found_exception",
            f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias",
            **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name},
        )
    return part.write_index(name)


def _pipelines_for(state: SandboxState, name: str, index: Index | None, requested: str | None) -> list[str]:
    settings: Mapping[str, Any]
    if index is not None:
        settings = index.settings
    else:
        templates = templates_part(state)
        settings = resolve_template(templates, templates.find(name)).settings
    pipelines: list[str] = []
    first = requested if requested is not None else settings.get("index.default_pipeline")
    if first and first != "_none":
        pipelines.append(str(first))
    final = settings.get("index.final_pipeline")
    if final and final != "_none":
        pipelines.append(str(final))
    return pipelines


def write_document(
    state: SandboxState,
    target_name: str,
    doc_id: str | None,
    source: Any,
    options: WriteOptions,
) -> tuple[int, dict[str, Any], Index | None]:
    """Index one document; (status, response body, index). Raises ApiError for failures."""
    _validate_id(doc_id)
    if not isinstance(source, dict):
        raise ApiError(
            400,
            "document_parsing_exception",
            "[1:1] Malformed content, must start with an object"
            if source is not None
            else "failed to parse, document is empty",
        )
    if options.version_type not in ("internal", "external", "external_gte"):
        raise bad_request(f"No version type match [{options.version_type}]")
    if options.version is not None and options.version_type == "internal" and options.op_type == "index":
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;",
        )
    if doc_id is None:
        doc_id = new_uuid()[:20]
    with state.lock:
        index = _target(state, target_name, options.require_alias)
        if index is None:
            validate_index_name(target_name)
        pipelines = (
            _pipelines_for(state, target_name, index, options.pipeline) if options.run_pipelines else []
        )
    if pipelines:
        meta: dict[str, Any] = {
            "_index": index.name if index else target_name,
            "_id": doc_id,
            "_routing": options.routing,
        }
        result = ingest.run_for_index(state, pipelines, source, meta)
        if result is None:
            return (
                200,
                {
                    "_index": meta["_index"],
                    "_id": doc_id,
                    "_version": -3,
                    "result": "noop",
                    "_shards": {"total": 0, "successful": 0, "failed": 0},
                },
                index,
            )
        source = result
        if meta.get("_index") and meta["_index"] != (index.name if index else target_name):
            target_name = str(meta["_index"])
    with state.lock:
        index = _target(state, target_name, options.require_alias)
        if index is None:
            index = create_index(state, target_name, None, cause="auto(bulk api)")
        if index.mapping.get("_routing", {}).get("required") and options.routing is None:
            raise ApiError(
                400,
                "routing_missing_exception",
                f"routing is required for [{index.name}]/[{doc_id}]",
                index_uuid=index.uuid,
                index=index.name,
            )
        index.store.check_conflicts(
            index.name,
            doc_id,
            create=options.op_type == "create",
            if_seq_no=options.if_seq_no,
            if_primary_term=options.if_primary_term,
            version=options.version,
            version_type=options.version_type,
        )
        parser = DocumentParser(index.compiled, index.settings, doc_id)
        parsed = parser.parse(source)
        if parsed.dynamic_update is not None:
            index.set_mapping(merge_mappings(index.mapping, parsed.dynamic_update))
        existed = index.store.get(doc_id) is not None
        record = index.store.put(
            doc_id,
            source,
            parsed,
            routing=options.routing,
            external_version=options.version
            if options.version_type in ("external", "external_gte")
            else None,
        )
        for path in parsed.vectors:
            leaf = index.compiled.fields.get(path)
            if leaf is not None:
                index.store.vector_types[path] = leaf.element_type
        body = {
            "_index": index.name,
            "_id": doc_id,
            "_version": record.version,
            "result": "updated" if existed else "created",
            "_shards": _shards(index),
            "_seq_no": record.seq_no,
            "_primary_term": record.primary_term,
        }
    return (200 if existed else 201), body, index


def _apply_refresh(
    state: SandboxState, policy: str, indices: list[Index], bodies: list[dict[str, Any]]
) -> None:
    if policy == "false" or not indices:
        return
    with state.lock:
        for index in {i.name: i for i in indices}.values():
            index.store.refresh()
    if policy == "true":
        for body in bodies:
            body["forced_refresh"] = True


def _options(request: Request) -> WriteOptions:
    return WriteOptions(
        op_type=request.param("op_type", "index") or "index",
        pipeline=request.param("pipeline"),
        routing=request.param("routing"),
        if_seq_no=_int_or_none(request.param("if_seq_no"), "if_seq_no"),
        if_primary_term=_int_or_none(request.param("if_primary_term"), "if_primary_term"),
        version=_int_or_none(request.param("version"), "version"),
        version_type=request.param("version_type", "internal") or "internal",
        require_alias=request.flag("require_alias"),
    )


@routes.route("PUT|POST", "/{index}/_doc/{id}", api="index")
@routes.route("POST", "/{index}/_doc", api="index")
def index_doc(state: SandboxState, request: Request) -> Response:
    options = _options(request)
    if options.op_type not in ("index", "create"):
        raise bad_request(f"opType must be 'create' or 'index', found: [{options.op_type}]")
    doc_id = request.path_params.get("id")
    if doc_id is None and options.op_type == "index" and request.method == "POST":
        pass
    policy = refresh_policy(request)
    source = request.json()
    if source is None:
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: source is missing;2: content type is missing;",
        )
    status, body, index = write_document(state, request.path_params["index"], doc_id, source, options)
    _apply_refresh(state, policy, [index] if index else [], [body])
    return Response(
        status, body, headers={"Location": f"/{body['_index']}/_doc/{body['_id']}"} if status == 201 else {}
    )


@routes.route("PUT|POST", "/{index}/_create/{id}", api="create")
def create_doc(state: SandboxState, request: Request) -> Response:
    options = _options(request)
    options.op_type = "create"
    policy = refresh_policy(request)
    source = request.json()
    if source is None:
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: source is missing;2: content type is missing;",
        )
    status, body, index = write_document(
        state, request.path_params["index"], request.path_params["id"], source, options
    )
    _apply_refresh(state, policy, [index] if index else [], [body])
    return Response(status, body)


# -- get --------------------------------------------------------------------------------------------------


def _get_record(state: SandboxState, request: Request, name: str, doc_id: str) -> tuple[Index, Any]:
    part = indices_part(state)
    targets = part.resolve(name, allow_no_indices=False)
    if len(targets) > 1:
        raise bad_request(
            f"alias [{name}] has more than one index associated with it [{', '.join(t.name for t in targets)}], can't execute a single index op"
        )
    index = targets[0]
    if request.flag("refresh"):
        index.store.refresh()
    if request.flag("realtime", True):
        record = index.store.get(doc_id)
    else:
        searcher = index.store.searcher
        record = next((searcher.rows[r] for r in searcher.live_rows() if searcher.rows[r].id == doc_id), None)
    version = _int_or_none(request.param("version"), "version")
    if version is not None and record is not None and record.version != version:
        raise ApiError(
            409,
            "version_conflict_engine_exception",
            f"[{doc_id}]: version conflict, current version [{record.version}] is different than the one provided [{version}]",
            index_uuid=index.uuid,
            shard="0",
            index=index.name,
        )
    return index, record


def get_body(index: Index, record: Any, doc_id: str, spec: Any) -> dict[str, Any]:
    if record is None:
        return {"_index": index.name, "_id": doc_id, "found": False}
    body: dict[str, Any] = {
        "_index": index.name,
        "_id": doc_id,
        "_version": record.version,
        "_seq_no": record.seq_no,
        "_primary_term": record.primary_term,
    }
    if record.routing is not None:
        body["_routing"] = record.routing
    body["found"] = True
    if record.ignored:
        body["_ignored"] = sorted(set(record.ignored))
    source = render_source(index, record, spec)
    if source is not None:
        body["_source"] = source
    return body


@routes.route("GET", "/{index}/_doc/{id}", write=False, api="get")
def get_doc(state: SandboxState, request: Request) -> Response:
    doc_id = request.path_params["id"]
    spec = parse_source_spec(None, request.params)
    with state.lock:
        index, record = _get_record(state, request, request.path_params["index"], doc_id)
        body = get_body(index, record, doc_id, spec)
    return Response(200 if record is not None else 404, body)


@routes.route("HEAD", "/{index}/_doc/{id}", write=False, api="exists")
def exists_doc(state: SandboxState, request: Request) -> Response:
    with state.lock:
        try:
            _, record = _get_record(state, request, request.path_params["index"], request.path_params["id"])
        except ApiError:
            return Response(404, None)
    return Response(200 if record is not None else 404, None)


@routes.route("GET|HEAD", "/{index}/_source/{id}", write=False, api="get_source")
def get_source(state: SandboxState, request: Request) -> Response:
    doc_id = request.path_params["id"]
    spec = parse_source_spec(None, request.params)
    with state.lock:
        index, record = _get_record(state, request, request.path_params["index"], doc_id)
        if record is None:
            raise ApiError(
                404, "resource_not_found_exception", f"Document not found [{index.name}]/[{doc_id}]"
            )
        source = render_source(index, record, spec)
    if source is None:
        raise ApiError(404, "resource_not_found_exception", f"Source not found [{index.name}]/[{doc_id}]")
    return Response(200, source)


# -- delete -----------------------------------------------------------------------------------------------


def delete_document(
    state: SandboxState, target_name: str, doc_id: str, options: WriteOptions
) -> tuple[int, dict[str, Any], Index]:
    with state.lock:
        index = indices_part(state).write_index(target_name)
        if index is None:
            raise index_not_found(target_name)
        record = index.store.get(doc_id)
        if options.if_seq_no is not None or options.version is not None:
            index.store.check_conflicts(
                index.name,
                doc_id,
                create=False,
                if_seq_no=options.if_seq_no,
                if_primary_term=options.if_primary_term,
                version=options.version,
                version_type=options.version_type,
            )
        if record is None:
            version = index.store.tombstones.get(doc_id, (0, 0))[0] + 1
            seq_no = index.store._next_seq_no()
            index.store.tombstones[doc_id] = (version, seq_no)
            return (
                404,
                {
                    "_index": index.name,
                    "_id": doc_id,
                    "_version": version,
                    "result": "not_found",
                    "_shards": _shards(index),
                    "_seq_no": seq_no,
                    "_primary_term": 1,
                },
                index,
            )
        version, seq_no = index.store.delete(doc_id) or (0, 0)
        return (
            200,
            {
                "_index": index.name,
                "_id": doc_id,
                "_version": version,
                "result": "deleted",
                "_shards": _shards(index),
                "_seq_no": seq_no,
                "_primary_term": 1,
            },
            index,
        )


@routes.route("DELETE", "/{index}/_doc/{id}", api="delete")
def delete_doc(state: SandboxState, request: Request) -> Response:
    policy = refresh_policy(request)
    status, body, index = delete_document(
        state, request.path_params["index"], request.path_params["id"], _options(request)
    )
    _apply_refresh(state, policy, [index], [body])
    return Response(status, body)


# -- update -----------------------------------------------------------------------------------------------


def _merge_doc(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge_doc(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def update_document(
    state: SandboxState,
    target_name: str,
    doc_id: str,
    body: Any,
    options: WriteOptions,
) -> tuple[int, dict[str, Any], Index | None]:
    if not isinstance(body, dict):
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;"
        )
    for key in body:
        if key not in UPDATE_KEYS:
            raise ApiError(400, "x_content_parse_exception", f"[UpdateRequest] unknown field [{key}]")
    if body.get("script") is not None:
        raise bad_request(
            "[update] scripts are painless, which is out of the provision sandbox's scope; use a partial [doc]"
        )
    doc = body.get("doc")
    upsert = body.get("upsert")
    if doc is None:
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;"
        )
    if not isinstance(doc, dict):
        raise ApiError(400, "x_content_parse_exception", "[UpdateRequest] failed to parse field [doc]")
    doc_as_upsert = bool(body.get("doc_as_upsert", False))
    detect_noop = bool(body.get("detect_noop", True))
    with state.lock:
        index = indices_part(state).write_index(target_name)
        current = index.store.get(doc_id) if index is not None else None
        if current is None:
            if not doc_as_upsert and upsert is None:
                if index is None:
                    raise index_not_found(target_name)
                raise ApiError(
                    404,
                    "document_missing_exception",
                    f"[{doc_id}]: document missing",
                    index_uuid=index.uuid,
                    shard="0",
                    index=index.name,
                )
            new_source = copy.deepcopy(doc if doc_as_upsert else upsert)
            create = True
        else:
            assert index is not None
            if options.if_seq_no is not None:
                index.store.check_conflicts(
                    index.name,
                    doc_id,
                    create=False,
                    if_seq_no=options.if_seq_no,
                    if_primary_term=options.if_primary_term,
                    version=None,
                    version_type="internal",
                )
            full = copy.deepcopy(index.store.source_with_vectors(current))
            new_source = _merge_doc(full, doc)
            create = False
            if detect_noop and new_source == full:
                return (
                    200,
                    {
                        "_index": index.name,
                        "_id": doc_id,
                        "_version": current.version,
                        "result": "noop",
                        "_shards": {"total": 0, "successful": 0, "failed": 0},
                        "_seq_no": current.seq_no,
                        "_primary_term": current.primary_term,
                    },
                    index,
                )
    write_options = WriteOptions(
        op_type="create" if create else "index",
        pipeline=options.pipeline,
        routing=options.routing,
        run_pipelines=create,
    )
    _status, result, written = write_document(state, target_name, doc_id, new_source, write_options)
    if create:
        result["result"] = "created"
    return (201 if create else 200), result, written


@routes.route("POST", "/{index}/_update/{id}", api="update")
def update_doc(state: SandboxState, request: Request) -> Response:
    policy = refresh_policy(request)
    options = _options(request)
    status, body, index = update_document(
        state,
        request.path_params["index"],
        request.path_params["id"],
        request.json_object(required=True),
        options,
    )
    _apply_refresh(state, policy, [index] if index else [], [body])
    return Response(status, body)


# -- bulk --------------------------------------------------------------------------------------------------


@dataclass
class BulkItem:
    action: str
    meta: dict[str, Any]
    source: Any = None
    source_error: ApiError | None = None


def _token_name(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if value is None:
        return "VALUE_NULL"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    return "VALUE_NUMBER"


def parse_bulk(raw: bytes, default_index: str | None) -> list[BulkItem]:
    if not raw.strip():
        raise ApiError(400, "parse_exception", "request body is required")
    if not raw.endswith(b"\n"):
        raise bad_request("The bulk request must be terminated by a newline [\\n]")
    lines = raw.split(b"\n")
    items: list[BulkItem] = []
    number = 0
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        number += 1
        i += 1
        if not line:
            continue
        try:
            action_obj = jsonio.loads(line)
        except json.JSONDecodeError as exc:
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected START_OBJECT but found [VALUE_STRING]"
            ).with_cause(ApiError(400, "json_parse_exception", str(exc))) from exc
        if not isinstance(action_obj, dict):
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected START_OBJECT but found [{_token_name(action_obj)}]"
            )
        if not action_obj:
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected FIELD_NAME but found [END_OBJECT]"
            )
        if len(action_obj) > 1:
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected END_OBJECT but found [FIELD_NAME]"
            )
        ((action, meta),) = action_obj.items()
        if action not in ("index", "create", "update", "delete"):
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected field [create], [delete], [index] or [update] but found [{action}]"
            )
        if not isinstance(meta, dict):
            raise bad_request(
                f"Malformed action/metadata line [{number}], expected START_OBJECT but found [{_token_name(meta)}]"
            )
        for key, value in meta.items():
            if key not in BULK_META_KEYS:
                raise bad_request(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
            if isinstance(value, list) and key != "dynamic_templates":
                raise bad_request(
                    f"Malformed action/metadata line [{number}], expected a simple value for field [{key}] but found [START_ARRAY]"
                )
        meta = dict(meta)
        if "_index" not in meta and default_index is not None:
            meta["_index"] = default_index
        item = BulkItem(action, meta)
        if action != "delete":
            if i >= len(lines) or (i == len(lines) - 1 and not lines[i].strip()):
                break  # an action without its source line is dropped, as ES does
            source_line = lines[i]
            number += 1
            i += 1
            try:
                item.source = jsonio.loads(source_line) if source_line.strip() else None
            except json.JSONDecodeError as exc:
                item.source_error = ApiError(
                    400, "document_parsing_exception", f"[1:1] failed to parse: {exc.msg}"
                )
        items.append(item)
    if not items:
        raise ApiError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
    missing = [n for n, item in enumerate(items) if not item.meta.get("_index")]
    if missing:
        reasons = "".join(f"{k + 1}: index is missing;" for k in range(len(missing)))
        raise ApiError(400, "action_request_validation_exception", f"Validation Failed: {reasons}")
    return items


def _item_error(index_name: str, doc_id: str | None, error: ApiError) -> dict[str, Any]:
    return {"_index": index_name, "_id": doc_id, "status": error.status, "error": error.to_error_object()}


def _rejected() -> ApiError:
    return ApiError(
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
        "all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0] (injected by the "
        "provision sandbox's fault injection)",
    )


@routes.route("POST|PUT", "/_bulk", "/{index}/_bulk", api="bulk")
def bulk(state: SandboxState, request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    policy = refresh_policy(request)
    default_index = request.path_params.get("index")
    items = parse_bulk(request.body, default_index)
    default_pipeline = request.param("pipeline")
    default_routing = request.param("routing")
    default_require_alias = request.flag("require_alias")
    rate = state.config.faults.bulk_item_429_rate
    results: list[dict[str, Any]] = []
    touched: list[Index] = []
    bodies: list[dict[str, Any]] = []
    errors = False
    for item in items:
        meta = item.meta
        index_name = str(meta["_index"])
        doc_id = meta.get("_id")
        doc_id = str(doc_id) if doc_id is not None else None
        action = item.action
        op_type = action
        if action == "index" and meta.get("op_type") == "create":
            op_type = "create"
        label = "create" if op_type == "create" else action
        if doc_id is None and action in ("index", "create"):
            doc_id_out: str | None = new_uuid()[:20]
        else:
            doc_id_out = doc_id
        try:
            if rate and state.chance(rate):
                raise _rejected()
            options = WriteOptions(
                op_type="create" if op_type == "create" else "index",
                pipeline=meta.get("pipeline", default_pipeline),
                routing=meta.get("routing", default_routing),
                if_seq_no=_int_or_none(meta.get("if_seq_no"), "if_seq_no"),
                if_primary_term=_int_or_none(meta.get("if_primary_term"), "if_primary_term"),
                version=_int_or_none(meta.get("version"), "version"),
                version_type=str(meta.get("version_type", "internal")),
                require_alias=bool(meta.get("require_alias", default_require_alias)),
            )
            if action in ("index", "create"):
                if item.source_error is not None:
                    raise item.source_error
                if doc_id is not None:
                    _validate_id(doc_id)
                status, body, index = write_document(state, index_name, doc_id_out, item.source, options)
            elif action == "delete":
                if doc_id is None:
                    raise ApiError(
                        400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"
                    )
                status, body, index = delete_document(state, index_name, doc_id, options)
            else:
                if doc_id is None:
                    raise ApiError(
                        400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"
                    )
                if item.source_error is not None:
                    raise item.source_error
                status, body, index = update_document(state, index_name, doc_id, item.source, options)
            body["status"] = status
            results.append({label: body})
            bodies.append(body)
            if index is not None:
                touched.append(index)
        except ApiError as error:
            errors = True
            results.append({label: _item_error(index_name, doc_id_out, error)})
    _apply_refresh(state, policy, touched, bodies)
    return {"errors": errors, "took": int((time.perf_counter() - started) * 1000), "items": results}


# -- mget ----------------------------------------------------------------------------------------------------


@routes.route("GET|POST", "/_mget", "/{index}/_mget", write=False, api="mget")
def mget(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    default_index = request.path_params.get("index")
    specs: list[dict[str, Any]] = []
    if "docs" in body:
        if not isinstance(body["docs"], list):
            raise ApiError(400, "parse_exception", "docs array element should include an object")
        specs = [dict(d) if isinstance(d, dict) else {} for d in body["docs"]]
    elif "ids" in body:
        if not isinstance(body["ids"], list):
            raise ApiError(400, "parse_exception", "ids array element should only contain ids")
        specs = [{"_id": str(i)} for i in body["ids"]]
    else:
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: no documents to get;"
        )
    for key in body:
        if key not in ("docs", "ids"):
            raise ApiError(
                400, "parse_exception", f"unknown key [{key}] for a START_ARRAY, expected [docs] or [ids]"
            )
    missing_index = [n for n, spec in enumerate(specs) if not (spec.get("_index") or default_index)]
    if missing_index:
        reasons = "".join(f"{k + 1}: index is missing for doc {n};" for k, n in enumerate(missing_index))
        raise ApiError(400, "action_request_validation_exception", f"Validation Failed: {reasons}")
    docs = []
    with state.lock:
        if request.flag("refresh"):
            for name in {str(s.get("_index") or default_index) for s in specs}:
                try:
                    for index in indices_part(state).resolve(
                        name, allow_no_indices=True, ignore_unavailable=True
                    ):
                        index.store.refresh()
                except ApiError:
                    pass
        for spec in specs:
            name = str(spec.get("_index") or default_index)
            doc_id = str(spec.get("_id"))
            try:
                index, record = _get_record(state, request, name, doc_id)
            except ApiError as error:
                docs.append({"_index": name, "_id": doc_id, "error": error.to_error()})
                continue
            source_spec = parse_source_spec(
                spec.get("_source"), request.params if "_source" not in spec else None
            )
            docs.append(get_body(index, record, doc_id, source_spec))
    return {"docs": docs}


def _names(value: str | None) -> list[str]:
    return split_names(value)
