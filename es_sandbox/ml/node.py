"""The sandbox's single node as the ML plugin describes it (``_nodes`` attributes, stats ``node``).

The sandbox has one node holding every role. Its ML memory is ``SandboxConfig.ml_memory_bytes``;
Elasticsearch derives that from ``ml.machine_memory`` and ``xpack.ml.max_machine_memory_percent``
(30 by default), so the machine memory reported is the ML memory scaled back up by that percentage.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from es_sandbox.ml.configs import ML_CONFIG_VERSION
from es_sandbox.node import NODE_ID
from es_sandbox.state import SandboxState

MAX_MACHINE_MEMORY_PERCENT = 30
ROLES = ["data", "data_content", "ingest", "master", "ml", "remote_cluster_client", "transform"]


def node_id(state: SandboxState) -> str:
    """The node id ``_nodes`` reports, so routing tables and stats agree."""
    return NODE_ID


def allocated_processors() -> int:
    return os.cpu_count() or 1


def ml_node_attributes(state: SandboxState) -> dict[str, str]:
    """The ``attributes`` of the node in ``_nodes``: what ML clients read to size deployments."""
    machine_memory = int(state.config.ml_memory_bytes / (MAX_MACHINE_MEMORY_PERCENT / 100))
    processors = allocated_processors()
    return {
        "ml.allocated_processors": str(processors),
        "ml.allocated_processors_double": f"{float(processors)}",
        "ml.config_version": ML_CONFIG_VERSION,
        "ml.machine_memory": str(machine_memory),
        "ml.max_jvm_size": str(1024**3),
        "transform.config_version": "10.0.0",
        "xpack.installed": "true",
    }


def discovery_node(state: SandboxState) -> dict[str, Any]:
    """``DiscoveryNode.toXContent`` as embedded in deployment stats: ``{node_id: {...}}``."""
    nid = node_id(state)
    return {
        nid: {
            "name": state.config.node_name,
            "ephemeral_id": base64.urlsafe_b64encode(hashlib.sha256(nid.encode()).digest()).decode("ascii")[
                :22
            ],
            "transport_address": f"{state.config.host}:9300",
            "external_id": state.config.node_name,
            "attributes": ml_node_attributes(state),
            "roles": list(ROLES),
            "version": state.emulation.number,
            "min_index_version": 8000099,
            "max_index_version": state.emulation.release.index_version,
        }
    }
