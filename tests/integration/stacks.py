"""Building small stack files for integration tests, each with its own names so tests can share a cluster."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import yaml

from provisioning.cluster import Cluster, ConnectionOptions
from provisioning.spec import Stack, load_stack


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
