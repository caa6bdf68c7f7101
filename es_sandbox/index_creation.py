"""Creating an index as MetadataCreateIndexService does: name checks, templates, settings, mappings, aliases.

The index is created with the emulated Elasticsearch version's id in ``index.version.created``, so
that behaviours keyed on the index version (dense_vector defaults, ``_source`` vectors) stay those of
the version that created it (es_sandbox.versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from es_sandbox import settings as index_settings
from es_sandbox import versions
from es_sandbox.dates import resolve_date_math_name
from es_sandbox.http import ApiError, bad_request
from es_sandbox.mapper.merging import count_fields, merge_mappings
from es_sandbox.mapper.parsing import MappingContext, parse_mapping
from es_sandbox.metadata import (
    Index,
    cluster_setting,
    indices_part,
    legacy_for,
    normalize_alias,
    parse_aliases,
    resolve_template,
    templates_part,
    wrap_mapping_error,
)
from es_sandbox.state import SandboxState
from es_sandbox.store import IndexStore
from es_sandbox.util import new_uuid, now_millis, validate_index_name


def create_index(
    state: SandboxState,
    name: str,
    body: Mapping[str, Any] | None,
    *,
    cause: str = "api",
) -> Index:
    """Create an index as ES's MetadataCreateIndexService: templates, then the request, validated."""
    indices = indices_part(state)
    templates = templates_part(state)
    name = resolve_date_math_name(name, now_millis())
    validate_index_name(name)
    if name in indices.indices:
        existing = indices.indices[name]
        raise ApiError(
            400,
            "resource_already_exists_exception",
            f"index [{name}/{existing.uuid}] already exists",
            index_uuid=existing.uuid,
            index=name,
        )
    if name in indices.alias_names():
        raise ApiError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], already exists as alias",
            index_uuid="_na_",
            index=name,
        )
    body = body or {}
    known = {"settings", "mappings", "aliases"}
    for key in body:
        if key not in known:
            raise ApiError(400, "parse_exception", f"unknown key [{key}] for create index")
    request_settings = index_settings.normalize(body.get("settings"))
    index_settings.validate(request_settings, creating=True)
    hidden = request_settings.get("index.hidden") == "true"
    template = templates.find(name, hidden=hidden)
    if template is not None and template.body.get("data_stream") is not None:
        raise bad_request(
            f"cannot create index with name [{name}], because it matches with template [{template.name}] that "
            "creates data streams only, use create data stream api instead"
        )
    resolved = resolve_template(templates, template, request_settings, legacy_for(templates, name))
    merged_settings = {**index_settings.defaults(), **resolved.settings, **request_settings}
    merged_settings = {k: v for k, v in merged_settings.items() if v is not None}
    index_settings.validate(
        {
            k: v
            for k, v in merged_settings.items()
            if k != "index.routing.allocation.include._tier_preference"
        },
        creating=True,
    )
    ctx = MappingContext(merged_settings)
    raw_mapping = body.get("mappings")
    try:
        request_mapping = parse_mapping(raw_mapping, ctx) if raw_mapping else {}
        mapping = merge_mappings(resolved.mapping, request_mapping) if resolved.mapping else request_mapping
    except ApiError as exc:
        raise wrap_mapping_error(exc) from exc
    limit = int(merged_settings.get("index.mapping.total_fields.limit", "1000"))
    if count_fields(mapping) > limit:
        raise bad_request(f"Limit of total fields [{limit}] has been exceeded")
    aliases = dict(resolved.aliases)
    aliases.update(parse_aliases(body.get("aliases")))
    aliases = {
        resolve_date_math_name(alias, now_millis()): normalize_alias(alias, definition)
        for alias, definition in aliases.items()
    }
    for alias in aliases:
        validate_index_name(alias, kind="alias")
        if alias in indices.indices or alias == name:
            raise ApiError(
                400,
                "invalid_alias_name_exception",
                f"Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias",
            )
        if aliases[alias].get("is_write_index"):
            for other in indices.alias_indices(alias):
                if other.aliases[alias].get("is_write_index"):
                    raise bad_request(f"alias [{alias}] has more than one write index [{other.name},{name}]")
    uuid = new_uuid()
    created = now_millis()
    merged_settings.update(
        {
            "index.uuid": uuid,
            "index.creation_date": str(created),
            "index.provided_name": name,
            "index.version.created": versions.current().index_version_created,
        }
    )
    index = Index(name, uuid, merged_settings, mapping, aliases, IndexStore(created / 1000.0))
    index.primaries_unassigned = cluster_setting(state, "cluster.routing.allocation.enable", "all") == "none"
    indices.indices[name] = index
    return index
