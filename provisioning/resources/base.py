"""What every resource kind provides: declared bodies, live reads, comparison, and the writes.

A kind is a small class that holds nothing but the cluster it talks to. The planner does not know
what an index template is; it asks each kind, in dependency order, what the stack declares
(:meth:`ResourceKind.desired`), what the cluster holds (:meth:`ResourceKind.read`) and what it takes
to get from one to the other (:meth:`ResourceKind.compare`). The executor hands each :class:`Change`
back to its kind (:meth:`ResourceKind.execute`) with an :class:`ApplyContext` holding what writes
need beyond the change itself (the tracer for models, the rollover gate for aliases).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Generic, ParamSpec, TypeVar

from elastic_transport import ObjectApiResponse
from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.changes import MANAGED_BY, Action, Change, Desired, Live
from provisioning.cluster import Cluster
from provisioning.json_types import JsonObject, JsonValue, as_str, to_json_object
from provisioning.resources.diff import DiffEntry, body_hash
from provisioning.stackfile.stack import Stack

if TYPE_CHECKING:
    from provisioning.embedding.tracing import Tracer

D = TypeVar("D", bound=Desired)
P = ParamSpec("P")

RolloverGate = Callable[[str, str], None]
"""Called before a model alias moves: ``(model spec name, new model id)``; raises to stop the move."""


@dataclass
class Survey:
    """What the planner has learned so far in one run, for kinds that depend on earlier ones.

    ``live`` holds every kind's live objects by kind then name (a deployment is this stack's when its
    model is); ``planned`` the action planned per address (a deployment restarts when its model is
    replaced); ``notes`` what kinds want said in the plan.
    """

    live: dict[str, dict[str, Live]] = field(default_factory=dict)
    planned: dict[str, Action] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyContext:
    """What writes need beyond the change: the model tracer and the gate in front of alias moves."""

    tracer: Tracer
    gate: RolloverGate | None = None


@dataclass(frozen=True)
class Comparison:
    """How a live resource differs from its declared state, and what it takes to converge."""

    diff: list[DiffEntry]
    action: Action | None  # None when nothing differs
    blocked: str | None = None  # why the change cannot be applied as it is (e.g. requires reindex)
    reason: str | None = None


def ownership_meta(
    stack: Stack, body_without_meta: JsonValue, user_meta: Mapping[str, JsonValue] | None = None
) -> JsonObject:
    """The ``_meta`` (or ``metadata``) that marks a resource as this stack's: ``managed_by``,
    ``stack`` and ``spec_hash`` (a hash of the body it was written from), over the user's own keys."""
    meta: JsonObject = dict(user_meta or {})
    meta.update(
        {"managed_by": MANAGED_BY, "stack": stack.spec.name, "spec_hash": body_hash(body_without_meta)}
    )
    return meta


def owner_of(meta: JsonValue) -> tuple[str | None, str | None]:
    """``(managed_by, stack)`` recorded in a resource's ``_meta``/``metadata``."""
    if isinstance(meta, dict):
        return as_str(meta.get("managed_by")) or None, as_str(meta.get("stack")) or None
    return None, None


class ResourceKind(ABC, Generic[D]):
    """One kind of Elasticsearch object that a stack manages, declared with ``D`` as its payload."""

    kind: ClassVar[str]
    title: ClassVar[str]
    desired_type: type[D]
    prunable: ClassVar[bool] = True  # whether undeclared managed objects of this kind are deleted

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.client = cluster.client

    # -- planning ------------------------------------------------------------------------------
    @abstractmethod
    def desired(self, stack: Stack) -> list[D]:
        """What the stack declares for this kind, in the order it should be created."""

    @abstractmethod
    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        """The live objects named ``names`` plus every other one this stack manages (for pruning)."""

    @abstractmethod
    def compare(self, desired: D, live: Live, survey: Survey) -> Comparison:
        """Differences between the declared and live object, and the action that converges them."""

    def compare_desired(self, desired: Desired, live: Live, survey: Survey) -> Comparison:
        """:meth:`compare` for a declared resource of this kind given by its base type."""
        return self.compare(self.narrow(desired), live, survey)

    def dry_run(self, desired: D, stack: Stack) -> str | None:
        """Ask Elasticsearch, without writing, whether it would accept ``desired`` (the way
        ``kubectl apply --dry-run=server`` does); its refusal, or None. Kinds without a dry-run API
        accept everything here (their bodies are checked offline by ``validate``)."""
        return None

    def dry_run_desired(self, desired: Desired, stack: Stack) -> str | None:
        """:meth:`dry_run` for a declared resource of this kind given by its base type."""
        return self.dry_run(self.narrow(desired), stack)

    def delete_blocked(self, live: Live, *, include_data: bool) -> str | None:
        """Why deleting ``live`` must not happen now (e.g. an index holding documents)."""
        return None

    def plan_notes(self, actions: list[Action]) -> list[str]:
        """Notes for the plan given the actions planned for this kind (e.g. version warnings)."""
        return []

    def status_details(self, live: Live) -> JsonObject:
        """Extra facts ``provision status`` shows for a live object (e.g. allocation counts)."""
        return {}

    def describe(self, body: JsonObject) -> JsonObject:
        """The body as shown in a plan (kinds with huge bodies trim them here)."""
        return dict(body)

    # -- applying ------------------------------------------------------------------------------
    def execute(self, change: Change, context: ApplyContext) -> None:
        """Carry out one planned change of this kind."""
        if change.action == "delete":
            if change.live is None:
                raise ValueError(f"{change.address}: a delete needs the live object")
            self.delete(change.live, context)
            return
        desired = self.narrow(change.desired)
        if change.action == "create":
            self.create(desired, context)
        elif change.action == "update":
            self.update(change, desired, context)
        else:
            self.replace(change, desired, context)

    def narrow(self, desired: Desired | None) -> D:
        """``desired`` with this kind's typed fields (it was made by this kind's :meth:`desired`)."""
        if not isinstance(desired, self.desired_type):
            raise TypeError(f"expected a {self.desired_type.__name__}, got {type(desired).__name__}")
        return desired

    @abstractmethod
    def create(self, desired: D, context: ApplyContext) -> None: ...

    def update(self, change: Change, desired: D, context: ApplyContext) -> None:
        self.create(desired, context)

    def replace(self, change: Change, desired: D, context: ApplyContext) -> None:
        if change.live is not None:
            self.delete(change.live, context)
        self.create(desired, context)

    @abstractmethod
    def delete(self, live: Live, context: ApplyContext) -> None: ...

    # -- talking to the cluster ----------------------------------------------------------------
    def call(
        self,
        action: str,
        func: Callable[P, ObjectApiResponse[object]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> JsonObject:
        """Run one client call and return its body; a failure becomes a ClusterError that says what
        was attempted (:meth:`Cluster.error`)."""
        try:
            return body_of(func(*args, **kwargs))
        except (ApiError, TransportError) as exc:
            raise self.cluster.error(exc, action) from None

    def call_or_none(
        self,
        action: str,
        func: Callable[P, ObjectApiResponse[object]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> JsonObject | None:
        """:meth:`call`, where a 404 answers None: reads of things that may not exist, deletes of
        things already gone."""
        try:
            return body_of(func(*args, **kwargs))
        except NotFoundError:
            return None
        except (ApiError, TransportError) as exc:
            raise self.cluster.error(exc, action) from None


def body_of(response: ObjectApiResponse[object]) -> JsonObject:
    """A response's JSON body as a typed object (an empty one for bodiless answers)."""
    body = response.body
    return to_json_object(body) if isinstance(body, Mapping) else {}
