"""``GET _cluster/health``: the one node's status, per cluster, index or shard level.

Green when every index is, yellow when an index has unassigned replicas (the sandbox has one node,
so any ``number_of_replicas`` above 0), red for an index whose primaries are not allocated: one
created while ``cluster.routing.allocation.enable`` is ``none``, until allocation is enabled again
(the allocation deciders then assign them), and for a closed index that ``wait_for_status`` asks about.

Naming indices is itself something to wait for, as in TransportClusterHealthAction: a concrete name
that does not exist (yet) makes the answer red and the request waits, like any ``wait_for_*``, until
the index exists or ``timeout`` (30s) passes, then answers ``408`` with ``timed_out: true``. A
wildcard that matches nothing yet is an empty, green selection, answered at once.
"""

from __future__ import annotations

import time
from typing import Any

from es_sandbox.http import Request, Response, RouteTable, bad_request
from es_sandbox.metadata import cluster_setting, indices_part
from es_sandbox.state import SandboxState
from es_sandbox.util import parse_time_value, split_names

routes = RouteTable()


_STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}


def cluster_health(state: SandboxState, expression: str | None, level: str) -> dict[str, Any]:
    """The health body; a concrete index name that does not exist makes it red."""
    return _health(state, expression, level)[0]


def _health(state: SandboxState, expression: str | None, level: str) -> tuple[dict[str, Any], bool]:
    """The health body, and whether a concretely named index is missing."""
    indices = indices_part(state)
    if expression:
        selected = indices.resolve(expression, ignore_unavailable=True, allow_no_indices=True)
        # ES answers red for a concrete name that does not exist (IndexNotFoundException); a
        # wildcard that matches nothing yet is an empty, green selection.
        missing = any(
            "*" not in name
            and name not in ("_all", "")
            and not name.startswith("-")
            and name not in indices.indices
            and not indices.alias_indices(name)
            for name in split_names(expression)
        )
    else:
        selected = list(indices.indices.values())
        missing = False
    per_index: dict[str, Any] = {}
    total_primary = total_active = total_unassigned = 0
    status = "red" if missing else "green"
    allocation_enabled = cluster_setting(state, "cluster.routing.allocation.enable", "all") != "none"
    for index in selected:
        if index.primaries_unassigned and allocation_enabled:
            index.primaries_unassigned = False
        primaries = index.shards
        active = 0 if index.primaries_unassigned else primaries
        unassigned = primaries * index.replicas + (primaries - active)
        index_status = "red" if active < primaries else ("yellow" if unassigned else "green")
        if _STATUS_ORDER[index_status] > _STATUS_ORDER[status]:
            status = index_status
        total_primary += active
        total_active += active
        total_unassigned += unassigned
        per_index[index.name] = {
            "status": index_status,
            "number_of_shards": primaries,
            "number_of_replicas": index.replicas,
            "active_primary_shards": active,
            "active_shards": active,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "unassigned_primary_shards": primaries - active,
        }
    total = total_active + total_unassigned
    body: dict[str, Any] = {
        "cluster_name": state.config.cluster_name,
        "status": status,
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": total_primary,
        "active_shards": total_active,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": total_unassigned,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0 * total_active / total if total else 100.0,
    }
    if level in ("indices", "shards"):
        body["indices"] = per_index
    return body, missing


@routes.route("GET", "/_cluster/health", "/_cluster/health/{index}", write=False, api="cluster.health")
def health(state: SandboxState, request: Request) -> Response:
    expression = request.path_params.get("index")
    level = request.param("level", "cluster") or "cluster"
    if level not in ("cluster", "indices", "shards"):
        raise bad_request(f"No enum constant org.elasticsearch.action.ClusterStatsLevel.{level.upper()}")
    wait_for = request.param("wait_for_status")
    if wait_for is not None and wait_for not in _STATUS_ORDER:
        raise bad_request(f"unknown cluster health status [{wait_for}]")
    timeout = parse_time_value(request.param("timeout", "30s"), "timeout")
    for name in ("wait_for_active_shards", "wait_for_nodes", "wait_for_events"):
        request.param(name)
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        with state.lock:
            body, missing = _health(state, expression, level)
        if not missing and (wait_for is None or _STATUS_ORDER[body["status"]] <= _STATUS_ORDER[wait_for]):
            return Response(200, body)
        if time.monotonic() >= deadline:
            body["timed_out"] = True
            return Response(408, body)
        time.sleep(0.05)
