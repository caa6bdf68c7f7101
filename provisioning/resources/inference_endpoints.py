"""``_inference`` endpoints of service ``elasticsearch`` backed by a declared model's deployment.

Endpoints have no metadata field, so ownership is structural: an endpoint is this stack's when it
is declared here, or when it serves a deployment of a model this stack manages. They cannot be
updated in place, so any difference is a replace.
"""

from __future__ import annotations

from typing import Any

from provisioning.resources.base import Comparison, Desired, Live, ResourceKind
from provisioning.resources.diff import diff
from provisioning.spec.stack import Stack


class InferenceEndpoints(ResourceKind):
    kind = "inference_endpoint"
    title = "inference endpoint"

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.inference_endpoints.items():
            model = stack.spec.models[spec.model]
            deployment_id = (model.deployment.deployment_id if model.deployment else None) or model.model_id
            body = {"service": "elasticsearch", "service_settings": {"deployment_id": deployment_id}}
            out.append(
                Desired(
                    self.kind, name, body, ("inference_endpoints", name), extra={"task_type": spec.task_type}
                )
            )
        return out

    @staticmethod
    def _our_deployments(stack: Stack) -> set[str]:
        return {
            (m.deployment.deployment_id or m.model_id) for m in stack.spec.models.values() if m.deployment
        }

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        found = self.call("read inference endpoints", self.client.inference.get, missing_ok=True)
        ours = self._our_deployments(stack)
        out: dict[str, Live] = {}
        for endpoint in found.body.get("endpoints", []) if found else []:
            name = endpoint.get("inference_id")
            settings = endpoint.get("service_settings") or {}
            serves_ours = endpoint.get("service") == "elasticsearch" and settings.get("deployment_id") in ours
            if name in names or serves_ours:
                owner = stack.spec.name if serves_ours else None
                out[name] = Live(self.kind, name, dict(endpoint), owner, "provision" if serves_ours else None)
        return out

    def compare(self, desired: Desired, live: Live) -> Comparison:
        want: dict[str, Any] = {"task_type": desired.extra["task_type"], **desired.body}
        changes = diff(want, live.body, exact=False)
        return Comparison(changes, "replace" if changes else None)

    def create(self, desired: Desired) -> None:
        self.call(
            f"create inference endpoint {desired.name}",
            self.client.inference.put,
            task_type=desired.extra["task_type"],
            inference_id=desired.name,
            body=desired.body,
        )

    def delete(self, live: Live) -> None:
        self.call(
            f"delete inference endpoint {live.name}",
            self.client.inference.delete,
            inference_id=live.name,
            missing_ok=True,
        )
