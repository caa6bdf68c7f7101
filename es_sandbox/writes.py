"""The write path: index, create, update and delete one document, as every write API does.

Writes go through one path (:func:`write_document`): resolve the target (index or alias write
index, auto-creating from templates), run the ingest pipelines (request ``pipeline``, else the
index's ``default_pipeline``, then ``final_pipeline``) outside the cluster lock, then parse the
document against the mapping, apply dynamic mapping updates and store it, with versioning and
optimistic concurrency checks. Documents are searchable only after a refresh (``refresh`` policy).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_sandbox.http import ApiError, Request, bad_request
from es_sandbox.index_creation import create_index
from es_sandbox.mapper.documents import DocumentParser
from es_sandbox.mapper.merging import merge_mappings
from es_sandbox.metadata import (
    Index,
    index_not_found,
    indices_part,
    resolve_template,
    templates_part,
)
from es_sandbox.pipelines import run_for_index
from es_sandbox.state import SandboxState
from es_sandbox.util import new_uuid, validate_index_name

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


def validate_id(doc_id: str | None) -> None:
    if doc_id is None:
        return
    if doc_id == "":
        raise bad_request("if _id is specified it must not be empty")
    size = len(doc_id.encode())
    if size > 512:
        raise bad_request(f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: {size}")


def int_or_none(value: Any, name: str) -> int | None:
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


def check_open(index: Index) -> None:
    """A closed index refuses reads and writes (IndexClosedException)."""
    if index.state == "close":
        raise ApiError(400, "index_closed_exception", "closed", index_uuid=index.uuid, index=index.name)


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
    validate_id(doc_id)
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
        # require_alias is checked against the final target, after pipelines may have changed _index.
        index = _target(state, target_name, False)
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
        result = run_for_index(state, pipelines, source, meta)
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
        check_open(index)
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


def apply_refresh(
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
