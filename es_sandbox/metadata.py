"""Cluster metadata: indices (settings, mappings, aliases, documents) and index/component templates.

This is the sandbox's cluster state. API handlers change it under ``state.lock``; each change
bumps a generation so persistence knows what to write. Name resolution follows ES's
IndexNameExpressionResolver for what provision and the tests use: comma lists, ``*`` wildcards,
``_all``, ``-`` exclusions, aliases, hidden/dot indices, ``ignore_unavailable`` and
``allow_no_indices``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from es_sandbox import jsonio, versions
from es_sandbox import settings as index_settings
from es_sandbox.http import ApiError, bad_request
from es_sandbox.mapper.lookup import CompiledMapping, compile_mapping
from es_sandbox.mapper.parsing import MappingContext, parse_mapping
from es_sandbox.persistence import link_or_copy, register_loader, write_file
from es_sandbox.state import SandboxState
from es_sandbox.store import DocRecord, IndexStore, NestedVectorColumn, VectorColumn
from es_sandbox.util import (
    deep_merge,
    nest_settings,
    parse_time_value,
    simple_match,
    split_names,
)

ALIAS_KEYS = ("filter", "routing", "index_routing", "search_routing", "is_write_index", "is_hidden")


def index_not_found(name: str) -> ApiError:
    return ApiError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name},
    )


def parse_aliases(raw: Any, where: str = "aliases") -> dict[str, dict[str, Any]]:
    """Aliases of a create-index or template body, normalised as ES returns them."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "parse_exception", f"Failed to parse [{where}], expected an object")
    out: dict[str, dict[str, Any]] = {}
    for name, body in raw.items():
        body = body or {}
        if not isinstance(body, dict):
            raise ApiError(400, "parse_exception", f"Failed to parse alias [{name}]: expected an object")
        out[name] = normalize_alias(name, body)
    return out


