"""A mapping compiled for lookups: each leaf field by its full path, with what queries need of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from es_sandbox import analysis
from es_sandbox.dates import DEFAULT_FORMAT, DateFormat
from es_sandbox.mapper.parameters import is_object


@dataclass
class LeafField:
    """A searchable field as queries and document parsing need it."""

    path: str
    type: str
    params: dict[str, Any]
    analyzer: Callable[[str], list[str]] | None = None
    search_analyzer: Callable[[str], list[str]] | None = None
    date_format: DateFormat | None = None
    multi_field_of: str | None = None
    nested_path: str | None = None  # the innermost ``nested`` object the field lives in

    @property
    def indexed(self) -> bool:
        return bool(self.params.get("index", True))

    @property
    def dims(self) -> int | None:
        value = self.params.get("dims")
        return int(value) if value is not None else None

    @property
    def similarity(self) -> str:
        return str(self.params.get("similarity", "cosine"))

    @property
    def element_type(self) -> str:
        return str(self.params.get("element_type", "float"))


@dataclass
class CompiledMapping:
    mapping: dict[str, Any]
    fields: dict[str, LeafField] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    nested: set[str] = field(default_factory=set)  # paths of ``nested`` objects


def compile_mapping(mapping: Mapping[str, Any], settings: Mapping[str, Any]) -> CompiledMapping:
    compiled = CompiledMapping(dict(mapping))

    def add_leaf(path: str, definition: Mapping[str, Any], parent: str | None, nested: str | None) -> None:
        ftype = definition["type"]
        leaf = LeafField(path, ftype, dict(definition), multi_field_of=parent, nested_path=nested)
        if ftype in ("text", "match_only_text"):
            name = str(definition.get("analyzer", "standard"))
            leaf.analyzer = analysis.resolve(name, settings) or analysis.standard
            search_name = str(definition.get("search_analyzer", name))
            leaf.search_analyzer = analysis.resolve(search_name, settings) or leaf.analyzer
        elif ftype in ("date", "date_nanos"):
            leaf.date_format = DateFormat(str(definition.get("format", DEFAULT_FORMAT)))
        compiled.fields[path] = leaf
        for sub, sub_def in (definition.get("fields") or {}).items():
            add_leaf(f"{path}.{sub}", sub_def, path, nested)

    def walk(props: Mapping[str, Any], prefix: str, nested: str | None) -> None:
        for name, definition in props.items():
            path = prefix + name
            if is_object(definition):
                compiled.objects[path] = dict(definition)
                inner = nested
                if definition.get("type") == "nested":
                    compiled.nested.add(path)
                    inner = path
                walk(definition.get("properties", {}), path + ".", inner)
            else:
                add_leaf(path, definition, None, nested)

    walk(mapping.get("properties", {}), "", None)
    return compiled
