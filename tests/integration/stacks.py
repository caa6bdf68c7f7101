"""Building small stack files for integration tests, each with its own names so tests can share a cluster."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import yaml

from provisioning.cluster import Cluster, ConnectionOptions
from provisioning.stackfile import Stack, load_stack

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def resources_stack(name: str) -> dict[str, Any]:
    """Every non-ML resource kind, wired the way a real stack wires them."""
    return {
        "name": name,
        "component_templates": {
            f"{name}-settings": {"template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}},
        },
        "index_templates": {
            f"{name}-images": {
                "index_patterns": [f"{name}-images*"],
                "priority": 300,
                "composed_of": [f"{name}-settings"],
                "template": {
                    "settings": {"index": {"refresh_interval": "1s"}},
                    "mappings": {
                        "dynamic": "strict",
                        "properties": {
                            "image_name": {"type": "keyword", "ignore_above": 256},
                            "caption": {"type": "text"},
                            "vec": {"type": "dense_vector", "dims": 4, "similarity": "cosine"},
                        },
                    },
                },
            }
        },
        "pipelines": {
            f"{name}-tag": {
                "description": "tag documents",
                "processors": [{"set": {"field": "source", "value": "provision"}}],
            }
        },
        "indices": {f"{name}-images": {"aliases": {f"{name}-current": {}}}},
    }


def write_stack(directory: Path, body: dict[str, Any], filename: str = "stack.yaml") -> Path:
    path = directory / filename
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def load(directory: Path, body: dict[str, Any]) -> Stack:
    return load_stack(write_stack(directory, copy.deepcopy(body)), {})


def connect(url: str) -> Cluster:
    return Cluster.connect(ConnectionOptions(url=url, max_retries=0))


def absolute_stack(directory: Path, **model_source: str) -> Path:
    """The quickstart stack with every path made absolute, so it can live outside the repository."""
    body: dict[str, Any] = yaml.safe_load((QUICKSTART / "stack.yaml").read_text())
    for spec in list(body["models"].values()) + list(body["encoders"].values()):
        spec["source"]["path"] = str((QUICKSTART / spec["source"]["path"]).resolve())
    if model_source:
        body["models"]["clip-text"]["source"] = model_source
    body["index_templates"]["quickstart-images"]["template"]["file"] = str(
        QUICKSTART / "mappings" / "images.yaml"
    )
    body["pipelines"]["caption-embedding"]["file"] = str(QUICKSTART / "pipelines" / "caption-embedding.yaml")
    body["ingest"]["samples"]["source"]["path"] = str(QUICKSTART / "samples")
    body["smoke_tests"]["example-image"]["image"] = str(QUICKSTART / "queries" / "red-circle.jpg")
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return path
