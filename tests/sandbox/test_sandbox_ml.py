"""Machine learning on the target cluster: trained models, deployments, ``_infer`` and ``_inference``.

The model is a tiny random-weight sentence-transformers model (BERT, hidden 32, 2 layers, mean
pooling, Dense to 16) built in a temporary folder, traced by eland's ``TransformerModel`` and
uploaded with eland's ``PyTorchModel``, unmodified, as users upload models to Elasticsearch. What
comes back from ``_infer`` must equal what sentence-transformers computes locally (max abs diff
< 1e-4), which checks the sandbox's tokenizer (built from the uploaded vocabulary and the recorded
tokenization config) and its TorchScript call together.

Everything here runs against any target (``--es``); tests of sandbox-only knobs (ML memory, the
deployment delays) start a private sandbox and skip on other targets. ML needs a platinum or
trial license: tests start a trial where the cluster is on basic, as a user would.
"""

from __future__ import annotations

import base64
import json
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elasticsearch import ApiError, Elasticsearch

from es_sandbox import SandboxServer
from tests.conftest import Target, sandbox_config

HIDDEN = 32
EMBED = 16
MAX_LEN = 48
WORDS = [
    "the",
    "a",
    "an",
    "red",
    "blue",
    "green",
    "yellow",
    "circle",
    "square",
    "triangle",
    "star",
    "on",
    "in",
    "of",
    "and",
    "with",
    "mountain",
    "snow",
    "rose",
    "cat",
    "dog",
    "photo",
    "picture",
    "is",
    "big",
    "small",
    "covered",
    "flower",
    "sky",
    "über",
    "café",
]
TEXTS = [
    "A red circle on the snow!",
    "Über café: the BIG dog's photo, with a rose",
    "xyzzy qqq 12345",
    "mountain " * 60,  # longer than max_sequence_length: truncated the same way on both sides
]


@dataclass(frozen=True)
class Traced:
    """A model traced by eland: the files ``PyTorchModel.import_model`` uploads, and its source."""

    source: Path
    model_path: str
    vocab_path: str
    config: Any  # eland NlpTrainedModelConfig


