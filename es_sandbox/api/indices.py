"""Index APIs: create/get/exists/delete, mappings, settings, aliases, refresh, stats."""

from __future__ import annotations

import copy
import time
from typing import Any

from es_sandbox import settings as index_settings
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request
from es_sandbox.index_creation import create_index
from es_sandbox.mapper.merging import count_fields, merge_mappings
from es_sandbox.mapper.parsing import MappingContext, parse_mapping
from es_sandbox.metadata import (
    Index,
    cluster_setting,
    index_not_found,
    indices_part,
    normalize_alias,
    wrap_mapping_error,
)
from es_sandbox.state import SandboxState
from es_sandbox.util import nest_settings, simple_match, split_names, validate_index_name

routes = RouteTable()


def _resolve(state: SandboxState, request: Request, default_allow_no_indices: bool = True) -> list[Index]:
    return indices_part(state).resolve(
        request.path_params.get("index"),
        ignore_unavailable=request.flag("ignore_unavailable"),
        allow_no_indices=request.flag("allow_no_indices", default_allow_no_indices),
        expand_wildcards=request.param("expand_wildcards", "open") or "open",
    )


# -- create / get / exists / delete ---------------------------------------------------------------------


@routes.route("PUT", "/{index}", api="indices.create")
def create(state: SandboxState, request: Request) -> dict[str, Any]:
    name = request.path_params["index"]
    body = request.json_object()
    with state.lock:
        index = create_index(state, name, body)
    return {"acknowledged": True, "shards_acknowledged": True, "index": index.name}


def index_view(index: Index, request: Request, features: set[str]) -> dict[str, Any]:
    flat = request.flag("flat_settings")
    view: dict[str, Any] = {}
    if "aliases" in features:
        view["aliases"] = copy.deepcopy(index.aliases)
    if "mappings" in features:
        view["mappings"] = index.mapping_view()
    if "settings" in features:
        view["settings"] = index.settings_view(flat)
        if request.flag("include_defaults"):
            defaults = index_settings.reported_defaults(index.settings)
            view["defaults"] = dict(sorted(defaults.items())) if flat else nest_settings(defaults)
    return view


@routes.route("GET", "/{index}", write=False, api="indices.get")
def get_index(state: SandboxState, request: Request) -> dict[str, Any]:
    features = set(split_names(request.param("features"))) or {"aliases", "mappings", "settings"}
    for feature in features:
        if feature not in ("aliases", "mappings", "settings"):
            raise bad_request(
                f"No enum constant org.elasticsearch.action.admin.indices.get.GetIndexRequest.Feature.{feature.upper()}"
            )
    with state.lock:
        return {index.name: index_view(index, request, features) for index in _resolve(state, request)}


@routes.route("HEAD", "/{index}", write=False, api="indices.exists")
def exists(state: SandboxState, request: Request) -> Response:
    with state.lock:
        try:
            found = _resolve(state, request, default_allow_no_indices=False)
        except ApiError:
            return Response(404, None)
    return Response(200 if found else 404, None)


@routes.route("DELETE", "/{index}", api="indices.delete")
def delete(state: SandboxState, request: Request) -> dict[str, Any]:
    expression = request.path_params["index"]
    with state.lock:
        part = indices_part(state)
        destructive = cluster_setting(state, "action.destructive_requires_name", "true") == "true"
        names = split_names(expression)
        if destructive and any(n in ("_all", "*") or "*" in n for n in names):
            raise bad_request("Wildcard expressions or all indices are not allowed")
        for name in names:
            if "*" not in name and name not in part.indices and name != "_all" and part.alias_indices(name):
                raise bad_request(
                    f"The provided expression [{name}] matches an alias, specify the corresponding concrete indices instead."
                )
        victims = part.resolve(
            expression,
            ignore_unavailable=request.flag("ignore_unavailable"),
            allow_no_indices=request.flag("allow_no_indices", True),
            expand_wildcards=request.param("expand_wildcards", "open,closed") or "open,closed",
            include_aliases=False,
        )
        for index in victims:
            del part.indices[index.name]
    return {"acknowledged": True}


