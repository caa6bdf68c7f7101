"""Component templates (``PUT _component_template/<name>``) and index templates
(``PUT _index_template/<name>``).

Both are stored by Elasticsearch as given, except settings, which come back nested under
``index`` with string values; they are flattened on both sides before comparison. The two kinds
differ only in their API and which top-level keys they compare, so they share one implementation.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from elasticsearch import ApiError, TransportError

from provisioning.canonical import canonical_aliases, flatten_settings, without_server_managed
from provisioning.changes import Desired, Live
from provisioning.cluster import error_text
from provisioning.json_types import JsonObject, JsonValue, as_list, as_object, as_str
from provisioning.resources.base import (
    ApplyContext,
    Comparison,
    ResourceKind,
    Survey,
    owner_of,
    ownership_meta,
)
from provisioning.resources.diff import DiffEntry, diff, drop_none, mapping_diff
from provisioning.stackfile.schema import TemplateBody
from provisioning.stackfile.stack import Stack


def template_body(template: TemplateBody | None) -> JsonObject | None:
    """The ``template`` object of a template's body, or None when it declares nothing."""
    if template is None:
        return None
    body = drop_none(
        {"settings": template.settings, "mappings": template.mappings, "aliases": template.aliases}
    )
    return body or None


def compare_template_part(desired: JsonObject, live: JsonObject, prefix: str) -> list[DiffEntry]:
    """Differences in a ``template`` object (settings flattened, mappings field-aware, aliases exact)."""
    out = diff(
        flatten_settings(as_object(desired.get("settings"))),
        flatten_settings(as_object(live.get("settings"))),
        prefix=f"{prefix}.settings",
    )
    out += mapping_diff(
        as_object(desired.get("mappings")), as_object(live.get("mappings")), prefix=f"{prefix}.mappings"
    )
    out += diff(
        canonical_aliases(as_object(desired.get("aliases"))),
        canonical_aliases(as_object(live.get("aliases"))),
        prefix=f"{prefix}.aliases",
    )
    return out


def _without_template(body: JsonObject) -> JsonObject:
    return {k: v for k, v in body.items() if k != "template"}


class _TemplateKind(ResourceKind[Desired]):
    """Reading, comparing and writing either kind of template.

    Top-level keys Elasticsearch reports that the stack does not set (``allow_auto_create``,
    ``deprecated``, ...) are compared only when they are among ``compared_keys``.
    """

    desired_type = Desired
    list_key: ClassVar[str]
    item_key: ClassVar[str]
    compared_keys: ClassVar[tuple[str, ...]] = ("version", "_meta")

    @abstractmethod
    def _get_all(self) -> JsonObject | None: ...

    @abstractmethod
    def _put(self, name: str, body: JsonObject) -> None: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        out: dict[str, Live] = {}
        for entry in as_list((self._get_all() or {}).get(self.list_key)):
            item = as_object(entry)
            name = as_str(item.get("name"), "") or ""
            body = without_server_managed(as_object(item.get(self.item_key)))
            if not body.get("composed_of"):
                body.pop("composed_of", None)
            managed_by, owner = owner_of(body.get("_meta"))
            if name in names or owner == stack.spec.name:
                out[name] = Live(self.kind, name, body, owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live, survey: Survey) -> Comparison:
        changes = compare_template_part(
            as_object(desired.body.get("template")), as_object(live.body.get("template")), "template"
        )
        rest_live: JsonObject = {
            k: v
            for k, v in _without_template(live.body).items()
            if k in desired.body or k in self.compared_keys
        }
        changes += diff(_without_template(desired.body), rest_live)
        return Comparison(changes, "update" if changes else None)

    def create(self, desired: Desired, context: ApplyContext) -> None:
        self._put(desired.name, desired.body)

    def delete(self, live: Live, context: ApplyContext) -> None:
        self._delete(live.name)


class ComponentTemplates(_TemplateKind):
    kind = "component_template"
    title = "component template"
    list_key = "component_templates"
    item_key = "component_template"

    def _get_all(self) -> JsonObject | None:
        return self.call_or_none("read component templates", self.client.cluster.get_component_template)

    def _put(self, name: str, body: JsonObject) -> None:
        self.call(
            f"put component template {name}", self.client.cluster.put_component_template, name=name, body=body
        )

    def _delete(self, name: str) -> None:
        self.call_or_none(
            f"delete component template {name}", self.client.cluster.delete_component_template, name=name
        )

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.component_templates.items():
            template: JsonValue = template_body(spec.template) or {}
            body = drop_none({"template": template, "version": spec.version})
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("component_templates", name)))
        return out


class IndexTemplates(_TemplateKind):
    kind = "index_template"
    title = "index template"
    list_key = "index_templates"
    item_key = "index_template"
    compared_keys = ("composed_of", "priority", "version", "_meta")

    def _get_all(self) -> JsonObject | None:
        return self.call_or_none("read index templates", self.client.indices.get_index_template)

    def _put(self, name: str, body: JsonObject) -> None:
        self.call(f"put index template {name}", self.client.indices.put_index_template, name=name, body=body)

    def _delete(self, name: str) -> None:
        self.call_or_none(
            f"delete index template {name}", self.client.indices.delete_index_template, name=name
        )

    def dry_run(self, desired: Desired, stack: Stack) -> str | None:
        """``POST _index_template/_simulate/<name>`` with the declared body, its component templates
        merged in (they may not exist on the cluster yet): Elasticsearch validates it as it would a
        PUT (mappings parsed by the full mapper, same-priority overlaps with other templates)
        without storing anything. The name makes it replace this template in the simulation."""
        composed = stack.composed_template(desired.name)
        body: JsonObject = {k: v for k, v in desired.body.items() if k not in ("composed_of", "template")}
        template: JsonObject = {part: value for part, value in composed.items() if value}
        if template:
            body["template"] = template
        try:
            self.client.indices.simulate_template(name=desired.name, body=body)
        except ApiError as exc:
            return error_text(exc)
        except TransportError as exc:
            raise self.cluster.error(exc, f"simulate index template {desired.name}") from None
        return None

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.index_templates.items():
            patterns: list[JsonValue] = list(spec.index_patterns)
            composed: list[JsonValue] | None = list(spec.composed_of) or None
            body = drop_none(
                {
                    "index_patterns": patterns,
                    "priority": spec.priority,
                    "composed_of": composed,
                    "template": template_body(spec.template),
                    "version": spec.version,
                }
            )
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("index_templates", name)))
        return out
