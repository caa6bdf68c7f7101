"""The product reads the cluster's version once per run and adapts to it: it refuses versions it does
not speak to before any other request, and says what a version will choose for what a stack leaves
to its defaults."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

import provisioning
from provisioning.es_versions import UnsupportedVersion, default_index_type, shown
from tests.conftest import Target
from tests.integration.stacks import connect, resources_stack, unique, write_stack


class _OldElasticsearch(BaseHTTPRequestHandler):
    """Answers ``GET /`` as an Elasticsearch 8.17 node does, and records every request."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(f"GET {self.path}")
        body = json.dumps({"name": "old", "version": {"number": "8.17.0"}, "tagline": "You Know, for Search"})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-elastic-product", "Elasticsearch")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def old_cluster() -> Iterator[str]:
    _OldElasticsearch.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OldElasticsearch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_version_before_9_is_refused_at_the_first_request(old_cluster: str, tmp_path: Path) -> None:
    stack = provisioning.load_stack(write_stack(tmp_path, resources_stack(unique("old"))), {})
    with pytest.raises(UnsupportedVersion) as refused:
        provisioning.plan(stack, connect(old_cluster))
    message = str(refused.value)
    assert "runs Elasticsearch 8.17.0" in message and "supports Elasticsearch 9.0.0 to 9.x" in message
    assert old_cluster in message
    assert _OldElasticsearch.requests == ["GET /"]  # nothing else was asked


def test_plan_says_what_the_version_chooses_for_undeclared_index_options(
    es_target: Target, tmp_path: Path
) -> None:
    name = unique("defaults")
    body = resources_stack(name)
    properties = body["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]
    properties["clip"] = {"type": "dense_vector", "dims": 512, "similarity": "cosine"}
    stack = provisioning.load_stack(write_stack(tmp_path, body), {})
    cluster = connect(es_target.url)
    plan = provisioning.plan(stack, cluster)
    version = cluster.version()
    expected = default_index_type(version, "float", 512, cluster.license_type())
    notes = [n for n in plan.notes if "clip declares no index_options" in n]
    assert [n.split(":")[0] for n in notes] == [f"index_template/{name}-images", f"index/{name}-images"]
    assert f"Elasticsearch {shown(version)} will use {expected}" in notes[0]
    assert "bytes per 512-d vector searched, against 2048 as float" in notes[0]
    assert sum("vec declares no index_options" in n for n in plan.notes) == 2  # every such field
    provisioning.apply(plan, cluster)
    assert not [
        n for n in provisioning.plan(stack, cluster).notes if "index_options" in n
    ]  # only when created
    assert provisioning.apply(provisioning.destroy_plan(stack, cluster, include_data=True), cluster).ok
