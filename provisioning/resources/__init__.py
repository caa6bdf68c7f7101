"""Resource kinds a stack manages, in dependency order (creation runs forward, deletion backward)."""

from __future__ import annotations

from provisioning.cluster import Cluster
from provisioning.resources.base import Comparison, Desired, Live, ResourceKind
from provisioning.resources.indices import Indices
from provisioning.resources.inference_endpoints import InferenceEndpoints
from provisioning.resources.pipelines import Pipelines
from provisioning.resources.templates import ComponentTemplates, IndexTemplates

__all__ = ["Comparison", "Desired", "Live", "ResourceKind", "all_kinds"]


def all_kinds(cluster: Cluster) -> list[ResourceKind]:
    """Every kind, in the order models -> deployments -> inference endpoints -> component templates
    -> pipelines -> index templates -> indices."""
    kinds: list[ResourceKind] = [
        InferenceEndpoints(cluster),
        ComponentTemplates(cluster),
        Pipelines(cluster),
        IndexTemplates(cluster),
        Indices(cluster),
    ]
    return kinds
