"""The Ray engine's stages: what runs on Ray workers, one function or actor class per stage.

Every stage takes and returns a batch in Ray Data's ``numpy`` format (a dict of equal-length
columns) and passes through the rows it does not work on, so that every scanned file comes back to
the driver with its outcome. A row's ``state`` says where it is:

``new``        identified, not in the sink: to decode (ingest) -- or, for ``--from``, to write
``existing``   its id is in the sink already (skipped before decoding)
``duplicate``  another file of this run has the same content (the first in scan order is kept)
``failed``     unreadable or not an image: ``stage``, ``kind`` and ``reason`` say why
``prepared``   decoded and prepared: ``pixels`` holds the (3, H, W) float32 model input
``ready``      embedded (or loaded from a shard): ``vector`` holds it
``indexed``    acknowledged by the sink
``refused``    refused by the sink: ``stage`` ``index``, Elasticsearch's error type and reason

Columns (:data:`BASE`): ``relative_path``, ``_id``, ``size``/``mtime_ns`` (when hashed, to notice a
file that changes before it is decoded), ``state``, ``stage``/``kind``/``reason``, the document facts
(``width``, ``height``, ``exif_date`` ('' when none), ``exif_lat``/``exif_lon`` (NaN when none)),
``status`` (the sink's answer), ``encoder_batches`` (forward passes run for the batch) and
``encoder_load`` (JSON of the actor's :class:`~.report.EncoderLoad`, on its first batch only);
plus ``pixels`` between decoding and encoding and ``vector`` (n, dims) between encoding and writing.

Hashing, decoding, documents and bulk writes are the local engine's own functions
(:func:`.job.hash_file`, :func:`.job.decode_file`, :func:`.shards.document_actions`, the sink).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from provisioning.embedding.errors import EncoderError
from provisioning.embedding.preprocessing import ImagePreprocessing, Prepared
from provisioning.image_ingest import shards
from provisioning.image_ingest.job import _Identified, _Ready, decode_file, hash_file
from provisioning.image_ingest.outcomes import index_failure
from provisioning.image_ingest.report import FileFailure
from provisioning.image_ingest.scan import SourceFile
from provisioning.image_ingest.sinks import Sink
from provisioning.image_ingest.streams import SeenIds

if TYPE_CHECKING:
    from provisioning.embedding.encoders import Encoder
    from provisioning.stackfile.schema import EncoderSpec
    from provisioning.stackfile.stack import Stack

Batch = dict[str, Any]  # column name -> numpy array (Ray Data's "numpy" batch format)
Rows = dict[str, list[Any]]  # the same, as Python lists while a stage works on it
MGET_IDS = 1000  # ids per _mget when checking which files the sink holds

# Every column a row carries from identification to the driver, with its empty value.
BASE: dict[str, Any] = {
    "relative_path": "",
    "_id": "",
    "size": -1,
    "mtime_ns": -1,
    "state": "new",
    "stage": "",
    "kind": "",
    "reason": "",
    "width": 0,
    "height": 0,
    "exif_date": "",
    "exif_lat": math.nan,
    "exif_lon": math.nan,
    "status": 0,
    "encoder_batches": 0,
    "encoder_load": "",
}
_DTYPES = {"size": np.int64, "mtime_ns": np.int64, "width": np.int32, "height": np.int32, "status": np.int32}
_FLOATS = {"exif_lat", "exif_lon"}


def rows_of(batch: Mapping[str, Any]) -> Rows:
    """A batch as lists (missing base columns filled with their empty value)."""
    n = len(next(iter(batch.values()))) if batch else 0
    rows: Rows = {name: list(batch[name]) if name in batch else [empty] * n for name, empty in BASE.items()}
    for name in ("pixels", "vector"):
        if name in batch:
            rows[name] = list(batch[name])
    return rows


def batch_of(rows: Rows, *, extra: Sequence[str] = ()) -> Batch:
    """Lists back to numpy columns: the base columns and those named in ``extra``."""
    out: Batch = {}
    for name in BASE:
        values = rows[name]
        if name in _DTYPES:
            out[name] = np.asarray(values, dtype=_DTYPES[name])
        elif name in _FLOATS:
            out[name] = np.asarray(values, dtype=np.float64)
        else:
            out[name] = np.asarray([str(v) for v in values], dtype=object)
    for name in extra:
        if name == "vector":
            out[name] = np.stack(rows[name]).astype(np.float32, copy=False)
        else:
            out[name] = np.asarray(rows[name], dtype=object)
    return out


def _fail(rows: Rows, i: int, failure: FileFailure) -> None:
    rows["state"][i] = "failed"
    rows["stage"][i], rows["kind"][i], rows["reason"][i] = failure.stage, failure.kind, failure.reason


# -- identify (tasks) -----------------------------------------------------------------------------


def identify(batch: Batch, *, root: str, sink: Sink, full: bool) -> Batch:
    """Hash each listed file and ask the sink which ids it holds: ``new``, ``existing`` or ``failed``."""
    rows = rows_of(batch)
    base = Path(root)
    for i, relative in enumerate(rows["relative_path"]):
        found = hash_file(SourceFile(base.joinpath(*str(relative).split("/")), str(relative)))
        if isinstance(found, FileFailure):
            _fail(rows, i, found)
        else:
            rows["_id"][i], rows["size"][i], rows["mtime_ns"][i] = found.id, found.size, found.mtime_ns
    mark_existing(rows, sink, full=full)
    return batch_of(rows)


def mark_existing(rows: Rows, sink: Sink, *, full: bool) -> None:
    """Rows whose id the sink holds become ``existing`` (none with ``full``)."""
    if full:
        return
    candidates = sorted(
        {
            doc_id
            for doc_id, state in zip(rows["_id"], rows["state"], strict=True)
            if state in ("new", "ready")
        }
    )
    existing: set[str] = set()
    for start in range(0, len(candidates), MGET_IDS):  # a bounded request however large the block
        existing |= sink.existing_ids(candidates[start : start + MGET_IDS])
    for i, doc_id in enumerate(rows["_id"]):
        if rows["state"][i] in ("new", "ready") and doc_id in existing:
            rows["state"][i] = "existing"


def from_shard(batch: Batch, *, sink: Sink, full: bool) -> Batch:
    """Rows read from Parquet shards (``--from``): ``ready`` with their vector, or ``existing``."""
    n = len(batch["_id"])
    rows = rows_of({name: batch[name] for name in BASE if name in batch})
    rows["state"] = ["ready"] * n
    rows["exif_date"] = [value or "" for value in rows["exif_date"]]
    for name in _FLOATS:
        rows[name] = [math.nan if value is None else value for value in rows[name]]
    rows["vector"] = list(np.stack([np.asarray(v, dtype=np.float32) for v in batch["vector"]]))
    if rows["vector"] and not np.isfinite(np.stack(rows["vector"])).all():
        raise shards.ShardError("a shard holds vectors with NaN or infinite values")
    mark_existing(rows, sink, full=full)
    return batch_of(rows, extra=["vector"])


# -- dedup (one actor, rows in scan order) ------------------------------------------------------


class Dedup:
    """The first row with an id keeps it; later ones become ``duplicate``. One actor sees every row,
    in order (the dataset preserves order), so the kept file is the first in scan order, as locally."""

    def __init__(self, window: int | None) -> None:
        self.seen = SeenIds(window)

    def __call__(self, batch: Batch) -> Batch:
        states = np.asarray(batch["state"], dtype=object).copy()
        for i, doc_id in enumerate(batch["_id"]):
            if states[i] not in ("new", "ready", "existing"):
                continue
            if doc_id in self.seen:
                states[i] = "duplicate"
            else:
                self.seen.add(str(doc_id))
        out = dict(batch)
        out["state"] = states
        return out


# -- decode (tasks) -------------------------------------------------------------------------------


def same_preprocessing(left: ImagePreprocessing, right: ImagePreprocessing) -> bool:
    """Whether two preprocessings prepare every image alike."""
    arrays = [(left.mean, right.mean), (left.std, right.std)]
    return (
        (left.shortest_edge, left.resize_to, left.crop, left.resample, left.rescale_factor)
        == (right.shortest_edge, right.resize_to, right.crop, right.resample, right.rescale_factor)
    ) and all(
        (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
        for a, b in arrays
    )


def encoder_preparation(name: str, spec: EncoderSpec, base_dir: Path) -> Preparation:
    """The image preprocessing of the encoder declared by ``spec``, read from its model directory
    (``preprocessor_config.json``) without loading the model, as converted encoders read it; each
    encoder actor checks it against its loaded encoder's. Raises EncoderError."""
    from provisioning.embedding import loading
    from provisioning.embedding.hub import hub_repo_id

    if spec.source.path is not None:
        directory = Path(spec.source.path).expanduser()
        directory = directory if directory.is_absolute() else base_dir / directory
        if not directory.is_dir():
            raise EncoderError(f"encoder '{name}': model directory not found: {directory}")
    else:
        assert spec.source.hub is not None
        directory = loading.hub_directory(name, hub_repo_id(spec.source.hub), spec.source.revision, 3.0)
    return Preparation(*loading.image_preprocessing(name, directory))


