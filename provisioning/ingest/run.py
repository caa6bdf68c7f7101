"""Running ingest jobs: scan -> identify -> decode -> encode -> bulk, as one streaming pipeline.

On a CPU the encoder is the bottleneck (a ViT-B/32 forward pass costs far more than decoding a
JPEG at 1/8 scale), so everything else runs beside it and only has to keep up:

    identify thread   walks the source, hashes files in the worker pool, asks the index in
                      batches which ids it holds (``_mget``), passes on the rest
    worker pool       decodes and prepares images (PIL and numpy release the GIL), also hashes
    calling thread    takes prepared images in order, ``batch_size`` at a time, runs the encoder
    indexer thread    streams documents to ``_bulk`` as soon as each batch is encoded, collects
                      each item's outcome

Stages are joined by bounded queues and a bounded number of in-flight tasks, so memory depends on
the batch size and worker count, never on the corpus. Nothing about the corpus is kept whole: the
ids seen so far (to skip duplicates) are kept for the last :data:`SEEN_WINDOW` files, or all of them
(32 bytes each) when the job prunes, since prune must know every id that is still on disk.

Resuming is a consequence of the ids: a file whose SHA-256 is already in the index is skipped before
it is decoded, so a run that was killed picks up where its last acknowledged bulk request ended.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from elasticsearch import Elasticsearch

from provisioning.embedding.encoders import Encoder, Prepared, load_encoder
from provisioning.ingest import bulk
from provisioning.ingest.decode import ImageDecodeError, ImageFacts, decode_image, read_file
from provisioning.ingest.documents import (
    build_document,
    check_static_fields,
    delete_action,
    index_action,
    is_content_id,
)
from provisioning.ingest.errors import IngestError
from provisioning.ingest.progress import Progress
from provisioning.ingest.report import EncoderLoad, FileFailure, IngestReport, JobReport
from provisioning.ingest.scan import PathFilter, ScanProblem, SourceFile, scan
from provisioning.spec.model import IngestSpec
from provisioning.spec.stack import Stack

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

SEEN_WINDOW = 100_000  # duplicates are recognised among this many recent files when not pruning
CHECK_BATCH = 512  # ids per _mget, once the pipeline is running
FIRST_BATCH = 4  # images in the first encoder batch (the next ones double up to batch_size)
ABORT_AFTER = 20  # consecutive refused documents, with none accepted yet, that stop a job
_QUEUE_POLL = 0.1  # seconds between checks of the stop flag while a queue is full or empty


class _Stopped(Exception):
    """Raised inside the pipeline's threads when another stage failed and the job is stopping."""


class _Done:
    """End-of-stream marker put on the pipeline's queues."""


_DONE = _Done()


def default_workers() -> int:
    """Decode threads when the job does not say: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(
    executor: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """``map(fn, items)`` on the executor, in order, with at most ``window`` tasks in flight.

    The next task is submitted before a result is handed out, so workers keep going while the
    consumer works on it.
    """
    pending: deque[Future[R]] = deque()
    source = iter(items)
    exhausted = False
    for item in source:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            break
    else:
        exhausted = True
    while pending:
        result = pending.popleft().result()
        if not exhausted:
            nxt = next(source, _DONE)
            if isinstance(nxt, _Done):
                exhausted = True
            else:
                pending.append(executor.submit(fn, nxt))
        yield result


class SeenIds:
    """Ids met so far in a run, as 32-byte digests; bounded to the most recent ``limit`` if given."""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, doc_id: str) -> bool:
        return bytes.fromhex(doc_id) in self._ids

    def add(self, doc_id: str) -> None:
        self._ids[bytes.fromhex(doc_id)] = None
        if self._limit is not None and len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True)
class _Identified:
    file: SourceFile
    id: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Ready:
    file: SourceFile
    id: str
    facts: ImageFacts
    prepared: Prepared


def hash_file(file: SourceFile) -> _Identified | FileFailure:
    """The file's SHA-256, read in blocks (memory per worker is a buffer, not a file)."""
    try:
        with file.path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            digest = hashlib.file_digest(handle, "sha256")
    except OSError as exc:
        return FileFailure(file.relative_path, "read", "read", f"cannot read the file: {exc.strerror or exc}")
    return _Identified(file, digest.hexdigest(), info.st_size, info.st_mtime_ns)