def _build_sentence_transformer(folder: Path) -> Path:
    """A deterministic random-weight BERT sentence-transformers model with a WordPiece vocab."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    raw = folder / "bert"
    raw.mkdir(parents=True)
    pieces = [f"##{c}" for c in string.ascii_lowercase] + ["##s", "##ed", "##ing", "##er"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *string.ascii_lowercase, *string.digits]
    vocab += [*pieces, *".,!?'-:()"]
    (raw / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizer(str(raw / "vocab.txt"), do_lower_case=True, model_max_length=MAX_LEN)  # type: ignore[no-untyped-call]
    torch.manual_seed(0)
    config = BertConfig(  # type: ignore[no-untyped-call]
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(raw)  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(raw)
    st = SentenceTransformer(
        modules=[
            models.Transformer(str(raw), max_seq_length=MAX_LEN),
            models.Pooling(HIDDEN, "mean"),
            models.Dense(HIDDEN, EMBED),
        ]
    )
    out = folder / "st"
    st.save(str(out))
    return out


@pytest.fixture(scope="session")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    from eland.ml.pytorch.transformers import TransformerModel

    folder = tmp_path_factory.mktemp("tiny-st")
    source = _build_sentence_transformer(folder)
    model = TransformerModel(
        model_id=str(source),
        task_type="text_embedding",
        es_version=(9, 2, 0),
        quantize=False,
        max_model_input_size=MAX_LEN,
    )
    out = folder / "traced"
    out.mkdir()
    model_path, config, vocab_path = model.save(str(out))
    return Traced(source, model_path, vocab_path, config)


@pytest.fixture(scope="session")
def local_embeddings(traced: Traced) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(traced.source), device="cpu")
    return np.asarray(st.encode(TEXTS, convert_to_numpy=True))


def ensure_trial(es: Elasticsearch) -> None:
    """ML needs platinum or a trial; start a trial on a basic cluster, as a user would."""
    if es.license.get()["license"]["type"] == "basic":
        es.license.post_start_trial(acknowledge=True)


@pytest.fixture
def ml(es: Elasticsearch) -> Elasticsearch:
    ensure_trial(es)
    return es


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def import_model(es: Elasticsearch, traced: Traced, model_id: str) -> None:
    from eland.ml.pytorch import PyTorchModel

    PyTorchModel(es, model_id).import_model(
        model_path=traced.model_path, config_path=None, vocab_path=traced.vocab_path, config=traced.config
    )


@pytest.fixture
def cleanup(ml: Elasticsearch) -> Iterator[list[str]]:
    """Model ids (and inference endpoints, prefixed ``endpoint:``) to remove after the test."""
    created: list[str] = []
    yield created
    for name in reversed(created):
        if name.startswith("endpoint:"):
            ml.options(ignore_status=404).inference.delete(inference_id=name.split(":", 1)[1], force=True)
        else:
            ml.options(ignore_status=404).ml.delete_trained_model(model_id=name, force=True)


def stats_of(es: Elasticsearch, model_id: str, deployment_id: str | None = None) -> dict[str, Any]:
    for entry in es.ml.get_trained_models_stats(model_id=model_id)["trained_model_stats"]:
        deployment = entry.get("deployment_stats")
        if deployment and deployment["deployment_id"] == (deployment_id or model_id):
            return dict(deployment)
    raise AssertionError(f"no deployment stats for {deployment_id or model_id}")


def error_of(exc: ApiError) -> dict[str, Any]:
    body = exc.body if isinstance(exc.body, dict) else {}
    return dict(body.get("error", {}))


# ---------------------------------------------------------------------------------------------


def test_eland_upload_start_infer_matches_sentence_transformers(
    ml: Elasticsearch, traced: Traced, local_embeddings: np.ndarray, cleanup: list[str]
) -> None:
    from eland.ml.pytorch import PyTorchModel

    model_id = unique("tiny-text")
    cleanup.append(model_id)
    model = PyTorchModel(ml, model_id)
    model.import_model(
        model_path=traced.model_path, config_path=None, vocab_path=traced.vocab_path, config=traced.config
    )
    assert model_id in PyTorchModel.list(ml)

    config = ml.ml.get_trained_models(model_id=model_id, include="definition_status")[
        "trained_model_configs"
    ][0]
    assert config["fully_defined"] is True
    assert config["model_size_bytes"] == Path(traced.model_path).stat().st_size
    tokenization = config["inference_config"]["text_embedding"]["tokenization"]["bert"]
    assert tokenization["do_lower_case"] is True
    assert tokenization["max_sequence_length"] == MAX_LEN

    model.start()
    result = model.infer(docs=[{"text_field": text} for text in TEXTS])
    got = np.asarray([r["predicted_value"] for r in result["inference_results"]])
    assert got.shape == (len(TEXTS), EMBED)
    assert float(np.abs(got - local_embeddings).max()) < 1e-4
    assert result["inference_results"][-1].get("is_truncated") is True

    stats = stats_of(ml, model_id)
    assert stats["inference_count"] == len(TEXTS)
    assert stats["allocation_status"]["state"] == "fully_allocated"
    model.stop()
    model.delete()
    with pytest.raises(ApiError) as missing:
        ml.ml.get_trained_models(model_id=model_id)
    assert missing.value.status_code == 404


def test_infer_errors_like_elasticsearch(ml: Elasticsearch, traced: Traced, cleanup: list[str]) -> None:
    model_id = unique("tiny-errors")
    cleanup.append(model_id)
    import_model(ml, traced, model_id)
    with pytest.raises(ApiError) as not_deployed:
        ml.ml.infer_trained_model(model_id=model_id, docs=[{"text_field": "a"}])
    assert not_deployed.value.status_code == 409
    assert "must be deployed to use" in error_of(not_deployed.value)["reason"]

    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="started")
    with pytest.raises(ApiError) as wrong_field:
        ml.ml.infer_trained_model(model_id=model_id, docs=[{"text": "a"}])
    assert wrong_field.value.status_code == 400
    assert (
        error_of(wrong_field.value)["reason"]
        == "Input field [text_field] does not exist in the request document"
    )

    with pytest.raises(ApiError) as missing:
        ml.ml.infer_trained_model(model_id=unique("nope"), docs=[{"text_field": "a"}])
    assert missing.value.status_code == 404


def test_tokenization_settings_are_honoured(ml: Elasticsearch, traced: Traced, cleanup: list[str]) -> None:
    """``truncate: none`` refuses a long input instead of cutting it, as Elasticsearch's tokenizer does."""
    model_id = unique("tiny-strict")
    cleanup.append(model_id)
    config = traced.config.to_dict()
    config["inference_config"]["text_embedding"]["tokenization"]["bert"].update(
        truncate="none", max_sequence_length=8
    )
    ml.ml.put_trained_model(model_id=model_id, **config)
    data = Path(traced.model_path).read_bytes()
    half = len(data) // 2
    for part, chunk in enumerate((data[:half], data[half:])):
        ml.ml.put_trained_model_definition_part(
            model_id=model_id,
            part=part,
            definition=base64.b64encode(chunk).decode(),
            total_definition_length=len(data),
            total_parts=2,
        )
    vocabulary = json.loads(Path(traced.vocab_path).read_text())
    ml.ml.put_trained_model_vocabulary(model_id=model_id, vocabulary=vocabulary["vocabulary"])
    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="started")
    short = ml.ml.infer_trained_model(model_id=model_id, docs=[{"text_field": "red snow"}])
    assert len(short["inference_results"][0]["predicted_value"]) == EMBED
    with pytest.raises(ApiError) as too_long:
        ml.ml.infer_trained_model(model_id=model_id, docs=[{"text_field": "snow " * 20}])
    assert too_long.value.status_code == 400
    assert error_of(too_long.value)["reason"] == (
        "Input too large. The tokenized input length [22] exceeds the maximum sequence length [8]"
    )


