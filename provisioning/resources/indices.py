"""Indices: created with the stack's body on top of its template; changed in place only additively.

An index cannot change a field's type, dims or similarity, or its shard count, without a reindex;
those differences are planned as blocked ("requires reindex") instead of being attempted. Live
mappings carry Elasticsearch's defaults and fields added by dynamic mapping, so only what the stack
declares is compared. Ownership is recorded in the mapping's ``_meta``.
"""

from __future__ import annotations

from typing import Any

from provisioning.resources.base import Comparison, Desired, Live, ResourceKind, owner_of, ownership_meta
from provisioning.resources.diff import DiffEntry, diff, drop_none, flatten_settings, mapping_diff
from provisioning.spec.stack import Stack

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


class Indices(ResourceKind):
    kind = "index"
    title = "index"

    def desired(self, stack: Stack) -> list[Desired]:
        out = []
        for name, spec in stack.spec.indices.items():
            effective = stack.effective_body(name)
            mappings = dict(effective["mappings"])
            sent = drop_none(
                {"settings": spec.settings, "mappings": dict(spec.mappings or {}), "aliases": spec.aliases}
            )
            meta = ownership_meta(stack, effective)
            mappings["_meta"] = {**dict(mappings.get("_meta") or {}), **meta}
            sent["mappings"]["_meta"] = mappings["_meta"]
            out.append(
                Desired(
                    self.kind,
                    name,
                    sent,
                    ("indices", name),
                    extra={
                        "settings": effective["settings"],
                        "mappings": mappings,
                        "aliases": effective["aliases"],
                    },
                )
            )
        return out

    def read(self, stack: Stack, names: list[str]) -> dict[str, Live]:
        """One request: every index's mapping ``_meta`` (to find managed ones) plus the full body of the
        declared ones, trimmed server-side with ``filter_path``. Names with a '.' cannot be spelled in
        a filter path, so those stacks take a second request."""
        simple = [n for n in names if "." not in n]
        found = self.call(
            "read indices",
            self.client.indices.get,
            index="*",
            expand_wildcards="open,closed",
            filter_path=",".join(["*.mappings._meta", *(f"{n}.*" for n in simple)]),
            missing_ok=True,
        )
        bodies: dict[str, Any] = dict(found.body) if found else {}
        dotted = [n for n in names if "." in n]
        if dotted:
            extra = self.call(
                "read indices",
                self.client.indices.get,
                index=",".join(dotted),
                ignore_unavailable=True,
                allow_no_indices=True,
                missing_ok=True,
            )
            bodies.update(extra.body if extra else {})
        out: dict[str, Live] = {}
        for index, body in bodies.items():
            managed_by, owner = owner_of((body.get("mappings") or {}).get("_meta"))
            if index in names or owner == stack.spec.name:
                out[index] = Live(self.kind, index, dict(body), owner, managed_by)
        return out

    def _live_settings(self, live: Live) -> dict[str, Any]:
        flat = flatten_settings(live.body.get("settings"))
        return {k: v for k, v in flat.items() if not k.startswith(_INTERNAL_SETTINGS)}

    def compare(self, desired: Desired, live: Live) -> Comparison:
        want_settings = flatten_settings(desired.extra["settings"])
        changes = diff(want_settings, self._live_settings(live), prefix="settings", exact=False)
        changes += mapping_diff(
            desired.extra["mappings"], live.body.get("mappings") or {}, prefix="mappings", fields_exact=False
        )
        changes += diff(desired.extra["aliases"], live.body.get("aliases") or {}, prefix="aliases")
        if not changes:
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

    def create(self, desired: Desired) -> None:
        self.call(
            f"create index {desired.name}", self.client.indices.create, index=desired.name, body=desired.body
        )

    def update(self, desired: Desired, live: Live) -> None:
        comparison = self.compare(desired, live)
        paths = {c.path.split(".")[0] for c in comparison.diff}
        if "mappings" in paths:
            mappings = desired.extra["mappings"]
            self.call(
                f"update mapping of {desired.name}",
                self.client.indices.put_mapping,
                index=desired.name,
                body=mappings,
            )
        settings = {
            c.path.removeprefix("settings."): c.after
            for c in comparison.diff
            if c.path.startswith("settings.")
        }
        if settings:
            self.call(
                f"update settings of {desired.name}",
                self.client.indices.put_settings,
                index=desired.name,
                body=settings,
            )
        if "aliases" in paths:
            want = desired.extra["aliases"]
            have = live.body.get("aliases") or {}
            actions: list[dict[str, Any]] = [
                {"remove": {"index": desired.name, "alias": a}} for a in have if a not in want
            ]
            actions += [
                {"add": {"index": desired.name, "alias": a, **(body or {})}} for a, body in want.items()
            ]
            self.call(
                f"update aliases of {desired.name}", self.client.indices.update_aliases, actions=actions
            )

    def replace(self, desired: Desired, live: Live) -> None:
        raise NotImplementedError("indices are never replaced automatically; see the reindex runbook")

    def doc_count(self, name: str) -> int:
        found = self.call(f"count documents in {name}", self.client.count, index=name, missing_ok=True)
        return int(found.body.get("count", 0)) if found else 0

    def delete_blocked(self, live: Live, *, include_data: bool) -> str | None:
        if include_data:
            return None
        count = self.doc_count(live.name)
        if count:
            return (
                f"index {live.name} holds {count} documents; pass --include-data to delete it with its data"
            )
        return None

    def delete(self, live: Live) -> None:
        self.call(f"delete index {live.name}", self.client.indices.delete, index=live.name, missing_ok=True)