@dataclass(frozen=True)
class Preparation:
    """The encoder's image preprocessing, read on the driver without the model (what
    :meth:`Encoder.prepare` and :attr:`Encoder.input_size` do, for decode tasks)."""

    preprocessing: ImagePreprocessing | None
    processor: Any = None

    @property
    def input_size(self) -> int | None:
        if self.preprocessing is not None:
            return self.preprocessing.input_size
        size = dict(getattr(self.processor, "size", None) or {})
        values = [int(v) for v in size.values() if isinstance(v, int)]
        return max(values) if values else None

    def __call__(self, image: Image.Image) -> Prepared:
        if self.preprocessing is not None:
            return self.preprocessing(image)
        pixels = self.processor(images=image, return_tensors="np")["pixel_values"][0]
        return np.ascontiguousarray(pixels, dtype=np.float32)


def decode(batch: Batch, *, root: str, preparation: Preparation) -> Batch:
    """Decode and prepare the ``new`` rows (the local engine's :func:`.job.decode_file`)."""
    rows = rows_of(batch)
    base = Path(root)
    pixels: list[bytes] = [b""] * len(rows["state"])
    shapes: list[str] = [""] * len(rows["state"])
    for i, state in enumerate(rows["state"]):
        if state != "new":
            continue
        relative = str(rows["relative_path"][i])
        item = _Identified(
            SourceFile(base.joinpath(*relative.split("/")), relative),
            str(rows["_id"][i]),
            int(rows["size"][i]),
            int(rows["mtime_ns"][i]),
        )
        result = decode_file(item, preparation.input_size, preparation)
        if isinstance(result, FileFailure):
            _fail(rows, i, result)
            continue
        _store(rows, i, result)
        pixels[i] = result.prepared.tobytes()
        shapes[i] = ",".join(str(n) for n in result.prepared.shape)
    rows["pixels"] = pixels
    rows["shape"] = shapes
    return batch_of(rows, extra=["pixels", "shape"])