def normalize_alias(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    alias: dict[str, Any] = {}
    for key in body:
        if key not in ALIAS_KEYS:
            raise bad_request(f"[alias] unknown field [{key}]", type="x_content_parse_exception")
    if body.get("filter"):
        if not isinstance(body["filter"], dict):
            raise bad_request(f"failed to parse filter for alias [{name}]")
        alias["filter"] = body["filter"]
    routing = body.get("routing")
    if body.get("index_routing", routing) is not None:
        alias["index_routing"] = str(body.get("index_routing", routing))
    if body.get("search_routing", routing) is not None:
        alias["search_routing"] = str(body.get("search_routing", routing))
    for flag in ("is_write_index", "is_hidden"):
        if flag in body and body[flag] is not None:
            value = body[flag]
            if not isinstance(value, bool):
                if value in ("true", "false"):
                    value = value == "true"
                else:
                    raise bad_request(
                        f"Failed to parse value [{value}] as only [true] or [false] are allowed."
                    )
            alias[flag] = value
    return alias


# -------------------------------------------------------------------------------------------------
# indices


@dataclass
class Index:
    name: str
    uuid: str
    settings: dict[str, Any]  # flat, string values, private ones included
    mapping: dict[str, Any]  # canonical
    aliases: dict[str, dict[str, Any]]
    store: IndexStore
    compiled: CompiledMapping = field(init=False)
    state: str = "open"
    primaries_unassigned: bool = False  # created under cluster.routing.allocation.enable: none (red)

    def __post_init__(self) -> None:
        self.store.index_uuid = self.uuid
        self.compiled = compile_mapping(self.mapping, self.settings)

    def set_mapping(self, mapping: dict[str, Any]) -> None:
        self.mapping = mapping
        self.compiled = compile_mapping(mapping, self.settings)
        self.store.generation += 1

    @property
    def hidden(self) -> bool:
        return self.settings.get("index.hidden") == "true"

    @property
    def replicas(self) -> int:
        auto = self.settings.get("index.auto_expand_replicas")
        if auto and auto != "false":
            return 0  # one node: "0-1" / "0-all" expand to zero replicas
        return int(self.settings.get("index.number_of_replicas", "1"))

    @property
    def shards(self) -> int:
        return int(self.settings.get("index.number_of_shards", "1"))

    @property
    def refresh_interval(self) -> tuple[float, bool]:
        raw = self.settings.get("index.refresh_interval")
        if raw is None:
            return 1.0, False
        return parse_time_value(raw, "index.refresh_interval"), True

    @property
    def exclude_source_vectors(self) -> bool:
        default = versions.current().for_index(self.settings).exclude_source_vectors_default()
        return bool(self.settings.get("index.mapping.exclude_source_vectors", str(default).lower()) == "true")

    def searcher(self, now: float) -> Any:
        interval, explicit = self.refresh_interval
        idle = parse_time_value(
            self.settings.get("index.search.idle.after", "30s"), "index.search.idle.after"
        )
        return self.store.searcher_for_search(now, interval, explicit, idle)

    def settings_view(self, flat: bool = False) -> dict[str, Any]:
        shown = {k: v for k, v in self.settings.items() if v is not None}
        return dict(sorted(shown.items())) if flat else nest_settings(shown)

    def mapping_view(self) -> dict[str, Any]:
        return copy.deepcopy(self.mapping)


class IndicesState:
    """All indices by name, with alias and wildcard resolution."""

    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}

    def snapshot_writer(self) -> Callable[[Path, Path | None], None]:
        return _indices_snapshot_writer(self)

    # -- aliases ------------------------------------------------------------------------------------
    def alias_names(self) -> set[str]:
        return {alias for index in self.indices.values() for alias in index.aliases}

    def alias_indices(self, alias: str) -> list[Index]:
        return [index for index in self.indices.values() if alias in index.aliases]

    def alias_filters(self, expression: str | None, index: Index) -> list[dict[str, Any]] | None:
        """The filters of the aliases through which ``expression`` reaches ``index`` (ES's
        filteringAliases): None when the index is named itself, matched by a wildcard, or reached
        through an alias without a filter; otherwise each alias's filter (a document matches any)."""
        names = split_names(expression) or ["_all"]
        filters: list[dict[str, Any]] = []
        for name in names:
            if name.startswith("-"):
                continue
            if name in ("_all", "*") or simple_match(name, index.name):
                return None
            for alias, body in index.aliases.items():
                if simple_match(name, alias):
                    if not body.get("filter"):
                        return None
                    filters.append(body["filter"])
        return filters or None

    def write_index(self, name: str) -> Index | None:
        """The index a write to ``name`` (an index or an alias) goes to; None when neither exists."""
        index = self.indices.get(name)
        if index is not None:
            return index
        members = self.alias_indices(name)
        if not members:
            return None
        explicit = [i for i in members if i.aliases[name].get("is_write_index") is True]
        if explicit:
            return explicit[0]
        if len(members) == 1 and members[0].aliases[name].get("is_write_index") is not False:
            return members[0]
        raise bad_request(
            f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
            "is_write_index=false or the alias points to multiple indices without one being designated as a "
            "write index"
        )

    # -- resolution -----------------------------------------------------------------------------------
    def resolve(
        self,
        expression: str | None,
        *,
        ignore_unavailable: bool = False,
        allow_no_indices: bool = True,
        expand_wildcards: str = "open",
        include_aliases: bool = True,
    ) -> list[Index]:
        """Indices named by an expression, in name order (ES's concreteIndices)."""
        names = split_names(expression)
        expand = set(split_names(expand_wildcards)) or {"open"}
        if "all" in expand:
            expand = {"open", "closed", "hidden"}
        if not names or names == ["_all"]:
            names = ["*"]
        result: dict[str, Index] = {}
        saw_wildcard = False
        for raw in names:
            exclude = raw.startswith("-") and saw_wildcard
            name = raw[1:] if exclude else raw
            if "*" in name and not exclude and not expand & {"open", "closed"}:
                # expand_wildcards=none: a wildcard expression names nothing, like a missing index.
                saw_wildcard = True
                if not ignore_unavailable:
                    raise index_not_found(name)
                continue
            if "*" in name:
                saw_wildcard = True
                matched = self._match_wildcard(name, expand, include_aliases)
                if exclude:
                    for index in matched:
                        result.pop(index.name, None)
                    continue
                if not matched and not allow_no_indices:
                    raise index_not_found(name)
                for index in matched:
                    result[index.name] = index
                continue
            if exclude:
                result.pop(name, None)
                continue
            if name == "_all":
                for index in self._match_wildcard("*", expand, include_aliases):
                    result[index.name] = index
                continue
            concrete = self.indices.get(name)
            if concrete is not None:
                result[concrete.name] = concrete
                continue
            members = self.alias_indices(name) if include_aliases else []
            if members:
                for index in members:
                    result[index.name] = index
                continue
            if not ignore_unavailable:
                raise index_not_found(name)
        if not result and not allow_no_indices and names != ["*"]:
            raise index_not_found(",".join(names))
        if not result and not allow_no_indices and names == ["*"]:
            raise index_not_found("_all" if expression in (None, "", "_all") else expression or "_all")
        return [result[k] for k in sorted(result)]

    def _match_wildcard(self, pattern: str, expand: set[str], include_aliases: bool) -> list[Index]:
        matched: dict[str, Index] = {}
        for index in self.indices.values():
            if not self._visible(index, pattern, expand):
                continue
            if simple_match(pattern, index.name):
                matched[index.name] = index
        if include_aliases:
            for index in self.indices.values():
                for alias, body in index.aliases.items():
                    visible = not body.get("is_hidden") or "hidden" in expand
                    if (
                        simple_match(pattern, alias)
                        and visible
                        and (index.state == "open" or "closed" in expand)
                    ):
                        matched[index.name] = index
        return list(matched.values())

    @staticmethod
    def _visible(index: Index, pattern: str, expand: set[str]) -> bool:
        if index.state == "open" and "open" not in expand:
            return False
        if index.state == "close" and "closed" not in expand:
            return False
        hidden = index.hidden or index.name.startswith(".")
        if hidden and "hidden" not in expand and not pattern.startswith("."):
            return False
        return not (index.hidden and "hidden" not in expand)


