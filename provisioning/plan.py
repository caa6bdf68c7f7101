"""desired + actual -> an ordered Plan of Changes: data first, rendered elsewhere.

Like octoDNS, the plan is a value: a list of Changes with before/after and a field-level diff,
plus conflicts (declared names that exist but are not this stack's) and blocked changes (that
would lose data or need a reindex). ``apply`` refuses a plan with either, before any write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from provisioning.cluster import Cluster
from provisioning.resources import all_kinds
from provisioning.resources.base import Action, Desired, Live, PlanContext, ResourceKind
from provisioning.resources.diff import DiffEntry
from provisioning.spec.stack import Stack

PLAN_FORMAT_VERSION = 1
Mode = Literal["apply", "destroy"]


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: Action
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    diff: list[DiffEntry] = field(default_factory=list)
    blocked: str | None = None
    desired: Desired | None = field(default=None, repr=False, compare=False)
    live: Live | None = field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Conflict:
    kind: str
    name: str
    reason: str
    hint: str

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Plan:
    stack: str
    cluster: str
    mode: Mode
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The kinds that planned this, with their shared context: apply executes through them.
    kinds: list[ResourceKind] = field(default_factory=list, repr=False, compare=False)
    context: PlanContext = field(default_factory=PlanContext, repr=False, compare=False)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.conflicts)

    @property
    def blocked(self) -> list[Change]:
        return [c for c in self.changes if c.blocked]

    @property
    def applicable(self) -> bool:
        return not self.conflicts and not self.blocked

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "replace": 0, "delete": 0}
        for change in self.changes:
            out[change.action] += 1
        return out

    def to_document(self) -> PlanDocument:
        return PlanDocument(
            format_version=PLAN_FORMAT_VERSION,
            stack=self.stack,
            cluster=self.cluster,
            mode=self.mode,
            has_changes=self.has_changes,
            applicable=self.applicable,
            summary=PlanSummary(**self.counts(), conflicts=len(self.conflicts), blocked=len(self.blocked)),
            changes=[
                ChangeDocument(
                    address=c.address,
                    kind=c.kind,
                    name=c.name,
                    action=c.action,
                    reason=c.reason,
                    blocked=c.blocked,
                    before=c.before,
                    after=c.after,
                    diff=[DiffDocument(**d.to_json()) for d in c.diff],
                )
                for c in self.changes
            ],
            conflicts=[
                ConflictDocument(address=c.address, kind=c.kind, name=c.name, reason=c.reason, hint=c.hint)
                for c in self.conflicts
            ],
            unchanged=list(self.unchanged),
            notes=list(self.notes),
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_document().model_dump(mode="json")


# -- the published JSON form (schema/plan.schema.json is generated from these) ----------------
class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiffDocument(_Doc):
    path: str
    op: Literal["add", "remove", "change"]
    before: Any = None
    after: Any = None


class ChangeDocument(_Doc):
    address: str
    kind: str
    name: str
    action: Literal["create", "update", "replace", "delete"]
    reason: str
    blocked: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    diff: list[DiffDocument]


class ConflictDocument(_Doc):
    address: str
    kind: str
    name: str
    reason: str
    hint: str


class PlanSummary(_Doc):
    create: int
    update: int
    replace: int
    delete: int
    conflicts: int
    blocked: int


class PlanDocument(_Doc):
    """``provision plan --output json``: stable; new fields may be added, none removed or renamed
    without a new ``format_version``."""

    format_version: Literal[1]
    stack: str
    cluster: str
    mode: Literal["apply", "destroy"]
    has_changes: bool
    applicable: bool
    summary: PlanSummary
    changes: list[ChangeDocument]
    conflicts: list[ConflictDocument]
    unchanged: list[str]
    notes: list[str]


def plan_schema() -> dict[str, Any]:
    schema = PlanDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "plan.schema.json", **schema}


# -- planning ---------------------------------------------------------------------------------
def _conflict(desired: Desired, live: Live, stack: Stack) -> Conflict:
    if live.managed_by == "provision" and live.owner:
        reason = f"exists and is managed by another stack ('{live.owner}')"
    else:
        reason = "exists and is not managed by provision"
    hint = (
        f"to take it over on purpose, run with --adopt {desired.kind}/{desired.name} "
        f"(its body will be replaced by the one in {stack.path.name}); or rename it in the stack"
    )
    return Conflict(desired.kind, desired.name, reason, hint)


def _plan_kind(
    kind: ResourceKind,
    stack: Stack,
    plan: Plan,
    deletes: list[Change],
    adopt: set[str],
    include_data: bool,
    prune: bool,
) -> None:
    desired = kind.desired(stack)
    live = kind.read(stack, [d.name for d in desired])
    kind.context.live[kind.kind] = live
    declared = {d.name for d in desired}
    for want in desired:
        have = live.get(want.name)
        address = f"{want.kind}/{want.name}"
        if have is None:
            plan.changes.append(
                Change(
                    want.kind,
                    want.name,
                    "create",
                    f"{kind.title} does not exist",
                    None,
                    kind.describe(want.body),
                    desired=want,
                )
            )
            continue
        adopted = address in adopt
        if not have.managed_by_stack(stack.spec.name) and not adopted:
            plan.conflicts.append(_conflict(want, have, stack))
            continue
        comparison = kind.compare(want, have)
        if comparison.action is None and not adopted:
            plan.unchanged.append(address)
            continue
        action = comparison.action or "update"
        reason = comparison.reason or (
            "adopted: provision takes it over"
            if adopted
            else f"{len(comparison.diff)} field(s) differ from the stack"
        )
        plan.changes.append(
            Change(
                want.kind,
                want.name,
                action,
                reason,
                kind.describe(have.body),
                kind.describe(want.body),
                comparison.diff,
                comparison.blocked,
                desired=want,
                live=have,
            )
        )
    for change in plan.changes:
        if change.kind == kind.kind:
            kind.context.planned[change.address] = change.action
    if prune and kind.prunable:
        for name, have in live.items():
            if name not in declared and have.managed_by_stack(stack.spec.name):
                blocked = kind.delete_blocked(have, include_data=include_data)
                deletes.append(
                    Change(
                        have.kind,
                        name,
                        "delete",
                        f"managed by this stack but no longer declared in {stack.path.name}",
                        kind.describe(have.body),
                        None,
                        blocked=blocked,
                        live=have,
                    )
                )


def _kinds(cluster: Cluster, kinds: Iterable[ResourceKind] | None) -> tuple[list[ResourceKind], PlanContext]:
    context = PlanContext()
    if kinds is None:
        return all_kinds(cluster, context), context
    chosen = list(kinds)
    for kind in chosen:
        kind.context = context
    return chosen, context


def make_plan(
    stack: Stack,
    cluster: Cluster,
    *,
    kinds: Iterable[ResourceKind] | None = None,
    adopt: Iterable[str] = (),
    include_data: bool = False,
    prune: bool = True,
) -> Plan:
    """What ``apply`` would do: creates and updates in dependency order, then deletions in reverse."""
    chosen, context = _kinds(cluster, kinds)
    plan = Plan(stack=stack.spec.name, cluster=cluster.url, mode="apply", kinds=chosen, context=context)
    deletes_by_kind: list[list[Change]] = []
    adopt_set = set(adopt)
    for kind in chosen:
        deletes: list[Change] = []
        _plan_kind(kind, stack, plan, deletes, adopt_set, include_data, prune)
        deletes_by_kind.append(deletes)
    for deletes in reversed(deletes_by_kind):
        plan.changes.extend(deletes)
    unknown = adopt_set - {c.address for c in plan.changes}
    for address in sorted(unknown):
        plan.notes.append(f"--adopt {address}: nothing by that name needed adopting")
    for kind in chosen:
        plan.notes.extend(kind.plan_notes([c.action for c in plan.changes if c.kind == kind.kind]))
    plan.notes.extend(context.notes)
    return plan


def make_destroy_plan(
    stack: Stack,
    cluster: Cluster,
    *,
    kinds: Iterable[ResourceKind] | None = None,
    include_data: bool = False,
) -> Plan:
    """Deletion of everything this stack manages, in reverse dependency order; nothing else is touched."""
    chosen, context = _kinds(cluster, kinds)
    plan = Plan(stack=stack.spec.name, cluster=cluster.url, mode="destroy", kinds=chosen, context=context)
    read: list[tuple[ResourceKind, dict[str, Live]]] = []
    for kind in chosen:  # read forward: ownership of later kinds depends on earlier ones
        live = kind.read(stack, [d.name for d in kind.desired(stack)])
        context.live[kind.kind] = live
        read.append((kind, live))
    for kind, live in reversed(read):
        if kind.kind == "license":
            continue
        for name, have in live.items():
            if not have.managed_by_stack(stack.spec.name):
                plan.notes.append(f"{kind.kind}/{name} exists but is not managed by this stack: left alone")
                continue
            plan.changes.append(
                Change(
                    have.kind,
                    name,
                    "delete",
                    "destroy",
                    kind.describe(have.body),
                    None,
                    blocked=kind.delete_blocked(have, include_data=include_data),
                    live=have,
                )
            )
    return plan
