"""The Ray engine (``engine: ray``): one ingest job as a Ray Data pipeline, driven from this process.

::

    driver   scan (the listing: one row per file, in scan order, blocks of one encoder batch) ─┐
    tasks    identify: SHA-256 of each file, ``_mget`` of the ids (own client per worker)      │ rows
    actor    dedup: the first file with an id keeps it (rows arrive in scan order)             │ in
    tasks    decode + prepare (draft JPEG decoding, bomb guard; the local engine's code)       │ scan
    actors   encode: ``ray.actors`` actors (``gpus_per_actor``, ``cpus_per_actor``), each loads │ order
             the model once; batches of the job's batch size                                    │
    actors   write: ``ray.writers`` actors, each with its own client; ``_bulk`` with the local  │
             engine's chunking, back-pressure and per-item failures (or Parquet shards)         ▼
    driver   every row's outcome -> the same JobReport the local engine returns

Resuming is the local engine's: ids already in the sink are skipped before decoding, so a driver
killed midway leaves documents that a rerun skips. The encoder record is checked and written by the
driver (:meth:`Sink.check_encoder`), from the encoder's fingerprint read without loading the model
when the model directory allows; every actor checks its loaded encoder against it.

``--from`` runs the same pipeline from Parquet shards: read, ``_mget``, dedup, write.

Ray is started here when this process is not connected yet: ``address`` (``--ray-address``, or
``RAY_ADDRESS``) joins an existing cluster; without one, a local Ray instance with one CPU per core
this process may use. Errors raised on workers come back as the library's own (IngestError,
EncoderError), with their message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.errors import ProvisionError
from provisioning.image_ingest import ray_stages
from provisioning.image_ingest.documents import check_static_fields
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.job import SEEN_WINDOW
from provisioning.image_ingest.outcomes import RefusalWatch
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.prune import prune_job
from provisioning.image_ingest.report import EncoderLoad, FileFailure, JobReport
from provisioning.image_ingest.scan import ScanProblem, scan
from provisioning.image_ingest.sinks import ElasticsearchSink, ParquetSink, Sink
from provisioning.image_ingest.streams import SeenIds, default_workers
from provisioning.stackfile.schema import IngestSpec
from provisioning.stackfile.stack import Stack

log = logging.getLogger(__name__)

SHARD_BATCH = 256  # shard rows checked (one _mget) per task when loading Parquet shards
DECODE_BATCH = 8  # images decoded and prepared per call of a decode task
DECODE_MEMORY = 512 * 2**20  # bytes a decode task reserves: an image at the bomb guard's limit, a block
EXPORT_BATCH = 1024  # rows per shard when Ray exports (one write call per batch)
MAX_LISTING_BLOCKS = 10_000  # blocks of the input dataset at most (larger listings get larger blocks)


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise IngestError(
            "engine ray needs Ray Data, which is not installed: pip install 'provisioning[ray]'"
        ) from exc
    return ray


def connect_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local instance with one CPU
    per core this process may use; nothing when this process is connected already."""
    ray = _ray()
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(
            address=target,
            num_cpus=None if target else default_workers(),
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {target}" if target else "a local Ray instance"
        raise IngestError(f"cannot start or join {where}: {exc}") from exc


@dataclass
class RayRun:
    """What a Ray job run returns beside its report: the fingerprint of its vectors (the driver's,
    which every actor checked its encoder against), the encoder actors' load, and whether a ``--full``
    run is replacing another encoder's vectors."""

    report: JobReport
    fingerprint: EncoderFingerprint
    encoder: EncoderLoad | None = None
    replacing: bool = False


@contextlib.contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data's settings for a run (rows in order, no progress bars of its own), restored after."""
    previous = ray.data.DataContext.get_current()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # copy() reads deprecated settings too
        context = previous.copy()
    context.execution_options.preserve_order = True  # rows reach the dedup actor in scan order
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    ray.data.DataContext._set_current(context)
    progress_log = logging.getLogger("ray.data")
    level = progress_log.level
    if not log.isEnabledFor(logging.DEBUG):
        progress_log.setLevel(logging.WARNING)  # its periodic progress lines; ours is the progress bar
    try:
        yield
    finally:
        ray.data.DataContext._set_current(previous)
        progress_log.setLevel(level)


class _Tally:
    """Turns the rows coming back into the job's report, as the local engine counts."""

    def __init__(self, name: str, job: IngestSpec, sink: Sink, report: JobReport, progress: Progress | None):
        self.report = report
        self.sink = sink
        self.progress = progress
        self.watch = RefusalWatch(name, job.index, job.vector_field)
        self.seen = SeenIds(None)
        self.unreadable: set[str] = set()
        self.encoder: EncoderLoad | None = None
        self.started = time.perf_counter()

    def add(self, batch: dict[str, Any]) -> None:
        report = self.report
        for i, state in enumerate(batch["state"]):
            relative, doc_id = str(batch["relative_path"][i]), str(batch["_id"][i])
            if doc_id and state != "duplicate" and doc_id not in self.seen:
                self.seen.add(doc_id)
            report.encoder_batches += int(batch["encoder_batches"][i])
            if batch["encoder_load"][i] and self.encoder is None:
                self.encoder = EncoderLoad(**json.loads(str(batch["encoder_load"][i])))
            if state == "existing":
                report.already_indexed += 1
            elif state == "duplicate":
                report.duplicates += 1
            elif state == "failed":
                failure = FileFailure(
                    relative, batch["stage"][i], str(batch["kind"][i]), str(batch["reason"][i])
                )
                if failure.stage == "read" and not doc_id:
                    self.unreadable.add(relative)
                report.add_failure(failure)
            elif state == "indexed":
                report.embedded += 1
                report.indexed += 1
                self.watch.accepted_one()
                if report.first_indexed_s is None:
                    report.first_indexed_s = time.perf_counter() - self.started
                    self.sink.written()
            elif state == "refused":
                report.embedded += 1
                failure = FileFailure(relative, "index", str(batch["kind"][i]), str(batch["reason"][i]))
                report.add_failure(failure)
                self.watch.refused_one(failure)
            else:
                raise IngestError(f"the Ray engine returned {relative} in state {state!r}")
            if self.progress is not None:
                self.progress.advance(
                    1,
                    indexed=report.indexed,
                    skipped=report.already_indexed + report.duplicates,
                    failed=report.failed,
                )


def _drive(dataset: Any, tally: _Tally) -> None:
    """Run the dataset, tallying each batch of outcomes; worker errors come back as our own."""
    for batch in _batches(dataset):
        tally.add(batch)


def _ours(exc: BaseException) -> ProvisionError:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProvisionError):
            return current
        todo.extend([current.__cause__, current.__context__, getattr(current, "cause", None)])
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return IngestError(f"the Ray engine failed: {type(exc).__name__}: {first}")


