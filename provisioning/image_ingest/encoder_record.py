"""Which encoder filled a vector field: recorded in the index, checked before every ingest.

Vectors from two encoders (another model, runtime or precision) are not comparable: a kNN query
embedded by one ranks the other's documents by accident. So ingest writes, per vector field, the
encoder's :class:`~provisioning.embedding.fingerprint.EncoderFingerprint` into the index mapping's
``_meta`` (``_meta.provision_encoders.<field>``; the mapping stays as strict as the stack declares
it, and no document grows a field), and an incremental ingest whose encoder has another
``vectors_id`` refuses before it embeds anything, naming both and the way out: ``--full``
re-embeds every file of the job with the new encoder.

A ``--full`` run that replaces one encoder with another marks the record ``replacing`` (the old
``vectors_id``) before it writes, and clears the mark only when every job that writes to that field
has finished without an index failure; an incremental run that finds the mark refuses too, since
the index still holds vectors of both. Documents of files no longer on disk keep their old vectors
unless the job prunes them (``--prune``).

An index that holds documents but no record (written before records existed) is taken to hold the
current encoder's vectors and gets a record; ``status`` shows each index's recorded encoders.

Elasticsearch replaces ``_meta`` as a whole on ``PUT _mapping``, so writes read the current
``_meta`` first and keep every other key (the stack's ownership marks above all).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from elasticsearch import Elasticsearch, NotFoundError

from provisioning.changes import ENCODERS_META
from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.image_ingest import bulk
from provisioning.image_ingest.errors import IngestError
from provisioning.json_types import JsonObject, JsonValue, as_object, to_json_object
from provisioning.stackfile.schema import BulkSpec

META_KEY = ENCODERS_META


class EncoderMismatchError(IngestError):
    """An incremental ingest whose encoder differs from the one that filled the vector field."""


@dataclass(frozen=True)
class EncoderRecord:
    """What filled one vector field: the stack's encoder name and fingerprint; ``replacing`` is the
    ``vectors_id`` a ``--full`` run is replacing, while it has not finished."""

    encoder: str
    fingerprint: EncoderFingerprint
    replacing: str | None = None

    def describe(self) -> str:
        """``clip-image: onnx int8 of sha256:1a2b3c4d5e6f (vectors 0123456789abcdef)``."""
        return f"{self.encoder}: {self.fingerprint.describe()}"

    def to_json(self) -> JsonObject:
        return {
            "encoder": self.encoder,
            "fingerprint": self.fingerprint.to_json(),
            "replacing": self.replacing,
        }

    @classmethod
    def from_json(cls, data: JsonValue) -> EncoderRecord:
        """The record :meth:`to_json` wrote; ValueError when it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("encoder"), str):
            raise ValueError("an encoder record is an object with 'encoder' and 'fingerprint'")
        replacing = data.get("replacing")
        return cls(
            str(data["encoder"]),
            EncoderFingerprint.from_json(data.get("fingerprint")),
            replacing if isinstance(replacing, str) else None,
        )


def records_in(meta: JsonValue) -> dict[str, EncoderRecord | str]:
    """The records in a mapping ``_meta`` by vector field; an unreadable one is its error text."""
    out: dict[str, EncoderRecord | str] = {}
    for field, value in as_object(as_object(meta).get(META_KEY)).items():
        try:
            out[field] = EncoderRecord.from_json(value)
        except ValueError as exc:
            out[field] = str(exc)
    return out


@dataclass
class IndexMeta:
    """An index's mapping ``_meta`` per concrete index (an alias may name several); empty when the
    index does not exist yet."""

    metas: dict[str, JsonObject]

    @property
    def exists(self) -> bool:
        return bool(self.metas)

    def record(self, field: str) -> EncoderRecord | str | None:
        """The record of ``field`` (the first concrete index's that has one), or None."""
        for meta in self.metas.values():
            found = records_in(meta).get(field)
            if found is not None:
                return found
        return None


def read_meta(client: Elasticsearch, index: str, spec: BulkSpec) -> IndexMeta:
    """The mapping ``_meta`` of ``index`` (one request; none when the index does not exist)."""
    try:
        answer = bulk.with_retries(
            lambda: client.indices.get_mapping(index=index, filter_path="*.mappings._meta"),
            spec,
            f"cannot read the mapping of index '{index}'",
        )
    except IngestError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return IndexMeta({})
        raise
    body = to_json_object(answer.body or {})
    return IndexMeta(
        {name: as_object(as_object(item.get("mappings")).get("_meta")) for name, item in _items(body)}
    )


def _items(body: JsonObject) -> list[tuple[str, JsonObject]]:
    return [(name, as_object(item)) for name, item in body.items()]


