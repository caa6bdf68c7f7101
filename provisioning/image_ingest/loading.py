"""``provision ingest STACK --from DIR``: bulk-load Parquet shards into each job's index, no model loaded.

For each job, its shards are ``DIR/<job>/*.parquet`` (or ``DIR/*.parquet`` when that folder holds
shards itself). Before any row is read, every shard's footer is checked (:func:`check_shards`): all
shards hold vectors of one encoder, with the dims of the job's vector field (the live index's
mapping, else the stack's); the encoder is the one the index records for the field, and the one the
job's encoder would make (searches embed queries with it). A mismatch is a :class:`ShardError`
that names the shard, both encoders or both sizes.

Then rows stream in batches: duplicates and ids already in the index are skipped (resuming works as
for ingest), documents are built by :func:`~.documents.build_document` with the loading job's index,
vector field and static ``fields``, and go through the same bulk path as ingest (chunking,
back-pressure, per-item failures). The job's report has ``mode`` ``load``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from provisioning.cluster import Cluster, ConnectionOptions
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.embedding.loading import declared_fingerprint
from provisioning.es_versions import supports_base64_vectors
from provisioning.image_ingest import shards
from provisioning.image_ingest.bulk import with_retries
from provisioning.image_ingest.encoder_record import EncoderRecord, read_meta
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.job import CHECK_BATCH, SEEN_WINDOW
from provisioning.image_ingest.outcomes import RefusalWatch, index_failure
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.report import IngestReport, JobReport
from provisioning.image_ingest.run import finish_replacements, job_names, refresh_index, vector_encoding
from provisioning.image_ingest.shards import ShardError, ShardMeta
from provisioning.image_ingest.sinks import ElasticsearchSink
from provisioning.image_ingest.streams import SeenIds
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.json_types import as_object, to_json_object
from provisioning.mappings import find_field
from provisioning.stackfile.ray_schema import Engine
from provisioning.stackfile.schema import IngestSpec
from provisioning.stackfile.stack import Stack


def job_shards(directory: Path, name: str) -> tuple[Path, list[Path]]:
    """Job ``name``'s shard folder and files; ShardError when there are none."""
    folder = directory / name if (directory / name).is_dir() else directory
    files = shards.shard_files(folder)
    if not files:
        raise ShardError(
            f"--from {directory}: no Parquet shards for ingest job '{name}' (looked for {directory / name}/*.parquet "
            f"and {directory}/*.parquet); write them with `provision ingest STACK {name} --export {directory}`"
        )
    return folder, files


def field_dims(stack: Stack, client: Elasticsearch, index: str, field: str, spec: Any) -> int | None:
    """The dims of ``index``'s vector ``field``: from the live mapping, else the stack's declaration."""
    try:
        answer = with_retries(
            lambda: client.indices.get_mapping(index=index),
            spec,
            f"cannot read the mapping of index '{index}'",
        )
        mappings = [
            as_object(as_object(item).get("mappings")) for item in to_json_object(answer.body).values()
        ]
    except IngestError as exc:
        if not isinstance(exc.__cause__, NotFoundError):
            raise
        mappings = [stack.effective_mappings(index)]
    for mapping in mappings:
        dims = (find_field(mapping, field) or {}).get("dims")
        if isinstance(dims, int):
            return dims
    return None


def check_shards(
    stack: Stack, client: Elasticsearch, name: str, job: IngestSpec, folder: Path, files: Sequence[Path]
) -> ShardMeta:
    """The shards' common metadata, once they are known to fit job ``name``'s vector field; raises
    ShardError (mixed shards, other dims, another encoder than the index's or the job's)."""
    metas = [(path, shards.read_meta(path)) for path in files]
    first_path, first = metas[0]
    for path, meta in metas[1:]:
        if meta.fingerprint.vectors_id != first.fingerprint.vectors_id or meta.dims != first.dims:
            raise ShardError(
                f"--from {folder}: the shards hold vectors of two encoders: {first_path.name} has "
                f"{first.describe()}, {path.name} has {meta.describe()}"
            )
    where = f"field '{job.vector_field}' of index '{job.index}'"
    dims = field_dims(stack, client, job.index, job.vector_field, job.bulk)
    if dims is not None and dims != first.dims:
        raise ShardError(
            f"load {name}: the shards in {folder} hold {first.dims}-dims vectors ({first.describe()}), "
            f"but {where} has dims {dims}"
        )
    recorded = read_meta(client, job.index, job.bulk).record(job.vector_field)
    if (
        isinstance(recorded, EncoderRecord)
        and recorded.fingerprint.vectors_id != first.fingerprint.vectors_id
    ):
        raise ShardError(
            f"load {name}: the shards in {folder} hold vectors of {first.describe()}, but {where} holds "
            f"vectors of {recorded.describe()}; vectors of two encoders must not share a field: load them "
            f"into another index, or re-embed with `provision ingest STACK {name} --full`"
        )
    spec = stack.spec.encoders.get(job.encoder)
    declared = declared_fingerprint(spec, stack.base_dir) if spec is not None else None
    if declared is not None and declared.vectors_id != first.fingerprint.vectors_id:
        raise ShardError(
            f"load {name}: the shards in {folder} hold vectors of {first.describe()}, but the job's encoder "
            f"'{job.encoder}' makes {declared.describe()}; queries it embeds would be compared with vectors "
            "of another encoder: point the job at the encoder that made the shards"
        )
    return first


