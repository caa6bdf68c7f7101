"""Helpers shared by the sandbox's integration tests (which also run against a real cluster)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from elasticsearch import Elasticsearch

VENDOR_9 = "application/vnd.elasticsearch+json; compatible-with=9"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def index_name(es: Elasticsearch) -> Iterator[str]:
    """A fresh index name; the index (if created) is deleted afterwards."""
    name = unique("sbx")
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


class Raw:
    """Plain HTTP against the target, to check the wire itself (headers, bodies, statuses)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = urllib3.PoolManager()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        data: bytes | None
        sent = {"Accept": "application/json", **(headers or {})}
        if body is None:
            data = None
        elif isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
            sent.setdefault("Content-Type", "application/json")
        else:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        response = self.http.request(method, self.url + path, body=data, headers=sent)
        text = response.data.decode() if response.data else ""
        try:
            parsed: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        return response.status, {k.lower(): v for k, v in response.headers.items()}, parsed


def error_type(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type"))
    return None