# -------------------------------------------------------------------------------------------------
# templates


@dataclass
class ComponentTemplate:
    name: str
    body: dict[str, Any]  # as GET returns it


@dataclass
class IndexTemplate:
    name: str
    body: dict[str, Any]  # as GET returns it

    @property
    def patterns(self) -> list[str]:
        return list(self.body.get("index_patterns", []))

    @property
    def priority(self) -> int:
        return int(self.body.get("priority", 0))

    @property
    def composed_of(self) -> list[str]:
        return list(self.body.get("composed_of", []))


class TemplatesState:
    def __init__(self) -> None:
        self.component: dict[str, ComponentTemplate] = {}
        self.index: dict[str, IndexTemplate] = {}
        self.legacy: dict[str, dict[str, Any]] = {}  # legacy (v1) templates, as GET _template shows them

    def snapshot_writer(self) -> Callable[[Path, Path | None], None]:
        return _templates_snapshot_writer(self)

    def find(self, index_name: str, hidden: bool | None = None) -> IndexTemplate | None:
        """The highest-priority index template whose patterns match ``index_name``."""
        candidates = [t for t in self.index.values() if any(simple_match(p, index_name) for p in t.patterns)]
        if hidden:
            candidates = [t for t in candidates if not any(p == "*" for p in t.patterns)]
        if not candidates:
            return None
        return max(candidates, key=lambda t: t.priority)

    def overlapping(
        self, name: str, patterns: list[str], priority: int | None = None
    ) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for other in self.index.values():
            if other.name == name:
                continue
            if priority is not None and other.priority != priority:
                continue
            if any(patterns_overlap(a, b) for a in patterns for b in other.patterns):
                out[other.name] = other.patterns
        return out


def patterns_overlap(a: str, b: str) -> bool:
    """Whether two ``*`` wildcard patterns can match a common string (ES intersects automatons)."""

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            # a's star matches nothing more, or swallows b[j] (a character or what b's star produces)
            return match(i + 1, j) or (j < len(b) and match(i, j + 1))
        if j < len(b) and b[j] == "*":
            return match(i, j + 1) or (i < len(a) and match(i + 1, j))
        if i < len(a) and j < len(b) and a[i] == b[j]:
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


def indices_part(state: SandboxState) -> IndicesState:
    part: IndicesState = state.part("indices", IndicesState)
    return part


def templates_part(state: SandboxState) -> TemplatesState:
    part: TemplatesState = state.part("templates", TemplatesState)
    return part


