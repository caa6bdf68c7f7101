"""Trained model aliases: a stable name for a declared model; moving one is how a rollover goes live.

``PUT _ml/trained_models/<model>/model_aliases/<alias>?reassign=true`` moves an alias in one step.
Before it moves to a new model, the rollover gate (the smoke tests of that model, run against the
new model id) must pass; deleting a model deletes its aliases, so a replaced model's alias is put
back. Aliases have no metadata: one belongs to the stack that manages the model it points at.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.changes import Change, Desired, Live
from provisioning.json_types import as_list, as_object, as_str
from provisioning.resources.base import ApplyContext, Comparison, ResourceKind, Survey, owner_of
from provisioning.resources.diff import diff
from provisioning.stackfile.stack import Stack


@dataclass(frozen=True, kw_only=True)
class AliasDesired(Desired):
    """A declared alias: the model it must point at, and the spec entry that declares both."""

    spec_name: str
    model_id: str


class ModelAliases(ResourceKind[AliasDesired]):
    kind = "model_alias"
    title = "model alias"
    desired_type = AliasDesired
    prunable = False

    def desired(self, stack: Stack) -> list[AliasDesired]:
        return [
            AliasDesired(
                self.kind,
                spec.alias,
                {"model_id": spec.model_id},
                ("models", name, "alias"),
                spec_name=name,
                model_id=spec.model_id,
            )
            for name, spec in stack.spec.models.items()
            if spec.alias
        ]

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        out: dict[str, Live] = {}
        models = survey.live.get("trained_model", {})
        for alias in names:
            found = self.call_or_none(
                f"read model alias {alias}", self.client.ml.get_trained_models, model_id=alias
            )
            configs = [as_object(c) for c in as_list((found or {}).get("trained_model_configs"))]
            if not configs:
                continue
            target = as_str(configs[0].get("model_id"), "") or ""
            if target == alias:
                continue  # a model with that id, not an alias: the models kind reports it
            owner_model = models.get(target)
            managed_by, owner = (
                (owner_model.managed_by, owner_model.owner)
                if owner_model
                else owner_of(configs[0].get("metadata"))
            )
            out[alias] = Live(self.kind, alias, {"model_id": target}, owner, managed_by)
        return out

    def compare(self, desired: AliasDesired, live: Live, survey: Survey) -> Comparison:
        changes = diff(desired.body, live.body)
        if not changes:
            if survey.planned.get(f"trained_model/{desired.model_id}") == "replace":
                # Deleting a model deletes its aliases: put it back once the new upload is in.
                return Comparison([], "update", reason="its model is replaced, which removes the alias")
            return Comparison([], None)
        return Comparison(changes, "update", reason=f"roll over: point the alias at {desired.model_id}")

    def create(self, desired: AliasDesired, context: ApplyContext) -> None:
        self.call(
            f"put model alias {desired.name}",
            self.client.ml.put_trained_model_alias,
            model_id=desired.model_id,
            model_alias=desired.name,
            reassign=True,
        )

    def update(self, change: Change, desired: AliasDesired, context: ApplyContext) -> None:
        moves = change.live is not None and change.live.body.get("model_id") != desired.model_id
        if context.gate is not None and moves:
            context.gate(desired.spec_name, desired.model_id)
        self.create(desired, context)

    def delete(self, live: Live, context: ApplyContext) -> None:
        target = as_str(live.body.get("model_id"), "") or ""
        self.call_or_none(
            f"delete model alias {live.name}",
            self.client.ml.delete_trained_model_alias,
            model_id=target,
            model_alias=live.name,
        )