def test_license_refusal_then_trial(es_target: Target, traced: Traced) -> None:
    server = _private_sandbox(es_target, license="basic")
    try:
        _check_license_refusal(Elasticsearch(server.url), traced)
    finally:
        server.stop()


def _check_license_refusal(es: Elasticsearch, traced: Traced) -> None:
    assert es.license.get()["license"]["type"] == "basic"
    with pytest.raises(ApiError) as refused:
        import_model(es, traced, "licensed")
    assert refused.value.status_code == 403
    error = error_of(refused.value)
    assert error["type"] == "security_exception"
    assert error["reason"] == "current license is non-compliant for [ml]"
    assert error["license.expired.feature"] == "ml"

    es.license.post_start_trial(acknowledge=True)
    import_model(es, traced, "licensed")
    started = es.ml.start_trained_model_deployment(model_id="licensed", wait_for="started")
    assert started["assignment"]["assignment_state"] == "started"


def _private_sandbox(es_target: Target, **overrides: object) -> SandboxServer:
    """A sandbox configured for one test (license, ML memory, delays); only on the sandbox target."""
    if es_target.kind != "sandbox":
        pytest.skip("configures a private sandbox (license, ML memory, deployment delays)")
    return SandboxServer(sandbox_config(**{"license": "trial", **overrides})).start()


def test_memory_refusal(es_target: Target, traced: Traced) -> None:
    server = _private_sandbox(es_target, ml_memory_bytes=300 * 1024 * 1024)
    try:
        es = Elasticsearch(server.url)
        import_model(es, traced, "fits")
        import_model(es, traced, "does-not-fit")
        es.ml.start_trained_model_deployment(model_id="fits", wait_for="started")  # 240MB + 2 x size + 30MB
        with pytest.raises(ApiError) as refused:
            es.ml.start_trained_model_deployment(model_id="does-not-fit")
        assert refused.value.status_code == 429
        error = error_of(refused.value)
        assert error["type"] == "status_exception"
        assert (
            error["reason"]
            == "Could not start deployment because no ML nodes with sufficient capacity were found"
        )
        cause = error["caused_by"]["reason"]
        assert cause.startswith(
            "Could not start deployment because no suitable nodes were found, allocation explanation"
        )
        assert (
            "This node has insufficient available memory. Available memory for ML [314572800 (300mb)]"
            in cause
        )
        assert (
            es.ml.get_trained_models_stats(model_id="does-not-fit")["trained_model_stats"][0].get(
                "deployment_stats"
            )
            is None
        )
    finally:
        server.stop()


