"""Single-document APIs: index/create, get/exists/_source, delete, update, and ``_mget``.

Each route reads its request options and calls the write path (:mod:`es_sandbox.writes`); GET is
realtime (it reads the store, not the last refresh) and filters ``_source`` as the fetch phase does.
"""

from __future__ import annotations

from typing import Any

from es_sandbox.fetch import parse_source_spec, render_source
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request
from es_sandbox.metadata import Index, indices_part
from es_sandbox.state import SandboxState
from es_sandbox.util import split_names
from es_sandbox.writes import (
    WriteOptions,
    apply_refresh,
    delete_document,
    int_or_none,
    refresh_policy,
    update_document,
    write_document,
)

routes = RouteTable()


def _options(request: Request) -> WriteOptions:
    return WriteOptions(
        op_type=request.param("op_type", "index") or "index",
        pipeline=request.param("pipeline"),
        routing=request.param("routing"),
        if_seq_no=int_or_none(request.param("if_seq_no"), "if_seq_no"),
        if_primary_term=int_or_none(request.param("if_primary_term"), "if_primary_term"),
        version=int_or_none(request.param("version"), "version"),
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
    apply_refresh(state, policy, [index] if index else [], [body])
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
    apply_refresh(state, policy, [index] if index else [], [body])
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
    version = int_or_none(request.param("version"), "version")
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


@routes.route("DELETE", "/{index}/_doc/{id}", api="delete")
def delete_doc(state: SandboxState, request: Request) -> Response:
    policy = refresh_policy(request)
    status, body, index = delete_document(
        state, request.path_params["index"], request.path_params["id"], _options(request)
    )
    apply_refresh(state, policy, [index], [body])
    return Response(status, body)


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
    apply_refresh(state, policy, [index] if index else [], [body])
    return Response(status, body)


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
