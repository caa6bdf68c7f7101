"""One index's documents: versions, sequence numbers, vectors, and point-in-time searchers.

Rows are append-only, like Lucene segments: indexing a document (or a new version of one)
appends a row and marks the previous row dead. A refresh publishes a :class:`Searcher`, an
immutable view of the first ``n`` rows with a copy of the live mask; searches only ever see a
searcher, so a document is searchable only after a refresh (ES semantics), while ``GET`` reads
the live rows (realtime). Vectors sit in one contiguous float32 matrix per field (with their norms
for cosine), so an exact kNN search is a single matrix-vector product.

Vector values are not kept in the Python-side ``_source`` (it would cost ~30 bytes per float);
they are cut out at indexing time and put back from the matrix when a source with vectors is
asked for, which is what ES 9.2 does too for ``index.mapping.exclude_source_vectors``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.mapper.documents import ParsedDoc

PRIMARY_TERM = 1
_INITIAL_CAPACITY = 256


@dataclass
class DocRecord:
    """One version of a document; immutable once appended."""

    id: str
    source: dict[str, Any]  # without dense_vector values (see vector_keys)
    version: int
    seq_no: int
    values: dict[str, list[Any]]
    vector_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    routing: str | None = None
    primary_term: int = PRIMARY_TERM


class VectorColumn:
    """A growable float32 matrix of one dense_vector field, row-aligned with the documents."""

    def __init__(self, dims: int, capacity: int = _INITIAL_CAPACITY) -> None:
        self.dims = dims
        self.data = np.zeros((capacity, dims), dtype=np.float32)
        self.norms = np.zeros(capacity, dtype=np.float32)
        self.present = np.zeros(capacity, dtype=bool)

    def ensure(self, rows: int) -> None:
        capacity = self.data.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, capacity * 2)
        data = np.zeros((new_capacity, self.dims), dtype=np.float32)
        data[:capacity] = self.data
        norms = np.zeros(new_capacity, dtype=np.float32)
        norms[:capacity] = self.norms
        present = np.zeros(new_capacity, dtype=bool)
        present[:capacity] = self.present
        # Old arrays stay referenced by older searchers; rows they cover are never rewritten.
        self.data, self.norms, self.present = data, norms, present

    def set(self, row: int, vector: np.ndarray) -> None:
        self.ensure(row + 1)
        self.data[row] = vector
        self.norms[row] = float(np.sqrt(np.dot(vector.astype(np.float64), vector.astype(np.float64))))
        self.present[row] = True


@dataclass(frozen=True)
class VectorView:
    data: np.ndarray
    norms: np.ndarray
    present: np.ndarray


@dataclass(frozen=True)
class NestedVectorView:
    """A searcher's nested vectors of one field: one entry per nested object holding a vector."""

    data: np.ndarray  # (entries, dims) float32
    norms: np.ndarray
    rows: np.ndarray  # the document (row) each entry belongs to
    offsets: list[tuple[int, ...]]  # the entry's position in its nested arrays (outermost first)


class NestedVectorColumn:
    """The vectors of one dense_vector field inside ``nested`` objects, in row order.

    Unlike top-level vectors (one per document, cut out of ``_source``), nested vectors stay in the
    stored ``_source``; this column is derived from it and rebuilt when an index is loaded.
    """

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.offsets: list[tuple[int, ...]] = []
        self.vectors: list[np.ndarray] = []
        self._view: NestedVectorView | None = None

    def add(self, row: int, offsets: tuple[int, ...], vector: np.ndarray) -> None:
        self.rows.append(row)
        self.offsets.append(offsets)
        self.vectors.append(vector.astype(np.float32))
        self._view = None

    def view(self) -> NestedVectorView:
        if self._view is None:
            data = np.stack(self.vectors) if self.vectors else np.zeros((0, 1), dtype=np.float32)
            norms = np.sqrt(np.einsum("ij,ij->i", data.astype(np.float64), data.astype(np.float64)))
            self._view = NestedVectorView(
                data, norms.astype(np.float32), np.array(self.rows, dtype=np.int64), list(self.offsets)
            )
        return self._view


