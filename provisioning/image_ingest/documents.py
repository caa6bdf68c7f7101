"""The document an image becomes, and the bulk action that writes it.

``_id`` is the SHA-256 of the file's bytes: a rerun writes the same ids (idempotent), a file copied
under two names is one document, and "is this file indexed already?" is a lookup by id that needs no
decoding. ``image_id`` repeats it as a field so that queries and aggregations can use it, and prune
recognises the documents this tool wrote by ``image_id == _id``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from provisioning.image_ingest.decode import ImageFacts
from provisioning.image_ingest.errors import IngestError

VectorEncoding = Literal["array", "base64"]

# Fields every document gets; a job's static ``fields`` may not redefine them.
RESERVED_FIELDS = ("image_id", "image_name", "relative_path", "width", "height", "exif")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_content_id(value: object) -> bool:
    """Whether ``value`` looks like an id this tool writes (64 lowercase hex digits)."""
    return isinstance(value, str) and _SHA256.match(value) is not None


def check_static_fields(job: str, fields: Mapping[str, Any], vector_field: str) -> None:
    """Refuse static fields that would overwrite what ingest writes (a silent clash otherwise)."""
    reserved = {*RESERVED_FIELDS, vector_field, vector_field.split(".", 1)[0]}
    clashes = sorted(key for key in fields if key in reserved or key.split(".", 1)[0] in reserved)
    if clashes:
        raise IngestError(
            f"ingest.{job}.fields sets {', '.join(clashes)}, which ingest writes itself "
            f"({', '.join(RESERVED_FIELDS)} and the vector field '{vector_field}'); rename them"
        )


def build_document(
    *,
    doc_id: str,
    relative_path: str,
    facts: ImageFacts,
    vector: np.ndarray[Any, np.dtype[np.float32]],
    vector_field: str,
    static_fields: Mapping[str, Any],
    vector_encoding: VectorEncoding = "array",
) -> dict[str, Any]:
    """The ``_source`` of one image's document; the vector as a JSON array of floats, or (``base64``,
    Elasticsearch 9.3+) as the base64 string of its float32 values in big-endian order, about a
    third of the bytes."""
    document: dict[str, Any] = dict(static_fields)
    document["image_id"] = doc_id
    document["image_name"] = relative_path.rsplit("/", 1)[-1]
    document["relative_path"] = relative_path
    document["width"] = facts.width
    document["height"] = facts.height
    exif: dict[str, Any] = {}
    if facts.date is not None:
        exif["date"] = facts.date
    if facts.location is not None:
        exif["location"] = {"lat": facts.location[0], "lon": facts.location[1]}
    if exif:
        document["exif"] = exif
    document[vector_field] = encode_vector(vector, vector_encoding)
    return document


def encode_vector(
    vector: np.ndarray[Any, np.dtype[np.float32]], encoding: VectorEncoding
) -> list[float] | str:
    """A vector as a bulk request carries it: a float array, or base64 of big-endian float32 bytes
    (the encoding Elasticsearch 9.3 accepts for ``dense_vector`` values, elastic/elasticsearch#137072)."""
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype=">f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


def encoded_size(document: Mapping[str, Any]) -> int:
    """Bytes of ``document`` as JSON in a bulk body (compact separators, as the client sends it)."""
    return len(json.dumps(document, separators=(",", ":")).encode())


def index_action(index: str, doc_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """A bulk ``index`` action (create or overwrite: a rerun with ``--full`` replaces the document)."""
    return {"_op_type": "index", "_index": index, "_id": doc_id, "_source": document}


def delete_action(index: str, doc_id: str) -> dict[str, Any]:
    return {"_op_type": "delete", "_index": index, "_id": doc_id}