def test_state_transitions_and_wait_for(es_target: Target, traced: Traced) -> None:
    server = _private_sandbox(es_target, deployment_start_delay_s=0.4, allocation_delay_s=0.4)
    try:
        es = Elasticsearch(server.url)
        import_model(es, traced, "two")
        began = time.monotonic()
        starting = es.ml.start_trained_model_deployment(
            model_id="two", number_of_allocations=2, wait_for="starting"
        )
        assert starting["assignment"]["assignment_state"] == "starting"
        assert stats_of(es, "two")["allocation_status"] == {
            "allocation_count": 0,
            "target_allocation_count": 2,
            "state": "starting",
        }
        with pytest.raises(ApiError) as not_yet:
            es.ml.infer_trained_model(model_id="two", docs=[{"text_field": "a"}])
        assert not_yet.value.status_code == 409
        while stats_of(es, "two")["allocation_status"]["state"] == "starting":
            time.sleep(0.05)
        assert stats_of(es, "two")["allocation_status"]["state"] == "started"
        assert stats_of(es, "two")["allocation_status"]["allocation_count"] == 1
        es.ml.stop_trained_model_deployment(model_id="two")

        began = time.monotonic()
        full = es.ml.start_trained_model_deployment(
            model_id="two", number_of_allocations=2, wait_for="fully_allocated"
        )
        assert time.monotonic() - began >= 0.75
        assert (
            full["assignment"]["routing_table"][next(iter(full["assignment"]["routing_table"]))][
                "current_allocations"
            ]
            == 2
        )
        assert stats_of(es, "two")["allocation_status"]["state"] == "fully_allocated"
    finally:
        server.stop()


def test_start_timeout_answers_408_and_keeps_starting(es_target: Target, traced: Traced) -> None:
    server = _private_sandbox(es_target, deployment_start_delay_s=1.0, allocation_delay_s=0.1)
    try:
        es = Elasticsearch(server.url)
        import_model(es, traced, "slow")
        with pytest.raises(ApiError) as timed_out:
            es.ml.start_trained_model_deployment(model_id="slow", wait_for="started", timeout="200ms")
        assert timed_out.value.status_code == 408
        error = error_of(timed_out.value)
        assert error["reason"].startswith(
            "Timed out after [200ms] waiting for trained model deployment [slow] to start."
        )
        assert stats_of(es, "slow")["state"] == "starting"
        time.sleep(1.0)
        assert stats_of(es, "slow")["state"] == "started"
    finally:
        server.stop()


def test_delete_refused_while_deployed_or_referenced(
    ml: Elasticsearch, traced: Traced, cleanup: list[str]
) -> None:
    model_id = unique("tiny-delete")
    pipeline = unique("embed-pipeline")
    cleanup.append(model_id)
    import_model(ml, traced, model_id)
    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="started")
    with pytest.raises(ApiError) as deployed:
        ml.ml.delete_trained_model(model_id=model_id)
    assert deployed.value.status_code == 409
    assert error_of(deployed.value)["reason"] == (
        f"Cannot delete model [{model_id}] as it is currently deployed; use force to delete the model"
    )

    ml.ingest.put_pipeline(
        id=pipeline,
        processors=[
            {
                "inference": {
                    "model_id": model_id,
                    "input_output": [{"input_field": "caption", "output_field": "caption_embedding"}],
                }
            }
        ],
    )
    try:
        assert (
            ml.ml.get_trained_models_stats(model_id=model_id)["trained_model_stats"][0]["pipeline_count"] == 1
        )
        with pytest.raises(ApiError) as stop_refused:
            ml.ml.stop_trained_model_deployment(model_id=model_id)
        assert stop_refused.value.status_code == 409
        ml.ml.stop_trained_model_deployment(model_id=model_id, force=True)
        with pytest.raises(ApiError) as referenced:
            ml.ml.delete_trained_model(model_id=model_id)
        assert referenced.value.status_code == 409
        assert error_of(referenced.value)["reason"] == (
            f"Cannot delete model [{model_id}] as it is still referenced by ingest processors; use force to delete the model"
        )
    finally:
        ml.ingest.delete_pipeline(id=pipeline)
    ml.ml.delete_trained_model(model_id=model_id)


def test_aliases_and_reassignment(ml: Elasticsearch, traced: Traced, cleanup: list[str]) -> None:
    old, new = unique("tiny-old"), unique("tiny-new")
    alias = unique("tiny-alias") + "x"  # aliases may not end in a digit
    cleanup.extend([old, new])
    import_model(ml, traced, old)
    import_model(ml, traced, new)
    ml.ml.start_trained_model_deployment(model_id=old, wait_for="started")
    ml.ml.put_trained_model_alias(model_id=old, model_alias=alias)
    got = ml.ml.get_trained_models(model_id=alias)["trained_model_configs"][0]
    assert got["model_id"] == old
    assert got["metadata"]["model_aliases"] == [alias]
    by_alias = ml.ml.infer_trained_model(model_id=alias, docs=[{"text_field": "snow"}])
    assert len(by_alias["inference_results"][0]["predicted_value"]) == EMBED

    with pytest.raises(ApiError) as exists:
        ml.ml.put_trained_model_alias(model_id=new, model_alias=alias)
    assert exists.value.status_code == 400
    with pytest.raises(ApiError) as undeployed:
        ml.ml.put_trained_model_alias(model_id=new, model_alias=alias, reassign=True)
    assert "as it is not yet deployed" in error_of(undeployed.value)["reason"]

    ml.ml.start_trained_model_deployment(model_id=new, wait_for="fully_allocated")
    ml.ml.put_trained_model_alias(model_id=new, model_alias=alias, reassign=True)
    assert ml.ml.get_trained_models(model_id=alias)["trained_model_configs"][0]["model_id"] == new
    with pytest.raises(ApiError) as wrong_model:
        ml.ml.delete_trained_model_alias(model_id=old, model_alias=alias)
    assert wrong_model.value.status_code == 400
    ml.ml.delete_trained_model_alias(model_id=new, model_alias=alias)
    with pytest.raises(ApiError) as gone:
        ml.ml.get_trained_models(model_id=alias)
    assert gone.value.status_code == 404


