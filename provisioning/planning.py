"""The planner: desired (from the stack) + live (read from the cluster) -> an ordered :class:`Plan`.

Reading and deciding are separate steps. :func:`survey` asks each resource kind, in dependency
order, what the stack declares and what the cluster holds (one read per kind); :func:`plan` turns
that into Changes: creates and updates in dependency order, then deletions of resources this stack
manages but no longer declares, in reverse order. ``provision status`` reads the same survey and
plan (:mod:`provisioning.stack_status`), so there is one comparison, not two.

A declared name that exists but is not this stack's is a conflict, never overwritten unless it is
adopted (``--adopt kind/name``); a change that would lose data or needs a reindex is planned as
blocked. The executor refuses a plan with either before its first write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provisioning.changes import Change, Conflict, Desired, Live, Plan
from provisioning.cluster import Cluster
from provisioning.es_versions import BBQ_DISK_DEFAULT_FROM, default_index_type, index_type_cost, shown
from provisioning.json_types import JsonObject
from provisioning.mappings import dense_vector_fields
from provisioning.resources.base import Survey
from provisioning.resources.registry import AnyKind, all_kinds
from provisioning.stackfile.stack import Stack


@dataclass(frozen=True)
class Reading:
    """One kind's declared and live resources, as read in a survey."""

    kind: AnyKind
    desired: list[Desired]
    live: dict[str, Live]


def survey(
    stack: Stack, cluster: Cluster, kinds: Iterable[AnyKind] | None = None
) -> tuple[list[Reading], Survey]:
    """Read every kind's live objects, in dependency order (a later kind's ownership can depend on
    an earlier one's: a deployment is this stack's when its model is)."""
    cluster.ensure_supported()
    found = Survey()
    readings: list[Reading] = []
    for kind in all_kinds(cluster) if kinds is None else kinds:
        desired: list[Desired] = list(kind.desired(stack))
        live = kind.read(stack, [d.name for d in desired], found)
        found.live[kind.kind] = live
        readings.append(Reading(kind, desired, live))
    return readings, found


def _conflict(desired: Desired, live: Live, stack: Stack) -> Conflict:
    if live.managed_by == "provision" and live.owner:
        reason = f"exists and is managed by another stack ('{live.owner}')"
    else:
        reason = "exists and is not managed by provision"
    hint = (
        f"to take it over on purpose, run with --adopt {desired.kind}/{desired.name} "
        f"(its body will be replaced by the one in {stack.path.name}); or rename it in the stack"
    )
    return Conflict(desired.kind, desired.name, reason, hint)


def _plan_reading(
    reading: Reading,
    stack: Stack,
    plan: Plan,
    found: Survey,
    adopt: set[str],
    include_data: bool,
    prune: bool,
) -> list[Change]:
    """Creates/updates of one kind go on ``plan``; its deletions are returned (they run in reverse)."""
    kind = reading.kind
    for want in reading.desired:
        have = reading.live.get(want.name)
        if have is None:
            reason = f"{kind.title} does not exist"
            plan.changes.append(
                Change(want.kind, want.name, "create", reason, None, kind.describe(want.body), desired=want)
            )
            found.planned[want.address] = "create"
            continue
        adopted = want.address in adopt
        if not have.managed_by_stack(stack.spec.name) and not adopted:
            plan.conflicts.append(_conflict(want, have, stack))
            continue
        comparison = kind.compare_desired(want, have, found)
        if comparison.action is None and not adopted:
            plan.unchanged.append(want.address)
            continue
        reason = comparison.reason or (
            "adopted: provision takes it over"
            if adopted
            else f"{len(comparison.diff)} field(s) differ from the stack"
        )
        change = Change(
            want.kind,
            want.name,
            comparison.action or "update",
            reason,
            kind.describe(have.body),
            kind.describe(want.body),
            comparison.diff,
            comparison.blocked,
            desired=want,
            live=have,
        )
        plan.changes.append(change)
        found.planned[want.address] = change.action
    _dry_run(reading, stack, plan)
    deletes: list[Change] = []
    if prune and kind.prunable:
        declared = {d.name for d in reading.desired}
        for name, have in reading.live.items():
            if name not in declared and have.managed_by_stack(stack.spec.name):
                deletes.append(
                    Change(
                        have.kind,
                        name,
                        "delete",
                        f"managed by this stack but no longer declared in {stack.path.name}",
                        kind.describe(have.body),
                        None,
                        blocked=kind.delete_blocked(have, include_data=include_data),
                        live=have,
                    )
                )
    return deletes


def _dry_run(reading: Reading, stack: Stack, plan: Plan) -> None:
    """Each body this kind would write, put to the cluster's dry-run API first; a refusal is a plan
    error, so ``apply`` stops before its first write instead of after the costly ones."""
    for change in [c for c in plan.changes if c.kind == reading.kind.kind and c.desired is not None]:
        if change.action == "delete" or change.desired is None:
            continue
        refused = reading.kind.dry_run_desired(change.desired, stack)
        if refused:
            plan.errors.append(f"{change.address}: Elasticsearch refuses it: {refused}")


