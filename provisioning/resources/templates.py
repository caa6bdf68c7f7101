"""Component templates and index templates.

Both are stored by Elasticsearch as given, except settings, which come back nested under
``index`` with string values; they are flattened on both sides before comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from provisioning.resources.base import Comparison, Desired, Live, ResourceKind, owner_of, ownership_meta
from provisioning.resources.diff import diff, drop_none, flatten_settings, mapping_diff
from provisioning.spec.model import TemplateBody
from provisioning.spec.stack import Stack


def template_body(template: TemplateBody | None) -> dict[str, Any] | None:
    if template is None:
        return None
    body = drop_none(
        {"settings": template.settings, "mappings": template.mappings, "aliases": template.aliases}
    )
    return body or None


def compare_template_part(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None, prefix: str
) -> list[Any]:
    """Differences in a ``template`` object (settings flattened, mappings field-aware, aliases exact)."""
    desired = desired or {}
    live = live or {}
    out = diff(
        flatten_settings(desired.get("settings")),
        flatten_settings(live.get("settings")),
        prefix=f"{prefix}.settings",
    )
    out += mapping_diff(
        desired.get("mappings") or {}, live.get("mappings") or {}, prefix=f"{prefix}.mappings"
    )
    out += diff(desired.get("aliases") or {}, live.get("aliases") or {}, prefix=f"{prefix}.aliases")
    return out


def _without_template(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "template"}


class _TemplateKind(ResourceKind):
    """Reading, comparing and writing either kind of template; they differ in names and paths only.

    Top-level keys Elasticsearch reports that the stack does not set (``allow_auto_create``,
    ``deprecated``, ...) are compared only when they are among ``compared_keys``.
    """

    list_key: ClassVar[str]
    item_key: ClassVar[str]
    compared_keys: ClassVar[tuple[str, ...]] = ("version", "_meta")

    def _api(self) -> tuple[Any, Any, Any]:
        """The client's (get, put, delete) calls for this kind."""
        raise NotImplementedError

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        get, _, _ = self._api()
        found = self.call(f"read {self.title}s", get, missing_ok=True)
        out: dict[str, Live] = {}
        for item in found.body.get(self.list_key, []) if found else []:
            body = dict(item[self.item_key])
            if not body.get("composed_of"):
                body.pop("composed_of", None)
            managed_by, owner = owner_of(body.get("_meta"))
            if item["name"] in names or owner == stack.spec.name:
                out[item["name"]] = Live(self.kind, item["name"], body, owner, managed_by)
        return out

    def compare(self, desired: Desired, live: Live) -> Comparison:
        changes = compare_template_part(desired.body.get("template"), live.body.get("template"), "template")
        rest_live = {
            k: v
            for k, v in _without_template(live.body).items()
            if k in desired.body or k in self.compared_keys
        }
        changes += diff(_without_template(desired.body), rest_live)
        return Comparison(changes, "update" if changes else None)

    def create(self, desired: Desired) -> None:
        _, put, _ = self._api()
        self.call(f"put {self.title} {desired.name}", put, name=desired.name, body=desired.body)

    def delete(self, live: Live) -> None:
        _, _, delete = self._api()
        self.call(f"delete {self.title} {live.name}", delete, name=live.name, missing_ok=True)


class ComponentTemplates(_TemplateKind):
    kind = "component_template"
    title = "component template"
    list_key = "component_templates"
    item_key = "component_template"

    def _api(self) -> tuple[Any, Any, Any]:
        cluster = self.client.cluster
        return (
            cluster.get_component_template,
            cluster.put_component_template,
            cluster.delete_component_template,
        )

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.component_templates.items():
            body: dict[str, Any] = drop_none(
                {"template": template_body(spec.template) or {}, "version": spec.version}
            )
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("component_templates", name)))
        return out


class IndexTemplates(_TemplateKind):
    kind = "index_template"
    title = "index template"
    list_key = "index_templates"
    item_key = "index_template"
    compared_keys = ("composed_of", "priority", "version", "_meta")

    def _api(self) -> tuple[Any, Any, Any]:
        indices = self.client.indices
        return indices.get_index_template, indices.put_index_template, indices.delete_index_template

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.index_templates.items():
            body: dict[str, Any] = drop_none(
                {
                    "index_patterns": list(spec.index_patterns),
                    "priority": spec.priority,
                    "composed_of": list(spec.composed_of) or None,
                    "template": template_body(spec.template),
                    "version": spec.version,
                }
            )
            body["_meta"] = ownership_meta(stack, body, spec.meta)
            out.append(Desired(self.kind, name, body, ("index_templates", name)))
        return out