def _store(rows: Rows, i: int, ready: _Ready) -> None:
    facts = ready.facts
    rows["state"][i] = "prepared"
    rows["_id"][i] = ready.id
    rows["width"][i], rows["height"][i] = facts.width, facts.height
    rows["exif_date"][i] = facts.date or ""
    if facts.location is not None:
        rows["exif_lat"][i], rows["exif_lon"][i] = facts.location


# -- encode (actor pool) --------------------------------------------------------------------------


class EncodeActor:
    """Loads the encoder once (``threads`` forward-pass threads unless the encoder sets its own) and
    embeds the ``prepared`` rows of each batch; refuses to run an encoder whose vectors differ from
    what the driver recorded, or whose preprocessing differs from the decode tasks'."""

    def __init__(
        self,
        stack: Stack,
        name: str,
        batch_size: int,
        threads: int,
        vectors_id: str,
        preparation: Preparation,
    ) -> None:
        from provisioning.embedding.loading import load_stack_encoder
        from provisioning.image_ingest.run import encoder_load

        started = time.perf_counter()
        self.encoder: Encoder = load_stack_encoder(stack, name, batch_size=batch_size, threads=threads)
        fingerprint = self.encoder.fingerprint
        if fingerprint is not None and fingerprint.vectors_id != vectors_id:
            raise EncoderError(
                f"encoder '{name}' on a Ray worker makes vectors {fingerprint.vectors_id}, but the driver "
                f"recorded {vectors_id}: every node must see the same model files"
            )
        mine = self.encoder.preprocessing
        theirs = preparation.preprocessing
        if mine is not None and theirs is not None and not same_preprocessing(mine, theirs):
            raise EncoderError(
                f"encoder '{name}': the model's image processor differs from its preprocessor_config.json, "
                "which the Ray engine's decode tasks use; run this encoder with engine: local"
            )
        self.batch_size = batch_size
        self.load = json.dumps(encoder_load(self.encoder, time.perf_counter() - started).to_dict())

    def __call__(self, batch: Batch) -> Batch:
        rows = rows_of(batch)
        todo = [i for i, state in enumerate(rows["state"]) if state == "prepared"]
        dims = self.encoder.dims or 0
        vectors = np.zeros((len(rows["state"]), dims), dtype=np.float32)
        if todo:
            prepared = [
                np.frombuffer(batch["pixels"][i], dtype=np.float32).reshape(
                    [int(n) for n in str(batch["shape"][i]).split(",")]
                )
                for i in todo
            ]
            before = self.encoder.batches_encoded
            embedded = self.encoder.encode_prepared(prepared, self.batch_size)
            if embedded.shape[1] != dims:
                vectors = np.zeros((len(rows["state"]), embedded.shape[1]), dtype=np.float32)
            vectors[todo] = embedded
            for i in todo:
                rows["state"][i] = "ready"
            rows["encoder_batches"][0] = self.encoder.batches_encoded - before
        if self.load and rows["state"]:
            rows["encoder_load"][0], self.load = self.load, ""
        rows["vector"] = list(vectors)
        return batch_of(rows, extra=["vector"])


