"""``GET _cluster/state``: the one-node cluster's state, by metric.

Metrics: ``version``, ``master_node``, ``blocks``, ``nodes``, ``nodes_features`` (the cluster features
of the emulated Elasticsearch version, which the YAML REST tests' ``requires.cluster_features`` read),
``metadata`` (indices with their state, settings, mappings and aliases; templates) and
``routing_table``. ``_all`` or no metric gives all of them.
"""

from __future__ import annotations

from typing import Any

from es_sandbox.http import Request, RouteTable, bad_request
from es_sandbox.metadata import indices_part, templates_part
from es_sandbox.node import CLUSTER_UUID, NODE_ID
from es_sandbox.state import SandboxState
from es_sandbox.util import split_names

routes = RouteTable()

METRICS = ("version", "master_node", "blocks", "nodes", "nodes_features", "metadata", "routing_table")


@routes.route(
    "GET",
    "/_cluster/state",
    "/_cluster/state/{metric}",
    "/_cluster/state/{metric}/{index}",
    write=False,
    api="cluster.state",
)
def cluster_state(state: SandboxState, request: Request) -> dict[str, Any]:
    wanted = split_names(request.path_params.get("metric")) or ["_all"]
    for metric in wanted:
        if metric != "_all" and metric not in METRICS:
            raise bad_request(f"request [{request.path}] contains unrecognized metric: [{metric}]")
    metrics = set(METRICS) if "_all" in wanted else set(wanted)
    expression = request.path_params.get("index")
    body: dict[str, Any] = {"cluster_name": state.config.cluster_name, "cluster_uuid": CLUSTER_UUID}
    with state.lock:
        if "version" in metrics:
            body["version"] = len(state.log.entries) + 1
            body["state_uuid"] = "sandbox-state-uuid-000000"
        if "master_node" in metrics:
            body["master_node"] = NODE_ID
        if "blocks" in metrics:
            body["blocks"] = {}
        if "nodes" in metrics:
            body["nodes"] = {
                NODE_ID: {
                    "name": state.config.node_name,
                    "ephemeral_id": "sandbox-ephemeral-id-0000",
                    "transport_address": "127.0.0.1:9300",
                    "external_id": state.config.node_name,
                    "attributes": {},
                    "roles": ["data", "ingest", "master", "ml", "transform"],
                    "version": state.emulation.number,
                    "min_index_version": 8000099,
                    "max_index_version": state.emulation.release.index_version,
                }
            }
        if "nodes_features" in metrics:
            body["nodes_features"] = [{"node_id": NODE_ID, "features": state.emulation.cluster_features()}]
        if "metadata" in metrics:
            body["metadata"] = _metadata(state, expression)
        if "routing_table" in metrics:
            body["routing_table"] = {"indices": {}}
    return body


def _metadata(state: SandboxState, expression: str | None) -> dict[str, Any]:
    indices = indices_part(state)
    selected = (
        indices.resolve(expression, ignore_unavailable=True, expand_wildcards="all")
        if expression
        else sorted(indices.indices.values(), key=lambda i: i.name)
    )
    templates = templates_part(state)
    return {
        "cluster_uuid": CLUSTER_UUID,
        "cluster_uuid_committed": True,
        "templates": {},
        "indices": {
            index.name: {
                "version": 1,
                "state": index.state,
                "settings": index.settings_view(),
                "mappings": {"_doc": index.mapping_view()} if index.mapping else {},
                "aliases": sorted(index.aliases),
            }
            for index in selected
        },
        "index_template": {"index_template": {name: t.body for name, t in sorted(templates.index.items())}},
        "component_template": {
            "component_template": {name: t.body for name, t in sorted(templates.component.items())}
        },
    }
