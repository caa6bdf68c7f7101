"""Cluster-level APIs: root info, health, cluster settings, license, X-Pack info, nodes, cat."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from es_sandbox.config import ES_VERSION, LUCENE_VERSION
from es_sandbox.http import ApiError, PlainError, Request, Response, RouteTable, bad_request
from es_sandbox.metadata import cluster_settings, indices_part
from es_sandbox.ml.node import ml_node_attributes
from es_sandbox.node import BUILD_DATE, BUILD_HASH, CLUSTER_UUID, NODE_ID
from es_sandbox.state import SandboxState
from es_sandbox.suggestions import levenshtein_similarity
from es_sandbox.util import (
    flatten_settings,
    nest_settings,
    new_uuid,
    now_millis,
    parse_bool,
    parse_time_value,
    simple_match,
)

routes = RouteTable()

# Other areas (ML) add node attributes here: each callable returns attributes to merge in.
NODE_ATTRIBUTE_HOOKS: list[Callable[[SandboxState], dict[str, str]]] = []


@routes.route("GET", "/", api="info")
def info(state: SandboxState, request: Request) -> dict[str, Any]:
    return {
        "name": state.config.node_name,
        "cluster_name": state.config.cluster_name,
        "cluster_uuid": CLUSTER_UUID,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "sandbox",
            "build_hash": BUILD_HASH,
            "build_date": BUILD_DATE,
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }


# -- health -----------------------------------------------------------------------------------------

_STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}


def _health(state: SandboxState, expression: str | None, level: str) -> dict[str, Any]:
    indices = indices_part(state)
    if expression:
        selected = indices.resolve(expression, ignore_unavailable=True, allow_no_indices=True)
        missing = not selected
    else:
        selected = list(indices.indices.values())
        missing = False
    per_index: dict[str, Any] = {}
    total_primary = total_active = total_unassigned = 0
    status = "red" if missing else "green"
    for index in selected:
        primaries = index.shards
        unassigned = primaries * index.replicas
        index_status = "yellow" if unassigned else "green"
        if _STATUS_ORDER[index_status] > _STATUS_ORDER[status]:
            status = index_status
        total_primary += primaries
        total_active += primaries
        total_unassigned += unassigned
        per_index[index.name] = {
            "status": index_status,
            "number_of_shards": primaries,
            "number_of_replicas": index.replicas,
            "active_primary_shards": primaries,
            "active_shards": primaries,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "unassigned_primary_shards": 0,
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
    return body


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
            body = _health(state, expression, level)
        if wait_for is None or _STATUS_ORDER[body["status"]] <= _STATUS_ORDER[wait_for]:
            return Response(200, body)
        if time.monotonic() >= deadline:
            body["timed_out"] = True
            return Response(408, body)
        time.sleep(0.05)


# -- cluster settings ---------------------------------------------------------------------------------

_CLUSTER_SETTING_PREFIXES = (
    "action.",
    "cluster.",
    "indices.",
    "search.",
    "xpack.",
    "logger.",
    "ingest.",
    "script.",
    "persistent_tasks.",
    "transport.",
    "http.",
    "network.breaker.",
    "thread_pool.",
    "stack.templates.enabled",
    "data_streams.",
    "health.",
    "index.",
)


@routes.route("GET", "/_cluster/settings", write=False, api="cluster.get_settings")
def get_cluster_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    flat = request.flag("flat_settings")
    with state.lock:
        current = cluster_settings(state)
        body = {
            scope: dict(current[scope]) if flat else nest_settings(current[scope])
            for scope in ("persistent", "transient")
        }
    if request.flag("include_defaults"):
        defaults = {"action.destructive_requires_name": "true", "action.auto_create_index": "true"}
        body["defaults"] = defaults if flat else nest_settings(defaults)
    return body


@routes.route("PUT", "/_cluster/settings", api="cluster.put_settings")
def put_cluster_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    for key in body:
        if key not in ("persistent", "transient"):
            raise ApiError(400, "parse_exception", f"[cluster_update_settings_request] unknown field [{key}]")
    if not body.get("persistent") and not body.get("transient"):
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no settings to update;",
        )
    flat = request.flag("flat_settings")
    applied: dict[str, dict[str, Any]] = {"persistent": {}, "transient": {}}
    with state.lock:
        current = cluster_settings(state)
        for scope in ("persistent", "transient"):
            updates = flatten_settings(body.get(scope) or {})
            for key in [k for k in updates if "*" in k]:
                if updates.pop(key) is not None:
                    raise bad_request(f"{scope} setting [{key}], not recognized")
                for existing in [k for k in current[scope] if simple_match(key, k)]:
                    updates[existing] = None  # "x.*": null resets every matching setting
            for key in updates:
                if not key.startswith(_CLUSTER_SETTING_PREFIXES):
                    raise bad_request(f"{scope} setting [{key}], not recognized")
                if key == "action.destructive_requires_name" and updates[key] is not None:
                    parse_bool(updates[key], key)
            for key, value in updates.items():
                if value is None:
                    current[scope].pop(key, None)
                else:
                    current[scope][key] = value
                    applied[scope][key] = value
    return {
        "acknowledged": True,
        "persistent": applied["persistent"] if flat else nest_settings(applied["persistent"]),
        "transient": applied["transient"] if flat else nest_settings(applied["transient"]),
    }


# -- license ---------------------------------------------------------------------------------------------

TRIAL_DAYS = 30
_PAID = ("trial", "platinum", "enterprise", "gold")


def _license_info(state: SandboxState) -> dict[str, Any]:
    info: dict[str, Any] = state.part("license", dict)
    if "uid" not in info:
        info.update(
            {
                "uid": new_uuid(),
                "issue_date_in_millis": now_millis(),
                "trial_used": state.license_type != "basic",
                "issued_to": state.config.cluster_name,
                "issuer": "elasticsearch",
            }
        )
        if state.license_type != "basic":
            info["expiry_date_in_millis"] = info["issue_date_in_millis"] + TRIAL_DAYS * 86_400_000
    return info


def _iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z"


def _license_body(state: SandboxState) -> dict[str, Any]:
    info = _license_info(state)
    body: dict[str, Any] = {
        "status": "active",
        "uid": info["uid"],
        "type": state.license_type,
        "issue_date": _iso(info["issue_date_in_millis"]),
        "issue_date_in_millis": info["issue_date_in_millis"],
    }
    if state.license_type != "basic" and "expiry_date_in_millis" in info:
        expiry = info["expiry_date_in_millis"]
        body["expiry_date"] = _iso(expiry)
        body["expiry_date_in_millis"] = expiry
        if expiry < now_millis():
            body["status"] = "expired"
    body.update(
        {
            "max_nodes": 1000 if state.license_type in ("basic", "trial") else info.get("max_nodes", 1000),
            "max_resource_units": None,
            "issued_to": info["issued_to"],
            "issuer": info["issuer"],
            "start_date_in_millis": -1,
        }
    )
    return body


@routes.route("GET", "/_license", write=False, api="license.get")
def get_license(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"license": _license_body(state)}


@routes.route("PUT|POST", "/_license", api="license.post")
def post_license(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    licenses = body.get("licenses") or ([body["license"]] if "license" in body else None)
    if not isinstance(licenses, list) or not licenses or not isinstance(licenses[0], dict):
        raise bad_request("failed to parse licenses: expected [licenses] to be an array of license objects")
    lic = licenses[0]
    for key in ("uid", "type", "issue_date_in_millis", "issued_to", "issuer", "signature"):
        if key not in lic:
            raise bad_request(f"[{key}] is required for a license")
    ltype = str(lic["type"])
    if ltype not in ("basic", *_PAID):
        raise bad_request(f"unknown license type [{ltype}]")
    expiry = int(lic.get("expiry_date_in_millis", 0))
    if expiry and expiry < now_millis():
        return {"acknowledged": True, "license_status": "expired"}
    with state.lock:
        info = _license_info(state)
        info.update(
            {
                "uid": lic["uid"],
                "issue_date_in_millis": int(lic["issue_date_in_millis"]),
                "issued_to": lic["issued_to"],
                "issuer": lic["issuer"],
                "max_nodes": lic.get("max_nodes", 1000),
            }
        )
        if expiry:
            info["expiry_date_in_millis"] = expiry
        if ltype == "trial":
            info["trial_used"] = True
        state.license_type = ltype
    return {"acknowledged": True, "license_status": "valid"}


@routes.route("DELETE", "/_license", api="license.delete")
def delete_license(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        info = _license_info(state)
        if state.license_type != "basic":
            info.update(
                {
                    "uid": new_uuid(),
                    "issue_date_in_millis": now_millis(),
                    "issued_to": state.config.cluster_name,
                    "issuer": "elasticsearch",
                }
            )
            info.pop("expiry_date_in_millis", None)
            state.license_type = "basic"
    return {"acknowledged": True}


@routes.route("GET", "/_license/trial_status", write=False, api="license.get_trial_status")
def trial_status(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"eligible_to_start_trial": not _license_info(state)["trial_used"]}


@routes.route("GET", "/_license/basic_status", write=False, api="license.get_basic_status")
def basic_status(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        return {"eligible_to_start_basic": state.license_type != "basic"}


_TRIAL_ACK = (
    "This API initiates a free 30-day trial for all platinum features. By starting this trial, you agree that it "
    "is subject to the terms and conditions at https://www.elastic.co/legal/trial_license/. To begin your free "
    'trial, call /start_trial again and specify the "acknowledge=true" parameter.'
)


@routes.route("POST", "/_license/start_trial", api="license.post_start_trial")
def start_trial(state: SandboxState, request: Request) -> Response:
    acknowledge = request.flag("acknowledge")
    ltype = request.param("type", "trial") or "trial"
    if ltype not in ("trial", "platinum", "enterprise", "gold"):
        raise bad_request(f"Cannot start trial of type [{ltype}]. Valid trial types are [trial].")
    with state.lock:
        info = _license_info(state)
        if info["trial_used"]:
            return Response(
                403,
                {
                    "acknowledged": True,
                    "trial_was_started": False,
                    "error_message": "Trial was already activated.",
                },
            )
        if not acknowledge:
            return Response(
                200,
                {
                    "acknowledged": False,
                    "trial_was_started": False,
                    "error_message": "Operation failed: Needs acknowledgement.",
                    "acknowledge": {"message": _TRIAL_ACK},
                },
            )
        info.update({"uid": new_uuid(), "issue_date_in_millis": now_millis(), "trial_used": True})
        info["expiry_date_in_millis"] = info["issue_date_in_millis"] + TRIAL_DAYS * 86_400_000
        state.license_type = "trial"
    return Response(200, {"acknowledged": True, "trial_was_started": True, "type": "trial"})


@routes.route("POST", "/_license/start_basic", api="license.post_start_basic")
def start_basic(state: SandboxState, request: Request) -> Response:
    acknowledge = request.flag("acknowledge")
    with state.lock:
        if state.license_type == "basic":
            return Response(
                403,
                {
                    "acknowledged": True,
                    "basic_was_started": False,
                    "error_message": "Operation failed: Current license is basic.",
                },
            )
        if not acknowledge:
            return Response(
                200,
                {
                    "acknowledged": False,
                    "basic_was_started": False,
                    "error_message": "Operation failed: Needs acknowledgement.",
                    "acknowledge": {
                        "message": "This license update requires acknowledgement. To acknowledge the license, please "
                        "read the following messages and call /start_basic again, this time with the "
                        '"acknowledge=true" parameter:'
                    },
                },
            )
        info = _license_info(state)
        info.update({"uid": new_uuid(), "issue_date_in_millis": now_millis()})
        info.pop("expiry_date_in_millis", None)
        state.license_type = "basic"
    return Response(200, {"basic_was_started": True, "acknowledged": True})


# -- X-Pack ------------------------------------------------------------------------------------------------

_FEATURES_BASIC = (
    "aggregate_metric",
    "analytics",
    "archive",
    "data_streams",
    "data_tiers",
    "enrich",
    "eql",
    "esql",
    "frozen_indices",
    "ilm",
    "logstash",
    "rollup",
    "security",
    "slm",
    "spatial",
    "sql",
    "transform",
    "voting_only",
)
_FEATURES_PAID = (
    "ccr",
    "enterprise_search",
    "graph",
    "ml",
    "monitoring",
    "searchable_snapshots",
    "universal_profiling",
    "watcher",
)


@routes.route("GET", "/_xpack", write=False, api="xpack.info")
def xpack_info(state: SandboxState, request: Request) -> dict[str, Any]:
    categories = request.param("categories", "build,license,features") or ""
    wanted = {c.strip() for c in categories.split(",") if c.strip()}
    for category in wanted:
        if category not in ("build", "license", "features", "_none"):
            raise bad_request(f"invalid category [{category}]")
    with state.lock:
        body: dict[str, Any] = {}
        if "build" in wanted:
            body["build"] = {"hash": BUILD_HASH, "date": BUILD_DATE}
        if "license" in wanted:
            lic: dict[str, Any] = {
                "uid": _license_info(state)["uid"],
                "type": state.license_type,
                "mode": state.license_type,
                "status": "active",
            }
            if state.license_type != "basic":
                lic["expiry_date_in_millis"] = _license_info(state).get("expiry_date_in_millis")
            body["license"] = lic
        if "features" in wanted:
            paid = state.license_type in _PAID
            features = {name: {"available": True, "enabled": True} for name in _FEATURES_BASIC}
            features.update({name: {"available": paid, "enabled": True} for name in _FEATURES_PAID})
            body["features"] = dict(sorted(features.items()))
    if "features" in wanted and request.param("human", "true") != "false":
        body["tagline"] = "You know, for X"
    return body


# -- nodes -------------------------------------------------------------------------------------------------


def _node_attributes(state: SandboxState) -> dict[str, str]:
    """Node attributes; the ML area describes the ML ones (memory, processors, config version)."""
    attributes = dict(ml_node_attributes(state))
    for hook in NODE_ATTRIBUTE_HOOKS:
        attributes.update(hook(state))
    return dict(sorted(attributes.items()))


def _node(state: SandboxState) -> dict[str, Any]:
    attributes = _node_attributes(state)
    return {
        "name": state.config.node_name,
        "transport_address": "127.0.0.1:9300",
        "host": state.config.host,
        "ip": "127.0.0.1",
        "version": ES_VERSION,
        "transport_version": 9112007,
        "index_version": 9039000,
        "component_versions": {"ml_config_version": 12000099, "transform_config_version": 10000099},
        "build_flavor": "default",
        "build_type": "sandbox",
        "build_hash": BUILD_HASH,
        "total_indexing_buffer": 104857600,
        "roles": ["data", "data_content", "ingest", "master", "ml", "remote_cluster_client", "transform"],
        "attributes": attributes,
        "settings": {
            "cluster": {"name": state.config.cluster_name},
            "node": {"name": state.config.node_name, "attr": dict(attributes.items())},
            "http": {"type": "sandbox"},
        },
        "os": {
            "name": "Linux",
            "available_processors": os.cpu_count() or 1,
            "allocated_processors": os.cpu_count() or 1,
        },
        "jvm": {
            "version": "sandbox",
            "mem": {"heap_init_in_bytes": 1024**3, "heap_max_in_bytes": 1024**3},
        },
    }


@routes.route(
    "GET", "/_nodes", "/_nodes/{node_id}", "/_nodes/{node_id}/{metric}", write=False, api="nodes.info"
)
def nodes_info(state: SandboxState, request: Request) -> dict[str, Any]:
    node_id = request.path_params.get("node_id", "_all")
    with state.lock:
        node = _node(state)
    metrics = request.path_params.get("metric")
    if node_id not in ("_all", "_local", "_master", NODE_ID, state.config.node_name, "*"):
        # /_nodes/{metric} form: the first segment names metrics.
        metrics = node_id
    if metrics and metrics != "_all":
        keep = {m.strip() for m in metrics.split(",")}
        base = {k: v for k, v in node.items() if not isinstance(v, dict) or k == "attributes"}
        node = {**base, **{k: v for k, v in node.items() if k in keep}}
    return {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": state.config.cluster_name,
        "nodes": {NODE_ID: node},
    }


@routes.route("GET", "/_nodes/stats", "/_nodes/stats/{metric}", write=False, api="nodes.stats")
def nodes_stats(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        attributes = _node_attributes(state)
        docs = sum(index.store.doc_count() for index in indices_part(state).indices.values())
    machine = int(attributes["ml.machine_memory"])
    return {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": state.config.cluster_name,
        "nodes": {
            NODE_ID: {
                "timestamp": now_millis(),
                "name": state.config.node_name,
                "transport_address": "127.0.0.1:9300",
                "host": state.config.host,
                "ip": "127.0.0.1:9300",
                "roles": [
                    "data",
                    "data_content",
                    "ingest",
                    "master",
                    "ml",
                    "remote_cluster_client",
                    "transform",
                ],
                "attributes": attributes,
                "indices": {"docs": {"count": docs, "deleted": 0}},
                "os": {"mem": {"total_in_bytes": machine, "adjusted_total_in_bytes": machine}},
                "jvm": {"mem": {"heap_max_in_bytes": 1024**3, "heap_used_in_bytes": 256 * 1024**2}},
            }
        },
    }


# -- cat ---------------------------------------------------------------------------------------------------


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
        body = _health(state, None, "cluster")
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


def unknown_setting_message(key: str, known: list[str]) -> str:
    close = [k for k in known if levenshtein_similarity(key, k) > 0.7]
    return f"unknown setting [{key}]" + (f" did you mean [{close[0]}]?" if close else "")


# -- capabilities -----------------------------------------------------------------------------------------

# Capabilities ES 9 advertises that the sandbox implements, by (method, path pattern).
CAPABILITIES: dict[tuple[str, str], frozenset[str]] = {
    ("PUT", "/_component_template/{name}"): frozenset(
        {"dlm.downsampling_method", "dlm.frozen_after", "failure_store.lifecycle.frozen_after_rejected"}
    ),
    ("POST", "/_component_template/{name}"): frozenset(
        {"dlm.downsampling_method", "dlm.frozen_after", "failure_store.lifecycle.frozen_after_rejected"}
    ),
    ("GET", "/_component_template"): frozenset({"local_param_deprecated"}),
    ("GET", "/_component_template/{name}"): frozenset({"local_param_deprecated"}),
}


@routes.route(
    "GET",
    "/_capabilities",
    write=False,
    params=("method", "path", "parameters", "capabilities", "local_only"),
)
def capabilities(state: SandboxState, request: Request) -> dict[str, Any]:
    """``GET /_capabilities``: whether this node supports an endpoint, its parameters and features."""
    from es_sandbox.params import COMMON, allowed_params

    method = (request.param("method", "GET") or "GET").upper()
    path = request.param("path")
    if not path:
        raise ApiError(400, "action_request_validation_exception", "Validation Failed: 1: path is missing;")
    wanted_params = [p for p in (request.param("parameters") or "").split(",") if p]
    wanted_caps = [c for c in (request.param("capabilities") or "").split(",") if c]
    sandbox_routes = getattr(state, "router_routes", [])
    route = next((r for r in sandbox_routes if r.pattern == path and r.method == method), None)
    if route is None:
        return {"supported": False}
    accepted = route.params | COMMON if route.params is not None else allowed_params(route.api)
    if accepted is not None and any(p not in accepted for p in wanted_params):
        return {"supported": False}
    known = CAPABILITIES.get((method, path), frozenset())
    return {"supported": all(c in known for c in wanted_caps)}
