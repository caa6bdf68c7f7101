"""Stack files and indices for ingest runs on generated corpora (benchmark and tests).

The mapping is the production one (``mappings/image-embeddings.yaml``: strict, every field ingest
writes) with the vector size of the model at hand.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import ApiError, Elasticsearch, TransportError


def image_index_body(dims: int, vector_field: str = "image_embedding") -> dict[str, Any]:
    """Settings and mappings of an image-embeddings index whose vectors have ``dims`` dimensions."""
    return {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "image_id": {"type": "keyword"},
                "image_name": {"type": "keyword"},
                "relative_path": {"type": "keyword"},
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "collection": {"type": "keyword"},
                "exif": {"properties": {"date": {"type": "date"}, "location": {"type": "geo_point"}}},
                vector_field: {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"},
            },
        },
    }


def create_index(client: Elasticsearch, index: str, dims: int, *, attempts: int = 10) -> None:
    """Create the index, retrying 429/503 answers (the fault-injecting sandbox gives some)."""
    body = image_index_body(dims)
    for attempt in range(attempts):
        try:
            client.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
            return
        except ApiError as exc:
            if exc.status_code == 400 and "already_exists" in str(exc.body):
                return
            if exc.status_code not in (429, 502, 503, 504) or attempt == attempts - 1:
                raise
        except TransportError:
            if attempt == attempts - 1:
                raise
        time.sleep(0.05 * 2**attempt)


def write_stack(
    path: Path,
    *,
    photos: Path,
    model: Path,
    index: str,
    dims: int,
    batch_size: int = 32,
    url: str = "http://localhost:9200",
    jobs: dict[str, dict[str, Any]] | None = None,
    encoder: dict[str, Any] | None = None,
    **job: Any,
) -> Path:
    """A stack file with one encoder (``clip``, with ``encoder``'s extra settings such as runtime and
    precision), the index, and one ingest job (``photos``) or ``jobs``."""
    photos_job: dict[str, Any] = {"index": index, "source": {"path": str(photos)}, "encoder": "clip"}
    photos_job.update(job)
    body = image_index_body(dims)
    stack = {
        "name": "ingest-test",
        "cluster": {"url": url},
        "encoders": {
            "clip": {
                "source": {"path": str(model)},
                "batch_size": batch_size,
                "device": "cpu",
                **(encoder or {}),
            }
        },
        "indices": {index: {"settings": body["settings"], "mappings": body["mappings"]}},
        "ingest": jobs if jobs is not None else {"photos": photos_job},
    }
    path.write_text(yaml.safe_dump(stack, sort_keys=False), encoding="utf-8")
    return path