class _JobRun:
    """One ingest job's pipeline; :meth:`run` returns its report or raises what stopped it."""

    def __init__(
        self,
        name: str,
        job: IngestSpec,
        root: Path,
        client: Elasticsearch,
        encoder: Encoder,
        *,
        full: bool,
        prune: bool,
        index_roots: Sequence[Path],
        progress: Progress | None,
    ) -> None:
        self.name = name
        self.job = job
        self.root = root
        self.client = client
        self.encoder = encoder
        self.full = full
        self.prune = prune
        self.index_roots = list(index_roots)  # source folders of every job writing to this index
        self.progress = progress
        self.batch_size = job.batch_size or encoder.batch_size
        self.workers = job.workers or default_workers()
        self.report = JobReport(name, job.index, str(root), encoder.name, full)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._seen = SeenIds(None if prune else SEEN_WINDOW)
        self._unreadable: set[str] = set()
        self._scan_problems: list[ScanProblem] = []
        self._pending: dict[str, str] = {}  # id -> relative path, for documents sent but not answered
        self._to_embed: queue.Queue[_Identified | _Done] = queue.Queue(maxsize=4 * self.batch_size)
        self._documents: queue.Queue[list[dict[str, Any]] | _Done] = queue.Queue(maxsize=4)
        self._started = 0.0
        self._refused_in_a_row = 0

    # -- bookkeeping (any thread) ---------------------------------------------------------------

    def _advance(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self.report, key, getattr(self.report, key) + value)
            report = self.report
            totals = {"indexed": report.indexed, "skipped": report.already_indexed + report.duplicates}
            totals["failed"] = report.failed
        if self.progress is not None:
            self.progress.advance(1, **totals)

    def _fail(self, failure: FileFailure) -> None:
        with self._lock:
            self.report.add_failure(failure)
        self._advance()

    def _put(self, target: queue.Queue[Any], item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                target.put(item, timeout=_QUEUE_POLL)
                return
            except queue.Full:
                continue

    def _get(self, source: queue.Queue[T]) -> T:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                return source.get(timeout=_QUEUE_POLL)
            except queue.Empty:
                continue

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which re-raises it
                self._errors.append(exc)
                self._stop.set()

        thread = threading.Thread(target=guarded, name=f"ingest-{self.name}-{name}", daemon=True)
        thread.start()
        return thread

    # -- the pipeline -------------------------------------------------------------------------

    def run(self) -> JobReport:
        check_static_fields(self.name, self.job.fields, self.job.vector_field)
        if self.progress is not None:
            total = sum(
                1
                for _ in scan(
                    self.root,
                    self.job.source.include,
                    self.job.source.exclude,
                    follow_symlinks=self.job.source.follow_symlinks,
                )
            )
            self.progress.start(self.name, total)
        self._started = time.perf_counter()
        batches_before = self.encoder.batches_encoded
        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"ingest-{self.name}")
        identify = self._thread(lambda: self._identify(executor), "identify")
        indexer = self._thread(self._index, "index")
        try:
            self._embed(executor)
        except _Stopped:
            pass
        except BaseException:
            self._stop.set()
            raise
        finally:
            self._finish_indexer(indexer)
            self._stop.set()  # the identify thread stops if it is still going (only on errors)
            identify.join()
            executor.shutdown(wait=True, cancel_futures=True)
            self.report.encoder_batches = self.encoder.batches_encoded - batches_before
            self.report.elapsed_s = time.perf_counter() - self._started
            if self.progress is not None:
                self.progress.finish()
        if self._errors:
            raise self._errors[0]
        for problem in self._scan_problems:
            self.report.add_failure(FileFailure(problem.relative_path, "scan", "scan", problem.reason))
        if self.prune:
            self._prune()
        self.report.elapsed_s = time.perf_counter() - self._started
        return self.report

    def _finish_indexer(self, indexer: threading.Thread) -> None:
        """Tell the indexer no more documents come (it sends what it holds), and wait for it."""
        while indexer.is_alive():
            try:
                self._documents.put(_DONE, timeout=_QUEUE_POLL)
                break
            except queue.Full:
                continue
        indexer.join()

    def _identify(self, executor: ThreadPoolExecutor) -> None:
        files = scan(
            self.root,
            self.job.source.include,
            self.job.source.exclude,
            follow_symlinks=self.job.source.follow_symlinks,
            problems=self._scan_problems,
        )
        hashed = ordered_map(executor, hash_file, self._scanned(files), window=max(2 * self.workers, 16))
        for group in _growing_groups(hashed, first=min(FIRST_BATCH, self.batch_size), largest=CHECK_BATCH):
            if self._stop.is_set():
                raise _Stopped
            fresh = sorted(
                {item.id for item in group if isinstance(item, _Identified) and item.id not in self._seen}
            )
            existing = (
                set() if self.full else bulk.existing_ids(self.client, self.job.index, fresh, self.job.bulk)
            )
            for item in group:
                if isinstance(item, FileFailure):
                    self._unreadable.add(item.relative_path)
                    self._fail(item)
                elif item.id in self._seen:
                    self._advance(duplicates=1)
                else:
                    self._seen.add(item.id)
                    if item.id in existing:
                        self._advance(already_indexed=1)
                    else:
                        self._put(self._to_embed, item)
        self._put(self._to_embed, _DONE)

    def _scanned(self, files: Iterable[SourceFile]) -> Iterator[SourceFile]:
        for file in files:
            with self._lock:
                self.report.scanned += 1
            yield file

    def _decode(self, item: _Identified) -> _Ready | FileFailure:
        relative = item.file.relative_path
        try:
            data = read_file(item.file.path)
            doc_id = item.id
            info = item.file.path.stat()
            if len(data) != item.size or info.st_mtime_ns != item.mtime_ns:
                doc_id = hashlib.sha256(data).hexdigest()  # changed since it was hashed: id what we decode
            decoded = decode_image(data, min_size=self.encoder.input_size)
        except ImageDecodeError as exc:
            return FileFailure(relative, "read" if exc.kind == "read" else "decode", exc.kind, str(exc))
        except OSError as exc:
            return FileFailure(relative, "read", "read", f"cannot read the file: {exc.strerror or exc}")
        return _Ready(item.file, doc_id, decoded.facts, self.encoder.prepare(decoded.image))

    def _embed(self, executor: ThreadPoolExecutor) -> None:
        def to_decode() -> Iterator[_Identified]:
            while True:
                item = self._get(self._to_embed)
                if isinstance(item, _Done):
                    return
                yield item

        window = 2 * self.batch_size + self.workers
        # The first batches are small and double up to batch_size: the first documents are then
        # searchable after a few images, not after a whole batch of them, at a negligible cost.
        size = min(FIRST_BATCH, self.batch_size)
        batch: list[_Ready] = []
        for result in ordered_map(executor, self._decode, to_decode(), window):
            if isinstance(result, FileFailure):
                self._fail(result)
                continue
            batch.append(result)
            if len(batch) >= size:
                self._encode(batch)
                batch = []
                size = min(2 * size, self.batch_size)
        if batch:
            self._encode(batch)

    def _encode(self, batch: list[_Ready]) -> None:
        vectors = self.encoder.encode_prepared([ready.prepared for ready in batch], self.batch_size)
        actions = []
        for ready, vector in zip(batch, vectors, strict=True):
            document = build_document(
                doc_id=ready.id,
                relative_path=ready.file.relative_path,
                facts=ready.facts,
                vector=vector,
                vector_field=self.job.vector_field,
                static_fields=self.job.fields,
            )
            actions.append(index_action(self.job.index, ready.id, document))
        with self._lock:
            self.report.embedded += len(batch)
            for ready in batch:
                self._pending[ready.id] = ready.file.relative_path
        self._put(self._documents, actions)

    def _actions(self) -> Iterator[Any]:
        """Documents as the encoder produces them; a flush whenever none is waiting, so a document is
        sent as soon as its batch is encoded, and chunks grow to ``chunk_size`` only when the cluster
        is the slower side."""
        while True:
            try:
                batch = self._documents.get_nowait()
            except queue.Empty:
                yield bulk.FLUSH
                batch = self._documents.get()
            if isinstance(batch, _Done):
                return
            yield from batch

    def _index(self) -> None:
        for result in bulk.stream_bulk(
            self.client, self._actions(), self.job.bulk, pipeline=self.job.pipeline
        ):
            with self._lock:
                relative = self._pending.pop(result.id, result.id)
            if result.ok:
                self._refused_in_a_row = 0
                if self.report.first_indexed_s is None:
                    self.report.first_indexed_s = time.perf_counter() - self._started
                self._advance(indexed=1)
                continue
            reason = f"{result.error_type}: {result.reason} (status {result.status})"
            self._fail(FileFailure(relative, "index", result.error_type or "error", reason))
            self._refused_in_a_row += 1
            if self.report.indexed == 0 and self._refused_in_a_row >= ABORT_AFTER:
                raise IngestError(
                    f"ingest {self.name}: the first {ABORT_AFTER} documents were all refused by index "
                    f"'{self.job.index}' (last: {reason}); check its mapping (the vector field "
                    f"'{self.job.vector_field}', its dims) and the pipeline"
                )

    # -- prune ----------------------------------------------------------------------------------

    def _prune(self) -> None:
        """Delete documents of files that are gone (see :func:`prune_decision`)."""
        if self._scan_problems:
            self.report.prune_skipped = (
                f"{len(self._scan_problems)} entries under the source could not be read; pruning might "
                "delete documents of files that still exist"
            )
            return
        selected = PathFilter(self.job.source.include, self.job.source.exclude)
        shared = len(self.index_roots) > 1

        def doomed() -> Iterator[dict[str, Any]]:
            for doc_id, relative, image_id in bulk.indexed_paths(self.client, self.job.index, self.job.bulk):
                if image_id != doc_id or not is_content_id(doc_id) or doc_id in self._seen:
                    continue
                if prune_decision(relative, self.root, self.index_roots, shared, selected, self._unreadable):
                    yield delete_action(self.job.index, doc_id)

        outcome = bulk.bulk_write(self.client, doomed(), self.job.bulk)
        self.report.pruned = outcome.ok
        for result in outcome.failed:
            if result.status != 404:
                reason = f"{result.error_type}: {result.reason}"
                self.report.add_failure(FileFailure(result.id, "prune", result.error_type or "error", reason))


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


