"""Executing a Plan: in order, stopping at the first failure, reporting what was and wasn't done.

A rerun after a failure (or a kill) re-plans from the live cluster, so it picks up exactly where
the previous run stopped: there is no local state to get out of sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from provisioning.cluster import Cluster
from provisioning.errors import ProvisionError
from provisioning.plan import Change, Plan
from provisioning.resources import all_kinds
from provisioning.resources.base import ResourceKind

Status = Literal["applied", "failed", "not_attempted"]


class PlanNotApplicable(ProvisionError):
    """The plan has conflicts or blocked changes; nothing was written."""


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    status: Status
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.change.address,
            "action": self.change.action,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass
class ApplyReport:
    plan: Plan
    results: list[ChangeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status == "applied" for r in self.results)

    @property
    def failed(self) -> list[ChangeResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "applied": sum(r.status == "applied" for r in self.results),
            "failed": len(self.failed),
            "not_attempted": sum(r.status == "not_attempted" for r in self.results),
            "results": [r.to_json() for r in self.results],
        }


def check_applicable(plan: Plan) -> None:
    """Safety checks before any write: conflicts and blocked changes stop the whole apply."""
    problems = [f"{c.address}: {c.reason}; {c.hint}" for c in plan.conflicts]
    problems += [f"{c.address}: {c.blocked}" for c in plan.blocked]
    if problems:
        raise PlanNotApplicable(
            "refusing to apply; nothing was changed:\n" + "\n".join(f"  {p}" for p in problems)
        )


def apply_plan(
    plan: Plan,
    cluster: Cluster,
    *,
    kinds: Iterable[ResourceKind] | None = None,
    on_result: Callable[[ChangeResult], None] | None = None,
    on_start: Callable[[Change], None] | None = None,
) -> ApplyReport:
    """Execute ``plan``'s changes in order; the first failure stops the run."""
    check_applicable(plan)
    chosen = list(kinds) if kinds is not None else (plan.kinds or all_kinds(cluster, plan.context))
    by_kind = {k.kind: k for k in chosen}
    report = ApplyReport(plan)
    failed = False
    for change in plan.changes:
        if failed:
            report.results.append(ChangeResult(change, "not_attempted"))
            continue
        if on_start:
            on_start(change)
        kind = by_kind[change.kind]
        started = time.monotonic()
        try:
            _execute(kind, change)
        except ProvisionError as exc:
            failed = True
            result = ChangeResult(change, "failed", time.monotonic() - started, str(exc))
        else:
            result = ChangeResult(change, "applied", time.monotonic() - started)
        report.results.append(result)
        if on_result:
            on_result(result)
    return report


def _execute(kind: ResourceKind, change: Change) -> None:
    if change.action == "create":
        assert change.desired is not None
        kind.create(change.desired)
    elif change.action == "update":
        assert change.desired is not None and change.live is not None
        kind.update(change.desired, change.live)
    elif change.action == "replace":
        assert change.desired is not None and change.live is not None
        kind.replace(change.desired, change.live)
    else:
        assert change.live is not None
        kind.delete(change.live)
