"""Ingest pipelines: CRUD, validation like ES, simulate, processors, default pipelines, and the
``inference`` processor and ``query_vector_builder`` backed by a real deployed model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from es_sandbox.tracking import TRACKED as TRACKING_FIELDS
from es_sandbox.versions import Emulation, parse_version
from tests.conftest import sandbox_version
from tests.sandbox.sandbox_helpers import index_name, unique
from tests.sandbox.test_sandbox_ml import (
    TEXTS,
    Traced,
    cleanup,
    import_model,
    local_embeddings,
    ml,
    traced,
)

__all__ = ["cleanup", "index_name", "local_embeddings", "ml", "traced"]


@pytest.fixture
def pipelines(es: Elasticsearch) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        es.options(ignore_status=404).ingest.delete_pipeline(id=name)


def _simulate(es: Elasticsearch, processors: list[dict[str, Any]], source: dict[str, Any]) -> dict[str, Any]:
    response = es.ingest.simulate(pipeline={"processors": processors}, docs=[{"_source": source}])
    return dict(response["docs"][0])


def test_pipeline_crud(es: Elasticsearch, pipelines: list[str]) -> None:
    name = unique("pl")
    body = {
        "description": "caption cleanup",
        "version": 3,
        "_meta": {"managed_by": "provision"},
        "processors": [{"set": {"field": "a", "value": 1}}],
    }
    assert es.ingest.put_pipeline(id=name, **body)["acknowledged"]
    pipelines.append(name)
    got = es.ingest.get_pipeline(id=name)[name]
    tracked = {key: got.pop(key) for key in TRACKING_FIELDS if key in got}
    assert got == body
    # 9.2+ tracks when a pipeline was created and last modified (es_sandbox.versions: tracking_info)
    assert bool(tracked) == Emulation(parse_version(sandbox_version())).has("tracking_info")
    es.ingest.delete_pipeline(id=name)
    with pytest.raises(NotFoundError) as caught:
        es.ingest.get_pipeline(id=name)
    assert caught.value.body == {}


@pytest.mark.parametrize(
    ("processors", "error_type", "reason"),
    [
        ([{"nope": {}}], "parse_exception", "No processor type exists with name [nope]"),
        ([{"set": {"value": 1}}], "parse_exception", "[field] required property is missing"),
        (
            [{"set": {"field": "a", "value": 1, "colour": "red"}}],
            "parse_exception",
            "processor [set] doesn't support one or more provided configuration parameters [colour]",
        ),
        (
            [{"set": {"field": "a"}, "remove": {"field": "b"}}],
            "illegal_argument_exception",
            "[processors] contains nested objects but should be a list of single-entry objects",
        ),
        (
            [{"inference": {"target_field": "x", "field_map": {}}}],
            "parse_exception",
            "[model_id] required property is missing",
        ),
    ],
)
def test_pipeline_validation(
    es: Elasticsearch, processors: list[dict[str, Any]], error_type: str, reason: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.ingest.put_pipeline(id=unique("bad"), processors=processors)
    assert caught.value.error == error_type
    assert caught.value.body["error"]["reason"] == reason


def test_script_processor_is_refused(sandbox: object, es: Elasticsearch) -> None:
    """Painless is out of the sandbox's scope: refused when stored, with a message saying so."""
    with pytest.raises(BadRequestError) as caught:
        es.ingest.put_pipeline(id=unique("painless"), processors=[{"script": {"source": "ctx.a = 1"}}])
    assert "out of the provision sandbox's scope" in caught.value.body["error"]["reason"]


def test_simulate_processors(es: Elasticsearch) -> None:
    doc = _simulate(
        es,
        [
            {"set": {"field": "label", "value": "{{name}} ({{size}})"}},
            {"set": {"field": "copy", "copy_from": "name"}},
            {"set": {"field": "name", "value": "ignored", "override": False}},
            {"rename": {"field": "size", "target_field": "bytes"}},
            {"convert": {"field": "bytes", "type": "integer"}},
            {"lowercase": {"field": "name"}},
            {"append": {"field": "tags", "value": ["b", "c"]}},
            {"remove": {"field": "tmp"}},
        ],
        {"name": "Rose.JPG", "size": "120", "tags": ["a"], "tmp": 1},
    )
    assert doc["doc"]["_source"] == {
        "name": "rose.jpg",
        "label": "Rose.JPG (120)",
        "copy": "Rose.JPG",
        "bytes": 120,
        "tags": ["a", "b", "c"],
    }