def test_update_allocations(ml: Elasticsearch, traced: Traced, cleanup: list[str]) -> None:
    model_id = unique("tiny-update")
    cleanup.append(model_id)
    import_model(ml, traced, model_id)
    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="fully_allocated")
    updated = ml.ml.update_trained_model_deployment(model_id=model_id, number_of_allocations=2)
    assert updated["assignment"]["task_parameters"]["number_of_allocations"] == 2
    deadline = time.monotonic() + 30
    while stats_of(ml, model_id)["allocation_status"]["state"] != "fully_allocated":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stats_of(ml, model_id)["allocation_status"]["allocation_count"] == 2

    with pytest.raises(ApiError) as both:
        ml.ml.update_trained_model_deployment(
            model_id=model_id, number_of_allocations=1, adaptive_allocations={"enabled": True}
        )
    assert both.value.status_code == 400
    adaptive = ml.ml.update_trained_model_deployment(
        model_id=model_id, adaptive_allocations={"enabled": True, "min_number_of_allocations": 1}
    )
    assert adaptive["assignment"]["adaptive_allocations"]["enabled"] is True
    with pytest.raises(ApiError) as missing:
        ml.ml.update_trained_model_deployment(model_id=unique("nope"), number_of_allocations=1)
    assert missing.value.status_code == 404


def test_inference_endpoint_crud_and_infer(
    ml: Elasticsearch, traced: Traced, local_embeddings: np.ndarray, cleanup: list[str]
) -> None:
    model_id, endpoint = unique("tiny-endpoint-model"), unique("tiny-endpoint")
    cleanup.extend([model_id, f"endpoint:{endpoint}"])
    import_model(ml, traced, model_id)
    created = ml.inference.put(
        task_type="text_embedding",
        inference_id=endpoint,
        inference_config={
            "service": "elasticsearch",
            "service_settings": {"model_id": model_id, "num_allocations": 1, "num_threads": 1},
        },
    )
    assert created["inference_id"] == endpoint
    assert created["task_type"] == "text_embedding"
    assert created["service_settings"]["dimensions"] == EMBED
    assert created["service_settings"]["model_id"] == model_id
    assert stats_of(ml, model_id, endpoint)["state"] == "started"

    listed = ml.inference.get(inference_id=endpoint)["endpoints"]
    assert [e["inference_id"] for e in listed] == [endpoint]
    result = ml.inference.inference(task_type="text_embedding", inference_id=endpoint, input=TEXTS[:2])
    got = np.asarray([item["embedding"] for item in result["text_embedding"]])
    assert float(np.abs(got - local_embeddings[:2]).max()) < 1e-4

    with pytest.raises(ApiError) as wrong_task:
        ml.inference.get(task_type="sparse_embedding", inference_id=endpoint)
    assert wrong_task.value.status_code == 400

    ml.inference.delete(inference_id=endpoint)
    with pytest.raises(ApiError) as gone:
        ml.inference.get(inference_id=endpoint)
    assert gone.value.status_code == 404
    assert error_of(gone.value)["reason"] == f"Inference endpoint not found [{endpoint}]"
    assert all(
        "deployment_stats" not in s
        for s in ml.ml.get_trained_models_stats(model_id=model_id)["trained_model_stats"]
    )