def vectors_fingerprint(stack: Stack, encoder: str) -> EncoderFingerprint:
    """The encoder's fingerprint, without loading the model when its directory tells."""
    from provisioning.embedding.loading import declared_fingerprint, load_stack_encoder

    spec = stack.spec.encoders[encoder]
    found = declared_fingerprint(spec, stack.base_dir)
    if found is None:
        found = load_stack_encoder(stack, encoder).fingerprint
    if found is None:  # pragma: no cover - load_encoder always fingerprints
        raise IngestError(f"encoder '{encoder}' has no fingerprint")
    return found


def run_job(
    stack: Stack,
    name: str,
    sink_for: Callable[[EncoderFingerprint], Sink],
    *,
    full: bool,
    prune: bool,
    progress: Progress | None,
    address: str | None,
    index_roots: Sequence[Path],
    mode: str = "ingest",
) -> RayRun:
    """Run ingest job ``name`` on Ray into the sink ``sink_for`` makes from the encoder's fingerprint
    (read once, without loading the model when its directory tells); the same report as the local
    engine's (``engine`` ``ray``). Raises IngestError, EncoderError, EncoderMismatchError."""
    ray = _ray()
    job = stack.spec.ingest[name]
    root = stack.resolve(job.source.path)
    check_static_fields(name, job.fields, job.vector_field)
    if job.encoder not in stack.spec.encoders:
        raise IngestError(f"ingest job '{name}' names encoder '{job.encoder}', which is not declared")
    spec = stack.spec.encoders[job.encoder]
    fingerprint = vectors_fingerprint(stack, job.encoder)
    sink = sink_for(fingerprint)
    report = JobReport(name, job.index, str(root), job.encoder, full, engine="ray", mode=mode)
    report.vectors = fingerprint.describe()
    decision = sink.check_encoder(name, job.encoder, fingerprint, full=full)
    report.vectors_note = decision.note
    preparation = ray_stages.encoder_preparation(job.encoder, spec, stack.base_dir)
    connect_ray(address)
    problems: list[ScanProblem] = []
    started = time.perf_counter()
    listing = [
        {"relative_path": file.relative_path}
        for file in scan(
            root,
            job.source.include,
            job.source.exclude,
            follow_symlinks=job.source.follow_symlinks,
            problems=problems,
        )
    ]
    report.scanned = len(listing)
    if progress is not None:
        progress.start(name, len(listing))
    tally = _Tally(name, job, sink, report, progress)
    tally.started = started
    batch_size = job.batch_size or spec.batch_size
    try:
        if listing:
            with _data_context(ray):  # a dataset takes the settings current when it is made
                dataset = _ingest_dataset(
                    ray, stack, name, job, sink, listing, preparation, fingerprint, full, prune
                )
                _drive(dataset, tally)
    finally:
        if progress is not None:
            progress.finish()
        log.debug("ray job %s: %d rows, batch size %d", name, len(listing), batch_size)
    for problem in problems:
        report.add_failure(FileFailure(problem.relative_path, "scan", "scan", problem.reason))
    if prune and isinstance(sink, ElasticsearchSink):
        prune_job(sink.client, job, root, index_roots, tally.seen, tally.unreadable, problems, report)
    report.elapsed_s = time.perf_counter() - started
    return RayRun(report, fingerprint, tally.encoder, decision.replacing)


