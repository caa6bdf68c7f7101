"""``query_vector_builder.lookup`` (Elasticsearch 9.4): the query vector of a stored document.

As LookupQueryVectorBuilder does it: the document is looked up by id in the named index (with its
routing, if given) and the vector read from the field ``path`` as doc values, so a vector left out
of ``_source`` (``index.mapping.exclude_source_vectors``) is still found. A missing document or
field is a 404 ``status_exception`` with ES's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.metadata import indices_part
from es_sandbox.state import SandboxState
from es_sandbox.util import get_path


def lookup_vector(state: SandboxState, spec: Mapping[str, Any]) -> np.ndarray:
    doc_id, index_name, path = str(spec["id"]), str(spec["index"]), str(spec["path"])
    missing = ApiError(
        404,
        "status_exception",
        f"Document with id [{doc_id}] not found in index [{index_name}] for lookup query vector builder.",
    )
    with state.lock:
        try:
            indices = indices_part(state).resolve(index_name, allow_no_indices=False)
        except ApiError as exc:
            raise missing from exc
        for index in indices:
            record = index.store.get(doc_id)
            if record is None:
                continue
            source = index.store.source_with_vectors(record)
            values = get_path(source, path)
            leaf = index.compiled.fields.get(path)
            if not values or leaf is None or leaf.type != "dense_vector":
                raise ApiError(
                    404,
                    "status_exception",
                    f"Field [{path}] not found in document with id [{doc_id}] for lookup query vector builder.",
                )
            return np.asarray([float(v) for v in values], dtype=np.float64)
    raise missing
