"""What an ingest run did, as data; rendering it (text or JSON) is separate from collecting it.

Per job: how many files were scanned, already indexed (skipped before decoding), duplicates of
another file in the same run, embedded, indexed, pruned, and every file that failed with the stage
and the reason. The same counts whichever engine ran the job (``engine``); for an export
(``mode: export``) "already indexed" and "indexed" refer to the Parquet shards, and for a load from
shards (``mode: load``) "scanned" counts shard rows and "embedded" the documents sent (embedded
earlier, by the export). A bad file (unreadable, not an image, truncated, a decompression bomb) does not stop
its job: the job goes on with the other files and lists it. :attr:`IngestReport.ok` is false when a
document the encoder produced did not get indexed, or when a job had more failed files than its
tolerance (:class:`FailureTolerance`, ``max_failed``; by default none); a job that cannot go on
raises instead of returning a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from provisioning.image_ingest.tolerance import FailureTolerance

Stage = Literal["scan", "read", "decode", "index", "prune"]
MAX_LISTED_FAILURES = 10_000  # failures kept one by one per job; beyond, only counted


@dataclass(frozen=True)
class FileFailure:
    """One file that did not make it into the index, and why."""

    relative_path: str
    stage: Stage
    kind: str  # e.g. "truncated", "unidentified", "bomb", or Elasticsearch's error type
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "relative_path": self.relative_path,
            "stage": self.stage,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass
class JobReport:
    name: str
    index: str
    source: str
    encoder: str
    full: bool
    scanned: int = 0
    already_indexed: int = 0
    duplicates: int = 0
    embedded: int = 0
    indexed: int = 0
    pruned: int = 0
    failed: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    elapsed_s: float = 0.0
    first_indexed_s: float | None = None  # from the job's start to the first acknowledged document
    encoder_batches: int = 0
    prune_skipped: str | None = None  # why prune did not run, when it was asked for
    max_failed: FailureTolerance = field(default_factory=FailureTolerance)
    vector_encoding: str | None = None  # "array" or "base64" (Elasticsearch 9.3+)
    bytes_per_document: int | None = None  # the first document as sent, JSON bytes
    bytes_per_document_as_array: int | None = None  # the same document with the vector as a float array
    vectors: str | None = None  # the encoder fingerprint the vectors come from (EncoderFingerprint.describe)
    vectors_note: str | None = None  # what happened to the index's encoder record, when noteworthy
    engine: str = "local"  # "local" (threads on this host) or "ray" (Ray Data)
    mode: str = "ingest"  # "ingest" (files -> index), "export" (files -> shards), "load" (shards -> index)
    shards: str | None = None  # the Parquet folder written (export) or read (load)

    def add_failure(self, failure: FileFailure) -> None:
        self.failed += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(failure)

    @property
    def index_failures(self) -> int:
        return sum(1 for f in self.failures if f.stage in ("index", "prune"))

    @property
    def failed_allowed(self) -> int:
        """How many failed files this job tolerates, given how many it scanned."""
        return self.max_failed.allowed(self.scanned)

    @property
    def over_tolerance(self) -> bool:
        """More files failed than the job's ``max_failed`` tolerates (which fails the run)."""
        return self.max_failed.exceeded_by(self.failed, self.scanned)

    @property
    def unindexed(self) -> bool:
        """A document the encoder produced did not get indexed (always fails the run)."""
        return self.index_failures > 0 or self.embedded != self.indexed

    def tolerance_line(self) -> str:
        """One line saying the job failed more files than it tolerates."""
        return (
            f"ingest job '{self.name}': {self.failed} of {self.scanned} files failed, more than "
            f"max_failed {self.max_failed} allows ({self.failed_allowed})"
        )

    @property
    def images_per_s(self) -> float:
        """Images embedded and sent per second of the job (model loading excluded)."""
        return self.embedded / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "source": self.source,
            "encoder": self.encoder,
            "full": self.full,
            "scanned": self.scanned,
            "already_indexed": self.already_indexed,
            "duplicates": self.duplicates,
            "embedded": self.embedded,
            "indexed": self.indexed,
            "pruned": self.pruned,
            "failed": self.failed,
            "failures": [f.to_dict() for f in self.failures],
            "failures_listed": len(self.failures),
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_s": round(self.images_per_s, 2),
            "first_indexed_s": None if self.first_indexed_s is None else round(self.first_indexed_s, 3),
            "encoder_batches": self.encoder_batches,
            "prune_skipped": self.prune_skipped,
            "max_failed": self.max_failed.to_json(),
            "failed_allowed": self.failed_allowed,
            "over_tolerance": self.over_tolerance,
            "vector_encoding": self.vector_encoding,
            "bytes_per_document": self.bytes_per_document,
            "bytes_per_document_as_array": self.bytes_per_document_as_array,
            "vectors": self.vectors,
            "vectors_note": self.vectors_note,
            "engine": self.engine,
            "mode": self.mode,
            "shards": self.shards,
        }


@dataclass(frozen=True)
class EncoderLoad:
    """One encoder loaded for the run: where from, which runtime and precision, on which device, in
    how many seconds (conversion and quality gate included when they ran), its fingerprint, and the
    quality gate's figures for converted encoders."""

    name: str
    source: str
    device: str
    load_s: float
    runtime: str = "torch"
    precision: str = "fp32"
    fingerprint: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "device": self.device,
            "runtime": self.runtime,
            "precision": self.precision,
            "load_s": round(self.load_s, 3),
            "fingerprint": self.fingerprint,
            "gate": self.gate,
        }


@dataclass
class IngestReport:
    jobs: list[JobReport] = field(default_factory=list)
    encoders: list[EncoderLoad] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every embedded image was indexed and no job had more failed files than it tolerates."""
        return not any(job.unindexed or job.over_tolerance for job in self.jobs)

    @property
    def over_tolerance(self) -> list[JobReport]:
        """The jobs with more failed files than their ``max_failed`` tolerates."""
        return [job for job in self.jobs if job.over_tolerance]

    @property
    def problem(self) -> str | None:
        """Why the run failed, one clause per failing job; None when :attr:`ok`."""
        parts: list[str] = []
        for job in self.jobs:
            if job.embedded != job.indexed:
                parts.append(
                    f"ingest job '{job.name}': {job.embedded - job.indexed} embedded images were not indexed"
                )
            elif job.index_failures:
                parts.append(
                    f"ingest job '{job.name}': {job.index_failures} documents could not be indexed or pruned"
                )
            if job.over_tolerance:
                parts.append(job.tolerance_line())
        return "; ".join(parts) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "encoders": [e.to_dict() for e in self.encoders],
            "jobs": [j.to_dict() for j in self.jobs],
        }
