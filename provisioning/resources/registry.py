"""Every resource kind a stack manages, in dependency order: creation runs forward, deletion backward."""

from __future__ import annotations

from provisioning.changes import Desired
from provisioning.cluster import Cluster
from provisioning.resources.base import ResourceKind
from provisioning.resources.deployments import Deployments
from provisioning.resources.indices import Indices
from provisioning.resources.inference_endpoints import InferenceEndpoints
from provisioning.resources.license import License
from provisioning.resources.model_aliases import ModelAliases
from provisioning.resources.pipelines import Pipelines
from provisioning.resources.templates import ComponentTemplates, IndexTemplates
from provisioning.resources.trained_models import TrainedModels

AnyKind = (
    License
    | TrainedModels
    | Deployments
    | ModelAliases
    | InferenceEndpoints
    | ComponentTemplates
    | Pipelines
    | IndexTemplates
    | Indices
)

ORDER: tuple[type[AnyKind], ...] = (
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


def all_kinds(cluster: Cluster) -> list[AnyKind]:
    """One of each kind, in dependency order: license -> trained models -> deployments -> model
    aliases -> inference endpoints -> component templates -> pipelines -> index templates -> indices."""
    return [kind(cluster) for kind in ORDER]


def kinds_by_name(cluster: Cluster) -> dict[str, AnyKind]:
    return {kind.kind: kind for kind in all_kinds(cluster)}


__all__ = ["ORDER", "AnyKind", "Desired", "ResourceKind", "all_kinds", "kinds_by_name"]
