"""One ingest job: scan -> identify -> decode -> encode -> bulk, as one streaming pipeline.

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

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from provisioning.embedding.encoders import Encoder
from provisioning.embedding.preprocessing import Prepared
from provisioning.image_ingest import bulk
from provisioning.image_ingest.decode import ImageDecodeError, ImageFacts, decode_image, read_file
from provisioning.image_ingest.documents import (
    VectorEncoding,
    build_document,
    check_static_fields,
    encode_vector,
    encoded_size,
    index_action,
)
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.outcomes import RefusalWatch, index_failure
from provisioning.image_ingest.progress import Progress
from provisioning.image_ingest.prune import prune_job
from provisioning.image_ingest.report import FileFailure, JobReport
from provisioning.image_ingest.scan import ScanProblem, SourceFile, scan
from provisioning.image_ingest.sinks import ElasticsearchSink, Sink
from provisioning.image_ingest.streams import (
    DONE,
    Done,
    SeenIds,
    default_workers,
    growing_groups,
    ordered_map,
)
from provisioning.stackfile.schema import IngestSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

SEEN_WINDOW = 100_000  # duplicates are recognised among this many recent files when not pruning
CHECK_BATCH = 512  # ids per _mget, once the pipeline is running
FIRST_BATCH = 4  # images in the first encoder batch (the next ones double up to batch_size)
_QUEUE_POLL = 0.1  # seconds between checks of the stop flag while a queue is full or empty


class _Stopped(Exception):
    """Raised inside the pipeline's threads when another stage failed and the job is stopping."""


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


def decode_file(
    item: _Identified, input_size: int | None, prepare: Callable[[Image.Image], Prepared]
) -> _Ready | FileFailure:
    """Read, decode (no smaller than ``input_size``) and ``prepare`` one identified file; a file that
    changed since it was hashed gets the id of the bytes decoded. Both engines decode through here."""
    relative = item.file.relative_path
    try:
        data = read_file(item.file.path)
        doc_id = item.id
        info = item.file.path.stat()
        if len(data) != item.size or info.st_mtime_ns != item.mtime_ns:
            doc_id = hashlib.sha256(data).hexdigest()  # changed since it was hashed: id what we decode
        decoded = decode_image(data, min_size=input_size)
    except ImageDecodeError as exc:
        return FileFailure(relative, "read" if exc.kind == "read" else "decode", exc.kind, str(exc))
    except OSError as exc:
        return FileFailure(relative, "read", "read", f"cannot read the file: {exc.strerror or exc}")
    return _Ready(item.file, doc_id, decoded.facts, prepare(decoded.image))


class JobRun:
    """One ingest job's pipeline; :meth:`run` returns its report or raises what stopped it.

    Documents go to ``sink``: the job's index, or Parquet shards for an export (no prune then).
    """

    def __init__(
        self,
        name: str,
        job: IngestSpec,
        root: Path,
        sink: Sink,
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
        self.sink = sink
        self.encoder = encoder
        self.full = full
        self.prune = prune
        self.index_roots = list(index_roots)  # source folders of every job writing to this index
        self.progress = progress
        self.vector_encoding: VectorEncoding = sink.vector_encoding
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
        self._to_embed: queue.Queue[_Identified | Done] = queue.Queue(maxsize=4 * self.batch_size)
        self._documents: queue.Queue[list[dict[str, Any]] | Done] = queue.Queue(maxsize=4)
        self._started = 0.0
        self._refusals = RefusalWatch(name, job.index, job.vector_field)
        self.replacing = False  # a --full run replacing another encoder's vectors in this field

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
        self._check_encoder()
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

    def _check_encoder(self) -> None:
        """Refuse to mix encoders in the vector field (or in an export's shards); the sink records ours
        (see :mod:`.encoder_record`)."""
        fingerprint = self.encoder.fingerprint
        if fingerprint is None:
            return
        self.report.vectors = fingerprint.describe()
        decision = self.sink.check_encoder(self.name, self.encoder.name, fingerprint, full=self.full)
        self.report.vectors_note = decision.note
        self.replacing = decision.replacing

    def _finish_indexer(self, indexer: threading.Thread) -> None:
        """Tell the indexer no more documents come (it sends what it holds), and wait for it."""
        while indexer.is_alive():
            try:
                self._documents.put(DONE, timeout=_QUEUE_POLL)
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
        for group in growing_groups(hashed, first=min(FIRST_BATCH, self.batch_size), largest=CHECK_BATCH):
            if self._stop.is_set():
                raise _Stopped
            fresh = sorted(
                {item.id for item in group if isinstance(item, _Identified) and item.id not in self._seen}
            )
            existing = set() if self.full else self.sink.existing_ids(fresh)
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
        self._put(self._to_embed, DONE)

    def _scanned(self, files: Iterable[SourceFile]) -> Iterator[SourceFile]:
        for file in files:
            with self._lock:
                self.report.scanned += 1
            yield file

    def _decode(self, item: _Identified) -> _Ready | FileFailure:
        return decode_file(item, self.encoder.input_size, self.encoder.prepare)

    def _embed(self, executor: ThreadPoolExecutor) -> None:
        def to_decode() -> Iterator[_Identified]:
            while True:
                item = self._get(self._to_embed)
                if isinstance(item, Done):
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
                vector_encoding=self.vector_encoding,
            )
            if self.report.bytes_per_document is None:
                self._measure(document, vector)
            actions.append(index_action(self.job.index, ready.id, document))
        with self._lock:
            self.report.embedded += len(batch)
            for ready in batch:
                self._pending[ready.id] = ready.file.relative_path
        self._put(self._documents, actions)

    def _measure(self, document: dict[str, Any], vector: Prepared) -> None:
        """The first document's size as sent, and as it would be with the vector as a float array."""
        as_array = dict(document, **{self.job.vector_field: encode_vector(vector, "array")})
        self.report.vector_encoding = self.vector_encoding
        self.report.bytes_per_document = encoded_size(document)
        self.report.bytes_per_document_as_array = encoded_size(as_array)

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
            if isinstance(batch, Done):
                return
            yield from batch

    def _index(self) -> None:
        for result in self.sink.write(self._actions()):
            with self._lock:
                relative = self._pending.pop(result.id, result.id)
            if result.ok:
                self._refusals.accepted_one()
                if self.report.first_indexed_s is None:
                    self.report.first_indexed_s = time.perf_counter() - self._started
                    self.sink.written()
                self._advance(indexed=1)
                continue
            failure = index_failure(relative, result)
            self._fail(failure)
            self._refusals.refused_one(failure)

    def _prune(self) -> None:
        """Delete documents of files that are gone (see :func:`.prune.prune_job`)."""
        if not isinstance(self.sink, ElasticsearchSink):
            raise IngestError(
                f"ingest {self.name}: prune needs an index to prune, not {self.sink.description}"
            )
        prune_job(
            self.sink.client,
            self.job,
            self.root,
            self.index_roots,
            self._seen,
            self._unreadable,
            self._scan_problems,
            self.report,
        )
