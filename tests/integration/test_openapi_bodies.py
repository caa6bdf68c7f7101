"""Every request body the project builds is one Elasticsearch's API description accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

import provisioning
from provisioning.cluster import Cluster, ConnectionOptions
from provisioning.image_ingest import run_ingest
from provisioning.queries import Searcher
from synthetic_shapes import write_sample_set
from tests.conftest import Target
from tests.integration.models_support import IMAGE_MODEL, model_stack
from tests.integration.openapi_check import OPENAPI, RecordingNode, Sent, operation_for, problems
from tests.integration.stacks import load, resources_stack, unique

pytestmark = pytest.mark.skipif(not OPENAPI.exists(), reason=f"conformance data not found at {OPENAPI}")


def full_stack(name: str, samples: Path) -> dict[str, Any]:
    """Every resource kind, an ingest job with a pipeline, and both kinds of smoke test."""
    body = resources_stack(name)
    body.update({k: v for k, v in model_stack(name, f"{name}-model").items() if k in ("cluster", "models")})
    body["models"]["clip-text"]["alias"] = f"{name}-text"
    body["inference_endpoints"] = {f"{name}-endpoint": {"model": "clip-text"}}
    props = body["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]
    props["vec"]["dims"] = 32
    props["source"] = {"type": "keyword"}
    props.update(
        {
            "image_id": {"type": "keyword"},
            "relative_path": {"type": "keyword"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "exif": {"properties": {"date": {"type": "date"}, "location": {"type": "geo_point"}}},
        }
    )
    body["encoders"] = {"clip-image": {"source": {"path": str(IMAGE_MODEL)}, "batch_size": 4}}
    body["ingest"] = {
        "samples": {
            "index": f"{name}-images",
            "source": {"path": str(samples)},
            "encoder": "clip-image",
            "vector_field": "vec",
            "pipeline": f"{name}-tag",
            "prune": True,
        }
    }
    body["pipelines"][f"{name}-tag"]["processors"].append(
        {
            "inference": {
                "model_id": f"{name}-text",
                "input_output": [{"input_field": "caption", "output_field": "vec"}],
                "ignore_missing": True,
            }
        }
    )
    body["smoke_tests"] = {
        "builder": {
            "index": f"{name}-images",
            "field": "vec",
            "text": "a red circle",
            "model": "clip-text",
            "k": 3,
            "expect": {"min_recall": 1.0},
        },
        "infer": {
            "index": f"{name}-images",
            "field": "vec",
            "text": "ein roter Kreis",
            "model": "clip-text",
            "k": 3,
            "embed_via": "infer",
        },
    }
    return body


def test_bodies_sent_by_apply_verify_search_and_destroy_match_the_api(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    RecordingNode.sent = []
    client = Elasticsearch(es_target.url, node_class=RecordingNode, request_timeout=60)
    cluster = Cluster(client, ConnectionOptions(url=es_target.url))
    name = unique("openapi")
    samples = tmp_path / "samples"
    write_sample_set(samples, seed=3, per_class=1, size=96)
    stack = load(tmp_path, full_stack(name, samples))
    assert provisioning.apply(provisioning.plan(stack, cluster), cluster).ok
    assert run_ingest(stack, client).ok
    next(iter(sorted(samples.iterdir()))).unlink()
    assert run_ingest(stack, client).ok  # incremental: _mget of known ids, prune of the removed file
    es.index(
        index=f"{name}-images",
        document={"image_name": "a.jpg", "caption": "a red circle"},
        pipeline=f"{name}-tag",
        refresh=True,
    )
    assert provisioning.verify(stack, cluster).ok
    found = Searcher(stack, cluster).search_text("a red circle", k=3, index=f"{name}-images")
    seed = next(hit for hit in found.hits if hit.name != "a.jpg")  # an ingested image
    more = provisioning.similar(  # GET _doc (vectors back from 9.2), then kNN with must_not ids
        stack,
        cluster,
        seed.id,
        k=2,
        index=f"{name}-images",
        filter={"terms": {"image_name": ["a.jpg"]}},
    )
    assert [h.name for h in more.hits] == ["a.jpg"]  # the filter holds, the seed is left out
    assert provisioning.health(stack, cluster, index=f"{name}-images").ok
    changed = full_stack(name, samples)
    changed["models"]["clip-text"]["deployment"]["number_of_allocations"] = 2
    changed["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]["label"] = {
        "type": "keyword"
    }
    updated = load(tmp_path, changed)
    assert provisioning.apply(provisioning.plan(updated, cluster), cluster).ok
    assert provisioning.apply(provisioning.destroy_plan(updated, cluster, include_data=True), cluster).ok

    with_bodies = [s for s in RecordingNode.sent if s.body]
    operations = {str((operation_for(s.method, s.path) or {}).get("operationId")) for s in with_bodies}
    expected = {
        "cluster-put-component-template",
        "indices-put-index-template",
        "ingest-put-pipeline",
        "indices-create",
        "indices-put-mapping",
        "ml-put-trained-model",
        "ml-put-trained-model-definition-part",
        "ml-put-trained-model-vocabulary",
        "ml-update-trained-model-deployment",
        "ml-infer-trained-model",
        "inference-put-1",
        "bulk-1",
        "mget-3",
        "search-3",
    }
    assert expected <= operations, sorted(expected - operations)
    found: list[str] = []
    for sent in with_bodies:
        found += problems(sent)
    assert found == [], "\n".join(found)


def test_checker_rejects_a_body_elasticsearch_would_refuse() -> None:
    bad = Sent("PUT", "/_index_template/x", b'{"index_patterns": ["a*"], "priorty": 1}', "application/json")
    assert any("priorty" in p for p in problems(bad))
    wrong_type = Sent(
        "PUT", "/_index_template/x", b'{"index_patterns": ["a*"], "priority": "high"}', "application/json"
    )
    assert problems(wrong_type)
    good = Sent("PUT", "/_index_template/x", b'{"index_patterns": ["a*"], "priority": 1}', "application/json")
    assert problems(good) == []
