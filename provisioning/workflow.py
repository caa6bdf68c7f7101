"""The workflows that change a cluster: converge a stack (plan, checks, apply, ingest, smoke tests)
and destroy one, each one library call that returns one report.

As octoDNS's ``Manager.sync`` owns its workflow and leaves its command a shell, :func:`converge`
owns ``provision apply``: the CLI, the Ansible module and any program call it the same way and read
the same :class:`ConvergeReport` (``to_json`` is what ``provision apply --output json`` prints).
Interaction is passed in: ``approve`` is asked before the first write, ``on_plan``/``on_change``
see progress, and the rollover gate in front of alias moves is an explicit option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from provisioning.changes import Plan
from provisioning.cluster import Cluster
from provisioning.embedding.tracing import Tracer
from provisioning.errors import ProvisionError
from provisioning.executor import ApplyReport, ChangeResult, apply, refusal
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import IngestReport
from provisioning.image_ingest.run import ingest
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.json_types import JsonObject
from provisioning.planning import destroy_plan, plan
from provisioning.resources.base import RolloverGate
from provisioning.smoke_tests import VerifyReport, rollover_gate, verify
from provisioning.stackfile.ray_schema import Engine
from provisioning.stackfile.stack import Stack

Stage = Literal["plan", "apply", "ingest", "verify"]
GateChoice = RolloverGate | Literal["smoke_tests"] | None


@dataclass(frozen=True)
class ConvergeOptions:
    """How :func:`converge` runs.

    ``adopt``: resources (``kind/name``) to take over from another owner; ``include_data``: allow
    deleting indices that hold documents; ``skip_ingest``/``skip_verify``: stop after converging
    resources / after ingest. ``approve`` is asked, once, before the first write when the plan has
    changes (None approves, like ``--auto-approve``). ``gate`` runs before a model alias moves:
    ``"smoke_tests"`` (default) runs that model's smoke tests against the new model, None moves
    without a check, a callable is used as given. ``on_plan`` sees the plan before anything is
    written, ``on_change`` each change's result as it happens, ``progress`` the ingest jobs.
    ``max_failed`` overrides each ingest job's tolerance for failed files (``max_failed`` in the
    stack; by default none): more failed files than tolerated stop the converge at ``"ingest"``.
    ``engine`` (``local`` or ``ray``) overrides each ingest job's engine; ``ray_address`` is the Ray
    cluster to join (default: ``RAY_ADDRESS``, else a local Ray instance).
    """

    adopt: tuple[str, ...] = ()
    include_data: bool = False
    skip_ingest: bool = False
    skip_verify: bool = False
    approve: Callable[[Plan], bool] | None = None
    gate: GateChoice = "smoke_tests"
    on_plan: Callable[[Plan], None] | None = None
    on_change: Callable[[ChangeResult], None] | None = None
    progress: Progress | None = None
    tracer: Tracer | None = None
    max_failed: FailureTolerance | None = None
    engine: Engine | None = None
    ray_address: str | None = None


@dataclass
class ConvergeReport:
    """What one converge did: the plan, the apply, the ingest and smoke test reports (each None when
    that stage did not run) and, when it stopped early, the stage and why."""

    plan: Plan
    apply: ApplyReport | None = None
    ingest: IngestReport | None = None
    verify: VerifyReport | None = None
    stopped_at: Stage | None = None
    error: str | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.stopped_at is None and not self.cancelled

    def to_json(self) -> JsonObject:
        """``provision apply --output json``: the stages that ran, ``ok``, and ``stopped_at`` and
        ``error`` when it stopped early."""
        document: JsonObject = {"ok": self.ok, "plan": self.plan.to_json()}
        if self.apply is not None:
            document["apply"] = self.apply.to_json()
        if self.ingest is not None:
            document["ingest"] = self.ingest.to_dict()
        if self.verify is not None:
            document["verify"] = self.verify.to_json()
        if self.stopped_at is not None:
            document["stopped_at"] = self.stopped_at
        if self.error is not None:
            document["error"] = self.error
        if self.cancelled:
            document["cancelled"] = True
        return document


def converge(stack: Stack, cluster: Cluster, options: ConvergeOptions | None = None) -> ConvergeReport:
    """Make ``cluster`` match ``stack``, fill it with embeddings and prove it works: plan, safety
    checks (conflicts, blocked changes, the cluster's refusals: nothing is written when any is
    found), apply in dependency order (models -> deployments -> aliases -> inference endpoints ->
    component templates -> pipelines -> index templates -> indices, deletions in reverse), the
    ingest jobs (incremental), then the smoke tests.

    Stops at the first stage that fails and says where (``stopped_at``) and why (``error``, or the
    failed stage's report). A converged stack sends no write request. Raises ClusterError only when
    the cluster cannot be read for the plan; later failures are in the report.
    """
    opts = options or ConvergeOptions()
    the_plan = plan(stack, cluster, adopt=opts.adopt, include_data=opts.include_data)
    report = ConvergeReport(the_plan)
    if opts.on_plan is not None:
        opts.on_plan(the_plan)
    refused = refusal(the_plan)
    if refused:
        report.stopped_at, report.error = "plan", refused
        return report
    if the_plan.changes:
        if opts.approve is not None and not opts.approve(the_plan):
            report.cancelled = True
            return report
        gate = rollover_gate(stack, cluster) if opts.gate == "smoke_tests" else opts.gate
        report.apply = apply(the_plan, cluster, gate=gate, tracer=opts.tracer, on_result=opts.on_change)
        if not report.apply.ok:
            report.stopped_at = "apply"
            report.error = "; ".join(f"{r.change.address}: {r.error}" for r in report.apply.failed)
            return report
    if stack.spec.ingest and not opts.skip_ingest:
        try:
            report.ingest = ingest(
                stack,
                cluster,
                progress=opts.progress,
                max_failed=opts.max_failed,
                engine=opts.engine,
                ray_address=opts.ray_address,
            )
        except ProvisionError as exc:
            report.stopped_at, report.error = "ingest", str(exc)
            return report
        if not report.ingest.ok:
            # Every job ran to its end; the run fails for what it could not index, or for more
            # failed files than a job tolerates.
            report.stopped_at, report.error = "ingest", report.ingest.problem
            return report
    if stack.spec.smoke_tests and not opts.skip_verify:
        report.verify = verify(stack, cluster)
        if not report.verify.ok:
            report.stopped_at = "verify"
    return report


@dataclass(frozen=True)
class DestroyOptions:
    """How :func:`destroy` runs: ``include_data`` allows deleting indices that hold documents;
    ``approve``, ``on_plan`` and ``on_change`` as in :class:`ConvergeOptions`."""

    include_data: bool = False
    approve: Callable[[Plan], bool] | None = None
    on_plan: Callable[[Plan], None] | None = None
    on_change: Callable[[ChangeResult], None] | None = None


@dataclass
class DestroyReport:
    """The destroy plan and what became of each deletion."""

    plan: Plan
    apply: ApplyReport | None = None
    error: str | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled and (self.apply is None or self.apply.ok)

    def to_json(self) -> JsonObject:
        document: JsonObject = {"ok": self.ok, "plan": self.plan.to_json()}
        if self.apply is not None:
            document["apply"] = self.apply.to_json()
        if self.error is not None:
            document["error"] = self.error
        if self.cancelled:
            document["cancelled"] = True
        return document


def destroy(stack: Stack, cluster: Cluster, options: DestroyOptions | None = None) -> DestroyReport:
    """Delete everything ``stack`` manages on ``cluster``, in reverse dependency order; resources it
    does not manage are left alone (and noted in the plan). An index holding documents is deleted
    only with ``include_data``; otherwise nothing at all is deleted and ``error`` says why.
    """
    opts = options or DestroyOptions()
    the_plan = destroy_plan(stack, cluster, include_data=opts.include_data)
    report = DestroyReport(the_plan)
    if opts.on_plan is not None:
        opts.on_plan(the_plan)
    refused = refusal(the_plan)
    if refused:
        report.error = refused
        return report
    if not the_plan.changes:
        return report
    if opts.approve is not None and not opts.approve(the_plan):
        report.cancelled = True
        return report
    report.apply = apply(the_plan, cluster, on_result=opts.on_change)
    return report