class Searcher:
    """A point-in-time view of an index: what a search sees between two refreshes."""

    def __init__(
        self,
        rows: list[DocRecord],
        n: int,
        live: np.ndarray,
        vectors: dict[str, VectorView],
        nested: dict[str, NestedVectorView] | None = None,
    ) -> None:
        self.rows = rows
        self.n = n
        self.live = live
        self.vectors = vectors
        self.nested = nested or {}
        self.doc_count = int(live.sum())
        self._columns: dict[str, list[list[Any] | None]] = {}

    def live_rows(self) -> Iterator[int]:
        return (int(i) for i in np.flatnonzero(self.live))

    def column(self, path: str) -> list[list[Any] | None]:
        """Indexed values of one field for every row (None where absent), cached per searcher."""
        cached = self._columns.get(path)
        if cached is None:
            rows = self.rows
            cached = [rows[i].values.get(path) for i in range(self.n)]
            self._columns[path] = cached
        return cached


def _empty_searcher() -> Searcher:
    return Searcher([], 0, np.zeros(0, dtype=bool), {})


def strip_vectors(
    source: dict[str, Any], paths: list[str]
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """A copy of ``source`` without the values of the given dense_vector fields, and where they were."""
    if not paths:
        return source, {}
    out = copy.copy(source)
    keys: dict[str, tuple[str, ...]] = {}
    for path in paths:
        located = _locate(out, path.split("."))
        if located is None:
            continue
        key_path = located
        _remove(out, key_path)
        keys[path] = key_path
    return out, keys


def _locate(node: Any, parts: list[str]) -> tuple[str, ...] | None:
    if not parts:
        return ()
    if not isinstance(node, dict):
        return None
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            rest = _locate(node[key], parts[i:])
            if rest is not None:
                return (key, *rest)
    return None


def _remove(node: dict[str, Any], key_path: tuple[str, ...]) -> None:
    # Copy along the path so the caller's dict is never mutated.
    parent = node
    for key in key_path[:-1]:
        child = dict(parent[key])
        parent[key] = child
        parent = child
    parent.pop(key_path[-1], None)


def _insert(node: dict[str, Any], key_path: tuple[str, ...], value: Any) -> None:
    parent = node
    for key in key_path[:-1]:
        child = parent.get(key)
        child = dict(child) if isinstance(child, dict) else {}
        parent[key] = child
        parent = child
    parent[key_path[-1]] = value


def vector_to_json(vector: np.ndarray, element_type: str) -> list[Any]:
    """float32 values as the shortest decimals that round-trip (what the client sent, usually)."""
    if element_type in ("byte", "bit"):
        return [int(v) for v in vector]
    return [float(str(v)) for v in vector.astype(np.float32)]


class IndexStore:
    """The documents of one index (one shard, as the sandbox has one node)."""

    def __init__(self, created: float | None = None) -> None:
        self.rows: list[DocRecord] = []
        self.live = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.ids: dict[str, int] = {}
        self.tombstones: dict[str, tuple[int, int]] = {}  # id -> (version, seq_no) of deleted docs
        self.vectors: dict[str, VectorColumn] = {}
        self.nested: dict[str, NestedVectorColumn] = {}
        self.vector_types: dict[str, str] = {}
        self.max_seq_no = -1
        self.searcher = _empty_searcher()
        self.created = created if created is not None else time.time()
        self.pending_since: float | None = None
        self.last_search_access = time.time()
        self.last_refresh = self.created
        self.generation = 0  # bumped on every change; persistence rewrites changed indices only
        self.deleted_rows = 0

    # -- reading ------------------------------------------------------------------------------------
    def get(self, doc_id: str) -> DocRecord | None:
        row = self.ids.get(doc_id)
        return None if row is None else self.rows[row]

    def doc_count(self) -> int:
        return len(self.ids)

    def source_with_vectors(
        self, record: DocRecord, searcher: Searcher | None = None, row: int | None = None
    ) -> dict[str, Any]:
        """The document's full source, vectors put back from the matrix.

        ``row`` is the record's row in ``searcher`` (search hits know it); without it the row is
        looked up, which is immediate for the live version of a document.
        """
        if not record.vector_keys:
            return record.source
        if row is None:
            row = self._row_of(record, searcher)
        out = copy.copy(record.source)
        for path, key_path in record.vector_keys.items():
            column = self.vectors.get(path)
            view = searcher.vectors.get(path) if searcher is not None else None
            data = view.data if view is not None else column.data if column is not None else None
            if data is None or row is None or row >= data.shape[0]:
                continue
            _insert(out, key_path, vector_to_json(data[row], self.vector_types.get(path, "float")))
        return out

    def _row_of(self, record: DocRecord, searcher: Searcher | None) -> int | None:
        row = self.ids.get(record.id)
        if row is not None and self.rows[row] is record:
            return row
        rows = searcher.rows if searcher is not None else self.rows
        for i in range(len(rows) - 1, -1, -1):  # an older version seen by a searcher
            if rows[i] is record:
                return i
        return None

    # -- writing --------------------------------------------------------------------------------------
    def _next_seq_no(self) -> int:
        self.max_seq_no += 1
        return self.max_seq_no

    def _mark_changed(self) -> None:
        self.generation += 1
        if self.pending_since is None:
            self.pending_since = time.time()

    def check_conflicts(
        self,
        index_name: str,
        doc_id: str,
        *,
        create: bool,
        if_seq_no: int | None,
        if_primary_term: int | None,
        version: int | None,
        version_type: str,
    ) -> None:
        """Raise ES's version_conflict_engine_exception when a write's preconditions fail."""
        current = self.get(doc_id)

        def conflict(message: str) -> ApiError:
            return ApiError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, {message}",
                index_uuid=self.index_uuid,
                shard="0",
                index=index_name,
            )

        if create and current is not None:
            raise conflict(f"document already exists (current version [{current.version}])")
        if if_seq_no is not None or if_primary_term is not None:
            term = if_primary_term if if_primary_term is not None else 0
            if current is None:
                raise conflict(
                    f"required seqNo [{if_seq_no}], primary term [{term}]. but no document was found"
                )
            if current.seq_no != if_seq_no or current.primary_term != term:
                raise conflict(
                    f"required seqNo [{if_seq_no}], primary term [{term}]. current document has seqNo "
                    f"[{current.seq_no}] and primary term [{current.primary_term}]"
                )
        if version is not None and version_type in ("external", "external_gte"):
            current_version = current.version if current is not None else None
            if current_version is not None:
                ok = version > current_version if version_type == "external" else version >= current_version
                if not ok:
                    raise conflict(
                        f"current version [{current_version}] is higher or equal to the one provided [{version}]"
                        if version_type == "external"
                        else f"current version [{current_version}] is higher than the one provided [{version}]"
                    )
        elif version is not None and version_type == "internal":
            current_version = current.version if current is not None else -1
            if current is None or current.version != version:
                raise conflict(
                    f"current version [{current_version}] is different than the one provided [{version}]"
                )

    index_uuid: str = "_na_"

    def put(
        self,
        doc_id: str,
        source: dict[str, Any],
        parsed: ParsedDoc,
        *,
        routing: str | None = None,
        external_version: int | None = None,
    ) -> DocRecord:
        """Index a document (new or a new version), returning the stored record."""
        previous = self.get(doc_id)
        if external_version is not None:
            version = external_version
        elif previous is not None:
            version = previous.version + 1
        elif doc_id in self.tombstones:
            version = self.tombstones[doc_id][0] + 1
        else:
            version = 1
        stripped, keys = strip_vectors(source, list(parsed.vectors))
        record = DocRecord(
            doc_id,
            stripped,
            version,
            self._next_seq_no(),
            parsed.values,
            keys,
            tuple(parsed.ignored),
            routing,
        )
        row = len(self.rows)
        self.rows.append(record)
        self._ensure_live(row + 1)
        if previous is not None:
            self.live[self.ids[doc_id]] = False
            self.deleted_rows += 1
        self.live[row] = True
        self.ids[doc_id] = row
        self.tombstones.pop(doc_id, None)
        for path, vector in parsed.vectors.items():
            column = self.vectors.get(path)
            if column is None or column.dims != vector.shape[0]:
                column = VectorColumn(vector.shape[0], max(_INITIAL_CAPACITY, len(self.rows) * 2))
                self.vectors[path] = column
            column.set(row, vector)
        for path, entries in parsed.nested_vectors.items():
            nested = self.nested.setdefault(path, NestedVectorColumn())
            for offsets, vector in entries:
                nested.add(row, offsets, vector)
        self._mark_changed()
        return record

    def delete(self, doc_id: str) -> tuple[int, int] | None:
        """Delete a document; (version, seq_no) of the delete, or None when it did not exist."""
        row = self.ids.pop(doc_id, None)
        if row is None:
            return None
        record = self.rows[row]
        self.live[row] = False
        self.deleted_rows += 1
        version = record.version + 1
        seq_no = self._next_seq_no()
        self.tombstones[doc_id] = (version, seq_no)
        self._mark_changed()
        return version, seq_no

    def noop_seq_no(self) -> int:
        return self.max_seq_no

    def _ensure_live(self, rows: int) -> None:
        if rows > self.live.shape[0]:
            live = np.zeros(max(rows, self.live.shape[0] * 2), dtype=bool)
            live[: self.live.shape[0]] = self.live
            self.live = live

    def flush(self) -> None:
        """A Lucene commit. The sandbox keeps no translog and no segments, so there is nothing to do;
        searches still see only what a refresh published."""

    # -- refresh ----------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Publish a new searcher with everything written so far; False if nothing changed."""
        if self.pending_since is None and self.searcher.n == len(self.rows):
            return False
        if self.deleted_rows > 1000 and self.deleted_rows > len(self.ids):
            self._compact()
        n = len(self.rows)
        vectors: dict[str, VectorView] = {}
        for path, col in self.vectors.items():
            col.ensure(n)
            vectors[path] = VectorView(col.data[:n], col.norms[:n], col.present[:n].copy())
        nested = {path: col.view() for path, col in self.nested.items()}
        self.searcher = Searcher(self.rows, n, self.live[:n].copy(), vectors, nested)
        self.pending_since = None
        self.last_refresh = time.time()
        return True

    def _compact(self) -> None:
        """Drop dead rows (a merge): new lists and matrices; old searchers keep the old ones."""
        keep = [row for row in range(len(self.rows)) if self.live[row]]
        self.rows = [self.rows[row] for row in keep]
        self.live = np.ones(max(_INITIAL_CAPACITY, len(keep) * 2), dtype=bool)
        self.live[len(keep) :] = False
        self.ids = {record.id: i for i, record in enumerate(self.rows)}
        for path, col in list(self.vectors.items()):
            fresh = VectorColumn(col.dims, max(_INITIAL_CAPACITY, len(keep) * 2))
            index = np.array(keep, dtype=np.int64)
            if len(index):
                valid = index < col.data.shape[0]
                src = index[valid]
                fresh.data[: len(src)] = col.data[src]
                fresh.norms[: len(src)] = col.norms[src]
                fresh.present[: len(src)] = col.present[src]
            self.vectors[path] = fresh
        remap = {old: new for new, old in enumerate(keep)}
        for path, nested in list(self.nested.items()):
            fresh_nested = NestedVectorColumn()
            for row, offsets, vector in zip(nested.rows, nested.offsets, nested.vectors, strict=True):
                if row in remap:
                    fresh_nested.add(remap[row], offsets, vector)
            self.nested[path] = fresh_nested
        self.deleted_rows = 0
        self.generation += 1

    def searcher_for_search(
        self, now: float, interval_s: float, explicit_interval: bool, idle_after_s: float
    ) -> Searcher:
        """The searcher a search sees now, after the refreshes ES would have run by this time.

        ES refreshes every ``refresh_interval`` (virtual ticks since creation here, computed lazily);
        an index left unsearched for ``index.search.idle.after`` (30s) with the default interval
        skips those refreshes, and the next search refreshes it first.
        """
        if self.pending_since is not None:
            refresh = False
            if interval_s > 0:
                ticks = math.floor((now - self.created) / interval_s)
                last_tick = self.created + ticks * interval_s
                refresh = last_tick >= self.pending_since
            if not explicit_interval and now - self.last_search_access >= idle_after_s:
                refresh = True
            if refresh:
                self.refresh()
        self.last_search_access = now
        return self.searcher