# -- mappings -----------------------------------------------------------------------------------------------


@routes.route("GET", "/_mapping", "/{index}/_mapping", write=False, api="indices.get_mapping")
def get_mapping(state: SandboxState, request: Request) -> dict[str, Any]:
    if request.param("local") is not None:
        request.warn(
            "the [?local] query parameter to this API has no effect, is now deprecated, and will be removed in a future version"
        )
    with state.lock:
        return {index.name: {"mappings": index.mapping_view()} for index in _resolve(state, request)}


@routes.route(
    "GET",
    "/_mapping/field/{fields}",
    "/{index}/_mapping/field/{fields}",
    write=False,
    params=("allow_no_indices", "expand_wildcards", "ignore_unavailable", "include_defaults", "local"),
)
def get_field_mapping(state: SandboxState, request: Request) -> dict[str, Any]:
    patterns = split_names(request.path_params["fields"])
    out: dict[str, Any] = {}
    with state.lock:
        for index in _resolve(state, request):
            mappings: dict[str, Any] = {}
            for path, leaf in index.compiled.fields.items():
                if any(simple_match(p, path) for p in patterns):
                    leaf_name = path.rsplit(".", 1)[-1]
                    mappings[path] = {
                        "full_name": path,
                        "mapping": {leaf_name: {k: v for k, v in leaf.params.items() if k != "fields"}},
                    }
            out[index.name] = {"mappings": mappings}
    return out