def test_simulate_failures_and_on_failure(es: Elasticsearch) -> None:
    failed = _simulate(es, [{"rename": {"field": "missing", "target_field": "x"}}], {"a": 1})
    assert failed["error"]["type"] == "illegal_argument_exception"
    assert failed["error"]["reason"] == "field [missing] doesn't exist"
    handled = _simulate(
        es,
        [
            {
                "rename": {
                    "field": "missing",
                    "target_field": "x",
                    "on_failure": [{"set": {"field": "why", "value": "{{_ingest.on_failure_message}}"}}],
                }
            }
        ],
        {"a": 1},
    )
    assert handled["doc"]["_source"] == {"a": 1, "why": "field [missing] doesn't exist"}
    ignored = _simulate(es, [{"remove": {"field": "missing", "ignore_failure": True}}], {"a": 1})
    assert ignored["doc"]["_source"] == {"a": 1}


def test_default_pipeline_and_pipeline_parameter(
    es: Elasticsearch, pipelines: list[str], index_name: str
) -> None:
    default, explicit = unique("default"), unique("explicit")
    es.ingest.put_pipeline(id=default, processors=[{"set": {"field": "via", "value": "default"}}])
    es.ingest.put_pipeline(id=explicit, processors=[{"set": {"field": "via", "value": "explicit"}}])
    pipelines.extend([default, explicit])
    es.indices.create(index=index_name, settings={"index.default_pipeline": default})
    es.index(index=index_name, id="1", document={"a": 1})
    es.index(index=index_name, id="2", document={"a": 2}, pipeline=explicit)
    es.index(index=index_name, id="3", document={"a": 3}, pipeline="_none")
    es.bulk(operations=[{"index": {"_index": index_name, "_id": "4", "pipeline": explicit}}, {"a": 4}])
    assert es.get(index=index_name, id="1")["_source"]["via"] == "default"
    assert es.get(index=index_name, id="2")["_source"]["via"] == "explicit"
    assert "via" not in es.get(index=index_name, id="3")["_source"]
    assert es.get(index=index_name, id="4")["_source"]["via"] == "explicit"
    with pytest.raises(BadRequestError) as caught:
        es.ingest.delete_pipeline(id=default)
    assert "cannot be deleted because it is the default pipeline" in caught.value.body["error"]["reason"]


def test_inference_processor_and_query_vector_builder(
    ml: Elasticsearch,
    traced: Traced,
    local_embeddings: np.ndarray,
    cleanup: list[str],
    pipelines: list[str],
    index_name: str,
) -> None:
    """Both inference processor forms and knn.query_vector_builder, through a deployed model."""
    model_id = unique("tiny-st")
    import_model(ml, traced, model_id)
    cleanup.append(model_id)
    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="started")
    dims = local_embeddings.shape[1]
    ml.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "caption": {"type": "text"},
                "caption_vector": {"type": "dense_vector", "dims": dims, "similarity": "cosine"},
            }
        },
    )
    modern, legacy = unique("io"), unique("fm")
    ml.ingest.put_pipeline(
        id=modern,
        processors=[
            {
                "inference": {
                    "model_id": model_id,
                    "input_output": [{"input_field": "caption", "output_field": "caption_vector"}],
                }
            }
        ],
    )
    ml.ingest.put_pipeline(
        id=legacy,
        processors=[
            {
                "inference": {
                    "model_id": model_id,
                    "field_map": {"caption": "text_field"},
                    "target_field": "ml.emb",
                }
            }
        ],
    )
    pipelines.extend([modern, legacy])
    operations: list[dict[str, Any]] = []
    for i, text in enumerate(TEXTS):
        operations += [{"index": {"_index": index_name, "_id": str(i)}}, {"caption": text}]
    response = ml.bulk(operations=operations, pipeline=modern, refresh=True)
    assert not response["errors"], response["items"]
    stored = ml.get(index=index_name, id="0", source_exclude_vectors=False)["_source"]["caption_vector"]
    assert np.allclose(stored, local_embeddings[0], atol=1e-4)

    legacy_doc = ml.ingest.simulate(id=legacy, docs=[{"_source": {"caption": TEXTS[1]}}])["docs"][0]["doc"][
        "_source"
    ]
    assert legacy_doc["ml"]["emb"]["model_id"] == model_id
    assert np.allclose(legacy_doc["ml"]["emb"]["predicted_value"], local_embeddings[1], atol=1e-4)

    hits = ml.search(
        index=index_name,
        knn={
            "field": "caption_vector",
            "k": 1,
            "num_candidates": 10,
            "query_vector_builder": {"text_embedding": {"model_id": model_id, "model_text": TEXTS[2]}},
        },
    )["hits"]["hits"]
    assert hits[0]["_id"] == "2"
    assert hits[0]["_score"] == pytest.approx(1.0, abs=1e-4)
