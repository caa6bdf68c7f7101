"""Component templates, composable index templates, and the simulate APIs."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from es_sandbox import settings as index_settings
from es_sandbox import tracking
from es_sandbox.api.legacy_templates import overlapping_legacy, precedence_warning
from es_sandbox.http import ApiError, Request, Response, RouteTable, bad_request, unknown_field
from es_sandbox.mapper.merging import merge_mappings
from es_sandbox.mapper.parsing import MappingContext, parse_mapping
from es_sandbox.metadata import (
    ComponentTemplate,
    IndexTemplate,
    TemplatesState,
    compose_mappings,
    parse_aliases,
    patterns_overlap,
    resolve_template,
    template_mapping_raw,
    templates_part,
    validate_pattern,
    wrap_mapping_error,
)
from es_sandbox.state import SandboxState
from es_sandbox.util import nest_settings, simple_match, split_names

routes = RouteTable()

TEMPLATE_KEYS = ("settings", "mappings", "aliases", "lifecycle", "data_stream_options")
COMPONENT_KEYS = ("template", "version", "_meta", "deprecated")
INDEX_TEMPLATE_KEYS = (
    "index_patterns",
    "composed_of",
    "template",
    "priority",
    "version",
    "_meta",
    "data_stream",
    "allow_auto_create",
    "ignore_missing_component_templates",
    "deprecated",
)
LOCAL_WARNING = "the [?local] query parameter to this API has no effect, is now deprecated, and will be removed in a future version"


def _validate_name(name: str, kind: str) -> None:
    problems = []
    if " " in name:
        problems.append("name must not contain a space")
    if "," in name:
        problems.append("name must not contain a ','")
    if "#" in name:
        problems.append("name must not contain a '#'")
    if "*" in name:
        problems.append("name must not contain a '*'")
    if name.startswith("_"):
        problems.append("name must not start with '_'")
    if name != name.lower():
        problems.append("name must be lower cased")
    if problems:
        numbered = "".join(f"{i + 1}: {p};" for i, p in enumerate(problems))
        raise ApiError(
            400,
            "invalid_index_template_exception",
            f"{kind} [{name}] invalid, cause [Validation Failed: {numbered}]",
            name=name,
        )


def _parse_template_section(raw: Any, settings_ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``template`` object of a component/index template, validated and in GET form."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "x_content_parse_exception", "[template] failed to parse, expected an object")
    for key in raw:
        if key not in TEMPLATE_KEYS:
            raise unknown_field("template", key, TEMPLATE_KEYS)
    out: dict[str, Any] = {}
    if raw.get("settings") is not None:
        flat = index_settings.normalize(raw["settings"])
        index_settings.validate({k: v for k, v in flat.items() if v is not None}, creating=True)
        out["settings"] = nest_settings(flat)
    if raw.get("mappings") is not None:
        mappings = raw["mappings"]
        if not isinstance(mappings, dict):
            raise ApiError(400, "x_content_parse_exception", "[template] failed to parse field [mappings]")
        if len(mappings) == 1 and isinstance(mappings.get("_doc"), dict):
            mappings = mappings["_doc"]
        try:
            parse_mapping(
                mappings,
                MappingContext({**(settings_ctx or {}), **index_settings.normalize(raw.get("settings"))}),
            )
        except ApiError as exc:
            raise wrap_mapping_error(exc) from exc
        out["mappings"] = copy.deepcopy(mappings)
    if raw.get("aliases") is not None:
        out["aliases"] = parse_aliases(raw["aliases"])
    if raw.get("lifecycle") is not None:
        lifecycle = raw["lifecycle"]
        if not isinstance(lifecycle, dict):
            raise ApiError(400, "x_content_parse_exception", "[template] failed to parse field [lifecycle]")
        for key in lifecycle:
            if key not in (
                "enabled",
                "data_retention",
                "downsampling",
                "downsampling_method",
                "frozen_after",
            ):
                raise unknown_field("lifecycle", key, ("enabled", "data_retention", "downsampling"))
        out["lifecycle"] = {
            "enabled": lifecycle.get("enabled", True),
            **{k: v for k, v in lifecycle.items() if k != "enabled"},
        }
    if raw.get("data_stream_options") is not None:
        options = raw["data_stream_options"]
        failure_store = options.get("failure_store") if isinstance(options, dict) else None
        if (
            isinstance(failure_store, dict)
            and isinstance(failure_store.get("lifecycle"), dict)
            and "frozen_after" in failure_store["lifecycle"]
        ):
            raise bad_request("Failure store lifecycle does not support freezing")
        out["data_stream_options"] = copy.deepcopy(options)
    return out


def _lifecycle_view(body: dict[str, Any], include_defaults: bool) -> dict[str, Any]:
    view = copy.deepcopy(body)
    lifecycle = view.get("template", {}).get("lifecycle")
    if include_defaults and isinstance(lifecycle, dict):
        lifecycle["rollover"] = {
            "min_docs": 1,
            "max_primary_shard_size": "50gb",
            "max_age": "30d [automatic]",
            "max_primary_shard_docs": 200000000,
        }
    return view


# -- component templates ----------------------------------------------------------------------------------


@routes.route("PUT|POST", "/_component_template/{name}", api="cluster.put_component_template")
def put_component_template(state: SandboxState, request: Request) -> dict[str, Any]:
    name = request.path_params["name"]
    body = request.json_object(required=True)
    if tracking.enabled():
        tracking.refuse_managed("template", body)
    for key in body:
        if key not in COMPONENT_KEYS:
            raise unknown_field("component_template", key, COMPONENT_KEYS)
    if "template" not in body:
        raise ApiError(400, "x_content_parse_exception", "Required [template]")
    _validate_name(name, "component_template")
    stored: dict[str, Any] = {"template": _parse_template_section(body["template"])}
    if body.get("version") is not None:
        if isinstance(body["version"], bool) or not isinstance(body["version"], int):
            raise ApiError(
                400, "x_content_parse_exception", "[component_template] failed to parse field [version]"
            )
        stored["version"] = body["version"]
    if body.get("_meta") is not None:
        stored["_meta"] = body["_meta"]
    if body.get("deprecated") is not None:
        stored["deprecated"] = bool(body["deprecated"])
    with state.lock:
        templates = templates_part(state)
        if request.flag("create") and name in templates.component:
            raise bad_request(f"component template [{name}] already exists")
        # Re-validate every index template that uses it, with the new component in place.
        previous = templates.component.get(name)
        templates.component[name] = ComponentTemplate(name, stored)
        try:
            for template in templates.index.values():
                if name in template.composed_of:
                    _validate_composition(templates, template)
        except ApiError:
            if previous is None:
                del templates.component[name]
            else:
                templates.component[name] = previous
            raise
        tracking.record(state, "component_template", name)
    return {"acknowledged": True}


def _get_matching(names: str | None, available: dict[str, Any], kind: str) -> tuple[list[str], bool]:
    patterns = split_names(names) or ["*"]
    matched = sorted(n for n in available if any(simple_match(p, n) for p in patterns))
    explicit_missing = [p for p in patterns if "*" not in p and p not in available]
    return matched, bool(explicit_missing) or not matched


@routes.route(
    "GET",
    "/_component_template",
    "/_component_template/{name}",
    write=False,
    api="cluster.get_component_template",
)
def get_component_template(state: SandboxState, request: Request) -> Response:
    if request.param("local") is not None and request.compat >= 9:
        request.warn(LOCAL_WARNING)
    name = request.path_params.get("name")
    include_defaults = request.flag("include_defaults")
    with state.lock:
        templates = templates_part(state)
        matched, missing = _get_matching(name, templates.component, "component")
        body = {
            "component_templates": [
                {
                    "name": n,
                    "component_template": tracking.view(
                        state,
                        "component_template",
                        n,
                        _lifecycle_view(templates.component[n].body, include_defaults),
                    ),
                }
                for n in matched
            ]
        }
    if name and missing and "*" not in name:
        raise ApiError(404, "resource_not_found_exception", f"component template matching [{name}] not found")
    return Response(200, body)


@routes.route("HEAD", "/_component_template/{name}", write=False, api="cluster.exists_component_template")
def exists_component_template(state: SandboxState, request: Request) -> Response:
    with state.lock:
        _matched, missing = _get_matching(
            request.path_params["name"], templates_part(state).component, "component"
        )
    return Response(404 if missing else 200, None)


@routes.route("DELETE", "/_component_template/{name}", api="cluster.delete_component_template")
def delete_component_template(state: SandboxState, request: Request) -> dict[str, Any]:
    names = split_names(request.path_params["name"])
    with state.lock:
        templates = templates_part(state)
        targets = _deletion_targets(names, list(templates.component))
        # ES checks that no index template needs them (validateCanBeRemoved) before anything else
        matching = [
            n for n in templates.component if (n in names if len(names) > 1 else simple_match(names[0], n))
        ]
        in_use = {}
        for template in templates.index.values():
            used = [n for n in matching if n in template.composed_of]
            if used:
                in_use[template.name] = used
        if in_use:
            components = sorted({n for used in in_use.values() for n in used})
            raise bad_request(
                f"component templates [{', '.join(components)}] cannot be removed as they are still in use by index "
                f"templates [{', '.join(sorted(in_use))}]"
            )
        if isinstance(targets, ApiError):
            raise ApiError(404, "resource_not_found_exception", targets.reason)
        for name in targets:
            templates.component.pop(name, None)
            tracking.forget(state, "component_template", name)
    return {"acknowledged": True}


def _deletion_targets(names: list[str], existing: list[str]) -> list[str] | ApiError:
    """The templates a DELETE of ``names`` removes, or (as an error to raise) the names it misses.

    As MetadataIndexTemplateService removes templates: several names are exact names, all of which
    must exist (the error lists the missing ones); one name is a pattern that must match something
    unless it matches everything (``*``).
    """
    if len(names) > 1:
        missing = [name for name in names if name not in existing]
        if missing:
            return ApiError(404, "resource_not_found_exception", ",".join(missing))
        return list(dict.fromkeys(names))
    pattern = names[0] if names else ""
    matched = [name for name in existing if simple_match(pattern, name)]
    if not matched and pattern not in ("*", "_all"):
        return ApiError(404, "resource_not_found_exception", pattern)
    return matched


# -- index templates ----------------------------------------------------------------------------------------


def _parse_index_template(name: str, body: dict[str, Any]) -> dict[str, Any]:
    for key in body:
        if key not in INDEX_TEMPLATE_KEYS:
            raise unknown_field("index_template", key, INDEX_TEMPLATE_KEYS)
    patterns = body.get("index_patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ApiError(
            400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
        )
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ApiError(
            400, "x_content_parse_exception", "[index_template] failed to parse field [index_patterns]"
        )
    for pattern in patterns:
        validate_pattern(pattern, name)
    stored: dict[str, Any] = {"index_patterns": list(patterns)}
    if body.get("template") is not None:
        stored["template"] = _parse_template_section(body["template"])
    composed_of = body.get("composed_of") or []
    if not isinstance(composed_of, list) or not all(isinstance(c, str) for c in composed_of):
        raise ApiError(
            400, "x_content_parse_exception", "[index_template] failed to parse field [composed_of]"
        )
    stored["composed_of"] = list(composed_of)
    if body.get("priority") is not None:
        priority = body["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ApiError(
                400, "x_content_parse_exception", "[index_template] failed to parse field [priority]"
            )
        if priority < 0:
            raise ApiError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: index template priority must be >= 0;",
            )
        stored["priority"] = priority
    if body.get("version") is not None:
        if isinstance(body["version"], bool) or not isinstance(body["version"], int):
            raise ApiError(
                400, "x_content_parse_exception", "[index_template] failed to parse field [version]"
            )
        stored["version"] = body["version"]
    for key in (
        "_meta",
        "data_stream",
        "allow_auto_create",
        "ignore_missing_component_templates",
        "deprecated",
    ):
        if body.get(key) is not None:
            stored[key] = copy.deepcopy(body[key])
    if stored.get("data_stream") is not None:
        if not isinstance(stored["data_stream"], dict):
            raise ApiError(
                400, "x_content_parse_exception", "[index_template] failed to parse field [data_stream]"
            )
        stored["data_stream"] = {"hidden": False, "allow_custom_routing": False, **stored["data_stream"]}
    return stored


def _check_overlaps(templates: TemplatesState, template: IndexTemplate) -> None:
    """MetadataIndexTemplateService.addIndexTemplateV2: no two templates of the same priority may
    match one index name (the template of the same name is the one being replaced)."""
    overlaps = templates.overlapping(template.name, template.patterns, template.priority)
    if overlaps:
        shown = ",".join(f"{other} => [{', '.join(patterns)}]" for other, patterns in overlaps.items())
        raise bad_request(
            f"index template [{template.name}] has index patterns [{', '.join(template.patterns)}] matching patterns "
            f"from existing templates [{', '.join(overlaps)}] with patterns ({shown}) that have the same priority "
            f"[{template.priority}], multiple index templates may not match during index creation, please use a "
            "different priority"
        )


def _validate_composition(templates: TemplatesState, template: IndexTemplate) -> None:
    missing = [c for c in template.composed_of if c not in templates.component]
    ignorable = set(template.body.get("ignore_missing_component_templates") or [])
    missing = [c for c in missing if c not in ignorable]
    if missing:
        raise ApiError(
            400,
            "invalid_index_template_exception",
            f"index_template [{template.name}] invalid, cause [index template [{template.name}] specifies component "
            f"templates [{', '.join(missing)}] that do not exist]",
            name=template.name,
        )
    try:
        resolved = resolve_template(templates, template)
        index_settings.validate({k: v for k, v in resolved.settings.items() if v is not None}, creating=True)
    except ApiError as exc:
        components = [c for c in template.composed_of if c in templates.component]
        suffix = f"with component templates {('[' + ', '.join(components) + ']')} " if components else ""
        raise bad_request(
            f"composable template [{template.name}] template after composition {suffix}is invalid"
        ).with_cause(exc) from exc


@routes.route("PUT|POST", "/_index_template/{name}", api="indices.put_index_template")
def put_index_template(state: SandboxState, request: Request) -> dict[str, Any]:
    name = request.path_params["name"]
    body = request.json_object(required=True)
    if tracking.enabled():
        tracking.refuse_managed("template", body)
    _validate_name(name, "index_template")
    stored = _parse_index_template(name, body)
    template = IndexTemplate(name, stored)
    with state.lock:
        templates = templates_part(state)
        if request.flag("create") and name in templates.index:
            raise bad_request(f"index template [{name}] already exists")
        _check_overlaps(templates, template)
        _validate_composition(templates, template)
        templates.index[name] = template
        tracking.record(state, "index_template", name)
        older = overlapping_legacy(state, template.patterns)
        if older:
            request.warn(precedence_warning(name, template.patterns, older))
    return {"acknowledged": True}


@routes.route(
    "GET", "/_index_template", "/_index_template/{name}", write=False, api="indices.get_index_template"
)
def get_index_template(state: SandboxState, request: Request) -> Response:
    name = request.path_params.get("name")
    include_defaults = request.flag("include_defaults")
    with state.lock:
        templates = templates_part(state)
        matched, missing = _get_matching(name, templates.index, "index")
        body = {
            "index_templates": [
                {
                    "name": n,
                    "index_template": tracking.view(
                        state, "index_template", n, _lifecycle_view(templates.index[n].body, include_defaults)
                    ),
                }
                for n in matched
            ]
        }
    if name and missing:
        if "*" in name:
            return Response(404, body)
        raise ApiError(404, "resource_not_found_exception", f"index template matching [{name}] not found")
    return Response(200, body)


@routes.route("HEAD", "/_index_template/{name}", write=False, api="indices.exists_index_template")
def exists_index_template(state: SandboxState, request: Request) -> Response:
    with state.lock:
        _, missing = _get_matching(request.path_params["name"], templates_part(state).index, "index")
    return Response(404 if missing else 200, None)


@routes.route("DELETE", "/_index_template/{name}", api="indices.delete_index_template")
def delete_index_template(state: SandboxState, request: Request) -> dict[str, Any]:
    names = split_names(request.path_params["name"])
    with state.lock:
        templates = templates_part(state)
        targets = _deletion_targets(names, list(templates.index))
        if isinstance(targets, ApiError):
            raise ApiError(404, "resource_not_found_exception", f"index_template [{targets.reason}] missing")
        for name in targets:
            templates.index.pop(name, None)
            tracking.forget(state, "index_template", name)
    return {"acknowledged": True}


# -- simulate -----------------------------------------------------------------------------------------------


def _resolved_view(templates: TemplatesState, template: IndexTemplate, tier: bool) -> dict[str, Any]:
    resolved = resolve_template(templates, template)
    settings = dict(resolved.settings)
    if tier:
        settings.setdefault("index.routing.allocation.include._tier_preference", "data_content")
    mapping = resolved.mapping
    if mapping:
        mapping = merge_mappings({}, mapping)
    return {
        "settings": nest_settings({k: v for k, v in settings.items() if v is not None}),
        "mappings": mapping,
        "aliases": {alias: dict(body) for alias, body in resolved.aliases.items()},
    }


def _with_candidate(
    templates: TemplatesState, request: Request, name: str | None
) -> tuple[TemplatesState, IndexTemplate | None]:
    """The templates as they would be with the request body added as a template (simulate APIs)."""
    body = request.json_object()
    view = TemplatesState()
    view.component = dict(templates.component)
    view.index = dict(templates.index)
    if not body:
        return view, None
    # TransportSimulateTemplateAction: the body is "fake added" under the given name (replacing that
    # template) or a temporary one, through the same validation as a PUT (addIndexTemplateV2).
    candidate_name = name or f"simulate_template_{uuid.uuid4().hex[:22]}"
    _validate_name(candidate_name, "index_template")
    stored = _parse_index_template(candidate_name, body)
    candidate = IndexTemplate(candidate_name, stored)
    _check_overlaps(view, candidate)
    _validate_composition(view, candidate)
    view.index[candidate_name] = candidate
    return view, candidate


@routes.route(
    "POST", "/_index_template/_simulate_index/{name}", write=False, api="indices.simulate_index_template"
)
def simulate_index(state: SandboxState, request: Request) -> dict[str, Any]:
    index_name = request.path_params["name"]
    with state.lock:
        view, _candidate = _with_candidate(templates_part(state), request, None)
        matching = view.find(index_name)
        if matching is None:
            return {}
        overlapping = [
            {"name": t.name, "index_patterns": t.patterns}
            for t in sorted(view.index.values(), key=lambda t: t.name)
            if t.name != matching.name and any(simple_match(p, index_name) for p in t.patterns)
        ]
        return {"template": _resolved_view(view, matching, tier=True), "overlapping": overlapping}


@routes.route(
    "POST",
    "/_index_template/_simulate",
    "/_index_template/_simulate/{name}",
    write=False,
    api="indices.simulate_template",
)
def simulate_template(state: SandboxState, request: Request) -> dict[str, Any]:
    name = request.path_params.get("name")
    with state.lock:
        templates = templates_part(state)
        view, candidate = _with_candidate(templates, request, name)
        template = candidate or (view.index.get(name) if name else None)
        if template is None:
            if name:
                raise bad_request(f"unable to simulate template [{name}] that does not exist")
            raise ApiError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: must specify a template name or a template body;",
            )
        overlapping = [
            {"name": legacy_name, "index_patterns": patterns}
            for legacy_name, patterns in overlapping_legacy(state, template.patterns).items()
        ] + [
            {"name": t.name, "index_patterns": t.patterns}
            for t in sorted(view.index.values(), key=lambda t: t.name)
            if t.name != template.name
            and any(
                simple_match(a, b) or simple_match(b, a) or _overlap(a, b)
                for a in template.patterns
                for b in t.patterns
            )
        ]
        resolved = _resolved_view(view, template, tier=True)
        lifecycle = _resolved_lifecycle(view, template)
        if lifecycle is not None:
            resolved["lifecycle"] = _lifecycle_view(
                {"template": {"lifecycle": lifecycle}}, request.flag("include_defaults")
            )["template"]["lifecycle"]
        return {"template": resolved, "overlapping": overlapping}


def _resolved_lifecycle(templates: TemplatesState, template: IndexTemplate) -> dict[str, Any] | None:
    """The data stream lifecycle a data stream template gives (its components' merged under its own)."""
    if template.body.get("data_stream") is None:
        return None
    merged: dict[str, Any] | None = None
    bodies = [templates.component[c].body for c in template.composed_of if c in templates.component]
    for body in [*bodies, template.body]:
        lifecycle = (body.get("template") or {}).get("lifecycle")
        if isinstance(lifecycle, dict):
            merged = {**(merged or {}), **lifecycle}
    return merged


def _overlap(a: str, b: str) -> bool:
    return patterns_overlap(a, b)


def composed_mapping(templates: TemplatesState, template: IndexTemplate) -> dict[str, Any]:
    bodies = [templates.component[c].body for c in template.composed_of if c in templates.component] + [
        template.body
    ]
    return compose_mappings((template_mapping_raw(b) for b in bodies), MappingContext())