def load_job(
    name: str,
    job: IngestSpec,
    sink: ElasticsearchSink,
    files: Sequence[Path],
    report: JobReport,
    *,
    full: bool,
    progress: Progress | None,
) -> None:
    """Stream the rows of ``files`` into ``sink`` on this host, counting into ``report``."""
    started = time.perf_counter()
    seen = SeenIds(SEEN_WINDOW)
    watch = RefusalWatch(name, job.index, job.vector_field)
    pending: dict[str, str] = {}

    def advance() -> None:
        if progress is not None:
            skipped = report.already_indexed + report.duplicates
            progress.advance(1, indexed=report.indexed, skipped=skipped, failed=report.failed)

    def actions() -> Iterator[dict[str, Any]]:
        for path in files:
            for columns in shards.read_batches(path, CHECK_BATCH):
                ids = [str(doc_id) for doc_id in columns["_id"]]
                report.scanned += len(ids)
                fresh = sorted({doc_id for doc_id in ids if doc_id not in seen})
                existing = set() if full else sink.existing_ids(fresh)
                rows = []
                for row, doc_id in enumerate(ids):
                    if doc_id in seen:
                        report.duplicates += 1
                        advance()
                        continue
                    seen.add(doc_id)
                    if doc_id in existing:
                        report.already_indexed += 1
                        advance()
                    else:
                        rows.append(row)
                        pending[doc_id] = str(columns["relative_path"][row])
                report.embedded += len(rows)
                yield from shards.document_actions(
                    columns,
                    rows,
                    index=job.index,
                    vector_field=job.vector_field,
                    static_fields=job.fields,
                    vector_encoding=sink.vector_encoding,
                )

    if progress is not None:
        progress.start(name, None)
    try:
        for result in sink.write(actions()):
            relative = pending.pop(result.id, result.id)
            if result.ok:
                watch.accepted_one()
                report.indexed += 1
                if report.first_indexed_s is None:
                    report.first_indexed_s = time.perf_counter() - started
                    sink.written()
            else:
                failure = index_failure(relative, result)
                report.add_failure(failure)
                watch.refused_one(failure)
            advance()
    finally:
        if progress is not None:
            progress.finish()
    report.elapsed_s = time.perf_counter() - started


def run_load(
    stack: Stack,
    client: Elasticsearch,
    directory: Path,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    max_failed: FailureTolerance | None = None,
    base64_vectors: bool = False,
    engine: Engine | None = None,
    ray_address: str | None = None,
    connection: ConnectionOptions | None = None,
) -> IngestReport:
    """Load the shards of ``directory`` into each job's index (all jobs, or those named), with
    ``client``; see :func:`load_embeddings`."""
    started = time.perf_counter()
    names = job_names(stack, jobs)
    report = IngestReport()
    replacing: dict[tuple[str, str], tuple[str, EncoderFingerprint | None]] = {}
    for name in names:
        job = stack.spec.ingest[name]
        folder, files = job_shards(directory, name)
        meta = check_shards(stack, client, name, job, folder, files)
        on_ray = (engine or job.engine) == "ray"
        sink = ElasticsearchSink(
            job.index,
            job.bulk,
            pipeline=job.pipeline,
            vector_field=job.vector_field,
            client=client,
            vector_encoding=vector_encoding(stack, job, base64_vectors),
            connection=(connection or ConnectionOptions.resolve(stack.spec.cluster)) if on_ray else None,
        )
        job_report = JobReport(
            name, job.index, str(folder), job.encoder, full, engine="ray" if on_ray else "local", mode="load"
        )
        job_report.shards = str(folder)
        job_report.vectors = meta.fingerprint.describe()
        decision = sink.check_encoder(name, job.encoder, meta.fingerprint, full=full)
        job_report.vectors_note = decision.note
        if on_ray:
            from provisioning.image_ingest import ray_engine

            ray_engine.run_load(
                name, job, sink, files, job_report, full=full, progress=progress, address=ray_address
            )
        else:
            load_job(name, job, sink, files, job_report, full=full, progress=progress)
        job_report.max_failed = max_failed or FailureTolerance.parse(job.max_failed)
        report.jobs.append(job_report)
        if decision.replacing:
            replacing[(job.index, job.vector_field)] = (job.encoder, meta.fingerprint)
        if job_report.indexed:
            refresh_index(client, job.index, job.bulk)
    finish_replacements(stack, client, names, report, replacing)
    report.elapsed_s = time.perf_counter() - started
    return report


def load_embeddings(
    stack: Stack,
    cluster: Cluster,
    directory: Path,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    max_failed: FailureTolerance | None = None,
    engine: Engine | None = None,
    ray_address: str | None = None,
) -> IngestReport:
    """Bulk-load Parquet shards written by :func:`.exporting.export_embeddings` (``DIR/<job>/``) into
    each job's index, loading no model. Shards are checked first (:func:`check_shards`); ids already
    in the index are skipped unless ``full``. The report is ingest's (``mode`` ``load``): "scanned"
    counts shard rows, "embedded" the documents sent. Raises ShardError, IngestError,
    EncoderMismatchError."""
    version = cluster.ensure_supported()
    return run_load(
        stack,
        cluster.client,
        directory,
        jobs,
        full=full,
        progress=progress,
        max_failed=max_failed,
        engine=engine,
        ray_address=ray_address,
        connection=cluster.options,
        base64_vectors=supports_base64_vectors(version),
    )