# -- write (actor pool) ---------------------------------------------------------------------------


class Writer:
    """Writes the ``ready`` rows of each batch to the sink (documents built as the local engine
    builds them) and records each document's outcome; the vectors stay behind."""

    def __init__(self, sink: Sink, index: str, vector_field: str, static_fields: Mapping[str, Any]) -> None:
        self.sink = sink
        self.index = index
        self.vector_field = vector_field
        self.static_fields = dict(static_fields)

    def __call__(self, batch: Batch) -> Batch:
        rows = rows_of(batch)
        todo = [i for i, state in enumerate(rows["state"]) if state == "ready"]
        if todo:
            columns = {name: rows[name] for name in ("_id", "relative_path", "width", "height")}
            columns["exif_date"] = rows["exif_date"]
            columns["exif_lat"], columns["exif_lon"] = rows["exif_lat"], rows["exif_lon"]
            columns["vector"] = rows["vector"]
            actions = shards.document_actions(
                columns,
                todo,
                index=self.index,
                vector_field=self.vector_field,
                static_fields=self.static_fields,
                vector_encoding=self.sink.vector_encoding,
            )
            where = {str(rows["_id"][i]): i for i in todo}
            for result in self.sink.write(actions):
                i = where[result.id]
                rows["status"][i] = result.status
                if result.ok:
                    rows["state"][i] = "indexed"
                else:
                    failure = index_failure(str(rows["relative_path"][i]), result)
                    rows["state"][i] = "refused"
                    rows["stage"][i], rows["kind"][i], rows["reason"][i] = (
                        "index",
                        failure.kind,
                        failure.reason,
                    )
        return batch_of(rows)
