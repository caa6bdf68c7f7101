"""Text renderings of the library's reports, for people. JSON comes from each report's to_json.

Kept apart from the data so the same Plan feeds text, JSON and the Ansible module alike. Colour
is added with click.style; click.echo drops it when the stream is not a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from provisioning.changes import Change, Plan
from provisioning.errors import ProvisionError, SpecIssue
from provisioning.executor import ApplyReport, ChangeResult
from provisioning.image_ingest.report import IngestReport
from provisioning.json_types import JsonObject
from provisioning.plan_document import ChangeDocument, PlanDocument
from provisioning.queries import SearchResult
from provisioning.smoke_tests import VerifyReport
from provisioning.stack_status import StatusReport
from provisioning.stackfile.stack import Stack
from provisioning.workflow import ConvergeReport

SYMBOLS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "magenta"),
    "delete": ("-", "red"),
}
MAX_BODY_LINES = 30


def _value(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


def _body_lines(body: dict[str, Any] | None, indent: str) -> list[str]:
    if not body:
        return []
    lines = yaml.safe_dump(
        body, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    ).splitlines()
    if len(lines) > MAX_BODY_LINES:
        more = len(lines) - MAX_BODY_LINES
        lines = [*lines[:MAX_BODY_LINES], f"... ({more} more lines; see --output json)"]
    return [indent + line for line in lines]


def render_change(change: Change) -> list[str]:
    symbol, colour = SYMBOLS[change.action]
    head = click.style(f"  {symbol} {change.action} {change.kind} {change.name}", fg=colour, bold=True)
    lines = [f"{head}  ({change.reason})"]
    if change.blocked:
        lines.append(click.style(f"      blocked: {change.blocked}", fg="red"))
    if change.action == "create":
        lines += _body_lines(change.after, "      ")
    for entry in change.diff:
        if entry.op == "add":
            lines.append(click.style(f"      + {entry.path}: {_value(entry.after)}", fg="green"))
        elif entry.op == "remove":
            lines.append(click.style(f"      - {entry.path}: {_value(entry.before)}", fg="red"))
        else:
            lines.append(
                click.style(
                    f"      ~ {entry.path}: {_value(entry.before)} -> {_value(entry.after)}", fg="yellow"
                )
            )
    return lines


def render_plan(plan: Plan) -> str:
    verb = "Destroy plan" if plan.mode == "destroy" else "Plan"
    lines = [f"{verb} for stack '{plan.stack}' on {plan.cluster}:"]
    if not plan.has_changes:
        lines.append("  No changes. The cluster matches the stack.")
    for change in plan.changes:
        lines += render_change(change)
    for conflict in plan.conflicts:
        lines.append(
            click.style(
                f"  ! conflict {conflict.kind} {conflict.name}: {conflict.reason}", fg="red", bold=True
            )
        )
        lines.append(f"      {conflict.hint}")
    for error in plan.errors:
        lines.append(click.style(f"  ! error {error}", fg="red", bold=True))
    for note in plan.notes:
        lines.append(f"  note: {note}")
    counts = plan.counts()
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items())
    extra = ""
    if plan.conflicts:
        extra += f", {len(plan.conflicts)} conflict{'s' if len(plan.conflicts) != 1 else ''}"
    if plan.blocked:
        extra += f", {len(plan.blocked)} blocked"
    if plan.errors:
        extra += f", {len(plan.errors)} refused by the cluster"
    lines.append(f"Plan: {summary}{extra}; {len(plan.unchanged)} unchanged.")
    return "\n".join(lines)


def render_result(result: ChangeResult) -> str:
    change = result.change
    if result.status == "applied":
        return click.style(f"  done   {change.action} {change.address} ({result.seconds:.1f}s)", fg="green")
    if result.status == "failed":
        return click.style(f"  FAILED {change.action} {change.address}: {result.error}", fg="red", bold=True)
    return f"  skipped {change.action} {change.address} (not attempted)"


def render_apply(report: ApplyReport) -> str:
    done = [r for r in report.results if r.status == "applied"]
    pending = [r for r in report.results if r.status == "not_attempted"]
    if report.ok:
        return f"Apply complete: {len(done)} change(s) applied."
    lines = [
        click.style(
            f"Apply failed: {len(done)} applied, {len(report.failed)} failed, {len(pending)} not attempted.",
            fg="red",
            bold=True,
        )
    ]
    lines += [f"  done: {r.change.address}" for r in done]
    lines += [f"  failed: {r.change.address}: {r.error}" for r in report.failed]
    lines += [f"  not done: {r.change.address}" for r in pending]
    lines.append("Fix the cause and run apply again: it re-plans from the cluster and continues.")
    return "\n".join(lines)


def render_status(report: StatusReport) -> str:
    lines = [f"Stack '{report.stack}' on {report.cluster}:"]
    for res in report.resources:
        if not res.present:
            state = click.style("missing", fg="red")
        elif not res.managed:
            state = click.style("not managed (conflict)", fg="red")
        elif not res.ready:
            state = click.style(f"not ready ({res.reason})", fg="yellow")
        elif res.drifted:
            shown = "; ".join(res.drift[:3]) + ("..." if len(res.drift) > 3 else "")
            state = click.style(f"drifted ({shown or res.reason})", fg="yellow")
        else:
            state = click.style("in sync", fg="green")
        details = ", ".join(f"{k}={v}" for k, v in res.details.items())
        lines.append(f"  {res.kind:<20} {res.name:<50} {state}{'  ' + details if details else ''}")
    if report.converged:
        lines.append("converged")
    else:
        waiting = [f"{r.kind}/{r.name}: {r.reason}" for r in report.resources if not r.ready]
        why = f" ({'; '.join(waiting)})" if waiting else ""
        lines.append(f"not converged{why}: run provision plan to see what apply would change")
    return "\n".join(lines)


def render_hits(result: SearchResult, indent: str = "  ") -> list[str]:
    lines = []
    for hit in result.hits:
        lines.append(
            f"{indent}{hit.rank:>3}. {hit.score:.4f}  {hit.name or '-':<32} {hit.path or '-':<40} {hit.id[:16]}"
        )
    if not result.hits:
        lines.append(f"{indent}(no hits)")
    return lines


def render_search(result: SearchResult) -> str:
    head = f"{result.kind} query {result.query!r} on {result.index}.{result.field} (k={result.k}, num_candidates={result.num_candidates}, {result.latency_ms:.1f} ms):"
    return "\n".join([head, *render_hits(result)])


def render_verify(report: VerifyReport) -> str:
    lines = []
    for res in report.results:
        if res.passed:
            recall = f", recall {res.recall:.2f}" if res.recall is not None else ""
            latency = f", {res.search.latency_ms:.1f} ms" if res.search else ""
            lines.append(
                click.style(f"PASS {res.name}", fg="green") + f"  ({len(res.hits)} hits{latency}{recall})"
            )
            continue
        lines.append(
            click.style(f"FAIL {res.name}", fg="red", bold=True) + f"  query {res.query!r} on {res.index}"
        )
        if res.error:
            lines.append(f"     error: {res.error}")
        for check in res.checks:
            if not check.passed:
                lines.append(f"     {check.message}")
        if res.search:
            lines += render_hits(res.search, indent="     ")
    passed = sum(r.passed for r in report.results)
    lines.append(f"smoke tests: {passed} passed, {len(report.results) - passed} failed")
    return "\n".join(lines)


def render_ingest(report: IngestReport, *, max_failures: int = 20) -> str:
    """A human summary of an ingest run: one block per job, then up to ``max_failures`` failures each."""
    lines: list[str] = []
    for load in report.encoders:
        lines.append(
            f"encoder {load.name}: {load.source}, {load.runtime} {load.precision} on {load.device} "
            f"(loaded in {load.load_s:.1f}s)"
        )
        if load.gate is not None:
            gate = load.gate
            lines.append(
                f"  quality gate passed: mean cosine {gate['mean_cosine']:.4f} (>= {gate['min_mean_cosine']:g}), "
                f"top-{gate['neighbours']} neighbour overlap {gate['neighbour_overlap']:.3f} "
                f"(>= {gate['min_neighbour_overlap']:g}) vs torch fp32 on {gate['calibration']}"
            )
    for job in report.jobs:
        on = " on ray" if job.engine == "ray" else ""
        if job.mode == "export":
            head = (
                f"export {job.name} -> {job.shards}{on}: {job.scanned} scanned, {job.already_indexed} already "
                f"exported, {job.embedded} embedded, {job.indexed} written, {job.failed} failed"
            )
        elif job.mode == "load":
            head = (
                f"load {job.name} <- {job.shards} -> {job.index}{on}: {job.scanned} rows, {job.already_indexed} "
                f"already indexed, {job.indexed} indexed, {job.failed} failed"
            )
        else:
            head = (
                f"ingest {job.name} -> {job.index}{on}: {job.scanned} scanned, {job.already_indexed} already "
                f"indexed, {job.embedded} embedded, {job.indexed} indexed, {job.failed} failed"
            )
        rate = "documents/s" if job.mode == "load" else "images/s"
        lines.append(
            head
            + (f", {job.duplicates} duplicates" if job.duplicates else "")
            + (f", {job.pruned} pruned" if job.pruned else "")
            + f" in {job.elapsed_s:.1f}s ({job.images_per_s:.1f} {rate})"
        )
        if job.vectors_note:
            lines.append(f"  vectors: {job.vectors_note}")
        if job.vector_encoding == "base64" and job.bytes_per_document and job.bytes_per_document_as_array:
            lines.append(
                f"  vectors sent as base64: {job.bytes_per_document} bytes per document "
                f"({job.bytes_per_document_as_array} as float arrays)"
            )
        if job.prune_skipped:
            lines.append(f"  prune skipped: {job.prune_skipped}")
        for failure in job.failures[:max_failures]:
            lines.append(f"  {failure.stage} failed: {failure.relative_path}: {failure.reason}")
        hidden = job.failed - min(job.failed, max_failures)
        if hidden:
            lines.append(f"  ... and {hidden} more failures (--output json lists them)")
        if job.over_tolerance:
            lines.append(click.style(f"FAILED {job.tolerance_line()}", fg="red", bold=True))
    if not report.jobs:
        lines.append("no ingest jobs to run")
    return "\n".join(lines)


def render_converge(report: ConvergeReport) -> str:
    """What ``provision apply`` prints after the plan: the apply summary, ingest and smoke tests."""
    parts: list[str] = []
    if report.apply is not None:
        parts.append(render_apply(report.apply))
    if report.ingest is not None:
        parts.append(render_ingest(report.ingest))
    if report.verify is not None:
        parts.append(render_verify(report.verify))
    return "\n".join(parts)


_SINGULAR = {"indices": "index", "ingest": "ingest job", "smoke_tests": "smoke test"}
_PLURAL = {"ingest": "ingest jobs"}


def render_validation(path: Path, stack: Stack) -> tuple[JsonObject, str]:
    """``provision validate`` of a valid stack: the JSON document and the one-line summary."""
    spec = stack.spec
    counts: dict[str, int] = {
        "models": len(spec.models),
        "encoders": len(spec.encoders),
        "inference_endpoints": len(spec.inference_endpoints),
        "component_templates": len(spec.component_templates),
        "index_templates": len(spec.index_templates),
        "pipelines": len(spec.pipelines),
        "indices": len(spec.indices),
        "ingest": len(spec.ingest),
        "smoke_tests": len(spec.smoke_tests),
    }

    def label(key: str, n: int) -> str:
        if n == 1:
            return _SINGULAR.get(key, key.rstrip("s")).replace("_", " ")
        return _PLURAL.get(key, key).replace("_", " ")

    parts = ", ".join(f"{n} {label(k, n)}" for k, n in counts.items() if n)
    counted: JsonObject = dict(counts)
    document: JsonObject = {"valid": True, "stack": str(path), "name": spec.name, "counts": counted}
    return document, f"{path}: valid stack '{spec.name}' ({parts or 'empty'})"


def issue_json(issue: SpecIssue) -> JsonObject:
    """One stack-file problem as ``provision validate --output json`` lists it."""
    loc = issue.location
    return {
        "file": str(loc.file if loc else issue.file),
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "path": issue.path,
        "message": issue.message,
    }


# -- a saved JSON plan as Markdown (a pull-request comment) ---------------------------------------
MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
MAX_DIFF_LINES = 40  # per change, in the collapsed details


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_change(change: ChangeDocument) -> list[str]:
    lines: list[str]
    if change.action in ("create", "delete") and not change.diff:
        body = change.after if change.action == "create" else change.before
        sign = "+" if change.action == "create" else "-"
        dumped = yaml.safe_dump(body or {}, sort_keys=False, allow_unicode=True, width=100).splitlines()
        lines = [f"{sign} {line}" for line in dumped]
    else:
        lines = []
        for entry in change.diff:
            if entry.op != "add":
                lines.append(f"- {entry.path}: {_value(entry.before)}")
            if entry.op != "remove":
                lines.append(f"+ {entry.path}: {_value(entry.after)}")
    if len(lines) > MAX_DIFF_LINES:
        lines = [
            *lines[:MAX_DIFF_LINES],
            f"  ... ({len(lines) - MAX_DIFF_LINES} more lines in the JSON plan)",
        ]
    return [f"#### `{change.address}` ({change.action})", "", "```diff", *lines, "```", ""]


def render_plan_markdown(document: Mapping[str, Any]) -> str:
    """A plan in its published JSON form (``provision plan --output json``) as Markdown for a
    pull-request comment or a CI job summary: the counts, a table of changes, what would make apply
    refuse, and the field-level changes in a collapsed section. Raises ProvisionError when
    ``document`` is not a plan document."""
    try:
        plan = PlanDocument.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise ProvisionError(
            f"not a provision plan document (plan --output json): {where}: {first['msg']}"
        ) from None
    verb = "destroy plan" if plan.mode == "destroy" else "plan"
    counts = plan.summary
    lines = [f"### provision {verb}: stack `{plan.stack}` on {plan.cluster}", ""]
    if not plan.has_changes:
        lines += ["**No changes.** The cluster matches the stack.", ""]
    else:
        lines += [
            f"**{counts.create} to create, {counts.update} to update, {counts.replace} to replace, "
            f"{counts.delete} to delete**; {len(plan.unchanged)} unchanged.",
            "",
        ]
    if not plan.applicable:
        lines += ["> [!CAUTION]", "> **apply would refuse this plan; nothing would be changed:**"]
        lines += [f"> - conflict `{c.address}`: {c.reason}; {c.hint}" for c in plan.conflicts]
        lines += [f"> - blocked `{c.address}`: {c.blocked}" for c in plan.changes if c.blocked]
        lines += [f"> - refused: {error}" for error in plan.errors]
        lines.append("")
    if plan.changes:
        lines += ["| | resource | action | why |", "|---|---|---|---|"]
        for change in plan.changes:
            symbol = SYMBOLS[change.action][0]
            lines.append(f"| `{symbol}` | `{change.address}` | {change.action} | {_cell(change.reason)} |")
    notes = [f"- note: {_cell(note)}" for note in plan.notes]
    head = "\n".join([*lines, "", *notes]).rstrip() + "\n"
    if not plan.changes:
        return head
    budget = MARKDOWN_LIMIT - len(head) - 200
    details: list[str] = []
    for at, change in enumerate(plan.changes):
        block = _markdown_change(change)
        size = sum(len(line) + 1 for line in block)
        if size > budget:
            details.append(f"({len(plan.changes) - at} more changes: see the JSON plan)")
            break
        budget -= size
        details += block
    return head + "\n".join(
        ["", "<details><summary>Field-level changes</summary>", "", *details, "</details>", ""]
    )
