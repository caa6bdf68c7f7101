"""Running a stack's ingest jobs, one after another, each a streaming pipeline: on this host
(:mod:`.job`) or on Ray Data (:mod:`.ray_engine`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from elasticsearch import Elasticsearch

from provisioning.cluster import Cluster, ConnectionOptions
from provisioning.embedding.encoders import Encoder
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.loading import load_stack_encoder
from provisioning.es_versions import supports_base64_vectors
from provisioning.image_ingest import bulk
from provisioning.image_ingest.documents import VectorEncoding
from provisioning.image_ingest.encoder_record import EncoderRecord, write_record
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.job import JobRun
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import EncoderLoad, IngestReport, JobReport
from provisioning.image_ingest.sinks import ElasticsearchSink, Sink
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.mappings import find_field
from provisioning.stackfile.ray_schema import Engine
from provisioning.stackfile.schema import BulkSpec, IngestSpec
from provisioning.stackfile.stack import Stack


def job_names(stack: Stack, jobs: Sequence[str] | None) -> list[str]:
    """The jobs to run: all, or those named; IngestError for a name the stack does not declare."""
    declared = stack.spec.ingest
    names = list(jobs) if jobs else list(declared)
    unknown = [name for name in names if name not in declared]
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise IngestError(f"no ingest job named {', '.join(unknown)} in the stack (declared: {known})")
    return names


def stack_encoder(stack: Stack, name: str, report: IngestReport, loaded: dict[str, Encoder]) -> Encoder:
    """Job ``name``'s encoder, loaded once per run (and listed in the report when loaded here)."""
    job = stack.spec.ingest[name]
    encoder = loaded.get(job.encoder)
    if encoder is None:
        if job.encoder not in stack.spec.encoders:
            raise IngestError(f"ingest job '{name}' names encoder '{job.encoder}', which is not declared")
        load_started = time.perf_counter()
        encoder = load_stack_encoder(stack, job.encoder)
        report.encoders.append(encoder_load(encoder, time.perf_counter() - load_started))
        loaded[job.encoder] = encoder
    return encoder


def note_ray_encoder(report: IngestReport, load: EncoderLoad | None) -> None:
    """List the encoder a Ray job's actors loaded (once per encoder)."""
    if load is not None and all(known.name != load.name for known in report.encoders):
        report.encoders.append(load)


SinkFactory = Callable[[EncoderFingerprint | None, int | None], Sink]
"""Makes a job's sink from its encoder's fingerprint and vector dims (None where not known yet)."""


def fixed_sink(sink: Sink) -> SinkFactory:
    """A factory that gives ``sink`` whatever the encoder (an index is the same sink for any)."""
    return lambda _fingerprint, _dims: sink


@dataclass(frozen=True)
class JobOutcome:
    """One job's run: its report, whether it replaced another encoder's vectors (``full``), and the
    fingerprint of the encoder that embedded."""

    report: JobReport
    replacing: bool
    fingerprint: EncoderFingerprint | None


