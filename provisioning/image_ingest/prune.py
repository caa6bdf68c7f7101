"""Which indexed documents a prune may delete: those whose file is gone (or changed) on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from elasticsearch import Elasticsearch

from provisioning.image_ingest import bulk
from provisioning.image_ingest.documents import delete_action, is_content_id
from provisioning.image_ingest.report import FileFailure, JobReport
from provisioning.image_ingest.scan import PathFilter, ScanProblem
from provisioning.image_ingest.streams import SeenIds
from provisioning.stackfile.schema import IngestSpec


def prune_decision(
    relative: str,
    root: Path,
    index_roots: Sequence[Path],
    shared: bool,
    selected: Callable[[str], bool],
    unreadable: set[str],
) -> bool:
    """Whether a document with this ``relative_path`` (whose id no scanned file has) is stale.

    Stale when its file is missing under every source folder writing to the index; or, when this job
    alone writes to the index, when the file still exists and is selected by the globs (so it was
    scanned, and its content has changed). A path that is absolute, climbs with ``..``, or could not
    be read in this run is never stale.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or relative in unreadable:
        return False
    here = root.joinpath(*parts)
    if not here.exists():
        return not any(other.joinpath(*parts).exists() for other in index_roots)
    return not shared and selected(relative)


def prune_job(
    client: Elasticsearch,
    job: IngestSpec,
    root: Path,
    index_roots: Sequence[Path],
    seen: SeenIds,
    unreadable: set[str],
    scan_problems: Sequence[ScanProblem],
    report: JobReport,
) -> None:
    """Delete the documents of ``job``'s index whose file is gone (see :func:`prune_decision`);
    ``seen`` holds the id of every file scanned. Counts go into ``report`` (``pruned``, failures);
    skipped, with the reason in ``report.prune_skipped``, when part of the source could not be read."""
    if scan_problems:
        report.prune_skipped = (
            f"{len(scan_problems)} entries under the source could not be read; pruning might "
            "delete documents of files that still exist"
        )
        return
    selected = PathFilter(job.source.include, job.source.exclude)
    shared = len(index_roots) > 1

    def doomed() -> Iterator[dict[str, Any]]:
        for doc_id, relative, image_id in bulk.indexed_paths(client, job.index, job.bulk):
            if image_id != doc_id or not is_content_id(doc_id) or doc_id in seen:
                continue
            if prune_decision(relative, root, index_roots, shared, selected, unreadable):
                yield delete_action(job.index, doc_id)

    outcome = bulk.bulk_write(client, doomed(), job.bulk)
    report.pruned = outcome.ok
    for result in outcome.failed:
        if result.status != 404:
            reason = f"{result.error_type}: {result.reason}"
            report.add_failure(FileFailure(result.id, "prune", result.error_type or "error", reason))
