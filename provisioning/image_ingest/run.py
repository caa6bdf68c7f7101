"""Running a stack's ingest jobs, one after another, each a streaming pipeline (:mod:`.job`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence

from elasticsearch import Elasticsearch

from provisioning.cluster import Cluster
from provisioning.embedding.encoders import Encoder
from provisioning.embedding.loading import load_stack_encoder
from provisioning.es_versions import supports_base64_vectors
from provisioning.image_ingest import bulk
from provisioning.image_ingest.documents import VectorEncoding
from provisioning.image_ingest.encoder_record import EncoderRecord, write_record
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.job import JobRun
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import EncoderLoad, IngestReport
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.mappings import find_field
from provisioning.stackfile.schema import IngestSpec
from provisioning.stackfile.stack import Stack


def run_ingest(
    stack: Stack,
    client: Elasticsearch,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    prune: bool | None = None,
    progress: Progress | None = None,
    encoders: Mapping[str, Encoder] | None = None,
    max_failed: FailureTolerance | None = None,
    base64_vectors: bool = False,
) -> IngestReport:
    """Run the stack's ingest jobs (all, or those named in ``jobs``) against ``client``.

    Incremental unless ``full``: files whose content is already indexed are skipped before decoding.
    ``prune`` overrides each job's ``prune`` setting. ``encoders`` may hold already loaded encoders
    by name (the rest are loaded once each, however many jobs use them; converted encoders pass the
    quality gate first, on the stack's own images). Jobs run one after another; the first that cannot
    go on raises (:class:`IngestError`, :class:`EncoderMismatchError` when a vector field holds another
    encoder's vectors, :class:`EncoderError`, :class:`QualityGateError`), after the documents already
    embedded have been sent. ``base64_vectors`` (a 9.3+ cluster) sends float vectors as base64
    strings instead of arrays. ``max_failed`` overrides each job's ``max_failed``: how many failed files
    it tolerates before the report is not ``ok`` (every job runs to its end either way).
    """
    started = time.perf_counter()
    declared = stack.spec.ingest
    names = list(jobs) if jobs else list(declared)
    unknown = [name for name in names if name not in declared]
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise IngestError(f"no ingest job named {', '.join(unknown)} in the stack (declared: {known})")
    report = IngestReport()
    loaded: dict[str, Encoder] = dict(encoders or {})
    replacing: dict[tuple[str, str], Encoder] = {}
    for name in names:
        job = declared[name]
        encoder = loaded.get(job.encoder)
        if encoder is None:
            spec = stack.spec.encoders.get(job.encoder)
            if spec is None:
                raise IngestError(f"ingest job '{name}' names encoder '{job.encoder}', which is not declared")
            load_started = time.perf_counter()
            encoder = load_stack_encoder(stack, job.encoder)
            report.encoders.append(encoder_load(encoder, time.perf_counter() - load_started))
            loaded[job.encoder] = encoder
        index_roots = [
            stack.resolve(other.source.path) for other in declared.values() if other.index == job.index
        ]
        run = JobRun(
            name,
            job,
            stack.resolve(job.source.path),
            client,
            encoder,
            full=full,
            prune=job.prune if prune is None else prune,
            index_roots=index_roots,
            progress=progress,
            vector_encoding=vector_encoding(stack, job, base64_vectors),
        )
        job_report = run.run()
        job_report.max_failed = max_failed or FailureTolerance.parse(job.max_failed)
        report.jobs.append(job_report)
        if run.replacing:
            replacing[(job.index, job.vector_field)] = encoder
        if job_report.indexed or job_report.pruned:
            # What the job wrote is searchable when the command returns, so `verify` or a search
            # run right after sees it (within the job, refresh_interval makes documents visible).
            refresh = functools.partial(client.indices.refresh, index=job.index)
            bulk.with_retries(refresh, job.bulk, f"cannot refresh index '{job.index}'")
    _finish_replacements(stack, client, names, report, replacing)
    report.elapsed_s = time.perf_counter() - started
    return report


def encoder_load(encoder: Encoder, seconds: float) -> EncoderLoad:
    """The report's line about a loaded encoder."""
    return EncoderLoad(
        encoder.name,
        encoder.source,
        encoder.device,
        seconds,
        runtime=encoder.runtime,
        precision=encoder.precision,
        fingerprint=None if encoder.fingerprint is None else dict(encoder.fingerprint.to_json()),
        gate=None if encoder.verdict is None else dict(encoder.verdict.to_json()),
    )


def _finish_replacements(
    stack: Stack,
    client: Elasticsearch,
    ran: Sequence[str],
    report: IngestReport,
    replacing: Mapping[tuple[str, str], Encoder],
) -> None:
    """Clear the ``replacing`` mark of each vector field whose writers all re-embedded everything.

    A field's mark stays while a job writing to it did not run in this call, or did not index
    everything it embedded: the field may still hold the old encoder's vectors.
    """
    by_name = {job.name: job for job in report.jobs}
    for (index, field), encoder in replacing.items():
        writers = [
            name
            for name, job in stack.spec.ingest.items()
            if job.index == index and job.vector_field == field
        ]
        done = all(
            name in ran
            and name in by_name
            and by_name[name].index_failures == 0
            and by_name[name].full
            and by_name[name].embedded == by_name[name].indexed
            for name in writers
        )
        if not done or encoder.fingerprint is None:
            for name in writers:
                if name in by_name:
                    by_name[name].vectors_note = (
                        f"index '{index}' field '{field}' is still being re-embedded: run `provision ingest "
                        f"--full` for {', '.join(writers)} until every image is indexed"
                    )
            continue
        spec = stack.spec.ingest[writers[0]].bulk
        write_record(client, index, field, EncoderRecord(encoder.name, encoder.fingerprint), spec)
        for name in writers:
            by_name[name].vectors_note = f"replaced every vector of index '{index}' field '{field}'"


def ingest(
    stack: Stack,
    cluster: Cluster,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    prune: bool | None = None,
    progress: Progress | None = None,
    max_failed: FailureTolerance | None = None,
) -> IngestReport:
    """Run ``stack``'s ingest jobs (all, or those named) against ``cluster``: embed the images not yet
    indexed and bulk-index them (see :func:`run_ingest` for the pipeline, resuming and pruning).

    Files that are not usable images are listed in the report with their reason, and every job runs
    to its end; the report is not ``ok`` when a job had more failed files than it tolerates
    (``max_failed``, which overrides each job's; by default none). Raises IngestError or
    EncoderError when a job cannot go on, after what was already embedded has been sent.
    """
    version = cluster.ensure_supported()
    return run_ingest(
        stack,
        cluster.client,
        jobs,
        full=full,
        prune=prune,
        progress=progress,
        max_failed=max_failed,
        base64_vectors=supports_base64_vectors(version),
    )


def vector_encoding(stack: Stack, job: IngestSpec, base64_allowed: bool) -> VectorEncoding:
    """How ``job`` sends its vectors: base64 where the cluster takes it (9.3+) and the field holds
    float vectors (byte and bit vectors are sent as they are), a float array otherwise."""
    field = find_field(stack.effective_mappings(job.index), job.vector_field) or {}
    return "base64" if base64_allowed and field.get("element_type", "float") == "float" else "array"
