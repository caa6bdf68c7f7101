"""Who the sandbox is: the identity of its one-node cluster and of its build.

Elasticsearch reports these in ``GET /``, ``_nodes``, ML deployment stats, shard failures and
``Warning`` headers; they live here, below every area that reports them, so that all agree.
"""

from __future__ import annotations

CLUSTER_UUID = "sandbox-cluster-uuid-00000"
NODE_ID = "sandbox-node-id-000000"
BUILD_HASH = "sandbox"
BUILD_DATE = "2025-10-01T00:00:00.000Z"