def index_option_notes(stack: Stack, cluster: Cluster, plan: Plan) -> list[str]:
    """A note for each vector field that leaves ``index_options`` to the cluster, in an index template
    or index this plan creates or updates: what this cluster's version will choose, and its cost."""
    version = cluster.ensure_supported()
    license_type = "trial" if stack.spec.cluster.license == "trial" else None
    if version >= BBQ_DISK_DEFAULT_FROM and license_type is None:
        license_type = cluster.license_type()
    bodies: list[tuple[str, JsonObject]] = []
    for change in plan.changes:
        if change.action == "delete":
            continue
        if change.kind == "index_template":
            bodies.append((change.address, stack.composed_template(change.name)["mappings"]))
        elif change.kind == "index":
            bodies.append((change.address, stack.effective_mappings(change.name)))
    notes = []
    for address, mappings in bodies:
        for field, mapping in dense_vector_fields(mappings).items():
            if "index_options" in mapping or mapping.get("index") in (False, "false"):
                continue
            dims = mapping.get("dims")
            dims = dims if isinstance(dims, int) else None
            element = str(mapping.get("element_type", "float"))
            chosen = default_index_type(version, element, dims, license_type)
            if chosen is None or dims is None:
                continue
            cost = index_type_cost(chosen, dims)
            notes.append(
                f"{address}: {field} declares no index_options; Elasticsearch {shown(version)} will use {chosen} "
                f"({cost.bytes_per_vector} bytes per {dims}-d vector searched, against {4 * dims} as float; {cost.recall}); "
                "declare index_options to choose"
            )
    return notes


def plan_from(
    readings: list[Reading],
    found: Survey,
    stack: Stack,
    cluster: Cluster,
    *,
    adopt: Iterable[str] = (),
    include_data: bool = False,
    prune: bool = True,
) -> Plan:
    """The plan for a survey already made (see :func:`plan`)."""
    result = Plan(stack=stack.spec.name, cluster=cluster.url, mode="apply")
    adopt_set = set(adopt)
    deletes_by_kind = [
        _plan_reading(reading, stack, result, found, adopt_set, include_data, prune) for reading in readings
    ]
    for deletes in reversed(deletes_by_kind):
        result.changes.extend(deletes)
    unknown = adopt_set - {c.address for c in result.changes}
    for address in sorted(unknown):
        result.notes.append(f"--adopt {address}: nothing by that name needed adopting")
    for reading in readings:
        actions = [c.action for c in result.changes if c.kind == reading.kind.kind]
        result.notes.extend(reading.kind.plan_notes(actions))
    result.notes.extend(found.notes)
    result.notes.extend(index_option_notes(stack, cluster, result))
    return result


def plan(
    stack: Stack,
    cluster: Cluster,
    *,
    adopt: Iterable[str] = (),
    include_data: bool = False,
    prune: bool = True,
) -> Plan:
    """What ``apply`` would change to make ``cluster`` match ``stack``; nothing is written.

    Reads each resource kind once (``GET _ml/trained_models``, ``_ml/trained_models/_stats``,
    ``_inference``, ``_component_template``, ``_ingest/pipeline``, ``_index_template``, the declared
    indices). ``adopt`` names resources (``kind/name``) to take over although another owner (or
    none) is recorded; ``include_data`` allows deleting indices that hold documents; ``prune``
    plans deleting what the stack manages but no longer declares. Raises ClusterError when the
    cluster cannot be read.
    """
    readings, found = survey(stack, cluster)
    return plan_from(readings, found, stack, cluster, adopt=adopt, include_data=include_data, prune=prune)


def destroy_plan(stack: Stack, cluster: Cluster, *, include_data: bool = False) -> Plan:
    """Deleting everything this stack manages, in reverse dependency order; nothing else is touched.

    Resources with a declared name that another owner manages are left alone (and noted); an index
    holding documents is blocked unless ``include_data``.
    """
    readings, _ = survey(stack, cluster)
    result = Plan(stack=stack.spec.name, cluster=cluster.url, mode="destroy")
    for reading in reversed(readings):
        kind = reading.kind
        if kind.kind == "license":
            continue
        for name, have in reading.live.items():
            if not have.managed_by_stack(stack.spec.name):
                result.notes.append(f"{kind.kind}/{name} exists but is not managed by this stack: left alone")
                continue
            result.changes.append(
                Change(
                    have.kind,
                    name,
                    "delete",
                    "destroy",
                    kind.describe(have.body),
                    None,
                    blocked=kind.delete_blocked(have, include_data=include_data),
                    live=have,
                )
            )
    return result