def write_record(
    client: Elasticsearch,
    index: str,
    field: str,
    record: EncoderRecord,
    spec: BulkSpec,
    current: IndexMeta | None = None,
) -> None:
    """Set ``_meta.provision_encoders.<field>`` on every concrete index behind ``index``, keeping every
    other ``_meta`` key (read unless ``current`` is what was just read, merge, ``PUT _mapping``)."""
    if current is None:
        current = read_meta(client, index, spec)
    targets = current.metas or {index: {}}
    for name, meta in targets.items():
        merged: JsonObject = dict(meta)
        records = dict(as_object(merged.get(META_KEY)))
        records[field] = record.to_json()
        merged[META_KEY] = records
        put = functools.partial(client.indices.put_mapping, index=name, meta=merged)
        bulk.with_retries(put, spec, f"cannot record the encoder of field '{field}' in index '{name}'")


@dataclass(frozen=True)
class Decision:
    """What a job does about the record before it writes: ``write`` a new record (now, or after the
    first document when the index does not exist yet), and ``note`` what the report should say."""

    write: EncoderRecord | None
    note: str | None = None
    replacing: bool = False  # a --full run that replaces another encoder's vectors


def decide(
    job: str,
    index: str,
    field: str,
    encoder: str,
    fingerprint: EncoderFingerprint,
    recorded: EncoderRecord | str | None,
    *,
    full: bool,
    has_documents: bool,
) -> Decision:
    """Whether job ``job`` may write ``encoder``'s vectors into ``index``'s ``field``; raises
    EncoderMismatchError (with both encoders and the way out) when it may not."""
    ours = EncoderRecord(encoder, fingerprint)
    where = f"index '{index}' field '{field}'"
    way_out = (
        f"run `provision ingest STACK {job} --full` to re-embed every image with the stack's encoder "
        "(add --prune to drop documents of files that are gone), or set the encoder back to what the "
        "index holds"
    )
    if isinstance(recorded, str):
        if not full:
            raise EncoderMismatchError(
                f"ingest {job}: {where} records an unreadable encoder ({recorded}); {way_out}"
            )
        return Decision(
            EncoderRecord(encoder, fingerprint, replacing="unknown"), "replacing an unreadable record", True
        )
    if recorded is None:
        note = (
            "recorded the encoder of documents written before encoders were recorded"
            if has_documents
            else None
        )
        return Decision(ours, note)
    same = recorded.fingerprint.vectors_id == fingerprint.vectors_id
    if same and recorded.replacing is None:
        if recorded.encoder != encoder or recorded.fingerprint != fingerprint:
            return Decision(ours)  # renamed encoder or newer libraries: same vectors, fresher record
        return Decision(None)
    if same:  # an earlier --full with this encoder did not finish
        if full:
            return Decision(None, f"finishing the replacement of vectors {recorded.replacing}", True)
        raise EncoderMismatchError(
            f"ingest {job}: a `--full` re-embed of {where} with {recorded.describe()} did not finish, so the "
            f"index still holds vectors of the encoder it replaces ({recorded.replacing}); run "
            f"`provision ingest STACK {job} --full` again"
        )
    if not full:
        raise EncoderMismatchError(
            f"ingest {job}: {where} holds vectors from encoder {recorded.describe()}, but the stack's "
            f"encoder is {ours.describe()}; vectors of two encoders must not share an index; {way_out}"
        )
    replacing = recorded.replacing or recorded.fingerprint.vectors_id
    return Decision(
        EncoderRecord(encoder, fingerprint, replacing=replacing),
        f"replacing vectors of {recorded.describe()}",
        True,
    )


class EncoderGuard:
    """The encoder record of one job's vector field, around the job's writes.

    :meth:`check` reads the record before anything is embedded (refusing a mix, see :func:`decide`) and
    writes ours at once when the index exists; for an index the job's first document creates,
    :meth:`written` writes it once that document is acknowledged. Both engines and ``--from`` use it.
    """

    def __init__(
        self,
        client: Elasticsearch,
        job: str,
        index: str,
        field: str,
        spec: BulkSpec,
        encoder: str,
        fingerprint: EncoderFingerprint,
        *,
        full: bool,
    ) -> None:
        self.client = client
        self.job = job
        self.index = index
        self.field = field
        self.spec = spec
        self.encoder = encoder
        self.fingerprint = fingerprint
        self.full = full
        self._later: EncoderRecord | None = None

    def check(self) -> Decision:
        """The decision for this run; raises EncoderMismatchError when the field holds another encoder's
        vectors (or an unfinished replacement) and the run is not ``full``."""
        meta = read_meta(self.client, self.index, self.spec)
        decision = decide(
            self.job,
            self.index,
            self.field,
            self.encoder,
            self.fingerprint,
            meta.record(self.field),
            full=self.full,
            has_documents=meta.exists,
        )
        if decision.write is not None:
            if meta.exists:
                write_record(self.client, self.index, self.field, decision.write, self.spec, meta)
            else:
                self._later = decision.write
        return decision

    def written(self) -> None:
        """A document was acknowledged: record the encoder of an index that did not exist before."""
        if self._later is not None:
            record, self._later = self._later, None
            write_record(self.client, self.index, self.field, record, self.spec)
