"""A loaded stack: the typed spec plus where it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provisioning.canonical import canonical_mappings
from provisioning.errors import Location
from provisioning.json_types import JsonObject
from provisioning.mappings import deep_merge, pattern_matches
from provisioning.stackfile.schema import IndexSpec, IndexTemplateSpec, ModelSpec, StackSpec, TemplateBody
from provisioning.stackfile.source import Located, PathKey

BodyPart = Literal["settings", "mappings", "aliases"]


def compose(layers: Sequence[TemplateBody | IndexSpec]) -> dict[BodyPart, JsonObject]:
    """Settings, mappings and aliases of ``layers`` merged in order, later ones winning; mappings
    are merged in normal form (a dotted field name is the object path it stands for), as
    Elasticsearch merges them."""
    merged: dict[BodyPart, JsonObject] = {"settings": {}, "mappings": {}, "aliases": {}}
    for layer in layers:
        if layer.settings:
            merged["settings"] = deep_merge(merged["settings"], layer.settings)
        if layer.mappings:
            merged["mappings"] = deep_merge(merged["mappings"], canonical_mappings(layer.mappings))
        if layer.aliases:
            merged["aliases"] = deep_merge(merged["aliases"], layer.aliases)
    return merged


@dataclass(frozen=True)
class Stack:
    """What every command works on. Relative paths in the spec are relative to the stack file."""

    spec: StackSpec
    path: Path
    located: Located

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def locate(self, path: PathKey) -> Location | None:
        return self.located.locate(path)

    def template_for(self, index: str) -> tuple[str, IndexTemplateSpec] | None:
        """The declared index template Elasticsearch would apply to ``index`` (highest priority wins)."""
        matches = [
            (name, tpl)
            for name, tpl in self.spec.index_templates.items()
            if any(pattern_matches(p, index) for p in tpl.index_patterns)
        ]
        if not matches:
            return None
        return max(matches, key=lambda item: item[1].priority or 0)

    def template_layers(self, template: IndexTemplateSpec) -> list[TemplateBody]:
        """The bodies an index template composes, in order: its component templates (``composed_of``
        order, the declared ones), then its own ``template``."""
        layers = [
            self.spec.component_templates[c].template
            for c in template.composed_of
            if c in self.spec.component_templates
        ]
        if template.template:
            layers.append(template.template)
        return layers

    def composed_template(self, name: str) -> dict[BodyPart, JsonObject]:
        """Index template ``name`` with its declared component templates merged in, as Elasticsearch
        composes them (MetadataIndexTemplateService): what an index it matches gets."""
        return compose(self.template_layers(self.spec.index_templates[name]))

    def effective_body(self, index: str) -> dict[BodyPart, JsonObject]:
        """Settings, mappings and aliases ``index`` gets from its template, components and own body.

        Component templates apply in ``composed_of`` order, then the index template's own
        template, then the index's declaration: the order Elasticsearch composes them in.
        """
        layers: list[TemplateBody | IndexSpec] = []
        found = self.template_for(index)
        if found:
            layers += self.template_layers(found[1])
        if index in self.spec.indices:
            layers.append(self.spec.indices[index])
        return compose(layers)

    def effective_mappings(self, index: str) -> JsonObject:
        """The mappings ``index`` gets from its template, component templates and own declaration."""
        return self.effective_body(index)["mappings"]

    def index_is_declared_or_templated(self, index: str) -> bool:
        return index in self.spec.indices or self.template_for(index) is not None

    def model_by_reference(self, ref: str) -> tuple[str, ModelSpec] | None:
        """A declared model named by its spec key, model id, deployment id or alias."""
        for name, model in self.spec.models.items():
            ids = {name, model.model_id}
            if model.alias:
                ids.add(model.alias)
            if model.deployment:
                ids.add(model.deployment.deployment_id or model.model_id)
            if ref in ids:
                return name, model
        for name, endpoint in self.spec.inference_endpoints.items():
            if ref == name and endpoint.model in self.spec.models:
                return endpoint.model, self.spec.models[endpoint.model]
        return None
