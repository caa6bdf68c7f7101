"""Talking to Elasticsearch for ingest: streaming bulk writes, existence checks, prune candidates.

Layering follows elasticsearch-py's helpers: :func:`stream_bulk` is the core, a generator that takes
actions as they come and yields one :class:`ItemResult` per document as Elasticsearch answers it; the
ingest job consumes it in its indexer thread and counts; :func:`bulk_write` is the counting wrapper
for callers that just want totals.

Retries are explicit and have one owner. Bulk requests go out through a client whose transport does
*not* retry on HTTP status (``retry_on_status=()``); this layer retries instead, with exponential
backoff (``bulk.initial_backoff`` doubling up to ``bulk.max_backoff``, ``bulk.max_retries`` times),
both the items a bulk response refuses with 429 (Elasticsearch's back-pressure) and whole requests
answered 429, 502, 503 or 504. Connection failures are still retried by the transport (its
``max_retries``, from the cluster settings). Other refusals of a whole request (401, 403, 400...)
stop the job with an :class:`IngestError`; refusals of single items are reported per file.

Prune lists candidates with ``search_after`` on ``image_id`` (a keyword in the image-embeddings
mapping); a mapping that cannot sort on it makes prune fail with the cluster's reason.

Existence checks use ``_mget`` with ``_source: false``: it is real-time (it sees documents written a
moment ago, before any refresh), which is what resuming after a crash needs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import BULK_FLUSH, streaming_bulk

from provisioning.cluster import error_text, unreachable_cause
from provisioning.image_ingest.errors import IngestError
from provisioning.stackfile.schema import BulkSpec

RETRY_STATUSES: tuple[int, ...] = (429, 502, 503, 504)
FLUSH = BULK_FLUSH  # an action that sends what is buffered now (streaming_bulk's marker)

T = TypeVar("T")
Action = dict[str, Any] | Any  # a bulk action dict, or FLUSH


@dataclass(frozen=True)
class ItemResult:
    """Elasticsearch's answer for one document of a bulk request (after any retries)."""

    id: str
    ok: bool
    status: int
    error_type: str | None = None
    reason: str | None = None


def _item(ok: bool, item: dict[str, Any]) -> ItemResult:
    _op, info = next(iter(item.items()))
    status = int(info.get("status", 500))
    doc_id = str(info.get("_id", ""))
    if ok:
        return ItemResult(doc_id, True, status)
    error = info.get("error")
    if isinstance(error, dict):
        return ItemResult(doc_id, False, status, str(error.get("type")), str(error.get("reason")))
    return ItemResult(doc_id, False, status, "error", str(error))


def stream_bulk(
    client: Elasticsearch,
    actions: Iterable[Action],
    spec: BulkSpec,
    *,
    pipeline: str | None = None,
) -> Iterator[ItemResult]:
    """Send ``actions`` in chunks (``spec.chunk_size`` documents or ``spec.max_chunk_bytes``,
    whichever comes first, or earlier at each :data:`FLUSH`) and yield each document's outcome.

    Items refused with 429 (and whole requests answered 429/502/503/504) are retried with backoff;
    what still fails is yielded, never dropped. A whole request refused otherwise, or a lost
    connection, raises :class:`IngestError`.
    """
    bulk_client = client.options(retry_on_status=())
    try:
        for ok, item in streaming_bulk(
            bulk_client,
            actions,
            chunk_size=spec.chunk_size,
            max_chunk_bytes=spec.max_chunk_bytes,
            raise_on_error=False,
            raise_on_exception=True,
            max_retries=spec.max_retries,
            initial_backoff=spec.initial_backoff,
            max_backoff=spec.max_backoff,
            retry_on_status=RETRY_STATUSES,
            yield_ok=True,
            pipeline=pipeline,
        ):
            yield _item(ok, item)
    except ApiError as exc:
        raise IngestError(
            f"the cluster refused a bulk request ({exc.status_code} {error_text(exc)})"
            + (f" after {spec.max_retries} retries" if exc.status_code in RETRY_STATUSES else "")
        ) from exc
    except TransportError as exc:
        raise IngestError(
            f"lost the connection to the cluster while indexing ({unreachable_cause(exc)}); run ingest again: "
            "it resumes where it stopped"
        ) from exc


