"""``GET _nodes`` and ``GET _nodes/stats``: the sandbox's single node, with its ML attributes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from es_sandbox.http import Request, RouteTable
from es_sandbox.metadata import indices_part
from es_sandbox.ml.node import ml_node_attributes
from es_sandbox.node import BUILD_HASH, NODE_ID
from es_sandbox.state import SandboxState
from es_sandbox.util import now_millis

routes = RouteTable()

# Other areas (ML) add node attributes here: each callable returns attributes to merge in.
NODE_ATTRIBUTE_HOOKS: list[Callable[[SandboxState], dict[str, str]]] = []


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
        "version": state.emulation.number,
        "transport_version": 9112007,
        "index_version": state.emulation.release.index_version,
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
