"""``_inference`` endpoints of service ``elasticsearch`` backed by a declared model's deployment.

``PUT _inference/<task_type>/<id>`` with ``service_settings.deployment_id``. Endpoints have no
metadata field, so ownership is structural: an endpoint is this stack's when it is declared here,
or when it serves a deployment of a model this stack manages. They cannot be updated in place, so
any difference is a replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provisioning.changes import MANAGED_BY, Desired, Live
from provisioning.json_types import JsonObject, as_list, as_object, as_str
from provisioning.resources.base import ApplyContext, Comparison, ResourceKind, Survey
from provisioning.resources.diff import diff
from provisioning.stackfile.stack import Stack

EndpointTaskType = Literal["text_embedding", "sparse_embedding", "rerank"]


@dataclass(frozen=True, kw_only=True)
class EndpointDesired(Desired):
    """A declared endpoint and the task type it is created under."""

    task_type: EndpointTaskType


class InferenceEndpoints(ResourceKind[EndpointDesired]):
    kind = "inference_endpoint"
    title = "inference endpoint"
    desired_type = EndpointDesired

    def desired(self, stack: Stack) -> list[EndpointDesired]:
        out = []
        for name, spec in stack.spec.inference_endpoints.items():
            model = stack.spec.models[spec.model]
            deployment_id = (model.deployment.deployment_id if model.deployment else None) or model.model_id
            body: JsonObject = {
                "service": "elasticsearch",
                "service_settings": {"deployment_id": deployment_id},
            }
            out.append(
                EndpointDesired(
                    self.kind, name, body, ("inference_endpoints", name), task_type=spec.task_type
                )
            )
        return out

    @staticmethod
    def _our_deployments(stack: Stack) -> set[str]:
        return {
            (m.deployment.deployment_id or m.model_id) for m in stack.spec.models.values() if m.deployment
        }

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        found = self.call_or_none("read inference endpoints", self.client.inference.get)
        ours = self._our_deployments(stack)
        out: dict[str, Live] = {}
        for item in as_list((found or {}).get("endpoints")):
            endpoint = as_object(item)
            name = as_str(endpoint.get("inference_id"), "") or ""
            settings = as_object(endpoint.get("service_settings"))
            serves_ours = endpoint.get("service") == "elasticsearch" and settings.get("deployment_id") in ours
            if name in names or serves_ours:
                owner = stack.spec.name if serves_ours else None
                out[name] = Live(self.kind, name, endpoint, owner, MANAGED_BY if serves_ours else None)
        return out

    def compare(self, desired: EndpointDesired, live: Live, survey: Survey) -> Comparison:
        want: JsonObject = {"task_type": desired.task_type, **desired.body}
        changes = diff(want, live.body, exact=False)
        return Comparison(changes, "replace" if changes else None)

    def create(self, desired: EndpointDesired, context: ApplyContext) -> None:
        self.call(
            f"create inference endpoint {desired.name}",
            self.client.inference.put,
            task_type=desired.task_type,
            inference_id=desired.name,
            body=desired.body,
        )

    def delete(self, live: Live, context: ApplyContext) -> None:
        self.call_or_none(
            f"delete inference endpoint {live.name}", self.client.inference.delete, inference_id=live.name
        )