def _ingest_dataset(
    ray: Any,
    stack: Stack,
    name: str,
    job: IngestSpec,
    sink: Sink,
    listing: list[dict[str, str]],
    preparation: ray_stages.Preparation,
    fingerprint: EncoderFingerprint,
    full: bool,
    prune: bool,
) -> Any:
    spec = stack.spec.encoders[job.encoder]
    batch_size = job.batch_size or spec.batch_size
    root = str(stack.resolve(job.source.path))
    dataset = _listing_dataset(ray, listing, batch_size)
    dataset = dataset.map_batches(
        ray_stages.identify,
        fn_kwargs={"root": root, "sink": sink, "full": full},
        batch_size=None,  # a block per task: one _mget per block
        batch_format="numpy",
        num_cpus=1,
    )
    dataset = _dedup(ray, dataset, prune)
    dataset = dataset.map_batches(
        ray_stages.decode,
        fn_kwargs={"root": root, "preparation": preparation},
        batch_size=DECODE_BATCH,
        batch_format="numpy",
        num_cpus=1,
        # Besides keeping decode tasks within a node's memory, this keeps them tasks of their own: Ray
        # Data fuses a task stage into the actor stage after it when their resources are equal, and
        # decoding inside the encoder actor would leave its forward-pass threads idle while it decodes.
        memory=DECODE_MEMORY,
    )
    pool = job.ray
    dataset = dataset.map_batches(
        ray_stages.EncodeActor,
        fn_constructor_kwargs={
            "stack": stack,
            "name": job.encoder,
            "batch_size": batch_size,
            "threads": max(1, round(pool.cpus_per_actor)),
            "vectors_id": fingerprint.vectors_id,
            "preparation": preparation,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=pool.actors, max_size=pool.max_actors or pool.actors),
        num_cpus=pool.cpus_per_actor,
        num_gpus=pool.gpus_per_actor or None,
    )
    return _write(ray, dataset, job, sink, batch_size)


def _listing_dataset(ray: Any, listing: list[dict[str, str]], batch_size: int) -> Any:
    """The listing as a dataset of blocks of ``batch_size`` rows (larger when there would be more than
    :data:`MAX_LISTING_BLOCKS`), in scan order. Every later stage works a block at a time, so a
    block is what reaches the sink at once: blocks of one encoder batch keep the pipeline streaming
    (the first documents are searchable after one batch, not after the whole listing)."""
    import pyarrow as pa

    rows = max(batch_size, -(-len(listing) // MAX_LISTING_BLOCKS))
    tables = [pa.Table.from_pylist(listing[i : i + rows]) for i in range(0, len(listing), rows)]
    return ray.data.from_arrow(tables)


def _dedup(ray: Any, dataset: Any, prune: bool) -> Any:
    return dataset.map_batches(
        ray_stages.Dedup,
        fn_constructor_kwargs={"window": None if prune else SEEN_WINDOW},
        batch_size=None,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0,
    )


def _write(ray: Any, dataset: Any, job: IngestSpec, sink: Sink, batch_size: int) -> Any:
    return dataset.map_batches(
        ray_stages.Writer,
        fn_constructor_kwargs={
            "sink": sink,
            "index": job.index,
            "vector_field": job.vector_field,
            "static_fields": job.fields,
        },
        batch_size=EXPORT_BATCH if isinstance(sink, ParquetSink) else batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=job.ray.writers),
        num_cpus=0,
    )


def run_load(
    name: str,
    job: IngestSpec,
    sink: Sink,
    files: Sequence[Path],
    report: JobReport,
    *,
    full: bool,
    progress: Progress | None,
    address: str | None,
) -> None:
    """``--from`` on Ray: shard rows -> ``_mget`` -> dedup -> bulk writers; counts into ``report``."""
    ray = _ray()
    connect_ray(address)
    started = time.perf_counter()
    with _data_context(ray):
        dataset = ray.data.read_parquet([str(path) for path in files], columns=list(_shard_columns()))
        dataset = dataset.map_batches(
            ray_stages.from_shard,
            fn_kwargs={"sink": sink, "full": full},
            batch_size=SHARD_BATCH,
            batch_format="numpy",
            num_cpus=1,
        )
        dataset = _dedup(ray, dataset, prune=False)
        dataset = _write(ray, dataset, job, sink, job.bulk.chunk_size)
        tally = _Tally(name, job, sink, report, progress)
        tally.started = started
        if progress is not None:
            progress.start(name, None)
        try:
            for batch in _batches(dataset):
                report.scanned += len(batch["state"])
                tally.add(batch)
        finally:
            if progress is not None:
                progress.finish()
    report.elapsed_s = time.perf_counter() - started


def _batches(dataset: Any) -> Iterator[dict[str, Any]]:
    """The dataset's output blocks as numpy batches; errors raised on workers as the library's own."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ProvisionError:
        raise
    except Exception as exc:
        raise _ours(exc) from exc


def _shard_columns() -> tuple[str, ...]:
    from provisioning.image_ingest.shards import COLUMNS

    return COLUMNS
