"""The emulated Elasticsearch version: each behaviour of ``es_sandbox.versions.CHANGES`` on either side
of the release that introduced it, and what a cluster reports about itself (``GET /``, cluster
features, REST capabilities). Each test starts private sandboxes of the versions it compares."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from es_sandbox import SandboxServer, versions
from es_sandbox.versions import CHANGES, NEWEST, RELEASES, Emulation, parse_version
from tests.conftest import REPO, Target, sandbox_config
from tests.sandbox.test_sandbox_ml import Traced, import_model, traced

__all__ = ["traced"]

Cluster = Callable[..., Elasticsearch]


@pytest.fixture
def cluster(es_target: Target) -> Iterator[Cluster]:
    """``cluster("9.1")`` / ``cluster("9.4", license="trial")``: a client of a private sandbox."""
    if es_target.kind != "sandbox":
        pytest.skip("compares private sandboxes emulating different versions")
    servers: list[SandboxServer] = []
    clients: list[Elasticsearch] = []

    def start(version: str, license: str = "basic") -> Elasticsearch:
        server = SandboxServer(sandbox_config(es_version=version, license=license)).start()
        servers.append(server)
        clients.append(Elasticsearch(server.url, request_timeout=60))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def vector_field(es: Elasticsearch, index: str, mapping: dict[str, Any]) -> dict[str, Any]:
    es.indices.create(index=index, mappings={"properties": {"v": mapping}})
    return dict(es.indices.get_mapping(index=index)[index]["mappings"]["properties"]["v"])


def reason_of(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", {})
    parts = [str(error.get("reason"))]
    cause = error.get("caused_by") or {}
    while cause:
        parts.append(str(cause.get("reason")))
        cause = cause.get("caused_by") or {}
    return " / ".join(parts)


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f">{len(values)}f", *values)).decode()


# --- the version table and the CLI/config surface ------------------------------------------------
def test_every_change_names_a_source_and_an_emulated_release() -> None:
    for key, change in CHANGES.items():
        assert change.key == key
        assert (change.since.major, change.since.minor) in RELEASES, key
        assert "elastic/elasticsearch#" in change.source, key
        assert change.what
    assert [row["key"] for row in versions.table()] == sorted(CHANGES, key=lambda k: (CHANGES[k].since, k))


def test_the_sandbox_docs_list_every_change() -> None:
    docs = (REPO / "docs" / "sandbox.md").read_text(encoding="utf-8")
    for key, change in CHANGES.items():
        row = next((line for line in docs.splitlines() if f"(`{key}`)" in line), None)
        assert row is not None, f"docs/sandbox.md has no row for {key}"
        assert f"| {change.since} |" in row, (key, row)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("9.0", "9.0.0"), ("9.1.x", "9.1.0"), ("9.2.5", "9.2.5"), (" 9.4 ", "9.4.0")],
)
def test_version_text(text: str, expected: str) -> None:
    assert str(parse_version(text)) == expected


@pytest.mark.parametrize("text", ["8.19", "9.5", "10.0", "nine", "9"])
def test_unsupported_versions_name_the_range(text: str) -> None:
    with pytest.raises(versions.UnsupportedVersion):
        parse_version(text)


def test_outside_a_request_the_newest_version_applies() -> None:
    assert versions.current().version == NEWEST
    with versions.emulating(Emulation(parse_version("9.0"))) as emulation:
        assert versions.current() is emulation
    assert versions.current().version == NEWEST


@pytest.mark.parametrize("version", ["9.0", "9.1", "9.2", "9.2.5", "9.3", "9.4"])
def test_root_reports_the_emulated_version(cluster: Cluster, version: str) -> None:
    info = cluster(version).info()
    expected = parse_version(version)
    assert info["version"]["number"] == str(expected)
    assert info["version"]["lucene_version"] == Emulation(expected).release.lucene
    assert info["version"]["build_type"] == "sandbox"
    assert info["tagline"] == "You Know, for Search"


def test_indices_record_the_version_that_created_them(cluster: Cluster) -> None:
    es = cluster("9.1")
    es.indices.create(index="old")
    settings = es.indices.get_settings(index="old")["old"]["settings"]["index"]
    assert settings["version"]["created"] == Emulation(parse_version("9.1")).index_version_created


# --- dense_vector defaults -------------------------------------------------------------------------
def test_default_index_options_by_version(cluster: Cluster) -> None:
    hnsw = {"m": 16, "ef_construction": 100}
    big = {"type": "dense_vector", "dims": 384}
    small = {"type": "dense_vector", "dims": 128}
    es90, es91, es94, es94_trial = cluster("9.0"), cluster("9.1"), cluster("9.4"), cluster("9.4", "trial")
    assert vector_field(es90, "big", big)["index_options"] == {"type": "int8_hnsw", **hnsw}
    assert vector_field(es91, "big", big)["index_options"] == {
        "type": "bbq_hnsw",
        **hnsw,
        "rescore_vector": {"oversample": 3.0},
    }
    assert vector_field(es91, "small", small)["index_options"] == {"type": "int8_hnsw", **hnsw}
    # 9.4: bbq_disk where the license allows it (a trial counts as enterprise), bbq_hnsw elsewhere
    assert vector_field(es94, "big", big)["index_options"]["type"] == "bbq_hnsw"
    assert vector_field(es94_trial, "big", big)["index_options"] == {
        "type": "bbq_disk",
        "cluster_size": 384,
        "rescore_vector": {"oversample": 3.0},
    }
    assert vector_field(es94_trial, "small", small)["index_options"]["type"] == "int8_hnsw"


def test_explicit_bbq_gets_the_default_oversample_from_9_1(cluster: Cluster) -> None:
    mapping = {"type": "dense_vector", "dims": 64, "index_options": {"type": "bbq_flat"}}
    assert "rescore_vector" not in vector_field(cluster("9.0"), "flat", mapping)["index_options"]
    assert vector_field(cluster("9.1"), "flat", mapping)["index_options"]["rescore_vector"] == {
        "oversample": 3.0
    }


def test_vectors_leave_source_from_9_2(cluster: Cluster) -> None:
    for version, in_source in (("9.1", True), ("9.2", False)):
        es = cluster(version)
        vector_field(es, "docs", {"type": "dense_vector", "dims": 3})
        es.index(index="docs", id="1", document={"v": [1.0, 2.0, 3.0]}, refresh=True)
        assert ("v" in es.get(index="docs", id="1")["_source"]) is in_source, version
        defaults = es.indices.get_settings(index="docs", include_defaults=True)["docs"]["defaults"]
        assert ("exclude_source_vectors" in defaults["index"].get("mapping", {})) is not in_source


# --- 9.2: bbq_disk, tracking dates; 9.2.4/9.2.5: low-priority deployments -------------------------
def test_bbq_disk_exists_from_9_2(cluster: Cluster) -> None:
    mapping = {"type": "dense_vector", "dims": 64, "index_options": {"type": "bbq_disk"}}
    with pytest.raises(ApiError) as refused:
        vector_field(cluster("9.1"), "disk", mapping)
    assert refused.value.status_code == 400
    assert vector_field(cluster("9.2"), "disk", mapping)["index_options"]["type"] == "bbq_disk"


def test_bbq_disk_writes_need_enterprise_from_9_3(cluster: Cluster) -> None:
    mapping = {"type": "dense_vector", "dims": 3, "index_options": {"type": "bbq_disk"}}
    document = {"v": [0.1, 0.2, 0.3]}
    for version, license, allowed in (
        ("9.2", "basic", True),
        ("9.3", "basic", False),
        ("9.3", "trial", True),
    ):
        es = cluster(version, license)
        vector_field(es, "disk", mapping)
        if allowed:
            assert es.index(index="disk", id="1", document=document)["result"] == "created"
        else:
            with pytest.raises(ApiError) as refused:
                es.index(index="disk", id="1", document=document)
            assert "DiskBBQ" in reason_of(refused.value), version


def test_tracking_dates_from_9_2(cluster: Cluster) -> None:
    pipeline = {"processors": [{"set": {"field": "a", "value": 1}}]}
    template = {"template": {"settings": {"number_of_shards": 1}}}
    old, new = cluster("9.1"), cluster("9.2")
    for es in (old, new):
        es.ingest.put_pipeline(id="p", **pipeline)
        es.cluster.put_component_template(name="c", **template)
    assert "created_date" not in old.ingest.get_pipeline(id="p")["p"]
    assert (
        "created_date"
        not in old.cluster.get_component_template(name="c")["component_templates"][0]["component_template"]
    )
    first = new.ingest.get_pipeline(id="p")["p"]
    assert first["created_date"] == first["modified_date"]
    assert isinstance(first["created_date_millis"], int)
    time.sleep(0.01)
    new.ingest.put_pipeline(id="p", description="again", **pipeline)
    second = new.ingest.get_pipeline(id="p")["p"]
    assert second["created_date_millis"] == first["created_date_millis"]
    assert second["modified_date_millis"] > first["modified_date_millis"]
    with pytest.raises(ApiError) as managed:
        new.perform_request(
            "PUT",
            "/_ingest/pipeline/p",
            body={**pipeline, "created_date": "2025-07-04T12:50:48.415Z"},
            headers={"accept": "application/json", "content-type": "application/json"},
        )
    assert managed.value.status_code == 400
    assert "managed by the system: created_date" in reason_of(managed.value)
    component = new.cluster.get_component_template(name="c")["component_templates"][0]["component_template"]
    assert set(component) >= {"created_date", "modified_date"}


def test_capabilities_and_cluster_features_follow_the_version(cluster: Cluster) -> None:
    def capable(es: Elasticsearch, method: str, path: str, capability: str) -> bool:
        answer = es.perform_request(
            "GET",
            "/_capabilities",
            params={"method": method, "path": path, "capabilities": capability},
            headers={"accept": "application/json"},
        )
        return bool(answer.body["supported"])

    def features(es: Elasticsearch) -> set[str]:
        state = es.perform_request(
            "GET",
            "/_cluster/state",
            params={"filter_path": "nodes_features"},
            headers={"accept": "application/json"},
        )
        return {f for node in state.body["nodes_features"] for f in node["features"]}

    es90, es92 = cluster("9.0"), cluster("9.2")
    assert not capable(es90, "PUT", "/_ingest/pipeline/{id}", "pipeline_tracking_info")
    assert capable(es92, "PUT", "/_ingest/pipeline/{id}", "pipeline_tracking_info")
    assert capable(es92, "PUT", "/_component_template/{name}", "component_template_tracking_info")
    assert not capable(es92, "PUT", "/_ingest/pipeline/{id}", "no_such_capability")
    assert "search.vectors.mappers.default_bbq_hnsw" not in features(es90)
    assert "search.vectors.mappers.default_bbq_hnsw" in features(es92)


@pytest.mark.parametrize(("version", "refused"), [("9.2.3", False), ("9.2.4", True)])
def test_low_priority_update_to_more_allocations(
    cluster: Cluster, traced: Traced, version: str, refused: bool
) -> None:
    es = cluster(version, "trial")
    import_model(es, traced, "tiny")
    es.ml.start_trained_model_deployment(model_id="tiny", priority="low", wait_for="started")
    if refused:
        with pytest.raises(ApiError) as caught:
            es.ml.update_trained_model_deployment(model_id="tiny", number_of_allocations=2)
        assert caught.value.status_code == 400
        assert "[number_of_allocations] must be 1 when [priority] is low" in reason_of(caught.value)
    else:
        updated = es.ml.update_trained_model_deployment(model_id="tiny", number_of_allocations=2)
        assert updated["assignment"]["task_parameters"]["number_of_allocations"] == 2


@pytest.mark.parametrize(("version", "refused"), [("9.2.4", False), ("9.2.5", True)])
def test_low_priority_adaptive_maximum(cluster: Cluster, traced: Traced, version: str, refused: bool) -> None:
    es = cluster(version, "trial")
    import_model(es, traced, "tiny")
    adaptive = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4}
    if refused:
        with pytest.raises(ApiError) as caught:
            es.ml.start_trained_model_deployment(
                model_id="tiny", priority="low", adaptive_allocations=adaptive, wait_for="started"
            )
        assert caught.value.status_code == 400
        assert "[max_number_of_allocations] must be 1 when [priority] is low" in reason_of(caught.value)
    else:
        started = es.ml.start_trained_model_deployment(
            model_id="tiny", priority="low", adaptive_allocations=adaptive, wait_for="started"
        )
        assert started["assignment"]["adaptive_allocations"]["max_number_of_allocations"] == 4


# --- 9.3: base64 vectors, bfloat16 ---------------------------------------------------------------
def test_base64_vectors_in_documents_from_9_3(cluster: Cluster) -> None:
    values = [0.5, -1.25, 2.0]
    for version, accepted in (("9.2", False), ("9.3", True)):
        es = cluster(version)
        vector_field(es, "docs", {"type": "dense_vector", "dims": 3, "similarity": "l2_norm"})
        if not accepted:
            with pytest.raises(ApiError) as refused:
                es.index(index="docs", id="1", document={"v": b64(values)})
            assert refused.value.status_code == 400
            continue
        bulk = es.bulk(
            operations=[{"index": {"_index": "docs", "_id": "2"}}, {"v": b64(values)}], refresh=True
        )
        assert not bulk["errors"]
        hits = es.search(
            index="docs", knn={"field": "v", "query_vector": values, "k": 1, "num_candidates": 5}
        )
        assert hits["hits"]["hits"][0]["_id"] == "2"
        assert hits["hits"]["hits"][0]["_score"] == pytest.approx(1.0)


def test_bfloat16_from_9_3(cluster: Cluster) -> None:
    mapping = {"type": "dense_vector", "dims": 2, "element_type": "bfloat16"}
    with pytest.raises(ApiError) as refused:
        vector_field(cluster("9.2"), "half", mapping)
    assert refused.value.status_code == 400
    es = cluster("9.3")
    assert vector_field(es, "half", mapping)["element_type"] == "bfloat16"
    es.index(index="half", id="1", document={"v": [1.0, 3.14159]}, refresh=True)
    fetched = es.search(index="half", docvalue_fields=["v"])["hits"]["hits"][0]["fields"]["v"]
    assert fetched == [[1.0, 3.140625]]  # rounded to bfloat16 (8 bits of mantissa)


# --- 9.4: kNN from a stored document's vector, base64 query vectors --------------------------------
def test_lookup_query_vector_builder_from_9_4(cluster: Cluster) -> None:
    knn = {
        "field": "v",
        "k": 2,
        "num_candidates": 10,
        "query_vector_builder": {"lookup": {"id": "a", "index": "docs", "path": "v"}},
    }
    for version in ("9.3", "9.4"):
        es = cluster(version)
        vector_field(es, "docs", {"type": "dense_vector", "dims": 2, "similarity": "l2_norm"})
        for doc_id, vector in (("a", [1.0, 0.0]), ("b", [0.9, 0.1]), ("c", [-1.0, 0.0])):
            es.index(index="docs", id=doc_id, document={"v": vector})
        es.indices.refresh(index="docs")
        if version == "9.3":
            with pytest.raises(ApiError) as refused:
                es.search(index="docs", knn=knn)
            assert refused.value.status_code == 400
            continue
        assert [h["_id"] for h in es.search(index="docs", knn=knn)["hits"]["hits"]] == ["a", "b"]
        missing = {**knn, "query_vector_builder": {"lookup": {"id": "zz", "index": "docs", "path": "v"}}}
        with pytest.raises(ApiError) as not_found:
            es.search(index="docs", knn=missing)
        assert not_found.value.status_code == 404
        assert "Document with id [zz] not found in index [docs]" in reason_of(not_found.value)
        encoded = {"field": "v", "k": 1, "num_candidates": 10, "query_vector": b64([-1.0, 0.0])}
        assert es.search(index="docs", knn=encoded)["hits"]["hits"][0]["_id"] == "c"
