"""Where a job's documents go: an Elasticsearch index (``_bulk``) or Parquet shards (``--export``).

Both engines talk to a sink the same way, so ids, resuming, chunking, back-pressure and per-item
failures are one code path whatever runs the pipeline:

- :meth:`Sink.existing_ids`: which ids are there already (``_mget`` on the index; the ids of the
  shards already written), so files are skipped before they are decoded;
- :meth:`Sink.write`: bulk index actions in (``FLUSH`` markers included), one
  :class:`~provisioning.image_ingest.bulk.ItemResult` out per document once it is durable (answered
  by Elasticsearch; in a renamed shard);
- :meth:`Sink.check_encoder` before the first write and :meth:`Sink.written` after the first
  acknowledged document: the encoder record that keeps two encoders out of one vector field.

Sinks are picklable: the Ray engine ships them to its workers, where each builds its own client from
the connection options (one per worker process, reused by every batch it writes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from elasticsearch import Elasticsearch

from provisioning.cluster import ConnectionOptions, build_client
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.image_ingest import bulk, shards
from provisioning.image_ingest.bulk import Action, ItemResult
from provisioning.image_ingest.documents import VectorEncoding
from provisioning.image_ingest.encoder_record import Decision, EncoderGuard, EncoderMismatchError
from provisioning.image_ingest.errors import IngestError
from provisioning.stackfile.schema import BulkSpec

_clients: dict[ConnectionOptions, Elasticsearch] = {}
_clients_lock = threading.Lock()


def worker_client(options: ConnectionOptions) -> Elasticsearch:
    """One client per process and connection (a Ray worker reuses it for every batch it runs)."""
    with _clients_lock:
        client = _clients.get(options)
        if client is None:
            client = _clients[options] = build_client(options)
        return client


class Sink(Protocol):
    description: str
    vector_encoding: VectorEncoding  # how documents for this sink carry their vectors

    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...

    def write(self, actions: Iterable[Action]) -> Iterator[ItemResult]: ...

    def check_encoder(
        self, job: str, encoder: str, fingerprint: EncoderFingerprint, *, full: bool
    ) -> Decision: ...

    def written(self) -> None: ...


class ElasticsearchSink:
    """The job's index: ``_mget`` for existing ids, :func:`bulk.stream_bulk` for writes."""

    def __init__(
        self,
        index: str,
        spec: BulkSpec,
        *,
        pipeline: str | None = None,
        vector_field: str = "image_embedding",
        client: Elasticsearch | None = None,
        connection: ConnectionOptions | None = None,
        vector_encoding: VectorEncoding = "array",
    ) -> None:
        self.index = index
        self.vector_encoding: VectorEncoding = vector_encoding
        self.spec = spec
        self.pipeline = pipeline
        self.vector_field = vector_field
        self.connection = connection
        self._client = client
        self._guard: EncoderGuard | None = None
        self.description = f"index '{index}'"

    def __getstate__(self) -> dict[str, Any]:
        if self.connection is None:
            raise IngestError(
                "this ingest sink has a client but no connection options, so it cannot run on Ray workers"
            )
        state = dict(self.__dict__)
        state["_client"] = None
        state["_guard"] = None
        return state

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            assert self.connection is not None  # __getstate__ refuses to ship a sink without one
            self._client = worker_client(self.connection)
        return self._client

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return bulk.existing_ids(self.client, self.index, ids, self.spec)

    def write(self, actions: Iterable[Action]) -> Iterator[ItemResult]:
        return bulk.stream_bulk(self.client, actions, self.spec, pipeline=self.pipeline)

    def check_encoder(
        self, job: str, encoder: str, fingerprint: EncoderFingerprint, *, full: bool
    ) -> Decision:
        self._guard = EncoderGuard(
            self.client, job, self.index, self.vector_field, self.spec, encoder, fingerprint, full=full
        )
        return self._guard.check()

    def written(self) -> None:
        if self._guard is not None:
            self._guard.written()


class ParquetSink:
    """A folder of Parquet shards (:mod:`.shards`): one shard per ``rows_per_shard`` documents, and
    one for what is left at the end of each :meth:`write` call (a Ray batch is one shard)."""

    def __init__(self, directory: Path, meta: shards.ShardMeta, rows_per_shard: int = shards.ROWS_PER_SHARD):
        self.directory = directory
        self.meta = meta
        self.rows_per_shard = rows_per_shard
        self.vector_encoding: VectorEncoding = "array"  # shards store the float vectors themselves
        self._existing: frozenset[str] = frozenset()
        self.description = f"Parquet shards in {directory}"

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {doc_id for doc_id in ids if doc_id in self._existing}

    def write(self, actions: Iterable[Action]) -> Iterator[ItemResult]:
        pending: list[dict[str, Any]] = []
        for action in actions:
            if not isinstance(action, dict):
                continue  # FLUSH: shards are cut by size, not by time
            pending.append(action)
            if len(pending) >= self.rows_per_shard:
                yield from self._flush(pending)
                pending = []
        if pending:
            yield from self._flush(pending)

    def _flush(self, actions: list[dict[str, Any]]) -> Iterator[ItemResult]:
        shards.write_shard(self.directory, self.meta, shards.rows_of(actions, self.meta.vector_field))
        for action in actions:
            yield ItemResult(str(action["_id"]), True, 201)

    def check_encoder(
        self, job: str, encoder: str, fingerprint: EncoderFingerprint, *, full: bool
    ) -> Decision:
        """An export resumes only with the encoder of the shards already there; ``full`` starts over."""
        found = shards.shard_files(self.directory)
        if full:
            if self.directory.is_dir():
                for path in found:
                    path.unlink()
                for leftover in self.directory.glob(".part-*.tmp"):
                    leftover.unlink()
            return Decision(None, f"wrote new shards in {self.directory}" if found else None)
        for path in found:
            theirs = shards.read_meta(path)
            if theirs.fingerprint.vectors_id != fingerprint.vectors_id or theirs.dims != self.meta.dims:
                raise EncoderMismatchError(
                    f"export {job}: {path} holds vectors of {theirs.describe()}, but the stack's encoder is "
                    f"{encoder}: {fingerprint.describe()}, {self.meta.dims} dims; export with --full to "
                    f"replace the shards in {self.directory}, or export to another folder"
                )
        self._existing = frozenset(shards.exported_ids(self.directory))
        return Decision(None, f"resumed: {len(self._existing)} images already exported" if found else None)

    def written(self) -> None:
        return None
