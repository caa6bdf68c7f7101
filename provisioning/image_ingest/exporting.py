"""``provision ingest STACK --export DIR``: embed each job's images into Parquet shards, not an index.

The pipeline is the job's own (either engine: same scan, ids, decoding, encoder and documents);
only the sink differs (:class:`~.sinks.ParquetSink`): ``DIR/<job>/part-*.parquet``, in the format of
:mod:`.shards`. No Elasticsearch request is made. An interrupted export resumes: files whose id is in
the shards already are skipped before decoding; ``full`` removes the job's shards and starts over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from provisioning.embedding.encoders import Encoder
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.job import JobRun
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import IngestReport, JobReport
from provisioning.image_ingest.run import job_names, note_ray_encoder, stack_encoder
from provisioning.image_ingest.shards import ShardMeta
from provisioning.image_ingest.sinks import ParquetSink
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.json_types import to_json_object
from provisioning.mappings import find_field
from provisioning.stackfile.ray_schema import Engine
from provisioning.stackfile.stack import Stack


def export_embeddings(
    stack: Stack,
    directory: Path,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    encoders: Mapping[str, Encoder] | None = None,
    max_failed: FailureTolerance | None = None,
    engine: Engine | None = None,
    ray_address: str | None = None,
) -> IngestReport:
    """Embed the images of ``stack``'s ingest jobs (all, or those named) into Parquet shards under
    ``directory/<job>/``; one report per job (``mode`` ``export``: "indexed" counts rows written).

    ``engine``, ``ray_address``, ``encoders`` and ``max_failed`` as in :func:`.run.run_ingest`. Raises
    IngestError (EncoderMismatchError when the folder holds shards of another encoder and not
    ``full``), EncoderError.
    """
    started = time.perf_counter()
    report = IngestReport()
    loaded: dict[str, Encoder] = dict(encoders or {})
    for name in job_names(stack, jobs):
        job = stack.spec.ingest[name]
        folder = directory / name
        if (engine or job.engine) == "ray":
            from provisioning.image_ingest import ray_engine

            fingerprint = ray_engine.vectors_fingerprint(stack, job.encoder)
            sink = ParquetSink(folder, _meta(stack, name, fingerprint, None))
            outcome = ray_engine.run_job(
                stack,
                name,
                sink,
                full=full,
                prune=False,
                progress=progress,
                address=ray_address,
                index_roots=[],
                mode="export",
            )
            job_report = outcome.report
            note_ray_encoder(report, outcome.encoder)
        else:
            encoder = stack_encoder(stack, name, report, loaded)
            if encoder.fingerprint is None:  # pragma: no cover - load_encoder always fingerprints
                raise IngestError(f"encoder '{job.encoder}' has no fingerprint to record in the shards")
            sink = ParquetSink(folder, _meta(stack, name, encoder.fingerprint, encoder.dims))
            run = JobRun(
                name,
                job,
                stack.resolve(job.source.path),
                sink,
                encoder,
                full=full,
                prune=False,
                index_roots=[],
                progress=progress,
            )
            job_report = run.run()
        _as_export(job_report, folder)
        job_report.max_failed = max_failed or FailureTolerance.parse(job.max_failed)
        report.jobs.append(job_report)
    report.elapsed_s = time.perf_counter() - started
    return report


def _as_export(report: JobReport, folder: Path) -> None:
    report.mode = "export"
    report.shards = str(folder)


def _meta(stack: Stack, name: str, fingerprint: EncoderFingerprint, dims: int | None) -> ShardMeta:
    """The shards' metadata; dims from the encoder, else the vector field's mapping in the stack (which
    validation holds equal to the encoder's), else the encoder's declared ``dims``."""
    job = stack.spec.ingest[name]
    if dims is None:
        mapping = find_field(stack.effective_mappings(job.index), job.vector_field) or {}
        mapped = mapping.get("dims")
        dims = mapped if isinstance(mapped, int) else stack.spec.encoders[job.encoder].dims
    if dims is None:
        raise IngestError(
            f"export {name}: the vector size of encoder '{job.encoder}' is unknown; declare its dims, or "
            f"map field '{job.vector_field}' with dims in the stack"
        )
    return ShardMeta(job.encoder, fingerprint, dims, name, job.vector_field, to_json_object(dict(job.fields)))
