"""``provision status``: per resource, whether it exists, is this stack's, and has drifted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioning.cluster import Cluster
from provisioning.resources import all_kinds
from provisioning.resources.indices import Indices
from provisioning.spec.stack import Stack


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    name: str
    present: bool
    managed: bool
    drifted: bool
    drift: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": f"{self.kind}/{self.name}",
            "kind": self.kind,
            "name": self.name,
            "present": self.present,
            "managed": self.managed,
            "drifted": self.drifted,
            "drift": self.drift,
            "details": self.details,
        }


@dataclass
class StatusReport:
    stack: str
    cluster: str
    resources: list[ResourceStatus] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return all(r.present and r.managed and not r.drifted for r in self.resources)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "cluster": self.cluster,
            "converged": self.converged,
            "resources": [r.to_json() for r in self.resources],
        }


def stack_status(stack: Stack, cluster: Cluster) -> StatusReport:
    report = StatusReport(stack.spec.name, cluster.url)
    for kind in all_kinds(cluster):
        desired = kind.desired(stack)
        live = kind.read(stack, [d.name for d in desired])
        for want in desired:
            have = live.get(want.name)
            details: dict[str, Any] = {}
            if have is None:
                report.resources.append(ResourceStatus(want.kind, want.name, False, False, False))
                continue
            managed = have.managed_by_stack(stack.spec.name)
            comparison = kind.compare(want, have)
            details.update(kind.status_details(have))
            if isinstance(kind, Indices):
                details["docs"] = kind.doc_count(want.name)
            report.resources.append(
                ResourceStatus(
                    want.kind,
                    want.name,
                    True,
                    managed,
                    bool(comparison.diff),
                    [f"{d.op} {d.path}" for d in comparison.diff],
                    details,
                )
            )
    return report
