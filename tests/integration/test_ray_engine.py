"""The Ray engine against the local engine, on Ray in local mode (2 CPUs): the same documents (ids,
fields, vectors within 1e-5) and the same failures with the same reasons, on the quickstart's samples
and on a corpus of bad files; a driver killed midway and rerun ends with one document per image;
an export to Parquet followed by ``--from`` gives the index a direct ingest gives, across engines.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from bench.ingest.corpus import small_jpeg, write_bad_input_corpus
from bench.ingest.stacks import create_index, write_stack
from es_sandbox import Faults, SandboxServer
from provisioning.cluster import ConnectionOptions
from provisioning.image_ingest import run_ingest
from provisioning.image_ingest.exporting import export_embeddings
from provisioning.image_ingest.loading import run_load
from provisioning.image_ingest.report import IngestReport
from provisioning.stackfile import load_stack
from provisioning.stackfile.stack import Stack
from tests.conftest import sandbox_config
from tests.integration.interrupted_runs import count_documents, ingest_process, kill_after
from tests.integration.ray_support import ray_instance

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "examples" / "quickstart" / "samples"
TINY_CLIP = REPO / "models" / "tiny-clip" / "image"
DIMS = 32


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    yield from ray_instance()


def _stack(tmp_path: Path, photos: Path, index: str, url: str, **job: Any) -> Stack:
    path = write_stack(
        tmp_path / f"{index}.yaml",
        photos=photos,
        model=TINY_CLIP,
        index=index,
        dims=DIMS,
        batch_size=8,
        url=url,
        fields={"collection": "tests"},
        **job,
    )
    return load_stack(path)


def _index(es: Elasticsearch, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_index(es, name, DIMS)
    return name


def _docs(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"match_all": {}}, size=1000, source_exclude_vectors=False)["hits"][
        "hits"
    ]
    return {hit["_id"]: hit["_source"] for hit in hits}


def _same_documents(left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]) -> None:
    assert sorted(left) == sorted(right)
    for doc_id, doc in left.items():
        other = right[doc_id]
        assert {k: v for k, v in doc.items() if k != "image_embedding"} == {
            k: v for k, v in other.items() if k != "image_embedding"
        }, doc_id
        np.testing.assert_allclose(doc["image_embedding"], other["image_embedding"], atol=1e-5, rtol=0)


def _failures(report: IngestReport) -> list[tuple[str, str, str, str]]:
    return sorted((f.relative_path, f.stage, f.kind, f.reason) for f in report.jobs[0].failures)


def _counts(report: IngestReport) -> dict[str, Any]:
    job = report.to_dict()["jobs"][0]
    keep = ("scanned", "already_indexed", "duplicates", "embedded", "indexed", "failed", "over_tolerance")
    return {key: job[key] for key in keep} | {"ok": report.ok}


def _run(stack: Stack, url: str, engine: str, **kwargs: Any) -> IngestReport:
    client = Elasticsearch(url, request_timeout=60)
    try:
        return run_ingest(
            stack,
            client,
            engine=engine,
            connection=ConnectionOptions(url=url),
            **kwargs,  # type: ignore[arg-type]
        )
    finally:
        client.close()


@pytest.mark.slow
def test_quickstart_samples_give_the_local_engines_documents(
    ray_address: str, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    local_index, ray_index = _index(es, "ray-local"), _index(es, "ray-ray")
    local = _run(_stack(tmp_path, SAMPLES, local_index, es_target.url), es_target.url, "local")
    ray = _run(_stack(tmp_path, SAMPLES, ray_index, es_target.url), es_target.url, "ray")
    assert ray.ok and local.ok
    assert _counts(ray) == _counts(local)
    assert ray.jobs[0].indexed == 84 and ray.jobs[0].engine == "ray"
    assert ray.jobs[0].encoder_batches >= 84 // 8
    assert [e.name for e in ray.encoders] == ["clip"] and ray.encoders[0].fingerprint is not None
    assert ray.jobs[0].vectors == local.jobs[0].vectors
    _same_documents(_docs(es, local_index), _docs(es, ray_index))

    again = _run(_stack(tmp_path, SAMPLES, ray_index, es_target.url), es_target.url, "ray")
    assert _counts(again) == {**_counts(local), "already_indexed": 84, "embedded": 0, "indexed": 0}


@pytest.mark.slow
def test_bad_files_fail_alike_with_the_same_reasons(
    ray_address: str, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    cases = write_bad_input_corpus(photos)
    (photos / "ok" / "copy-of-plain.jpg").write_bytes((photos / "ok" / "plain.jpg").read_bytes())
    local_index, ray_index = _index(es, "bad-local"), _index(es, "bad-ray")
    local = _run(_stack(tmp_path, photos, local_index, es_target.url), es_target.url, "local")
    ray = _run(_stack(tmp_path, photos, ray_index, es_target.url), es_target.url, "ray")
    bad = sorted(case.relative_path for case in cases if not case.embeddable)
    assert sorted(f[0] for f in _failures(local)) == bad
    assert _failures(ray) == _failures(local)
    assert _counts(ray) == _counts(local)
    assert ray.jobs[0].duplicates == 1 and not ray.ok  # max_failed 0: the bad files fail the run
    _same_documents(_docs(es, local_index), _docs(es, ray_index))


@pytest.mark.slow
@pytest.mark.parametrize(("exporter", "loader"), [("ray", "local"), ("local", "ray")])
def test_export_then_from_gives_the_index_of_a_direct_ingest(
    exporter: str, loader: str, ray_address: str, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    direct_index, loaded_index = _index(es, "direct"), _index(es, "loaded")
    direct = _run(_stack(tmp_path, SAMPLES, direct_index, es_target.url), es_target.url, "local")
    shards = tmp_path / "shards"
    exported = export_embeddings(
        _stack(tmp_path, SAMPLES, loaded_index, "http://127.0.0.1:9"),
        shards,
        engine=exporter,  # type: ignore[arg-type]
    )
    job = exported.jobs[0]
    assert exported.ok and job.mode == "export" and job.indexed == 84 and job.engine == exporter
    assert list((shards / "photos").glob("*.parquet"))
    client = Elasticsearch(es_target.url, request_timeout=60)
    stack = _stack(tmp_path, SAMPLES, loaded_index, es_target.url)
    loaded = run_load(stack, client, shards, engine=loader, connection=ConnectionOptions(url=es_target.url))  # type: ignore[arg-type]
    assert loaded.ok, loaded.to_dict()
    assert _counts(loaded)["indexed"] == 84 and loaded.jobs[0].mode == "load"
    _same_documents(_docs(es, direct_index), _docs(es, loaded_index))
    assert direct.jobs[0].vectors == loaded.jobs[0].vectors
    again = run_load(stack, client, shards, engine=loader, connection=ConnectionOptions(url=es_target.url))  # type: ignore[arg-type]
    assert again.jobs[0].already_indexed == 84 and again.jobs[0].indexed == 0
    client.close()


@pytest.fixture
def slow_sandbox() -> Iterator[SandboxServer]:
    """Every request takes 40 ms more: long enough a run to kill its driver in the middle."""
    with SandboxServer(sandbox_config(faults=Faults(latency_ms=40))) as server:
        yield server


@pytest.mark.slow
def test_driver_killed_midway_then_rerun_leaves_one_document_per_image(
    ray_address: str, slow_sandbox: SandboxServer, tmp_path: Path
) -> None:
    client = Elasticsearch(slow_sandbox.url, request_timeout=30)
    index = "ray-resume-after-kill"
    create_index(client, index, DIMS)
    photos = tmp_path / "photos"
    photos.mkdir()
    names = [f"img_{i:03d}.jpg" for i in range(60)]
    for i, name in enumerate(names):
        (photos / name).write_bytes(small_jpeg(3000 + i))
    stack = write_stack(
        tmp_path / "stack.yaml",
        photos=photos,
        model=TINY_CLIP,
        index=index,
        dims=DIMS,
        batch_size=2,
        url=slow_sandbox.url,
        bulk={"chunk_size": 2},
    )
    ray_args = ("--engine", "ray", "--ray-address", ray_address)
    killed = ingest_process(
        stack, slow_sandbox.url, tmp_path / "first.json", *ray_args, RAY_AUTH_MODE="disabled"
    )
    kill_after(killed, client, index, 4, within_s=240)
    time.sleep(3)  # Ray ends the dead driver's workers; a bulk request in flight still completes
    before = count_documents(client, index)
    assert 0 < before < len(names), "the kill did not land in the middle of the run"

    rerun = ingest_process(
        stack, slow_sandbox.url, tmp_path / "second.json", *ray_args, RAY_AUTH_MODE="disabled"
    )
    assert rerun.wait(400) == 0, (tmp_path / "second.json").read_text()
    job = json.loads((tmp_path / "second.json").read_text())["jobs"][0]
    assert job["engine"] == "ray" and job["scanned"] == len(names)
    assert job["already_indexed"] >= before  # resumed: skipped before decoding...
    assert job["embedded"] == len(names) - job["already_indexed"]  # ...so only the rest was embedded
    assert job["failed"] == 0
    client.indices.refresh(index=index)
    hits = client.search(index=index, query={"match_all": {}}, size=1000, source=["relative_path"])["hits"][
        "hits"
    ]
    assert sorted(hit["_source"]["relative_path"] for hit in hits) == names  # one document per image
    client.close()


def test_decoding_runs_in_tasks_of_its_own_and_blocks_are_one_encoder_batch(
    ray_address: str, es_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ray Data fuses a task stage into the actor stage after it when their resources are equal: the
    encoder actors would then decode too, their forward-pass threads idle meanwhile. And the listing's
    blocks are what reaches the sink at once: one encoder batch each, so documents arrive as the job
    goes (a single block of the whole listing made the first document wait for the last)."""
    import ray

    from provisioning.image_ingest import ray_engine, ray_stages
    from provisioning.image_ingest.sinks import ElasticsearchSink

    stack = _stack(tmp_path, SAMPLES, "plan-only", es_target.url)
    job = stack.spec.ingest["photos"]
    spec = stack.spec.encoders[job.encoder]
    listing = [{"relative_path": p.relative_to(SAMPLES).as_posix()} for p in sorted(SAMPLES.rglob("*.jpg"))]
    assert len(listing) == 84
    dataset = ray_engine._ingest_dataset(
        ray,
        stack,
        "photos",
        job,
        ElasticsearchSink(job.index, job.bulk, connection=ConnectionOptions(url=es_target.url)),
        listing,
        ray_stages.encoder_preparation(job.encoder, spec, stack.base_dir),
        ray_engine.vectors_fingerprint(stack, job.encoder),
        full=False,
        prune=False,
    )
    dataset.explain()
    optimized = capsys.readouterr().out.split("Physical Plan (Optimized)")[-1]
    assert "TaskPoolMapOperator[MapBatches(decode)]" in optimized, optimized
    assert "ActorPoolMapOperator[MapBatches(EncodeActor)]" in optimized, optimized
    blocks = ray_engine._listing_dataset(ray, listing, 8)
    assert blocks.num_blocks() == 11  # ceil(84 / 8)
    assert [row["relative_path"] for row in blocks.take_all()] == [row["relative_path"] for row in listing]
