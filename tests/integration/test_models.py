"""Trained models and deployments as resources: upload, wait, idempotence, scaling, errors, rollover."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elasticsearch import ApiError, Elasticsearch

import provisioning
from es_sandbox import SandboxServer
from provisioning.embedding import tracing
from provisioning.errors import ProvisionError
from provisioning.resources import deployments, trained_models
from tests.conftest import Target, sandbox_config
from tests.integration.models_support import MAX_LEN, TEXT_MODEL, model_stack, untrained_text_model
from tests.integration.stacks import connect, load, unique

TEXTS = ["a red circle", "ein blauer Stern", "un triángulo verde", "a photo of a yellow square"]


def converge(tmp_path: Path, url: str, body: dict[str, Any]) -> Any:
    stack = load(tmp_path, body)
    cluster = connect(url)
    report = provisioning.apply(provisioning.plan(stack, cluster), cluster)
    assert report.ok, [(r.change.address, r.error) for r in report.failed]
    return report


@pytest.fixture(scope="module")
def local_embeddings() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(TEXT_MODEL), device="cpu")
    return np.asarray(model.encode(TEXTS))


def test_apply_uploads_deploys_and_infers_like_sentence_transformers(
    es: Elasticsearch, es_target: Target, tmp_path: Path, local_embeddings: np.ndarray
) -> None:
    model_id = unique("tiny-text")
    converge(tmp_path, es_target.url, model_stack(unique("mdl"), model_id))
    stats = es.ml.get_trained_models_stats(model_id=model_id).body["trained_model_stats"][0][
        "deployment_stats"
    ]
    assert stats["state"] == "started"
    assert stats["allocation_status"]["state"] == "fully_allocated"
    answer = es.ml.infer_trained_model(model_id=model_id, docs=[{"text_field": t} for t in TEXTS])
    remote = np.asarray([r["predicted_value"] for r in answer.body["inference_results"]])
    assert remote.shape == local_embeddings.shape
    assert float(np.max(np.abs(remote - local_embeddings))) < 1e-4
    config = es.ml.get_trained_models(model_id=model_id).body["trained_model_configs"][0]
    assert (
        config["inference_config"]["text_embedding"]["tokenization"]["bert"]["max_sequence_length"] == MAX_LEN
    )
    meta = config["metadata"]
    assert meta["managed_by"] == "provision" and meta["traced_with"]["torch"]


def test_recorded_memory_is_the_models_real_size(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    model_id = unique("tiny-mem")
    converge(tmp_path, es_target.url, model_stack(unique("mem"), model_id))
    recorded = es.ml.get_trained_models(model_id=model_id).body["trained_model_configs"][0]["metadata"][
        "per_deployment_memory_bytes"
    ]
    st = SentenceTransformer(str(TEXT_MODEL), device="cpu")
    real = sum(p.nelement() * p.element_size() for p in st.parameters()) + sum(
        b.nelement() * b.element_size() for b in st.buffers()
    )
    # within 10%: the traced graph holds the same weights; eland's double count would be ~2x
    assert 0.9 * real <= recorded <= 1.1 * real, (recorded, real)


def test_second_apply_neither_traces_nor_uploads_nor_writes(sandbox: SandboxServer, tmp_path: Path) -> None:
    body = model_stack(unique("idem"), unique("tiny-idem"))
    converge(tmp_path, sandbox.url, body)
    traces, uploads = tracing.counters["traces"], trained_models.upload_counters["models"]
    hits = tracing.counters["cache_hits"]
    sandbox.state.log.clear()
    report = converge(tmp_path, sandbox.url, body)
    assert report.results == []
    assert sandbox.state.log.writes() == []
    assert tracing.counters["traces"] == traces
    assert tracing.counters["cache_hits"] == hits
    assert trained_models.upload_counters["models"] == uploads


def test_deleted_model_is_uploaded_again_from_the_trace_cache(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    body = model_stack(unique("cache"), unique("tiny-cache"))
    converge(tmp_path, es_target.url, body)
    model_id = body["models"]["clip-text"]["model_id"]
    es.ml.delete_trained_model(model_id=model_id, force=True)
    traces, uploads = tracing.counters["traces"], trained_models.upload_counters["models"]
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [c.address for c in plan.changes if c.action == "create"] == [
        f"trained_model/{model_id}",
        f"deployment/{model_id}",
    ]
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert tracing.counters["traces"] == traces
    assert trained_models.upload_counters["models"] == uploads + 1


def test_changing_allocations_is_an_in_place_update(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    body = model_stack(unique("scale"), unique("tiny-scale"))
    converge(tmp_path, es_target.url, body)
    model_id = body["models"]["clip-text"]["model_id"]
    body["models"]["clip-text"]["deployment"]["number_of_allocations"] = 2
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [(c.action, c.address) for c in plan.changes] == [("update", f"deployment/{model_id}")]
    assert [(d.path, d.before, d.after) for d in plan.changes[0].diff] == [("number_of_allocations", 1, 2)]
    assert provisioning.apply(plan, connect(es_target.url)).ok
    stats = es.ml.get_trained_models_stats(model_id=model_id).body["trained_model_stats"][0][
        "deployment_stats"
    ]
    assert stats["number_of_allocations"] == 2
    assert stats["allocation_status"]["target_allocation_count"] == 2
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_changing_threads_is_a_replace(es_target: Target, tmp_path: Path) -> None:
    body = model_stack(unique("threads"), unique("tiny-threads"))
    converge(tmp_path, es_target.url, body)
    body["models"]["clip-text"]["deployment"]["threads_per_allocation"] = 2
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [c.action for c in plan.changes] == ["replace"]
    assert "restart" in plan.changes[0].reason
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_eland_lists_and_infers_the_uploaded_model(
    es: Elasticsearch, es_target: Target, tmp_path: Path, local_embeddings: np.ndarray
) -> None:
    from eland.ml.pytorch import PyTorchModel

    model_id = unique("tiny-eland")
    converge(tmp_path, es_target.url, model_stack(unique("eland"), model_id))
    assert model_id in PyTorchModel.list(es)
    answer = PyTorchModel(es, model_id).infer(docs=[{"text_field": TEXTS[0]}])
    vector = np.asarray(answer.body["inference_results"][0]["predicted_value"])
    assert float(np.max(np.abs(vector - local_embeddings[0]))) < 1e-4


def test_interrupted_upload_is_replaced(es: Elasticsearch, es_target: Target, tmp_path: Path) -> None:
    body = model_stack(unique("partial"), unique("tiny-partial"))
    del body["models"]["clip-text"]["deployment"]
    converge(tmp_path, es_target.url, body)
    model_id = body["models"]["clip-text"]["model_id"]
    config = es.ml.get_trained_models(model_id=model_id).body["trained_model_configs"][0]
    es.ml.delete_trained_model(model_id=model_id, force=True)
    keep = {k: config[k] for k in ("model_type", "inference_config", "input", "metadata") if k in config}
    for task in keep["inference_config"].values():
        task.pop("vocabulary", None)  # GET reports where the vocabulary is stored; PUT must not set it
    es.ml.put_trained_model(model_id=model_id, body=keep)  # config only: as if killed before the definition
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [(c.action, c.address) for c in plan.changes] == [("replace", f"trained_model/{model_id}")]
    assert "incomplete" in plan.changes[0].reason
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_basic_license_without_opt_in_fails_clearly(tmp_path: Path) -> None:
    with SandboxServer(sandbox_config()) as basic:
        body = model_stack(unique("lic"), unique("tiny-lic"))
        del body["cluster"]
        cluster = connect(basic.url)
        report = provisioning.apply(provisioning.plan(load(tmp_path, body), cluster), cluster)
        assert not report.ok
        error = report.failed[0].error or ""
        assert "license" in error and "cluster.license: trial" in error
        body["cluster"] = {"license": "trial"}
        plan = provisioning.plan(load(tmp_path, body), cluster)
        assert plan.changes[0].address == "license/trial" and plan.changes[0].action == "update"
        assert provisioning.apply(plan, cluster).ok


def test_not_enough_ml_memory_fails_clearly(tmp_path: Path) -> None:
    with SandboxServer(sandbox_config(license="trial", ml_memory_bytes=64 * 1024**2)) as small:
        body = model_stack(unique("memory"), unique("tiny-memory"))
        cluster = connect(small.url)
        report = provisioning.apply(provisioning.plan(load(tmp_path, body), cluster), cluster)
        assert not report.ok
        failed = report.failed[0]
        assert failed.change.kind == "deployment"
        assert "not have enough free memory" in (failed.error or "")


def test_deployment_timeout_names_the_state_it_reached(tmp_path: Path) -> None:
    with SandboxServer(sandbox_config(license="trial", deployment_start_delay_s=60)) as slow:
        body = model_stack(unique("slow"), unique("tiny-slow"), timeout="1s")
        cluster = connect(slow.url)
        started = time.monotonic()
        report = provisioning.apply(provisioning.plan(load(tmp_path, body), cluster), cluster)
        assert time.monotonic() - started < 40
        assert not report.ok
        error = report.failed[0].error or ""
        assert f"deployment {body['models']['clip-text']['model_id']}" in error
        assert "did not reach fully_allocated within 1s" in error
        assert "state starting" in error and "0/1 allocations" in error


def test_destroy_refuses_clearly_when_an_unmanaged_pipeline_uses_the_model(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    body = model_stack(unique("ref"), unique("tiny-ref"))
    converge(tmp_path, es_target.url, body)
    model_id = body["models"]["clip-text"]["model_id"]
    pipeline = unique("hand-made")
    es.ingest.put_pipeline(
        id=pipeline,
        processors=[
            {"inference": {"model_id": model_id, "input_output": [{"input_field": "a", "output_field": "b"}]}}
        ],
    )
    cluster = connect(es_target.url)
    report = provisioning.apply(provisioning.destroy_plan(load(tmp_path, body), cluster), cluster)
    assert not report.ok
    assert "still used" in (report.failed[0].error or "") or "still referenced" in (
        report.failed[0].error or ""
    )
    es.ingest.delete_pipeline(id=pipeline)
    assert provisioning.apply(provisioning.destroy_plan(load(tmp_path, body), cluster), cluster).ok


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "hub-unreachable"])
def test_hub_source_fails_fast_pointing_at_source_path(
    es_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    if not offline:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    body = model_stack(unique("hub"), unique("tiny-hub"))
    body["models"]["clip-text"]["source"] = {"hub": "sentence-transformers/clip-ViT-B-32-multilingual-v1"}
    body["models"]["clip-text"]["dims"] = 512
    cluster = connect(es_target.url)
    started = time.monotonic()
    report = provisioning.apply(provisioning.plan(load(tmp_path, body), cluster), cluster)
    assert time.monotonic() - started < 15
    assert not report.ok
    error = report.failed[0].error or ""
    assert "models.clip-text.source.path" in error
    assert ("HF_HUB_OFFLINE" in error) if offline else ("cannot be reached" in error)


def test_rollover_flips_the_alias_without_downtime(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name, alias = unique("roll"), unique("clip-text") + "-live"
    v1, v2 = unique("tiny-v1"), unique("tiny-v2")
    body = model_stack(name, v1)
    body["models"]["clip-text"]["alias"] = alias
    body["index_templates"] = {
        f"{name}-t": {
            "index_patterns": [f"{name}-*"],
            "template": {
                "mappings": {
                    "properties": {"v": {"type": "dense_vector", "dims": 32}, "caption": {"type": "text"}}
                }
            },
        }
    }
    body["pipelines"] = {
        f"{name}-p": {
            "processors": [
                {
                    "inference": {
                        "model_id": alias,
                        "input_output": [{"input_field": "caption", "output_field": "v"}],
                    }
                }
            ]
        }
    }
    body["indices"] = {f"{name}-docs": {}}
    body["smoke_tests"] = {
        "en": {"index": f"{name}-docs", "field": "v", "text": "a red circle", "model": "clip-text", "k": 1}
    }
    converge(tmp_path, es_target.url, body)

    failures: list[str] = []
    calls = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal calls
        while not stop.is_set():
            try:
                es.ml.infer_trained_model(model_id=alias, docs=[{"text_field": "a red circle"}])
                calls += 1
            except ApiError as exc:
                failures.append(str(exc))
            time.sleep(0.02)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        rolled = copy.deepcopy(body)
        rolled["models"]["clip-text"]["model_id"] = v2
        stack = load(tmp_path, rolled)
        cluster = connect(es_target.url)
        plan = provisioning.plan(stack, cluster)
        assert [(c.action, c.address) for c in plan.changes] == [
            ("create", f"trained_model/{v2}"),
            ("create", f"deployment/{v2}"),
            ("update", f"model_alias/{alias}"),
            ("delete", f"deployment/{v1}"),
            ("delete", f"trained_model/{v1}"),
        ]
        assert provisioning.apply(plan, cluster, gate=provisioning.rollover_gate(stack, cluster)).ok
    finally:
        stop.set()
        thread.join(timeout=10)
    assert failures == [] and calls > 0
    target = es.ml.get_trained_models(model_id=alias).body["trained_model_configs"][0]["model_id"]
    assert target == v2
    assert es.options(ignore_status=404).ml.get_trained_models(model_id=v1).meta.status == 404
    stats = es.ml.get_trained_models_stats(model_id=v2).body["trained_model_stats"][0]["deployment_stats"]
    assert stats["state"] == "started"


def test_rollover_gate_keeps_the_old_model_when_smoke_tests_fail(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name, alias = unique("gate"), unique("clip-gate") + "-live"
    v1, v2 = unique("tiny-good"), unique("tiny-bad")
    body = model_stack(name, v1)
    body["models"]["clip-text"]["alias"] = alias
    body["index_templates"] = {
        f"{name}-t": {
            "index_patterns": [f"{name}-*"],
            "template": {
                "mappings": {
                    "properties": {"v": {"type": "dense_vector", "dims": 32}, "label": {"type": "keyword"}}
                }
            },
        }
    }
    body["indices"] = {f"{name}-docs": {}}
    body["smoke_tests"] = {
        "en": {
            "index": f"{name}-docs",
            "field": "v",
            "text": "a red circle",
            "model": "clip-text",
            "k": 1,
            "expect": {"top_1": {"field": "label", "value": "red circle"}},
        }
    }
    converge(tmp_path, es_target.url, body)
    # documents embedded by the good model: one per label
    labels = ["red circle", "blue star", "green triangle", "yellow square"]
    vectors = es.ml.infer_trained_model(model_id=v1, docs=[{"text_field": f"a {x}"} for x in labels]).body[
        "inference_results"
    ]
    for label, vec in zip(labels, vectors, strict=True):
        es.index(index=f"{name}-docs", document={"label": label, "v": vec["predicted_value"]})
    es.indices.refresh(index=f"{name}-docs")
    rolled = copy.deepcopy(body)
    rolled["models"]["clip-text"]["model_id"] = v2
    rolled["models"]["clip-text"]["source"] = {"path": str(untrained_text_model(tmp_path))}
    stack = load(tmp_path, rolled)
    cluster = connect(es_target.url)
    # converge puts the gate (the model's smoke tests) in front of the alias move by itself.
    converged = provisioning.converge(
        stack, cluster, provisioning.ConvergeOptions(skip_ingest=True, skip_verify=True)
    )
    assert converged.stopped_at == "apply" and converged.apply is not None
    report = converged.apply
    assert not report.ok
    assert report.failed[0].change.address == f"model_alias/{alias}"
    assert "alias still points at the previous model" in (report.failed[0].error or "")
    target = es.ml.get_trained_models(model_id=alias).body["trained_model_configs"][0]["model_id"]
    assert target == v1


def test_model_errors_are_provision_errors() -> None:
    assert issubclass(deployments.DeploymentError, ProvisionError)
