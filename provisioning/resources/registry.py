"""Every resource kind a stack manages, in the order apply creates them; deletion runs backward.

The order puts what is cheap and can still be refused first, and the slow, costly steps (a model
upload, a deployment start: minutes on a real cluster) after it: templates are validated by the
cluster when they are put, so they go before the models; pipelines may name a model that does not
exist yet, but a model cannot be deleted while a pipeline names it, so pipelines go after the
models (and are deleted before them); indices, which use templates and pipelines, go last.
"""

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
    ComponentTemplates,
    IndexTemplates,
    TrainedModels,
    Deployments,
    ModelAliases,
    InferenceEndpoints,
    Pipelines,
    Indices,
)


def all_kinds(cluster: Cluster) -> list[AnyKind]:
    """One of each kind, in apply's order: license -> component templates -> index templates ->
    trained models -> deployments -> model aliases -> inference endpoints -> pipelines -> indices."""
    return [kind(cluster) for kind in ORDER]


def kinds_by_name(cluster: Cluster) -> dict[str, AnyKind]:
    return {kind.kind: kind for kind in all_kinds(cluster)}


__all__ = ["ORDER", "AnyKind", "Desired", "ResourceKind", "all_kinds", "kinds_by_name"]
