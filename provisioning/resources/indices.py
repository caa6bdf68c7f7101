"""Indices: created with the stack's body on top of its template; changed in place only additively.

An index cannot change a field's type, dims or similarity, or its shard count, without a reindex;
those differences are planned as blocked ("requires reindex") instead of being attempted. Live
mappings carry Elasticsearch's defaults and fields added by dynamic mapping, so only what the stack
declares is compared. Ownership is recorded in the mapping's ``_meta``.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.canonical import canonical_aliases, flatten_settings
from provisioning.changes import ENCODERS_META, Change, Desired, Live
from provisioning.cluster import ClusterError
from provisioning.json_types import JsonObject, as_int, as_object
from provisioning.resources.base import (
    ApplyContext,
    Comparison,
    ResourceKind,
    Survey,
    owner_of,
    ownership_meta,
)
from provisioning.resources.diff import STATE_PATH, DiffEntry, diff, drop_none, mapping_diff
from provisioning.stackfile.stack import Stack

# Changing one of these on an existing field needs a new index.
INCOMPATIBLE_FIELD_PARAMS = {
    "type",
    "dims",
    "similarity",
    "element_type",
    "index",
    "analyzer",
    "format",
    "normalizer",
}
# Settings Elasticsearch only accepts at index creation.
STATIC_SETTINGS = (
    "index.number_of_shards",
    "index.codec",
    "index.routing_partition_size",
    "index.sort.",
    "index.mode",
    "index.analysis.",
    "index.similarity.",
    "index.mapping.source.",
)
# Settings that Elasticsearch reports but that are not the stack's (identity, timestamps).
_INTERNAL_SETTINGS = ("index.uuid", "index.creation_date", "index.provided_name", "index.version.")


def _is_incompatible(entry: DiffEntry) -> bool:
    parts = entry.path.split(".")
    return entry.op == "change" and parts[0] == "mappings" and parts[-1] in INCOMPATIBLE_FIELD_PARAMS


def _is_static(entry: DiffEntry) -> bool:
    key = entry.path.removeprefix("settings.")
    return entry.path.startswith("settings.") and any(key == s or key.startswith(s) for s in STATIC_SETTINGS)


HEALTH_WAIT = "30s"  # how long apply waits for a red index to get its primaries back


@dataclass(frozen=True, kw_only=True)
class IndexLive(Live):
    """An index with its health (``GET _cluster/health/<indices>?level=indices``), None when unknown."""

    health: str | None = None


@dataclass(frozen=True, kw_only=True)
class IndexDesired(Desired):
    """A declared index with what it ends up with once its templates apply: the body compared
    with the live index (the sent ``body`` holds only what the index declares itself)."""

    settings: JsonObject
    mappings: JsonObject
    aliases: JsonObject


class Indices(ResourceKind[IndexDesired]):
    kind = "index"
    title = "index"
    desired_type = IndexDesired

    def desired(self, stack: Stack) -> list[IndexDesired]:
        out = []
        for name, spec in stack.spec.indices.items():
            effective = stack.effective_body(name)
            mappings: JsonObject = dict(effective["mappings"])
            composed: JsonObject = {
                "settings": effective["settings"],
                "mappings": effective["mappings"],
                "aliases": effective["aliases"],
            }
            meta = ownership_meta(stack, composed)
            mappings["_meta"] = {**as_object(mappings.get("_meta")), **meta}
            own_mappings: JsonObject = dict(spec.mappings or {})
            own_mappings["_meta"] = mappings["_meta"]
            sent = drop_none({"settings": spec.settings, "mappings": own_mappings, "aliases": spec.aliases})
            out.append(
                IndexDesired(
                    self.kind,
                    name,
                    sent,
                    ("indices", name),
                    settings=effective["settings"],
                    mappings=mappings,
                    aliases=effective["aliases"],
                )
            )
        return out

    def read(self, stack: Stack, names: list[str], survey: Survey) -> dict[str, Live]:
        """One request: every index's mapping ``_meta`` (to find managed ones) plus the full body of the
        declared ones, trimmed server-side with ``filter_path``. Names with a '.' cannot be spelled in
        a filter path, so those stacks take a second request."""
        simple = [n for n in names if "." not in n]
        found = self.call_or_none(
            "read indices",
            self.client.indices.get,
            index="*",
            expand_wildcards="open,closed",
            filter_path=",".join(["*.mappings._meta", *(f"{n}.*" for n in simple)]),
        )
        bodies: JsonObject = dict(found or {})
        dotted = [n for n in names if "." in n]
        if dotted:
            extra = self.call_or_none(
                "read indices",
                self.client.indices.get,
                index=",".join(dotted),
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            bodies.update(extra or {})
        found_names = [n for n in names if n in bodies]
        health = self._health(found_names)
        out: dict[str, Live] = {}
        for index, item in bodies.items():
            body = as_object(item)
            managed_by, owner = owner_of(as_object(body.get("mappings")).get("_meta"))
            if index in names or owner == stack.spec.name:
                out[index] = IndexLive(self.kind, index, body, owner, managed_by, health=health.get(index))
        return out

    def _health(self, names: list[str]) -> dict[str, str]:
        """Each existing declared index's health status (one request; none when there is none)."""
        if not names:
            return {}
        found = self.call(
            "read index health",
            self.client.cluster.health,
            index=",".join(names),
            level="indices",
            filter_path="indices.*.status",
        )
        statuses = as_object(found.get("indices"))
        return {name: str(as_object(v).get("status")) for name, v in statuses.items()}

    def _live_settings(self, live: Live) -> JsonObject:
        flat = flatten_settings(as_object(live.body.get("settings")))
        return {k: v for k, v in flat.items() if not k.startswith(_INTERNAL_SETTINGS)}

    def compare(self, desired: IndexDesired, live: Live, survey: Survey) -> Comparison:
        want_settings = flatten_settings(desired.settings)
        changes = diff(want_settings, self._live_settings(live), prefix="settings", exact=False)
        changes += mapping_diff(
            desired.mappings, as_object(live.body.get("mappings")), prefix="mappings", fields_exact=False
        )
        changes += diff(
            canonical_aliases(desired.aliases),
            canonical_aliases(as_object(live.body.get("aliases"))),
            prefix="aliases",
        )
        if not changes:
            if isinstance(live, IndexLive) and live.health == "red":
                return Comparison(
                    [DiffEntry(STATE_PATH, "change", "red", "yellow")],
                    "update",
                    reason=f"wait for index {desired.name}: health red (a primary shard is not allocated)",
                )
            return Comparison([], None)
        blocking = [c for c in changes if _is_incompatible(c) or _is_static(c)]
        if blocking:
            what = ", ".join(f"{c.path} {c.before!r} -> {c.after!r}" for c in blocking)
            return Comparison(
                changes,
                "update",
                blocked=f"requires reindex: {what} cannot change on an existing index (create a new index and reindex into it)",
            )
        return Comparison(changes, "update")

    def create(self, desired: IndexDesired, context: ApplyContext) -> None:
        self.call(
            f"create index {desired.name}", self.client.indices.create, index=desired.name, body=desired.body
        )

    def update(self, change: Change, desired: IndexDesired, context: ApplyContext) -> None:
        """Applies exactly the planned diff: the mapping (additive), dynamic settings, aliases; an
        index that is only red is waited for (``wait_for_status=yellow``), without a write."""
        paths = {c.path.split(".")[0] for c in change.diff}
        if paths == {STATE_PATH}:
            found = self.call_or_none(
                f"wait for index {desired.name}",
                self.client.options(ignore_status=408).cluster.health,
                index=desired.name,
                wait_for_status="yellow",
                timeout=HEALTH_WAIT,
            )
            status = as_object(found).get("status")
            if status not in ("green", "yellow"):
                raise ClusterError(
                    f"index {desired.name} is still {status} after {HEALTH_WAIT}: a primary shard is not allocated "
                    f"(see GET _cluster/allocation/explain)"
                )
            return
        if "mappings" in paths:
            mappings = desired.mappings
            # PUT _mapping replaces _meta whole: keep ingest's record of the encoders (see ENCODERS_META).
            live_meta = (
                as_object(as_object(change.live.body.get("mappings")).get("_meta")) if change.live else {}
            )
            if ENCODERS_META in live_meta:
                meta = {**as_object(mappings.get("_meta")), ENCODERS_META: live_meta[ENCODERS_META]}
                mappings = {**mappings, "_meta": meta}
            self.call(
                f"update mapping of {desired.name}",
                self.client.indices.put_mapping,
                index=desired.name,
                body=mappings,
            )
        settings: JsonObject = {
            c.path.removeprefix("settings."): c.after for c in change.diff if c.path.startswith("settings.")
        }
        if settings:
            self.call(
                f"update settings of {desired.name}",
                self.client.indices.put_settings,
                index=desired.name,
                body=settings,
            )
        if "aliases" in paths:
            have = as_object(change.live.body.get("aliases")) if change.live else {}
            actions: list[JsonObject] = [
                {"remove": {"index": desired.name, "alias": a}} for a in have if a not in desired.aliases
            ]
            actions += [
                {"add": {"index": desired.name, "alias": a, **as_object(body)}}
                for a, body in desired.aliases.items()
            ]
            self.call(
                f"update aliases of {desired.name}", self.client.indices.update_aliases, actions=actions
            )

    def replace(self, change: Change, desired: IndexDesired, context: ApplyContext) -> None:
        raise NotImplementedError("indices are never replaced automatically; see the reindex runbook")

    def doc_count(self, name: str) -> int:
        found = self.call_or_none(f"count documents in {name}", self.client.count, index=name)
        return as_int((found or {}).get("count"))

    def status_details(self, live: Live) -> JsonObject:
        return {"docs": self.doc_count(live.name)}

    def delete_blocked(self, live: Live, *, include_data: bool) -> str | None:
        if include_data:
            return None
        count = self.doc_count(live.name)
        if count:
            return (
                f"index {live.name} holds {count} documents; pass --include-data to delete it with its data"
            )
        return None

    def delete(self, live: Live, context: ApplyContext) -> None:
        self.call_or_none(f"delete index {live.name}", self.client.indices.delete, index=live.name)
