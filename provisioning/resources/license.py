"""The license ML needs: a trial is started when the stack opts in (``cluster.license: trial``).

Elasticsearch runs trained model deployments only under a trial, platinum or enterprise license
(``GET _license``; ``POST _license/start_trial``, once per cluster, ``GET _license/trial_status``).
Licenses are never removed, so this kind is neither pruned nor destroyed.
"""

from __future__ import annotations

from provisioning.changes import MANAGED_BY, Desired, Live
from provisioning.cluster import ClusterError
from provisioning.json_types import as_object, as_str
from provisioning.resources.base import ApplyContext, Comparison, ResourceKind, Survey
from provisioning.resources.diff import DiffEntry
from provisioning.stackfile.stack import Stack

ML_LICENSES = ("trial", "platinum", "enterprise")


class License(ResourceKind[Desired]):
    kind = "license"
    title = "license"
    desired_type = Desired
    prunable = False

    def desired(self, stack: Stack) -> list[Desired]:
        if stack.spec.cluster.license != "trial":
            return []
        return [Desired(self.kind, "trial", {"type": "trial"}, ("cluster", "license"))]

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        if not names:
            return {}
        found = self.call("read license", self.client.license.get)
        kind = as_str(as_object(found.get("license")).get("type"), "basic")
        return {"trial": Live(self.kind, "trial", {"type": kind}, stack.spec.name, MANAGED_BY)}

    def compare(self, desired: Desired, live: Live, survey: Survey) -> Comparison:
        if live.body.get("type") in ML_LICENSES:
            return Comparison([], None)
        status = self.call("read trial status", self.client.license.get_trial_status)
        changes = [DiffEntry("type", "change", live.body.get("type"), "trial")]
        if status.get("eligible_to_start_trial") is not True:
            return Comparison(
                changes,
                "update",
                blocked="the cluster has a basic license and its trial was already used; ML needs a platinum or enterprise license",
            )
        return Comparison(changes, "update", reason="start a 30-day trial license (ML deployments need it)")

    def create(self, desired: Desired, context: ApplyContext) -> None:
        """``POST _license/start_trial?acknowledge=true``; an answer that the trial did not start is
        an error (the next plan shows the license change again), not a change done."""
        answer = self.call("start trial license", self.client.license.post_start_trial, acknowledge=True)
        if answer.get("trial_was_started") is not True:
            why = as_str(answer.get("error_message")) or "Elasticsearch did not say why"
            raise ClusterError(f"the trial license did not start: {why}")

    def delete(self, live: Live, context: ApplyContext) -> None:
        """Licenses are never removed."""