def cluster_settings(state: SandboxState) -> dict[str, dict[str, Any]]:
    part: dict[str, dict[str, Any]] = state.part(
        "cluster_settings", lambda: {"persistent": {}, "transient": {}}
    )
    return part


def cluster_setting(state: SandboxState, key: str, default: str) -> str:
    current = cluster_settings(state)
    for scope in ("transient", "persistent"):
        if key in current[scope]:
            return str(current[scope][key])
    return default


# -------------------------------------------------------------------------------------------------
# template composition


def template_mapping_raw(body: Mapping[str, Any]) -> dict[str, Any] | None:
    template = body.get("template") or {}
    mappings = template.get("mappings")
    if isinstance(mappings, dict) and len(mappings) == 1 and isinstance(mappings.get("_doc"), dict):
        return dict(mappings["_doc"])
    return mappings if isinstance(mappings, dict) else None


def compose_mappings(mappings: Iterable[Mapping[str, Any] | None], ctx: MappingContext) -> dict[str, Any]:
    """Template mappings in order, later ones overriding fields (ES's MergeReason.INDEX_TEMPLATE)."""
    result: dict[str, Any] = {}
    for raw in mappings:
        if not raw:
            continue
        parsed = parse_mapping(raw, ctx)
        result = _override(result, parsed)
    return result


