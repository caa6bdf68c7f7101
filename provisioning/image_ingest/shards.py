"""Embeddings as Parquet shards: embed once, load many times (another index, mapping or cluster).

``provision ingest STACK --export DIR`` writes, per job, ``DIR/<job>/part-<n>-<uuid>.parquet`` files;
``--from DIR`` bulk-loads them with no model loaded. One row per image document:

=============  ===============================  ==================================================
column         Arrow type                       what
=============  ===============================  ==================================================
``_id``        string                           the document id: SHA-256 of the file (64 hex digits)
``relative_path`` string                        POSIX path under the job's source folder
``image_name`` string                           file name
``width``      int32                            pixels, as displayed (after EXIF orientation)
``height``     int32                            pixels, as displayed
``exif_date``  string, nullable                 ISO-8601 capture date
``exif_lat``   float64, nullable                degrees
``exif_lon``   float64, nullable                degrees
``vector``     fixed_size_list<float32>[dims]   the embedding, exactly as it is indexed
=============  ===============================  ==================================================

Each file's schema metadata (key ``provision``) is a JSON object saying what the vectors are: the
encoder's name and :class:`~provisioning.embedding.fingerprint.EncoderFingerprint`, ``dims``, the
exporting job, its vector field and static ``fields``, and the format version. ``--from`` reads it
from the footers before any row and refuses shards whose dims or encoder do not fit the index.

Shards are written to a hidden temporary name and renamed, so a shard is either whole or absent: an
export killed midway resumes from the ids already in its shards (``--full`` starts over).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from provisioning.embedding.fingerprint import EncoderFingerprint
from provisioning.image_ingest.decode import ImageFacts
from provisioning.image_ingest.documents import VectorEncoding, build_document, index_action
from provisioning.image_ingest.errors import IngestError
from provisioning.json_types import JsonObject

FORMAT = 1
META_KEY = b"provision"
SUFFIX = ".parquet"
ROWS_PER_SHARD = 8192  # rows of one shard written by the local engine (about 17 MB at 512 dims)
COLUMNS = (
    "_id",
    "relative_path",
    "image_name",
    "width",
    "height",
    "exif_date",
    "exif_lat",
    "exif_lon",
    "vector",
)


class ShardError(IngestError):
    """Shards that cannot be read, or whose vectors do not fit the index (dims, encoder)."""


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - a dependency; guards a broken install
        raise IngestError(
            "Parquet export and --from need pyarrow: pip install 'provisioning[parquet]'"
        ) from exc
    return pyarrow


@dataclass(frozen=True)
class ShardMeta:
    """What a shard's vectors are (its footer's ``provision`` metadata)."""

    encoder: str
    fingerprint: EncoderFingerprint
    dims: int
    job: str
    vector_field: str
    fields: JsonObject = field(default_factory=dict)
    format: int = FORMAT

    def to_json(self) -> JsonObject:
        return {
            "format": self.format,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint.to_json(),
            "dims": self.dims,
            "job": self.job,
            "vector_field": self.vector_field,
            "fields": self.fields,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ShardMeta:
        """Read back :meth:`to_json`; ShardError naming ``where`` when it is not such a document."""
        if not isinstance(data, dict):
            raise ShardError(f"{where}: no provision metadata (not written by `provision ingest --export`)")
        version = data.get("format")
        if version != FORMAT:
            raise ShardError(f"{where}: shard format {version!r}, this version reads format {FORMAT}")
        try:
            fingerprint = EncoderFingerprint.from_json(data.get("fingerprint"))
        except ValueError as exc:
            raise ShardError(f"{where}: {exc}") from exc
        dims, encoder = data.get("dims"), data.get("encoder")
        if not isinstance(dims, int) or dims < 1 or not isinstance(encoder, str):
            raise ShardError(f"{where}: provision metadata without 'dims' and 'encoder'")
        fields = data.get("fields")
        return cls(
            encoder,
            fingerprint,
            dims,
            str(data.get("job", "")),
            str(data.get("vector_field", "")),
            dict(fields) if isinstance(fields, dict) else {},
        )

    def describe(self) -> str:
        return f"encoder {self.encoder}: {self.fingerprint.describe()}, {self.dims} dims"


def schema(meta: ShardMeta) -> Any:
    """The Arrow schema of a shard, its metadata included."""
    pa = _pyarrow()
    return pa.schema(
        [
            ("_id", pa.string()),
            ("relative_path", pa.string()),
            ("image_name", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("exif_date", pa.string()),
            ("exif_lat", pa.float64()),
            ("exif_lon", pa.float64()),
            ("vector", pa.list_(pa.float32(), meta.dims)),
        ],
        metadata={META_KEY: json.dumps(meta.to_json(), sort_keys=True).encode()},
    )


def rows_of(actions: Iterable[Mapping[str, Any]], vector_field: str) -> dict[str, list[Any]]:
    """Columns (as lists) of the bulk index actions built by :func:`index_action`."""
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for action in actions:
        source = action["_source"]
        exif = source.get("exif") or {}
        location = exif.get("location") or {}
        columns["_id"].append(action["_id"])
        columns["relative_path"].append(source["relative_path"])
        columns["image_name"].append(source["image_name"])
        columns["width"].append(source["width"])
        columns["height"].append(source["height"])
        columns["exif_date"].append(exif.get("date"))
        columns["exif_lat"].append(location.get("lat"))
        columns["exif_lon"].append(location.get("lon"))
        columns["vector"].append(np.asarray(source[vector_field], dtype=np.float32))
    return columns


def write_shard(directory: Path, meta: ShardMeta, columns: Mapping[str, Sequence[Any]]) -> Path:
    """Write one shard atomically (hidden temporary file, then rename); its path."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    the_schema = schema(meta)
    vectors = np.stack(list(columns["vector"])).astype(np.float32, copy=False) if columns["vector"] else None
    if vectors is not None and vectors.shape[1] != meta.dims:
        raise ShardError(
            f"export {meta.job}: encoder '{meta.encoder}' made {vectors.shape[1]}-dims vectors, but the "
            f"vector field is mapped with dims {meta.dims}"
        )
    arrays = []
    for name in COLUMNS:
        kind = the_schema.field(name).type
        if name == "vector":
            flat = pa.array(
                np.zeros(0, np.float32) if vectors is None else vectors.reshape(-1), type=pa.float32()
            )
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, meta.dims))
        else:
            arrays.append(pa.array(list(columns[name]), type=kind))
    table = pa.Table.from_arrays(arrays, schema=the_schema)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4().hex}{SUFFIX}"
    temporary = directory / f".{name}.tmp"
    pq.write_table(table, temporary, compression="zstd")
    temporary.replace(directory / name)
    return directory / name


