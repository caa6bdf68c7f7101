"""``provision status``: per declared resource, whether it exists, is this stack's and has drifted,
with what the cluster reports about it (deployment state and allocations, document counts).

It is the planner's survey and plan read another way (:mod:`provisioning.planning`): a resource is
drifted exactly when the plan has a change for it, so ``status`` and ``plan`` cannot disagree.

Indices also show which encoder filled each vector field (``vectors.<field>``, from the record
ingest keeps in the mapping's ``_meta``) and, when the stack now declares another encoder for it,
that the next incremental ingest will refuse (``vectors.<field>.next_ingest``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioning.changes import Live
from provisioning.cluster import Cluster
from provisioning.json_types import JsonObject, JsonValue, as_object
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
                    {**reading.kind.status_details(have), **_vector_details(stack, have)},
                    change.reason if change else None,
                )
            )
    return report


def _vector_details(stack: Stack, live: Live) -> JsonObject:
    """For an index: the encoder recorded for each vector field, and a warning when the stack's ingest
    jobs for that field now declare an encoder with other vectors (the next ingest refuses)."""
    if live.kind != "index":
        return {}
    from provisioning.embedding.loading import declared_fingerprint
    from provisioning.image_ingest.encoder_record import EncoderRecord, records_in

    meta = as_object(as_object(live.body.get("mappings")).get("_meta"))
    details: JsonObject = {}
    for vector_field, record in sorted(records_in(meta).items()):
        if not isinstance(record, EncoderRecord):
            details[f"vectors.{vector_field}"] = f"unreadable record: {record}"
            continue
        text = record.describe()
        if record.replacing is not None:
            text += f"; a --full re-embed replacing vectors {record.replacing} has not finished"
        details[f"vectors.{vector_field}"] = text
        for name, job in stack.spec.ingest.items():
            spec = stack.spec.encoders.get(job.encoder)
            if job.index != live.name or job.vector_field != vector_field or spec is None:
                continue
            declared = declared_fingerprint(spec, stack.base_dir)
            if declared is not None and declared.vectors_id != record.fingerprint.vectors_id:
                details[f"vectors.{vector_field}.next_ingest"] = (
                    f"refused: ingest job '{name}' declares {job.encoder}: {declared.describe()}; run "
                    f"`provision ingest STACK {name} --full` to re-embed"
                )
    return details
