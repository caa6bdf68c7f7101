"""``_bulk``: the newline-delimited body parsed as ES parses it, each item run through the write path.

Item failures (including the 429s of the fault injection) are reported per item, as ES does, and
the request's ``refresh`` applies once to every index written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from es_sandbox import jsonio
from es_sandbox.http import ApiError, Request, RouteTable, bad_request
from es_sandbox.metadata import Index
from es_sandbox.state import SandboxState
from es_sandbox.util import new_uuid
from es_sandbox.writes import (
    WriteOptions,
    apply_refresh,
    delete_document,
    int_or_none,
    refresh_policy,
    update_document,
    validate_id,
    write_document,
)

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
                if_seq_no=int_or_none(meta.get("if_seq_no"), "if_seq_no"),
                if_primary_term=int_or_none(meta.get("if_primary_term"), "if_primary_term"),
                version=int_or_none(meta.get("version"), "version"),
                version_type=str(meta.get("version_type", "internal")),
                require_alias=bool(meta.get("require_alias", default_require_alias)),
            )
            if action in ("index", "create"):
                if item.source_error is not None:
                    raise item.source_error
                if doc_id is not None:
                    validate_id(doc_id)
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
    apply_refresh(state, policy, touched, bodies)
    return {"errors": errors, "took": int((time.perf_counter() - started) * 1000), "items": results}
