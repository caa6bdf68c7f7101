"""The ``_cat`` APIs the tool and the YAML tests use: ``_cat/indices`` and ``_cat/health``."""

from __future__ import annotations

import time
from typing import Any

from es_sandbox.api.cluster_health import cluster_health
from es_sandbox.http import PlainError, Request, Response, RouteTable, bad_request
from es_sandbox.metadata import indices_part
from es_sandbox.state import SandboxState
from es_sandbox.util import now_millis

routes = RouteTable()


def _cat(request: Request, rows: list[dict[str, Any]], columns: list[str]) -> Response:
    fmt = request.param("format", "text")
    wanted = [c.strip() for c in (request.param("h") or "").split(",") if c.strip()] or columns
    for column in wanted:
        if column not in columns:
            raise bad_request(f"header [{column}] is not supported")
    sort = request.param("s")
    if sort:
        for key in reversed(sort.split(",")):
            name, _, order = key.partition(":")
            rows.sort(key=lambda r: str(r.get(name, "")), reverse=order == "desc")
    data = [{c: r.get(c) for c in wanted} for r in rows]
    if fmt == "json":
        return Response(200, data)
    if fmt not in ("text", "txt"):
        raise PlainError(400, f"Unsupported format [{fmt}]")
    widths = {c: max([len(c)] + [len(str(r[c])) for r in data]) for c in wanted}
    lines = []
    if request.flag("v"):
        lines.append(" ".join(c.ljust(widths[c]) for c in wanted).rstrip())
    for row in data:
        lines.append(" ".join(str(row[c]).ljust(widths[c]) for c in wanted).rstrip())
    return Response(200, "\n".join(lines) + ("\n" if lines else ""), content_type="text/plain; charset=UTF-8")


@routes.route("GET", "/_cat/indices", "/_cat/indices/{index}", write=False, api="cat.indices")
def cat_indices(state: SandboxState, request: Request) -> Response:
    with state.lock:
        indices = indices_part(state).resolve(request.path_params.get("index"), allow_no_indices=True)
        rows = []
        for index in indices:
            rows.append(
                {
                    "health": "yellow" if index.replicas else "green",
                    "status": index.state,
                    "index": index.name,
                    "uuid": index.uuid,
                    "pri": str(index.shards),
                    "rep": str(index.replicas),
                    "docs.count": str(index.searcher(time.time()).doc_count),
                    "docs.deleted": "0",
                    "store.size": f"{index.store.doc_count()}b",
                    "pri.store.size": f"{index.store.doc_count()}b",
                    "dataset.size": f"{index.store.doc_count()}b",
                }
            )
    columns = (
        list(rows[0])
        if rows
        else [
            "health",
            "status",
            "index",
            "uuid",
            "pri",
            "rep",
            "docs.count",
            "docs.deleted",
            "store.size",
            "pri.store.size",
            "dataset.size",
        ]
    )
    return _cat(request, rows, columns)


@routes.route("GET", "/_cat/health", write=False, api="cat.health")
def cat_health(state: SandboxState, request: Request) -> Response:
    with state.lock:
        body = cluster_health(state, None, "cluster")
    now = now_millis()
    row = {
        "epoch": str(now // 1000),
        "timestamp": time.strftime("%H:%M:%S", time.gmtime(now / 1000)),
        "cluster": body["cluster_name"],
        "status": body["status"],
        "node.total": "1",
        "node.data": "1",
        "shards": str(body["active_shards"]),
        "pri": str(body["active_primary_shards"]),
        "relo": "0",
        "init": "0",
        "unassign": str(body["unassigned_shards"]),
        "unassign.pri": "0",
        "pending_tasks": "0",
        "max_task_wait_time": "-",
        "active_shards_percent": f"{body['active_shards_percent_as_number']:.1f}%",
    }
    return _cat(request, [row], list(row))
