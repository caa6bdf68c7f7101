"""Resource kinds a stack manages, in dependency order (creation runs forward, deletion backward)."""

from __future__ import annotations

from provisioning.cluster import Cluster
from provisioning.resources.base import Comparison, Desired, Live, PlanContext, ResourceKind
from provisioning.resources.indices import Indices
from provisioning.resources.inference_endpoints import InferenceEndpoints
from provisioning.resources.models import Deployments, License, ModelAliases, TrainedModels
from provisioning.resources.pipelines import Pipelines
from provisioning.resources.templates import ComponentTemplates, IndexTemplates

__all__ = ["Comparison", "Desired", "Live", "PlanContext", "ResourceKind", "all_kinds"]


def all_kinds(cluster: Cluster, context: PlanContext | None = None) -> list[ResourceKind]:
    """Every kind, in dependency order: license -> models -> deployments -> aliases -> inference
    endpoints -> component templates -> pipelines -> index templates -> indices."""
    ctx = context or PlanContext()
    kinds = (
        License,
        TrainedModels,
        Deployments,
        ModelAliases,
        InferenceEndpoints,
        ComponentTemplates,
        Pipelines,
        IndexTemplates,
        Indices,
    )
    return [kind(cluster, ctx) for kind in kinds]