def _override(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if key == "properties":
            out["properties"] = _override_props(base.get("properties", {}), value)
        elif key == "_meta" or key == "_source":
            out[key] = deep_merge(base.get(key, {}), value) if isinstance(base.get(key), dict) else value
        else:
            out[key] = value
    return out


def _override_props(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, definition in top.items():
        old = base.get(name)
        old_is_object = old is not None and old.get("type", "object") in ("object", "nested")
        new_is_object = definition.get("type", "object") in ("object", "nested")
        if old_is_object and new_is_object and old is not None:
            merged = {k: v for k, v in old.items() if k != "properties"}
            merged.update({k: v for k, v in definition.items() if k != "properties"})
            props = _override_props(old.get("properties", {}), definition.get("properties", {}))
            if props:
                merged.pop("type", None) if merged.get("type") == "object" else None
                merged["properties"] = dict(sorted(props.items()))
            out[name] = merged
        else:
            out[name] = definition
    return dict(sorted(out.items()))


@dataclass
class Resolved:
    """What an index would get from templates: settings (flat), mapping (canonical), aliases."""

    settings: dict[str, Any] = field(default_factory=dict)
    mapping: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    template: IndexTemplate | None = None


def legacy_for(templates: TemplatesState, index_name: str) -> list[dict[str, Any]]:
    """The legacy templates matching ``index_name``, lowest ``order`` first (the last one wins)."""
    matching = [
        body
        for body in templates.legacy.values()
        if any(simple_match(p, index_name) for p in body.get("index_patterns", []))
    ]
    return sorted(matching, key=lambda body: int(body.get("order", 0)))


def resolve_template(
    templates: TemplatesState,
    template: IndexTemplate | None,
    extra_settings: Mapping[str, Any] | None = None,
    legacy: list[dict[str, Any]] | None = None,
) -> Resolved:
    """What templates give a new index: the composable ``template``, or (when none matches) the
    matching legacy templates merged in ``order``."""
    resolved = Resolved(template=template)
    if template is None:
        mappings: list[Mapping[str, Any] | None] = []
        for legacy_body in legacy or []:
            resolved.settings.update(index_settings.normalize(legacy_body.get("settings")))
            resolved.aliases.update(legacy_body.get("aliases") or {})
            mappings.append(legacy_body.get("mappings") or None)
        if mappings:
            ctx = MappingContext({**resolved.settings, **(extra_settings or {})})
            resolved.mapping = compose_mappings(mappings, ctx)
        return resolved
    bodies: list[Mapping[str, Any]] = []
    for name in template.composed_of:
        component = templates.component.get(name)
        if component is not None:
            bodies.append(component.body)
    bodies.append(template.body)
    for body in bodies:
        inner = body.get("template") or {}
        resolved.settings.update(index_settings.normalize(inner.get("settings")))
        for alias, definition in (inner.get("aliases") or {}).items():
            resolved.aliases[alias] = definition
    ctx = MappingContext({**resolved.settings, **(extra_settings or {})})
    resolved.mapping = compose_mappings((template_mapping_raw(b) for b in bodies), ctx)
    return resolved


def wrap_mapping_error(exc: ApiError) -> ApiError:
    """ES's MapperService.parseMapping wrapper: "Failed to parse mapping: <reason>" over the cause."""
    if exc.type == "mapper_parsing_exception" and not exc.reason.startswith("Failed to parse mapping"):
        return ApiError(400, "mapper_parsing_exception", f"Failed to parse mapping: {exc.reason}").with_cause(
            exc
        )
    return exc


def es_version() -> str:
    """The emulated Elasticsearch version (of the request being served)."""
    return versions.current().number


def validate_pattern(pattern: str, template: str) -> None:
    for char in ("\\", "/", "?", '"', "<", ">", "|", " ", ",", "#", ":"):
        if char in pattern:
            raise ApiError(
                400,
                "invalid_index_template_exception",
                f"index_template [{template}] invalid, cause [Validation Failed: 1: index_pattern [{pattern}] must not "
                f'contain the following characters [\\, /, ?, ", <, >, |,  , ,, #, :];]',
                name=template,
            )
    if pattern.startswith(("_", "-")):
        raise ApiError(
            400,
            "invalid_index_template_exception",
            f"index_template [{template}] invalid, cause [Validation Failed: 1: index_pattern [{pattern}] must not start with '_';]",
            name=template,
        )


_TEMPLATE_NAME_BAD = re.compile(r"[\s,\"*\\<>|?/#]")


# -------------------------------------------------------------------------------------------------
# persistence (see es_sandbox.persistence for the protocol)


@dataclass
class _IndexView:
    """One index captured for a snapshot: immutable rows and arrays, written outside the lock."""

    meta: dict[str, Any]
    rows: list[DocRecord]
    live_rows: np.ndarray
    vectors: dict[str, tuple[np.ndarray, np.ndarray]]


def _indices_snapshot_writer(self: IndicesState) -> Callable[[Path, Path | None], None]:
    """Capture every index under the lock; write them (or link unchanged ones) outside it."""
    views: list[_IndexView] = []
    for index in self.indices.values():
        store = index.store
        n = len(store.rows)
        live_rows = np.flatnonzero(store.live[:n]).astype(np.int64)
        views.append(
            _IndexView(
                {
                    "name": index.name,
                    "uuid": index.uuid,
                    "settings": dict(index.settings),
                    "mapping": copy.deepcopy(index.mapping),
                    "aliases": copy.deepcopy(index.aliases),
                    "state": index.state,
                    "max_seq_no": store.max_seq_no,
                    "tombstones": {k: list(v) for k, v in store.tombstones.items()},
                    "created": store.created,
                    "generation": store.generation,
                    "vector_types": dict(store.vector_types),
                },
                [store.rows[int(i)] for i in live_rows],
                live_rows,
                {path: (col.data, col.present) for path, col in store.vectors.items()},
            )
        )

    def write(directory: Path, previous: Path | None) -> None:
        for view in views:
            meta = view.meta
            target = directory / meta["uuid"]
            target.mkdir()
            old = previous / meta["uuid"] if previous is not None else None
            if old is not None and (old / "meta.json").exists():
                old_meta = json.loads((old / "meta.json").read_text())
                if (
                    old_meta.get("generation") == meta["generation"]
                    and old_meta.get("settings") == meta["settings"]
                ):
                    for item in old.iterdir():
                        link_or_copy(item, target / item.name)
                    continue
            lines = [
                jsonio.dumps(
                    [
                        record.id,
                        record.version,
                        record.seq_no,
                        record.primary_term,
                        record.routing,
                        record.source,
                        {k: list(v) for k, v in record.vector_keys.items()},
                        list(record.ignored),
                        record.values,
                    ]
                )
                for record in view.rows
            ]
            write_file(target / "docs.jsonl", b"".join(line + b"\n" for line in lines))
            live_rows = view.live_rows
            for number, (path, (data, present)) in enumerate(view.vectors.items()):
                rows = live_rows[live_rows < data.shape[0]]
                matrix = np.zeros((len(live_rows), data.shape[1]), dtype=np.float32)
                mask = np.zeros(len(live_rows), dtype=bool)
                matrix[: len(rows)] = data[rows]
                mask[: len(rows)] = present[rows]
                with (target / f"vector-{number}.npy").open("wb") as handle:
                    np.save(handle, matrix)
                    handle.flush()
                    os.fsync(handle.fileno())
                with (target / f"present-{number}.npy").open("wb") as handle:
                    np.save(handle, mask)
                meta.setdefault("vector_files", {})[path] = number
            write_file(target / "meta.json", json.dumps(meta).encode())

    return write


def _load_indices(state: SandboxState, directory: Path) -> IndicesState:
    part = IndicesState()
    for index_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        meta = json.loads((index_dir / "meta.json").read_text())
        store = IndexStore(meta["created"])
        index = Index(
            meta["name"],
            meta["uuid"],
            meta["settings"],
            meta["mapping"],
            meta["aliases"],
            store,
            state=meta["state"],
        )
        geo_fields = {path for path, leaf in index.compiled.fields.items() if leaf.type == "geo_point"}
        records = []
        with (index_dir / "docs.jsonl").open() as handle:
            for line in handle:
                if not line.strip():
                    continue
                doc_id, version, seq_no, term, routing, source, vector_keys, ignored, values = json.loads(
                    line
                )
                for path in geo_fields & values.keys():
                    values[path] = [tuple(v) for v in values[path]]
                records.append(
                    DocRecord(
                        doc_id,
                        source,
                        version,
                        seq_no,
                        values,
                        {k: tuple(v) for k, v in vector_keys.items()},
                        tuple(ignored),
                        routing,
                        term,
                    )
                )
        store.rows = records
        store.live = np.ones(max(256, len(records) * 2), dtype=bool)
        store.live[len(records) :] = False
        store.ids = {record.id: i for i, record in enumerate(records)}
        store.tombstones = {k: (v[0], v[1]) for k, v in meta["tombstones"].items()}
        store.max_seq_no = meta["max_seq_no"]
        store.vector_types = meta.get("vector_types", {})
        for path, number in meta.get("vector_files", {}).items():
            matrix = np.load(index_dir / f"vector-{number}.npy")
            present = np.load(index_dir / f"present-{number}.npy")
            column = VectorColumn(matrix.shape[1], max(256, len(records) * 2))
            column.data[: len(records)] = matrix
            column.present[: len(records)] = present
            column.norms[: len(records)] = np.sqrt(
                np.einsum("ij,ij->i", matrix.astype(np.float64), matrix.astype(np.float64))
            )
            store.vectors[path] = column
        if any(leaf.type == "dense_vector" and leaf.nested_path for leaf in index.compiled.fields.values()):
            _rebuild_nested_vectors(index)
        store.generation = meta["generation"]
        store.pending_since = time.time()
        store.refresh()
        part.indices[index.name] = index
    return part


def _rebuild_nested_vectors(index: Index) -> None:
    """Nested vectors live in ``_source``; their columns are derived again when an index loads."""
    from es_sandbox.mapper.documents import DocumentParser

    for row, record in enumerate(index.store.rows):
        parsed = DocumentParser(index.compiled, index.settings, record.id).parse(record.source)
        for path, entries in parsed.nested_vectors.items():
            column = index.store.nested.setdefault(path, NestedVectorColumn())
            for offsets, vector in entries:
                column.add(row, offsets, vector)


def _templates_snapshot_writer(self: TemplatesState) -> Callable[[Path, Path | None], None]:
    data = {
        "component": {name: copy.deepcopy(t.body) for name, t in self.component.items()},
        "index": {name: copy.deepcopy(t.body) for name, t in self.index.items()},
        "legacy": copy.deepcopy(self.legacy),
    }

    def write(directory: Path, previous: Path | None) -> None:
        write_file(directory / "templates.json", json.dumps(data).encode())

    return write


def _load_templates(state: SandboxState, directory: Path) -> TemplatesState:
    data = json.loads((directory / "templates.json").read_text())
    part = TemplatesState()
    part.component = {name: ComponentTemplate(name, body) for name, body in data["component"].items()}
    part.index = {name: IndexTemplate(name, body) for name, body in data["index"].items()}
    part.legacy = data.get("legacy", {})
    return part


register_loader("indices", _load_indices)
register_loader("templates", _load_templates)
