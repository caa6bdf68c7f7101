"""Sandbox-only behaviour: ``--data DIR`` persistence across restarts, seeded fault injection,
and the request log's read/write classification that "a second apply sends no write" relies on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import ApiError, Elasticsearch

from es_sandbox import Faults, SandboxServer
from tests.conftest import Target, sandbox_config

pytestmark = pytest.mark.usefixtures("sandbox")  # sandbox-only: skipped against a real cluster


def _client(server: SandboxServer) -> Elasticsearch:
    return Elasticsearch(server.url, request_timeout=30)


def test_state_survives_a_restart(tmp_path: Path, es_target: Target) -> None:
    data = tmp_path / "data"
    vectors = np.random.default_rng(3).normal(size=(50, 16)).astype(np.float32)
    with SandboxServer(sandbox_config(data_dir=data)) as server:
        es = _client(server)
        es.cluster.put_component_template(
            name="ct", template={"mappings": {"properties": {"name": {"type": "keyword"}}}}
        )
        es.indices.put_index_template(name="it", index_patterns=["img-*"], composed_of=["ct"], priority=5)
        es.ingest.put_pipeline(id="tagger", processors=[{"set": {"field": "tagged", "value": True}}])
        es.indices.create(
            index="img-1",
            mappings={"properties": {"v": {"type": "dense_vector", "dims": 16, "similarity": "l2_norm"}}},
            settings={"index.default_pipeline": "tagger", "number_of_replicas": 0},
            aliases={"images": {}},
        )
        operations: list[dict[str, object]] = []
        for i, vector in enumerate(vectors):
            operations += [
                {"index": {"_index": "img-1", "_id": str(i)}},
                {"name": f"{i}.jpg", "v": [float(x) for x in vector]},
            ]
        assert not es.bulk(operations=operations, refresh=True)["errors"]
        es.index(index="img-1", id="0", document={"name": "0.jpg", "v": [float(x) for x in vectors[0]]})
        es.delete(index="img-1", id="49")
        es.license.post_start_trial(acknowledge=True)
        before = es.search(
            index="images",
            knn={"field": "v", "query_vector": [float(x) for x in vectors[7]], "k": 3, "num_candidates": 10},
        )
        es.close()
    assert (data / "CURRENT").read_text().startswith("snap-")
    snapshot = data / (data / "CURRENT").read_text()
    assert json.loads((snapshot / "manifest.json").read_text())["parts"]["indices"] == "custom"

    with SandboxServer(sandbox_config(data_dir=data)) as server:
        es = _client(server)
        assert es.count(index="img-1")["count"] == 49
        doc = es.get(index="img-1", id="0", source_exclude_vectors=False)
        assert doc["_version"] == 2 and doc["_source"]["tagged"] is True
        assert doc["_source"]["v"] == [float(str(x)) for x in vectors[0]]
        after = es.search(
            index="images",
            knn={"field": "v", "query_vector": [float(x) for x in vectors[7]], "k": 3, "num_candidates": 10},
        )
        assert [h["_id"] for h in after["hits"]["hits"]] == [h["_id"] for h in before["hits"]["hits"]]
        assert [h["_score"] for h in after["hits"]["hits"]] == [h["_score"] for h in before["hits"]["hits"]]
        assert es.indices.get_index_template(name="it")["index_templates"][0]["index_template"][
            "composed_of"
        ] == ["ct"]
        assert es.ingest.get_pipeline(id="tagger")["tagger"]["processors"][0]["set"]["field"] == "tagged"
        assert es.license.get()["license"]["type"] == "trial"
        written = es.index(index="img-1", id="new", document={"name": "n"})
        assert written["_seq_no"] > 50  # sequence numbers continue, they do not restart
        assert es.indices.get_mapping(index="img-1")["img-1"]["mappings"]["properties"]["name"] == {
            "type": "keyword"
        }
        es.close()


def test_without_a_data_dir_state_is_in_memory(fresh_sandbox: SandboxServer) -> None:
    assert fresh_sandbox.persister is None


def _bulk(es: Elasticsearch, index: str, count: int) -> list[dict[str, object]]:
    operations: list[dict[str, object]] = []
    for i in range(count):
        operations += [{"index": {"_index": index, "_id": str(i)}}, {"n": i}]
    response = es.bulk(operations=operations)
    return [item["index"] for item in response["items"]]


def test_bulk_items_refused_with_429_like_es(es_target: Target) -> None:
    faults = Faults(bulk_item_429_rate=0.3, seed=11)
    outcomes = []
    for _ in range(2):
        with SandboxServer(sandbox_config(faults=faults)) as server:
            es = _client(server)
            response = es.bulk(
                operations=[
                    op for i in range(40) for op in ({"index": {"_index": "f", "_id": str(i)}}, {"n": i})
                ]
            )
            assert response.meta.status == 200
            assert response["errors"] is True
            items = [item["index"] for item in response["items"]]
            rejected = [item for item in items if item["status"] == 429]
            assert 0 < len(rejected) < 40
            assert rejected[0]["error"]["type"] == "es_rejected_execution_exception"
            assert "root_cause" not in rejected[0]["error"]
            assert all(item["status"] == 201 for item in items if item["status"] != 429)
            outcomes.append([item["status"] for item in items])
            es.close()
    assert outcomes[0] == outcomes[1]  # seeded: the same items fail on every run


def test_requests_answered_503_and_latency(es_target: Target) -> None:
    with SandboxServer(sandbox_config(faults=Faults(request_503_rate=1.0))) as server:
        es = Elasticsearch(server.url, request_timeout=10, max_retries=0)
        with pytest.raises(ApiError) as caught:
            es.indices.exists(index="x")
        assert caught.value.meta.status == 503
        assert es.info()["tagline"] == "You Know, for Search"  # GET / is spared so clients can connect
        es.close()
    with SandboxServer(sandbox_config(faults=Faults(latency_ms=150))) as server:
        es = _client(server)
        started = time.perf_counter()
        es.info()
        assert time.perf_counter() - started >= 0.15
        es.close()


def test_request_log_separates_reads_from_writes(fresh_sandbox: SandboxServer) -> None:
    es = _client(fresh_sandbox)
    es.indices.create(index="log")
    es.index(index="log", id="1", document={"a": 1})
    fresh_sandbox.state.log.clear()
    es.indices.get(index="log")
    es.indices.exists(index="log")
    es.search(index="log", query={"match_all": {}})
    es.count(index="log")
    es.mget(index="log", ids=["1"])
    es.indices.refresh(index="log")
    es.indices.simulate_index_template(name="log-2")
    es.ingest.simulate(pipeline={"processors": []}, docs=[{"_source": {}}])
    es.indices.get_mapping(index="log")
    assert fresh_sandbox.state.log.writes() == []
    assert len(fresh_sandbox.state.log.reads()) == 9
    es.indices.put_mapping(index="log", properties={"b": {"type": "keyword"}})
    assert [w.method for w in fresh_sandbox.state.log.writes()] == ["PUT"]
    es.close()