def test_inference_endpoint_on_existing_deployment(
    ml: Elasticsearch, traced: Traced, cleanup: list[str]
) -> None:
    model_id, endpoint = unique("tiny-attach-model"), unique("tiny-attach")
    cleanup.extend([model_id, f"endpoint:{endpoint}"])
    import_model(ml, traced, model_id)
    ml.ml.start_trained_model_deployment(model_id=model_id, wait_for="started")
    created = ml.inference.put(
        task_type="text_embedding",
        inference_id=endpoint,
        inference_config={"service": "elasticsearch", "service_settings": {"deployment_id": model_id}},
    )
    assert created["service_settings"]["deployment_id"] == model_id
    assert created["service_settings"]["num_threads"] == 1
    with pytest.raises(ApiError) as missing:
        ml.inference.put(
            task_type="text_embedding",
            inference_id=unique("tiny-nodeploy"),
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"deployment_id": unique("nope")},
            },
        )
    assert missing.value.status_code == 404
    ml.inference.delete(inference_id=endpoint)
    assert stats_of(ml, model_id)["state"] == "started"  # an attached endpoint leaves the deployment running


# ---------------------------------------------------------------------------------------------
# Sandbox-only: the contracts with the rest of the sandbox (pipelines, persistence)


def test_pipelines_in_sandbox_state_block_delete(
    sandbox: SandboxServer, ml: Elasticsearch, traced: Traced
) -> None:
    """The ingest area keeps pipelines in ``state.parts["pipelines"]``; references count from there."""
    model_id, alias = unique("tiny-ref"), unique("tiny-ref-alias") + "x"
    import_model(ml, traced, model_id)
    ml.ml.put_trained_model_alias(model_id=model_id, model_alias=alias)
    pipelines = sandbox.state.part("pipelines", dict)
    pipeline_id = unique("nested")
    processor = {"inference": {"model_id": alias, "target_field": "ml"}}
    with sandbox.state.lock:
        pipelines[pipeline_id] = {"processors": [{"foreach": {"field": "items", "processor": processor}}]}
    try:
        assert (
            ml.ml.get_trained_models_stats(model_id=model_id)["trained_model_stats"][0]["pipeline_count"] == 1
        )
        with pytest.raises(ApiError) as refused:
            ml.ml.delete_trained_model(model_id=model_id)
        assert error_of(refused.value)["reason"] == (
            f"Cannot delete model [{model_id}] as it has a model_alias [{alias}] that is still referenced by ingest "
            "processors; use force to delete the model"
        )
        with pytest.raises(ApiError) as alias_refused:
            ml.ml.delete_trained_model_alias(model_id=model_id, model_alias=alias)
        assert alias_refused.value.status_code == 409
    finally:
        with sandbox.state.lock:
            pipelines.pop(pipeline_id, None)
    ml.ml.delete_trained_model(model_id=model_id)
    with pytest.raises(ApiError) as alias_gone:
        ml.ml.get_trained_models(model_id=alias)
    assert alias_gone.value.status_code == 404


def test_state_survives_restart(es_target: Target, traced: Traced, tmp_path: Path) -> None:
    """``--data DIR``: models, definitions, aliases, deployments and endpoints come back after a restart."""
    if es_target.kind != "sandbox":
        pytest.skip("restarts a private sandbox with a data folder")
    config = sandbox_config(license="trial", data_dir=tmp_path / "data")
    with SandboxServer(config) as first:
        es = Elasticsearch(first.url)
        import_model(es, traced, "kept")
        es.ml.put_trained_model_alias(model_id="kept", model_alias="kept-alias")
        es.ml.start_trained_model_deployment(model_id="kept", wait_for="started")
        es.inference.put(
            task_type="text_embedding",
            inference_id="kept-endpoint",
            inference_config={"service": "elasticsearch", "service_settings": {"deployment_id": "kept"}},
        )
        before = es.ml.infer_trained_model(model_id="kept-alias", docs=[{"text_field": TEXTS[0]}])
    with SandboxServer(sandbox_config(license="trial", data_dir=tmp_path / "data")) as second:
        es = Elasticsearch(second.url)
        assert (
            es.ml.get_trained_models(model_id="kept-alias")["trained_model_configs"][0]["model_id"] == "kept"
        )
        deadline = time.monotonic() + 10
        while stats_of(es, "kept")["state"] != "started":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert stats_of(es, "kept").get("inference_count") is None  # counters restart with the process
        after = es.ml.infer_trained_model(model_id="kept", docs=[{"text_field": TEXTS[0]}])
        assert after["inference_results"] == before["inference_results"]
        embedded = es.inference.inference(inference_id="kept-endpoint", input=TEXTS[0])["text_embedding"][0]
        assert embedded["embedding"] == before["inference_results"][0]["predicted_value"]
