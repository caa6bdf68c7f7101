"""Cluster-level APIs: root info, health."""

from __future__ import annotations

from typing import Any

from provisioning.sandbox.config import ES_VERSION, LUCENE_VERSION
from provisioning.sandbox.http import Request, RouteTable
from provisioning.sandbox.state import SandboxState

routes = RouteTable()


@routes.route("GET", "/")
def info(state: SandboxState, request: Request) -> dict[str, Any]:
    return {
        "name": state.config.node_name,
        "cluster_name": state.config.cluster_name,
        "cluster_uuid": "sandbox-cluster-uuid",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "sandbox",
            "build_hash": "sandbox",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }
