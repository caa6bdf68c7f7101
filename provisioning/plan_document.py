"""The published JSON form of a plan: ``provision plan --output json``, ``schema/plan.schema.json``.

Stable for programs (CI jobs, the Ansible module): new fields may be added, none removed or renamed
without a new ``format_version``. ``provision schema --plan`` prints the schema generated from these
classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from provisioning.json_types import SchemaObject, SchemaValue

if TYPE_CHECKING:
    from provisioning.changes import Plan

PLAN_FORMAT_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiffDocument(_Doc):
    path: str
    op: Literal["add", "remove", "change"]
    before: SchemaValue = Field(None, title="Before")
    after: SchemaValue = Field(None, title="After")


class ChangeDocument(_Doc):
    address: str
    kind: str
    name: str
    action: Literal["create", "update", "replace", "delete"]
    reason: str
    blocked: str | None
    before: SchemaObject | None
    after: SchemaObject | None
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
    errors: int = 0


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
    errors: list[str] = Field(
        default_factory=list,
        description="refusals found before any write (the cluster's dry runs); the plan is not applicable",
    )


def plan_document(plan: Plan) -> PlanDocument:
    """``plan`` in its published form."""
    counts = plan.counts()
    return PlanDocument(
        format_version=PLAN_FORMAT_VERSION,
        stack=plan.stack,
        cluster=plan.cluster,
        mode=plan.mode,
        has_changes=plan.has_changes,
        applicable=plan.applicable,
        summary=PlanSummary(
            create=counts["create"],
            update=counts["update"],
            replace=counts["replace"],
            delete=counts["delete"],
            conflicts=len(plan.conflicts),
            blocked=len(plan.blocked),
            errors=len(plan.errors),
        ),
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
                diff=[DiffDocument(path=d.path, op=d.op, before=d.before, after=d.after) for d in c.diff],
            )
            for c in plan.changes
        ],
        conflicts=[
            ConflictDocument(address=c.address, kind=c.kind, name=c.name, reason=c.reason, hint=c.hint)
            for c in plan.conflicts
        ],
        unchanged=list(plan.unchanged),
        notes=list(plan.notes),
        errors=list(plan.errors),
    )


def plan_schema() -> dict[str, JsonValue]:
    """The JSON Schema (draft 2020-12) of :class:`PlanDocument`."""
    schema = PlanDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "plan.schema.json", **schema}