def run_job_on_engine(
    stack: Stack,
    name: str,
    sink_for: SinkFactory,
    report: IngestReport,
    loaded: dict[str, Encoder],
    *,
    engine: Engine | None,
    full: bool,
    prune: bool,
    index_roots: Sequence[Path],
    progress: Progress | None,
    ray_address: str | None,
    mode: str = "ingest",
) -> JobOutcome:
    """Run job ``name`` into the sink ``sink_for`` makes, on ``engine`` (default the job's): on Ray
    (:func:`.ray_engine.run_job`), or here (:class:`.job.JobRun`) with the encoder loaded once per run
    into ``loaded``; the encoder is listed in ``report``. Raises what those raise."""
    job = stack.spec.ingest[name]
    if (engine or job.engine) == "ray":
        from provisioning.image_ingest import ray_engine

        ran = ray_engine.run_job(
            stack,
            name,
            lambda fingerprint: sink_for(fingerprint, None),
            full=full,
            prune=prune,
            progress=progress,
            address=ray_address,
            index_roots=index_roots,
            mode=mode,
        )
        note_ray_encoder(report, ran.encoder)
        return JobOutcome(ran.report, ran.replacing, ran.fingerprint)
    encoder = stack_encoder(stack, name, report, loaded)
    run = JobRun(
        name,
        job,
        stack.resolve(job.source.path),
        sink_for(encoder.fingerprint, encoder.dims),
        encoder,
        full=full,
        prune=prune,
        index_roots=index_roots,
        progress=progress,
    )
    return JobOutcome(run.run(), run.replacing, encoder.fingerprint)


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
    engine: Engine | None = None,
    ray_address: str | None = None,
    connection: ConnectionOptions | None = None,
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

    ``engine`` overrides each job's ``engine``: ``local`` (threads here) or ``ray`` (Ray Data, joining
    the cluster at ``ray_address`` or starting a local one; its workers connect with ``connection``,
    default: the stack's ``cluster:`` and the ES_* variables). Both give the same documents and report.
    """
    started = time.perf_counter()
    declared = stack.spec.ingest
    names = job_names(stack, jobs)
    report = IngestReport()
    loaded: dict[str, Encoder] = dict(encoders or {})
    replacing: dict[tuple[str, str], tuple[str, EncoderFingerprint | None]] = {}
    for name in names:
        job = declared[name]
        index_roots = [
            stack.resolve(other.source.path) for other in declared.values() if other.index == job.index
        ]
        pruning = job.prune if prune is None else prune
        encoding = vector_encoding(stack, job, base64_vectors)
        sink = ElasticsearchSink(
            job.index,
            job.bulk,
            pipeline=job.pipeline,
            vector_field=job.vector_field,
            vector_encoding=encoding,
            client=client,
            connection=connection or ConnectionOptions.resolve(stack.spec.cluster),
        )
        outcome = run_job_on_engine(
            stack,
            name,
            fixed_sink(sink),
            report,
            loaded,
            engine=engine,
            full=full,
            prune=pruning,
            index_roots=index_roots,
            progress=progress,
            ray_address=ray_address,
        )
        job_report, replaced, fingerprint = outcome.report, outcome.replacing, outcome.fingerprint
        job_report.max_failed = max_failed or FailureTolerance.parse(job.max_failed)
        report.jobs.append(job_report)
        if replaced:
            replacing[(job.index, job.vector_field)] = (job.encoder, fingerprint)
        if job_report.indexed or job_report.pruned:
            refresh_index(client, job.index, job.bulk)
    finish_replacements(stack, client, names, report, replacing)
    report.elapsed_s = time.perf_counter() - started
    return report


def refresh_index(client: Elasticsearch, index: str, spec: BulkSpec) -> None:
    """Make what a job wrote searchable when the command returns, so `verify` or a search run right
    after sees it (within the job, refresh_interval makes documents visible)."""
    refresh = functools.partial(client.indices.refresh, index=index)
    bulk.with_retries(refresh, spec, f"cannot refresh index '{index}'")


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


def finish_replacements(
    stack: Stack,
    client: Elasticsearch,
    ran: Sequence[str],
    report: IngestReport,
    replacing: Mapping[tuple[str, str], tuple[str, EncoderFingerprint | None]],
) -> None:
    """Clear the ``replacing`` mark of each vector field whose writers all re-embedded everything.

    A field's mark stays while a job writing to it did not run in this call, or did not index
    everything it embedded: the field may still hold the old encoder's vectors.
    """
    by_name = {job.name: job for job in report.jobs}
    for (index, field), (encoder, fingerprint) in replacing.items():
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
        if not done or fingerprint is None:
            for name in writers:
                if name in by_name:
                    by_name[name].vectors_note = (
                        f"index '{index}' field '{field}' is still being re-embedded: run `provision ingest "
                        f"--full` for {', '.join(writers)} until every image is indexed"
                    )
            continue
        spec = stack.spec.ingest[writers[0]].bulk
        write_record(client, index, field, EncoderRecord(encoder, fingerprint), spec)
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
    engine: Engine | None = None,
    ray_address: str | None = None,
) -> IngestReport:
    """Run ``stack``'s ingest jobs (all, or those named) against ``cluster``: embed the images not yet
    indexed and bulk-index them (see :func:`run_ingest` for the pipeline, resuming and pruning).

    Files that are not usable images are listed in the report with their reason, and every job runs
    to its end; the report is not ``ok`` when a job had more failed files than it tolerates
    (``max_failed``, which overrides each job's; by default none). Raises IngestError or
    EncoderError when a job cannot go on, after what was already embedded has been sent.
    ``engine`` (``local`` or ``ray``) overrides each job's; ``ray_address`` is the Ray cluster to join
    (default: ``RAY_ADDRESS``, else a local Ray instance).
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
        engine=engine,
        ray_address=ray_address,
        connection=cluster.options,
    )


def vector_encoding(stack: Stack, job: IngestSpec, base64_allowed: bool) -> VectorEncoding:
    """How ``job`` sends its vectors: base64 where the cluster takes it (9.3+) and the field holds
    float vectors (byte and bit vectors are sent as they are), a float array otherwise."""
    field = find_field(stack.effective_mappings(job.index), job.vector_field) or {}
    return "base64" if base64_allowed and field.get("element_type", "float") == "float" else "array"
