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
from elasticsearch import Elasticsearch

import provisioning
from es_sandbox import SandboxServer
from provisioning.es_versions import UnsupportedVersion, default_index_type, shown
from tests.conftest import Target, sandbox_config
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


@pytest.mark.parametrize(("version", "requests"), [("9.2.0", ["GET", "POST"]), ("9.4.0", ["POST"])])
def test_more_like_this_uses_lookup_from_9_4_and_reads_the_vector_before(
    tmp_path: Path, version: str, requests: list[str]
) -> None:
    """The same neighbours either way; on 9.4 the search builds the query vector from the stored
    document itself (one request), on 9.2 the vector is read back first (left out of _source)."""
    name = unique("mlt")
    body = resources_stack(name)
    with SandboxServer(sandbox_config(es_version=version)) as server:
        stack = provisioning.load_stack(write_stack(tmp_path, body), {})
        cluster = connect(server.url)
        assert provisioning.apply(provisioning.plan(stack, cluster), cluster).ok
        client = Elasticsearch(server.url)
        vectors = {"a": [1, 0, 0, 0], "b": [0.9, 0.1, 0, 0], "c": [0, 1, 0, 0], "d": [0, 0, 1, 0]}
        for doc_id, vector in vectors.items():
            client.index(index=f"{name}-images", id=doc_id, document={"image_name": doc_id, "vec": vector})
        client.indices.refresh(index=f"{name}-images")
        server.state.log.clear()
        result = provisioning.similar(stack, cluster, "a", k=2, index=f"{name}-images")
        assert [h.id for h in result.hits] == ["b", "c"]
        assert [r.method for r in server.state.log.entries if r.path != "/"] == requests
        with pytest.raises(provisioning.UnknownImage):
            provisioning.similar(stack, cluster, "nope", k=2, index=f"{name}-images")


@pytest.mark.parametrize("version", ["9.0.0", "9.1.0", "9.2.0", "9.3.0", "9.4.0"])
@pytest.mark.parametrize("license_type", ["basic", "trial"])
def test_defaults_a_version_adds_are_not_drift(tmp_path: Path, version: str, license_type: str) -> None:
    """A 512-d field without index_options: each version stores its own default (int8_hnsw, then
    bbq_hnsw with rescore oversampling, then bbq_disk under an enterprise or trial license), and
    the applied stack plans as unchanged on every one of them."""
    name = unique("dflt")
    body = resources_stack(name)
    properties = body["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]
    properties["clip"] = {"type": "dense_vector", "dims": 512, "similarity": "cosine"}
    with SandboxServer(sandbox_config(es_version=version, license=license_type)) as server:
        stack = provisioning.load_stack(write_stack(tmp_path, body), {})
        cluster = connect(server.url)
        assert provisioning.apply(provisioning.plan(stack, cluster), cluster).ok
        stored = Elasticsearch(server.url).indices.get_mapping(index=f"{name}-images").body
        options = stored[f"{name}-images"]["mappings"]["properties"]["clip"]["index_options"]
        assert options["type"] == default_index_type(cluster.version(), "float", 512, license_type)
        again = provisioning.plan(stack, cluster)
        assert again.changes == [] and again.errors == [], [(c.address, c.diff) for c in again.changes]