@routes.route("PUT|POST", "/{index}/_mapping", api="indices.put_mapping")
def put_mapping(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    with state.lock:
        targets = _resolve(state, request)
        if request.flag("write_index_only"):
            targets = [t for t in targets if t.name in {i.name for i in targets}]
        updates: list[tuple[Index, dict[str, Any]]] = []
        for index in targets:
            try:
                incoming = parse_mapping(body, MappingContext(index.settings))
            except ApiError as exc:
                raise wrap_mapping_error(exc) from exc
            merged = merge_mappings(index.mapping, incoming)
            limit = int(index.settings.get("index.mapping.total_fields.limit", "1000"))
            if count_fields(merged) > limit:
                raise bad_request(f"Limit of total fields [{limit}] has been exceeded")
            updates.append((index, merged))
        for index, merged in updates:
            if merged != index.mapping:
                index.set_mapping(merged)
    return {"acknowledged": True}


# -- settings ------------------------------------------------------------------------------------------------


@routes.route(
    "GET",
    "/_settings",
    "/{index}/_settings",
    "/{index}/_settings/{name}",
    "/_settings/{name}",
    write=False,
    api="indices.get_settings",
)
def get_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    flat = request.flag("flat_settings")
    names = split_names(request.path_params.get("name"))
    out: dict[str, Any] = {}
    with state.lock:
        for index in _resolve(state, request):
            settings = {
                k: v for k, v in index.settings.items() if not names or any(simple_match(n, k) for n in names)
            }
            entry: dict[str, Any] = {
                "settings": dict(sorted(settings.items())) if flat else nest_settings(settings)
            }
            if request.flag("include_defaults"):
                defaults = index_settings.reported_defaults(index.settings)
                entry["defaults"] = defaults if flat else nest_settings(defaults)
            out[index.name] = entry
    return out


@routes.route("PUT", "/_settings", "/{index}/_settings", api="indices.put_settings")
def put_settings(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    if len(body) == 1 and isinstance(body.get("settings"), dict):
        body = body["settings"]
    updates = index_settings.normalize(body)
    if not updates:
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;"
        )
    preserve = request.flag("preserve_existing")
    with state.lock:
        targets = _resolve(state, request)
        for key in updates:
            if key in index_settings.PRIVATE or key in (
                "index.number_of_shards",
                "index.number_of_routing_shards",
            ):
                raise bad_request(f"final {key.split('.')[0]} setting [{key}], not updateable")
            spec = index_settings.KNOWN.get(key)
            if spec is not None and not spec[1]:
                shown = ", ".join(f"{t.name}/{t.uuid}" for t in targets)
                raise bad_request(f"Can't update non dynamic settings [[{key}]] for open indices [[{shown}]]")
        index_settings.validate({k: v for k, v in updates.items() if v is not None}, creating=False)
        for index in targets:
            for key, value in updates.items():
                if preserve and key in index.settings:
                    continue
                if value is None:
                    index.settings.pop(key, None)
                    if key in index_settings.defaults():
                        index.settings[key] = index_settings.defaults()[key]
                else:
                    index.settings[key] = value
            index.store.generation += 1
            if any(k.startswith("index.analysis.") for k in updates):
                index.set_mapping(index.mapping)
    return {"acknowledged": True}


# -- refresh, forcemerge, stats --------------------------------------------------------------------------------


def _shards_header(indices: list[Index]) -> dict[str, int]:
    total = sum(i.shards * (1 + i.replicas) for i in indices)
    successful = sum(i.shards for i in indices)
    return {"total": total, "successful": successful, "failed": 0}


@routes.route("POST|GET", "/_refresh", "/{index}/_refresh", write=False, api="indices.refresh")
def refresh(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        targets = _resolve(state, request)
        for index in targets:
            index.store.refresh()
        return {"_shards": _shards_header(targets)}


@routes.route("POST", "/_forcemerge", "/{index}/_forcemerge", write=False, api="indices.forcemerge")
def forcemerge(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        targets = _resolve(state, request)
        for index in targets:
            if index.store.deleted_rows:
                index.store.refresh()
        return {"_shards": _shards_header(targets)}


@routes.route("POST|GET", "/_flush", "/{index}/_flush", write=False, api="indices.flush")
def flush(state: SandboxState, request: Request) -> dict[str, Any]:
    """A Lucene commit: the sandbox has no translog, so flushing only ends the current segment."""
    request.flag("force")
    request.flag("wait_if_ongoing", True)
    with state.lock:
        targets = _resolve(state, request)
        for index in targets:
            index.store.flush()
        return {"_shards": _shards_header(targets)}


@routes.route("POST", "/{index}/_close", api="indices.close")
def close(state: SandboxState, request: Request) -> dict[str, Any]:
    """Close indices: their mappings and settings stay, reads and writes are refused."""
    expression = request.path_params["index"]
    with state.lock:
        destructive = cluster_setting(state, "action.destructive_requires_name", "true") == "true"
        if destructive and any(n in ("_all", "*") or "*" in n for n in split_names(expression)):
            raise bad_request("Wildcard expressions or all indices are not allowed")
        targets = _resolve(state, request, default_allow_no_indices=False)
        for index in targets:
            index.state = "close"
            index.store.refresh()
        return {
            "acknowledged": True,
            "shards_acknowledged": True,
            "indices": {index.name: {"closed": True} for index in targets},
        }


@routes.route("POST", "/{index}/_open", api="indices.open")
def open_index(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        targets = indices_part(state).resolve(
            request.path_params["index"],
            ignore_unavailable=request.flag("ignore_unavailable"),
            allow_no_indices=request.flag("allow_no_indices", True),
            expand_wildcards=request.param("expand_wildcards", "closed") or "closed",
        )
        for index in targets:
            index.state = "open"
        return {"acknowledged": True, "shards_acknowledged": True}


@routes.route(
    "GET", "/_stats", "/{index}/_stats", "/{index}/_stats/{metric}", write=False, api="indices.stats"
)
def stats(state: SandboxState, request: Request) -> dict[str, Any]:
    now = time.time()
    with state.lock:
        targets = _resolve(state, request)
        indices: dict[str, Any] = {}
        total_docs = 0
        for index in targets:
            searcher = index.searcher(now)
            docs = {"count": searcher.doc_count, "deleted": 0, "total_size_in_bytes": 0}
            total_docs += searcher.doc_count
            section = {"docs": docs, "indexing": {"index_total": index.store.max_seq_no + 1}}
            indices[index.name] = {
                "uuid": index.uuid,
                "health": "yellow" if index.replicas else "green",
                "status": index.state,
                "primaries": section,
                "total": section,
            }
        all_section = {"docs": {"count": total_docs, "deleted": 0, "total_size_in_bytes": 0}}
        return {
            "_shards": _shards_header(targets),
            "_all": {"primaries": all_section, "total": all_section},
            "indices": indices,
        }


# -- aliases -------------------------------------------------------------------------------------------------


def _add_alias(state: SandboxState, index: Index, alias: str, body: dict[str, Any]) -> None:
    validate_index_name(alias, kind="alias")
    part = indices_part(state)
    if alias in part.indices:
        raise ApiError(
            400,
            "invalid_alias_name_exception",
            f"Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias",
        )
    definition = normalize_alias(alias, body)
    if definition.get("is_write_index"):
        for other in part.alias_indices(alias):
            if other is not index and other.aliases[alias].get("is_write_index"):
                raise bad_request(
                    f"alias [{alias}] has more than one write index [{other.name},{index.name}]"
                )
    index.aliases[alias] = definition
    index.store.generation += 1


@routes.route("PUT|POST", "/{index}/_alias/{name}", "/{index}/_aliases/{name}", api="indices.put_alias")
def put_alias(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object()
    alias = request.path_params["name"]
    with state.lock:
        targets = indices_part(state).resolve(request.path_params["index"], allow_no_indices=False)
        for index in targets:
            _add_alias(state, index, alias, body)
    return {"acknowledged": True}


def _delete_aliases(state: SandboxState, index_expr: str, alias_expr: str, must_exist: bool = True) -> int:
    targets = indices_part(state).resolve(index_expr, allow_no_indices=False)
    patterns = split_names(alias_expr)
    removed = 0
    for index in targets:
        for alias in list(index.aliases):
            if any(p in ("_all", "*") or simple_match(p, alias) for p in patterns):
                del index.aliases[alias]
                index.store.generation += 1
                removed += 1
    if removed == 0 and must_exist:
        raise ApiError(
            404,
            "aliases_not_found_exception",
            f"aliases [{alias_expr}] missing",
            **{"resource.type": "aliases", "resource.id": alias_expr},
        )
    return removed


@routes.route("DELETE", "/{index}/_alias/{name}", "/{index}/_aliases/{name}", api="indices.delete_alias")
def delete_alias(state: SandboxState, request: Request) -> dict[str, Any]:
    with state.lock:
        _delete_aliases(state, request.path_params["index"], request.path_params["name"])
    return {"acknowledged": True}


@routes.route("POST", "/_aliases", api="indices.update_aliases")
def update_aliases(state: SandboxState, request: Request) -> dict[str, Any]:
    body = request.json_object(required=True)
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        raise ApiError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: Must specify at least one alias action;",
        )
    with state.lock:
        part = indices_part(state)
        for action in actions:
            if not isinstance(action, dict) or len(action) != 1:
                raise ApiError(400, "x_content_parse_exception", "[aliases] failed to parse field [actions]")
            ((kind, spec),) = action.items()
            if kind not in ("add", "remove", "remove_index"):
                raise ApiError(400, "x_content_parse_exception", f"[aliases] unknown field [{kind}]")
            if not isinstance(spec, dict):
                raise ApiError(400, "x_content_parse_exception", f"[{kind}] failed to parse")
            index_names = spec.get("indices") or ([spec["index"]] if "index" in spec else [])
            alias_names = spec.get("aliases") or ([spec["alias"]] if "alias" in spec else [])
            if not index_names:
                raise ApiError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: One of [index] or [indices] is required;",
                )
            if kind == "remove_index":
                for name in index_names:
                    for index in part.resolve(name, allow_no_indices=False, include_aliases=False):
                        del part.indices[index.name]
                continue
            if not alias_names:
                raise ApiError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: One of [alias] or [aliases] is required;",
                )
            for name in index_names:
                targets = part.resolve(name, allow_no_indices=False)
                for alias in alias_names:
                    if kind == "add":
                        definition = {
                            k: v
                            for k, v in spec.items()
                            if k
                            in (
                                "filter",
                                "routing",
                                "index_routing",
                                "search_routing",
                                "is_write_index",
                                "is_hidden",
                            )
                        }
                        for index in targets:
                            _add_alias(state, index, alias, definition)
                    else:
                        _delete_aliases(state, name, alias, must_exist=bool(spec.get("must_exist", False)))
    return {"acknowledged": True, "errors": False}


@routes.route(
    "GET",
    "/_alias",
    "/_alias/{name}",
    "/{index}/_alias",
    "/{index}/_alias/{name}",
    "/_aliases",
    "/{index}/_aliases",
    write=False,
    api="indices.get_alias",
)
def get_alias(state: SandboxState, request: Request) -> Response:
    patterns = split_names(request.path_params.get("name"))
    out: dict[str, Any] = {}
    found: set[str] = set()
    with state.lock:
        for index in _resolve(state, request):
            aliases = {
                alias: copy.deepcopy(body)
                for alias, body in index.aliases.items()
                if not patterns or any(p in ("_all", "*") or simple_match(p, alias) for p in patterns)
            }
            found |= set(aliases)
            if aliases or not patterns:
                out[index.name] = {"aliases": aliases}
    missing = [p for p in patterns if "*" not in p and p != "_all" and p not in found]
    if missing:
        body: dict[str, Any] = {"error": f"alias [{','.join(missing)}] missing", "status": 404}
        body.update(out)
        return Response(404, body)
    return Response(200, out)


@routes.route("HEAD", "/_alias/{name}", "/{index}/_alias/{name}", write=False, api="indices.exists_alias")
def exists_alias(state: SandboxState, request: Request) -> Response:
    patterns = split_names(request.path_params.get("name"))
    with state.lock:
        try:
            targets = _resolve(state, request)
        except ApiError:
            return Response(404, None)
        names = {alias for index in targets for alias in index.aliases}
    ok = all(any(simple_match(p, n) for n in names) for p in patterns)
    return Response(200 if ok else 404, None)


def missing_index(name: str) -> ApiError:
    return index_not_found(name)


@routes.route(
    "GET|POST",
    "/_resolve/index/{name}",
    write=False,
    params=("expand_wildcards", "ignore_unavailable", "allow_no_indices", "mode", "project_routing"),
)
def resolve_index(state: SandboxState, request: Request) -> dict[str, Any]:
    """``_resolve/index``: the indices and aliases an expression names (no data streams here)."""
    with state.lock:
        part = indices_part(state)
        targets = part.resolve(
            request.path_params["name"],
            ignore_unavailable=True,
            allow_no_indices=True,
            expand_wildcards=request.param("expand_wildcards", "open") or "open",
        )
        patterns = split_names(request.path_params["name"])
        indices = []
        for index in targets:
            attributes = ["hidden"] if index.hidden else []
            attributes.append("open" if index.state == "open" else "closed")
            entry: dict[str, Any] = {"name": index.name, "attributes": attributes}
            if index.aliases:
                entry["aliases"] = sorted(index.aliases)
            indices.append(entry)
        aliases = [
            {"name": alias, "indices": sorted(i.name for i in part.alias_indices(alias))}
            for alias in sorted(part.alias_names())
            if any(p in ("*", "_all") or simple_match(p, alias) for p in patterns)
        ]
    return {"indices": indices, "aliases": aliases, "data_streams": []}
