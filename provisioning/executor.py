"""Carrying out a Plan: in order, stopping at the first failure, reporting what was and wasn't done.

A rerun after a failure (or a kill) re-plans from the live cluster, so it picks up exactly where
the previous run stopped: there is no local state to get out of sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from provisioning.changes import Change, Plan
from provisioning.cluster import Cluster
from provisioning.embedding.tracing import Tracer
from provisioning.errors import ProvisionError
from provisioning.json_types import JsonObject
from provisioning.resources.base import ApplyContext, RolloverGate
from provisioning.resources.registry import kinds_by_name

Status = Literal["applied", "failed", "not_attempted"]


class PlanNotApplicable(ProvisionError):
    """The plan has conflicts, blocked changes or errors; nothing was written."""


@dataclass(frozen=True)
class ChangeResult:
    """What became of one change: applied, failed (with the error) or not attempted; seconds taken."""

    change: Change
    status: Status
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "address": self.change.address,
            "action": self.change.action,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass
class ApplyReport:
    """Every change of a plan with its result, in plan order."""

    plan: Plan
    results: list[ChangeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status == "applied" for r in self.results)

    @property
    def failed(self) -> list[ChangeResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_json(self) -> JsonObject:
        return {
            "ok": self.ok,
            "applied": sum(r.status == "applied" for r in self.results),
            "failed": len(self.failed),
            "not_attempted": sum(r.status == "not_attempted" for r in self.results),
            "results": [r.to_json() for r in self.results],
        }


def refusal(plan: Plan) -> str | None:
    """Why ``plan`` must not be applied (conflicts, blocked changes, the cluster's refusals), as one
    message listing every problem; None when it may be applied."""
    problems = plan.refusals()
    if not problems:
        return None
    return "refusing to apply; nothing was changed:\n" + "\n".join(f"  {p}" for p in problems)


def check_applicable(plan: Plan) -> None:
    """Safety checks before any write: raises PlanNotApplicable with :func:`refusal`'s message."""
    refused = refusal(plan)
    if refused:
        raise PlanNotApplicable(refused)


def apply(
    plan: Plan,
    cluster: Cluster,
    *,
    gate: RolloverGate | None = None,
    tracer: Tracer | None = None,
    on_start: Callable[[Change], None] | None = None,
    on_result: Callable[[ChangeResult], None] | None = None,
) -> ApplyReport:
    """Execute ``plan``'s changes in order against ``cluster``; the first failure stops the run.

    ``gate`` runs before a model alias moves to a new model (the rollover gate: it raises to keep
    the alias where it is); ``tracer`` traces models to upload (default: the cache under
    ``$PROVISION_CACHE_DIR``); ``on_start``/``on_result`` are called around each change. Raises
    PlanNotApplicable, before any write, for a plan with conflicts, blocked changes or errors.
    A failed change is reported, not raised: the report says what was applied, what failed (with
    Elasticsearch's reason) and what was not attempted.
    """
    check_applicable(plan)
    kinds = kinds_by_name(cluster)
    context = ApplyContext(tracer=tracer or Tracer(), gate=gate)
    report = ApplyReport(plan)
    failed = False
    for change in plan.changes:
        if failed:
            report.results.append(ChangeResult(change, "not_attempted"))
            continue
        if on_start:
            on_start(change)
        started = time.monotonic()
        try:
            kinds[change.kind].execute(change, context)
        except ProvisionError as exc:
            failed = True
            result = ChangeResult(change, "failed", time.monotonic() - started, str(exc))
        else:
            result = ChangeResult(change, "applied", time.monotonic() - started)
        report.results.append(result)
        if on_result:
            on_result(result)
    return report