def shard_files(directory: Path) -> list[Path]:
    """The shards in ``directory`` (not hidden, ``*.parquet``), sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))


def read_meta(path: Path) -> ShardMeta:
    """A shard's metadata, from its footer only; ShardError when it is not a readable shard."""
    _pyarrow()
    import pyarrow.parquet as pq

    try:
        found = pq.read_schema(path)
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: not a readable Parquet file ({exc})") from exc
    raw = (found.metadata or {}).get(META_KEY)
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ShardError(f"{path}: unreadable provision metadata ({exc})") from exc
    meta = ShardMeta.from_json(data, str(path))
    vector = found.field("vector").type if "vector" in found.names else None
    if vector is None or getattr(vector, "list_size", None) != meta.dims:
        raise ShardError(f"{path}: its vector column does not hold {meta.dims} float32 values per row")
    missing = [name for name in COLUMNS if name not in found.names]
    if missing:
        raise ShardError(f"{path}: missing columns {', '.join(missing)}")
    return meta


def exported_ids(directory: Path) -> set[str]:
    """The ids already in the shards of ``directory`` (what a resumed export skips)."""
    _pyarrow()
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for path in shard_files(directory):
        ids.update(str(value) for value in pq.read_table(path, columns=["_id"]).column("_id").to_pylist())
    return ids


def _none_if_nan(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def document_actions(
    columns: Mapping[str, Sequence[Any]],
    rows: Iterable[int],
    *,
    index: str,
    vector_field: str,
    static_fields: Mapping[str, Any],
    vector_encoding: VectorEncoding = "array",
) -> Iterator[dict[str, Any]]:
    """Bulk index actions for ``rows`` of shard-shaped ``columns`` (this module's column names), built
    by :func:`build_document` exactly as ingest builds them (vectors encoded as the sink takes them);
    the loading job's static fields apply."""
    for row in rows:
        date = columns["exif_date"][row]
        lat, lon = _none_if_nan(columns["exif_lat"][row]), _none_if_nan(columns["exif_lon"][row])
        facts = ImageFacts(
            int(columns["width"][row]),
            int(columns["height"][row]),
            str(date) if date else None,
            (lat, lon) if lat is not None and lon is not None else None,
        )
        doc_id = str(columns["_id"][row])
        document = build_document(
            doc_id=doc_id,
            relative_path=str(columns["relative_path"][row]),
            facts=facts,
            vector=np.asarray(columns["vector"][row], dtype=np.float32),
            vector_field=vector_field,
            static_fields=static_fields,
            vector_encoding=vector_encoding,
        )
        yield index_action(index, doc_id, document)


def read_batches(path: Path, rows: int) -> Iterator[dict[str, list[Any]]]:
    """A shard's rows, ``rows`` at a time, as columns (vectors as float32 arrays); ShardError when a
    vector is not finite (Elasticsearch would refuse it)."""
    _pyarrow()
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        for batch in handle.iter_batches(batch_size=rows, columns=list(COLUMNS)):
            columns: dict[str, list[Any]] = {
                name: batch.column(name).to_pylist() for name in COLUMNS if name != "vector"
            }
            vector = batch.column("vector")
            flat = vector.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            matrix = flat.reshape(len(batch), vector.type.list_size)
            if not np.isfinite(matrix).all():
                raise ShardError(f"{path}: holds vectors with NaN or infinite values")
            columns["vector"] = list(matrix)
            yield columns
