"""``provision status``: per declared resource, whether it exists, is this stack's and has drifted,
with what the cluster reports about it (deployment state and allocations, document counts).

It is the planner's survey and plan read another way (:mod:`provisioning.planning`): a resource is
drifted exactly when the plan has a change for it, so ``status`` and ``plan`` cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioning.cluster import Cluster
from provisioning.json_types import JsonObject, JsonValue
from provisioning.planning import plan_from, survey
from provisioning.resources.diff import STATE_PATH
from provisioning.stackfile.stack import Stack


@dataclass(frozen=True)
class ResourceStatus:
    """One declared resource: present on the cluster, managed by this stack, drifted (and how)."""

    kind: str
    name: str
    present: bool
    managed: bool
    drifted: bool
    drift: list[str] = field(default_factory=list)
    details: JsonObject = field(default_factory=dict)
    reason: str | None = None  # why it is not in sync (the plan's reason), None when it is

    @property
    def ready(self) -> bool:
        """Whether the cluster reports the state the stack declares (a deployment allocated, an
        index not red); False for a resource that exists but is still short of it."""
        return f"change {STATE_PATH}" not in self.drift

    def to_json(self) -> JsonObject:
        drift: list[JsonValue] = [*self.drift]
        return {
            "address": f"{self.kind}/{self.name}",
            "kind": self.kind,
            "name": self.name,
            "present": self.present,
            "managed": self.managed,
            "drifted": self.drifted,
            "drift": drift,
            "details": self.details,
            "ready": self.ready,
            "reason": self.reason,
        }


@dataclass
class StatusReport:
    """Every declared resource's status; ``converged`` when all are present, managed and in sync."""

    stack: str
    cluster: str
    resources: list[ResourceStatus] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """Every declared resource present, this stack's, in sync and in its declared state."""
        return all(r.present and r.managed and not r.drifted for r in self.resources)

    def to_json(self) -> JsonObject:
        return {
            "stack": self.stack,
            "cluster": self.cluster,
            "converged": self.converged,
            "resources": [r.to_json() for r in self.resources],
        }


def status(stack: Stack, cluster: Cluster) -> StatusReport:
    """The status of every resource ``stack`` declares on ``cluster``; reads only (one request per
    resource kind, plus ``_count`` per declared index). Raises ClusterError when it cannot read."""
    readings, found = survey(stack, cluster)
    plan = plan_from(readings, found, stack, cluster, prune=False)
    changes = {c.address: c for c in plan.changes}
    conflicts = {c.address for c in plan.conflicts}
    report = StatusReport(stack.spec.name, cluster.url)
    for reading in readings:
        for want in reading.desired:
            have = reading.live.get(want.name)
            if have is None:
                missing = ResourceStatus(want.kind, want.name, False, False, False, reason="does not exist")
                report.resources.append(missing)
                continue
            change = changes.get(want.address)
            report.resources.append(
                ResourceStatus(
                    want.kind,
                    want.name,
                    True,
                    want.address not in conflicts,
                    change is not None,
                    [f"{d.op} {d.path}" for d in change.diff] if change else [],
                    reading.kind.status_details(have),
                    change.reason if change else None,
                )
            )
    return report