@dataclass
class BulkSummary:
    ok: int
    failed: list[ItemResult]


def bulk_write(
    client: Elasticsearch, actions: Iterable[Action], spec: BulkSpec, *, pipeline: str | None = None
) -> BulkSummary:
    """Counting wrapper over :func:`stream_bulk`: how many succeeded, and the failures."""
    summary = BulkSummary(0, [])
    for result in stream_bulk(client, actions, spec, pipeline=pipeline):
        if result.ok:
            summary.ok += 1
        else:
            summary.failed.append(result)
    return summary


def with_retries(call: Callable[[], T], spec: BulkSpec, what: str) -> T:
    """``call()``, retried with jittered exponential backoff on 429/502/503/504 answers."""
    for attempt in range(spec.max_retries + 1):
        try:
            return call()
        except ApiError as exc:
            if exc.status_code not in RETRY_STATUSES or attempt == spec.max_retries:
                raise IngestError(f"{what}: {exc.status_code} {error_text(exc)}") from exc
        except TransportError as exc:
            raise IngestError(f"{what}: cannot reach the cluster: {unreachable_cause(exc)}") from exc
        delay = min(spec.max_backoff, spec.initial_backoff * 2**attempt)
        time.sleep(delay * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def existing_ids(client: Elasticsearch, index: str, ids: Sequence[str], spec: BulkSpec) -> set[str]:
    """Which of ``ids`` are documents of ``index`` (a missing index holds none)."""
    if not ids:
        return set()

    def call() -> Any:
        return client.mget(index=index, ids=list(ids), source=False, realtime=True)

    try:
        response = with_retries(call, spec, f"cannot check which files index '{index}' holds")
    except IngestError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return set()
        raise
    found: set[str] = set()
    for doc in response["docs"]:
        if doc.get("found"):
            found.add(str(doc["_id"]))
        elif "error" in doc:
            error = doc["error"]
            kind = error.get("type") if isinstance(error, dict) else str(error)
            if kind != "index_not_found_exception":
                reason = error.get("reason") if isinstance(error, dict) else ""
                raise IngestError(f"cannot check which files index '{index}' holds: {kind}: {reason}")
    return found


def indexed_paths(
    client: Elasticsearch, index: str, spec: BulkSpec, page: int = 1000
) -> Iterator[tuple[str, str, Any]]:
    """(``_id``, ``relative_path``, ``image_id``) of every document of ``index`` that has both fields.

    Pages with ``search_after`` on ``image_id`` (a keyword in the image-embeddings mapping, unique per
    document), which works everywhere, unlike scroll; deleting documents already listed does not
    disturb the pages after them.
    """
    try:
        with_retries(lambda: client.indices.refresh(index=index), spec, f"cannot refresh index '{index}'")
    except IngestError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return
        raise
    query = {"bool": {"filter": [{"exists": {"field": "image_id"}}, {"exists": {"field": "relative_path"}}]}}
    after: list[Any] | None = None
    while True:

        def call(cursor: list[Any] | None = after) -> Any:
            return client.search(
                index=index,
                query=query,
                sort=[{"image_id": "asc"}],
                search_after=cursor,
                size=page,
                source_includes=["relative_path", "image_id"],
                track_total_hits=False,
            )

        hits = with_retries(call, spec, f"cannot list the documents of index '{index}' for prune")["hits"][
            "hits"
        ]
        for hit in hits:
            source = hit.get("_source") or {}
            path = source.get("relative_path")
            if isinstance(path, str):
                yield str(hit["_id"]), path, source.get("image_id")
        if len(hits) < page:
            return
        after = hits[-1]["sort"]