def _growing_groups(items: Iterator[T], *, first: int, largest: int) -> Iterator[list[T]]:
    """Consecutive groups of ``items``: ``first`` long, doubling up to ``largest``.

    Small first groups get the first documents embedded (and searchable) quickly; large later ones
    keep the number of existence checks low.
    """
    size = max(1, first)
    while True:
        group: list[T] = []
        for item in items:
            group.append(item)
            if len(group) >= size:
                break
        if not group:
            return
        yield group
        if len(group) < size:
            return
        size = min(largest, size * 2)


def run_ingest(
    stack: Stack,
    client: Elasticsearch,
    jobs: Sequence[str] | None = None,
    *,
    full: bool = False,
    prune: bool | None = None,
    progress: Progress | None = None,
    encoders: Mapping[str, Encoder] | None = None,
) -> IngestReport:
    """Run the stack's ingest jobs (all, or those named in ``jobs``) against ``client``.

    Incremental unless ``full``: files whose content is already indexed are skipped before decoding.
    ``prune`` overrides each job's ``prune`` setting. ``encoders`` may hold already loaded encoders
    by name (the rest are loaded once each, however many jobs use them). Jobs run one after another;
    the first that cannot go on raises (:class:`IngestError`, :class:`EncoderError`), after the
    documents already embedded have been sent.
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
    for name in names:
        job = declared[name]
        encoder = loaded.get(job.encoder)
        if encoder is None:
            spec = stack.spec.encoders.get(job.encoder)
            if spec is None:
                raise IngestError(f"ingest job '{name}' names encoder '{job.encoder}', which is not declared")
            load_started = time.perf_counter()
            encoder = load_encoder(job.encoder, spec, stack.base_dir)
            report.encoders.append(
                EncoderLoad(job.encoder, encoder.source, encoder.device, time.perf_counter() - load_started)
            )
            loaded[job.encoder] = encoder
        index_roots = [
            stack.resolve(other.source.path) for other in declared.values() if other.index == job.index
        ]
        run = _JobRun(
            name,
            job,
            stack.resolve(job.source.path),
            client,
            encoder,
            full=full,
            prune=job.prune if prune is None else prune,
            index_roots=index_roots,
            progress=progress,
        )
        job_report = run.run()
        report.jobs.append(job_report)
        if job_report.indexed or job_report.pruned:
            # What the job wrote is searchable when the command returns, so `verify` or a search
            # run right after sees it (within the job, refresh_interval makes documents visible).
            refresh = functools.partial(client.indices.refresh, index=job.index)
            bulk.with_retries(refresh, job.bulk, f"cannot refresh index '{job.index}'")
    report.elapsed_s = time.perf_counter() - started
    return report
