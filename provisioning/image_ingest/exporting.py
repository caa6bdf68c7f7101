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
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import IngestReport, JobReport
from provisioning.image_ingest.run import job_names, run_job_on_engine
from provisioning.image_ingest.shards import ShardMeta
from provisioning.image_ingest.sinks import ParquetSink, Sink
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

        def sink_for(
            fingerprint: EncoderFingerprint | None, dims: int | None, name: str = name, folder: Path = folder
        ) -> Sink:
            """The job's shards, their metadata naming the encoder that embeds them."""
            if fingerprint is None:  # pragma: no cover - load_encoder always fingerprints
                raise IngestError(f"encoder of job '{name}' has no fingerprint to record in the shards")
            return ParquetSink(folder, _meta(stack, name, fingerprint, dims))

        job_report = run_job_on_engine(
            stack,
            name,
            sink_for,
            report,
            loaded,
            engine=engine,
            full=full,
            prune=False,
            index_roots=[],
            progress=progress,
            ray_address=ray_address,
            mode="export",
        ).report
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
