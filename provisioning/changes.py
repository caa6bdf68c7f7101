"""The plan as data: declared and live resources, the Changes between them, and the Plan.

Like an octoDNS plan, a :class:`Plan` is a plain value: Changes (create, update, replace, delete,
each with before/after bodies and a field-level diff) in the order they must run, conflicts
(declared names that exist but are not this stack's), unchanged addresses and notes. It holds no
client, no resource kinds and no callbacks: :mod:`provisioning.planning` makes one,
:mod:`provisioning.executor` carries one out, and anything can render or store it in between
(``to_json`` is the published form, ``schema/plan.schema.json``).

Each resource kind adds its own typed fields to :class:`Desired` and :class:`Live` by subclassing
them (a deployment's ``wait_for``, a model's fingerprint), so nothing travels as an untyped bag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from provisioning.json_types import JsonObject
from provisioning.plan_document import plan_document
from provisioning.resources.diff import DiffEntry

MANAGED_BY = "provision"
# The key of an index mapping's ``_meta`` where ingest records which encoder filled each vector field
# (provisioning.image_ingest.encoder_record); kept when apply rewrites the index's ``_meta``.
ENCODERS_META = "provision_encoders"
Action = Literal["create", "update", "replace", "delete"]
Mode = Literal["apply", "destroy"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete")


@dataclass(frozen=True)
class Desired:
    """A resource as the stack declares it: its kind, its name, and the exact body that is sent.

    ``spec_path`` is where the stack file declares it (``("models", "clip-text", "deployment")``).
    """

    kind: str
    name: str
    body: JsonObject
    spec_path: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Live:
    """A resource as the cluster holds it, and who manages it (from its ``_meta``/``metadata``).

    ``owner`` is the stack recorded as managing it (None when provision does not manage it);
    ``managed_by`` is the tool recorded there (``provision`` for ours).
    """

    kind: str
    name: str
    body: JsonObject
    owner: str | None
    managed_by: str | None = None

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    def managed_by_stack(self, stack: str) -> bool:
        return self.managed_by == MANAGED_BY and self.owner == stack


@dataclass(frozen=True)
class Change:
    """One step of a plan: what is done to which resource, why, and what differs.

    ``before``/``after`` are the bodies as shown to people (kinds trim huge ones); ``diff`` lists
    the fields that differ. ``blocked`` says why the change must not be applied as it is (it would
    lose data or need a reindex); a plan with a blocked change is refused before any write.
    ``desired``/``live`` are the resources the executor works from.
    """

    kind: str
    name: str
    action: Action
    reason: str
    before: JsonObject | None
    after: JsonObject | None
    diff: list[DiffEntry] = field(default_factory=list)
    blocked: str | None = None
    desired: Desired | None = field(default=None, repr=False, compare=False)
    live: Live | None = field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Conflict:
    """A declared name that exists on the cluster but is not this stack's: never overwritten silently."""

    kind: str
    name: str
    reason: str
    hint: str

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Plan:
    """What ``apply`` (mode ``apply``) or ``destroy`` (mode ``destroy``) would do, in order.

    ``errors`` are refusals found before any write (the cluster's own dry runs, or a state that a
    resource cannot reach); a plan with errors, conflicts or blocked changes is not applicable.
    """

    stack: str
    cluster: str
    mode: Mode
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.conflicts)

    @property
    def blocked(self) -> list[Change]:
        return [c for c in self.changes if c.blocked]

    @property
    def applicable(self) -> bool:
        return not self.conflicts and not self.blocked and not self.errors

    def counts(self) -> dict[Action, int]:
        out: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            out[change.action] += 1
        return out

    def refusals(self) -> list[str]:
        """Why this plan must not be applied, one line per problem (empty when it is applicable)."""
        problems = [f"{c.address}: {c.reason}; {c.hint}" for c in self.conflicts]
        problems += [f"{c.address}: {c.blocked}" for c in self.blocked]
        problems += list(self.errors)
        return problems

    def to_json(self) -> JsonObject:
        """The published JSON form (``provision plan --output json``, ``schema/plan.schema.json``)."""
        return plan_document(self).model_dump(mode="json")
