"""What every resource kind provides to the planner: desired bodies, live reads, comparison, writes.

A kind is a small class with no state beyond the cluster it is given. The planner does not know
what an index template is; it asks each kind, in dependency order, what should exist, what does,
and what it would take to get from one to the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.cluster import Cluster
from provisioning.resources.diff import DiffEntry, body_hash
from provisioning.spec.stack import Stack

MANAGED_BY = "provision"
Action = Literal["create", "update", "replace", "delete"]


@dataclass(frozen=True)
class Desired:
    """A resource as the stack declares it, with the exact body that would be sent."""

    kind: str
    name: str
    body: dict[str, Any]
    spec_path: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Live:
    """A resource as the cluster holds it."""

    kind: str
    name: str
    body: dict[str, Any]
    owner: str | None  # the stack that manages it, None when not managed by provision
    managed_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def managed_by_stack(self, stack: str) -> bool:
        return self.managed_by == MANAGED_BY and self.owner == stack


@dataclass
class PlanContext:
    """What kinds planned earlier in the same run know, for kinds that depend on them.

    A deployment is this stack's when its model is; a deployment must be restarted when its model
    is replaced; an alias flip runs the smoke tests first (``gate``).
    """

    live: dict[str, dict[str, Live]] = field(default_factory=dict)
    planned: dict[str, str] = field(default_factory=dict)  # address -> action
    notes: list[str] = field(default_factory=list)
    gate: Any = None  # Callable[[str, str], None]: (model spec name, new model id) -> raises if unfit


@dataclass(frozen=True)
class Comparison:
    """How a live resource differs from its desired state, and what it takes to converge."""

    diff: list[DiffEntry]
    action: Action | None  # None when nothing differs
    blocked: str | None = None  # why the change cannot be applied as is (e.g. requires reindex)
    reason: str | None = None


def ownership_meta(
    stack: Stack, body_without_meta: Mapping[str, Any], user_meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``_meta`` (or ``metadata``) that marks a resource as this stack's."""
    meta = dict(user_meta or {})
    meta.update(
        {"managed_by": MANAGED_BY, "stack": stack.spec.name, "spec_hash": body_hash(body_without_meta)}
    )
    return meta


def owner_of(meta: Any) -> tuple[str | None, str | None]:
    if isinstance(meta, Mapping):
        managed_by = meta.get("managed_by")
        stack = meta.get("stack")
        return (str(managed_by) if managed_by else None), (str(stack) if stack else None)
    return None, None


class ResourceKind(ABC):
    """One kind of Elasticsearch object that a stack manages."""

    kind: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, cluster: Cluster, context: PlanContext | None = None) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.context = context or PlanContext()

    @abstractmethod
    def desired(self, stack: Stack) -> list[Desired]:
        """What the stack declares for this kind, in the order it should be created."""

    @abstractmethod
    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        """The live objects named ``names`` plus every other one this stack manages (for pruning)."""

    @abstractmethod
    def compare(self, desired: Desired, live: Live) -> Comparison:
        """Differences between the declared and live object, and the action that converges them."""

    @abstractmethod
    def create(self, desired: Desired) -> None: ...

    def update(self, desired: Desired, live: Live) -> None:
        self.create(desired)

    def replace(self, desired: Desired, live: Live) -> None:
        self.delete(live)
        self.create(desired)

    @abstractmethod
    def delete(self, live: Live) -> None: ...

    prunable: ClassVar[bool] = True  # whether undeclared managed objects of this kind are deleted

    def delete_blocked(self, live: Live, *, include_data: bool) -> str | None:
        """Why deleting ``live`` must not happen now (e.g. an index holding documents)."""
        return None

    def plan_notes(self, actions: list[str]) -> list[str]:
        """Notes for the plan given the actions planned for this kind (e.g. version warnings)."""
        return []

    def status_details(self, live: Live) -> dict[str, Any]:
        """Extra facts ``provision status`` shows for a live object (e.g. allocation counts)."""
        return {}

    def describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body as shown in a plan (kinds with huge bodies trim them here)."""
        return dict(body)

    def call(self, action: str, func: Any, /, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        """Run one client call, turning its failure into a ClusterError that says what was attempted.

        With ``missing_ok``, a 404 answers None: reads of things that may not exist, deletes of
        things already gone.
        """
        try:
            return func(*args, **kwargs)
        except NotFoundError as exc:
            if missing_ok:
                return None
            raise self.cluster.error(exc, action) from None
        except (ApiError, TransportError) as exc:
            raise self.cluster.error(exc, action) from None
