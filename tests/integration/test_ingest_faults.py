"""Ingest under faults: killed halfway with SIGKILL then rerun; a cluster that refuses 10% of bulk
items with 429 and answers 5% of requests with 503.

These need the sandbox (its fault injection), each in a private instance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from bench.ingest.corpus import small_jpeg
from bench.ingest.models import TINY_DIMS, save_tiny_clip
from bench.ingest.stacks import create_index, write_stack
from es_sandbox import Faults, SandboxServer
from provisioning.cluster import ConnectionOptions, build_client
from provisioning.image_ingest import run_ingest
from provisioning.stackfile import load_stack
from tests.conftest import sandbox_config
from tests.integration.interrupted_runs import ingest_process, kill_after

REPO = Path(__file__).resolve().parents[2]
FAST_BACKOFF = {"initial_backoff": 0.05, "max_backoff": 0.5, "max_retries": 10}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("model") / "tiny-clip")


def _photos(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"img_{i:03d}.jpg").write_bytes(small_jpeg(2000 + i))
    return [f"img_{i:03d}.jpg" for i in range(count)]


def _all_docs(client: Elasticsearch, index: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, query={"match_all": {}}, size=10_000, source=["relative_path"])
    return [hit["_source"] | {"_id": hit["_id"]} for hit in hits["hits"]["hits"]]


@pytest.fixture
def slow_sandbox() -> Iterator[SandboxServer]:
    """Every request takes 40 ms more: long enough an ingest run to kill it in the middle."""
    with SandboxServer(sandbox_config(faults=Faults(latency_ms=40))) as server:
        yield server


@pytest.mark.slow
def test_sigkill_in_the_middle_then_rerun_resumes_without_reembedding(
    slow_sandbox: SandboxServer, tiny_model: Path, tmp_path: Path
) -> None:
    client = Elasticsearch(slow_sandbox.url, request_timeout=30)
    index = "resume-after-kill"
    create_index(client, index, TINY_DIMS)
    names = _photos(tmp_path / "photos", 60)
    stack = write_stack(
        tmp_path / "stack.yaml",
        photos=tmp_path / "photos",
        model=tiny_model,
        index=index,
        dims=TINY_DIMS,
        batch_size=2,
        url=slow_sandbox.url,
        bulk={"chunk_size": 2},
    )

    killed = ingest_process(stack, slow_sandbox.url, tmp_path / "first.json")
    kill_after(killed, client, index, 4, within_s=120)
    time.sleep(0.5)  # a bulk request in flight when the client died still completes on the server
    before = {doc["relative_path"] for doc in _all_docs(client, index)}
    assert 0 < len(before) < len(names), "the kill did not land in the middle of the run"

    rerun = ingest_process(stack, slow_sandbox.url, tmp_path / "second.json")
    assert rerun.wait(300) == 0
    job = json.loads((tmp_path / "second.json").read_text())["jobs"][0]
    assert job["scanned"] == len(names)
    assert job["already_indexed"] == len(before)  # resumed: skipped before decoding...
    assert job["embedded"] == len(names) - len(before)  # ...so the encoder saw only the rest
    assert job["indexed"] == len(names) - len(before) and job["failed"] == 0

    docs = _all_docs(client, index)
    assert len(docs) == len(names)  # exactly one document per file
    assert sorted(doc["relative_path"] for doc in docs) == names
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("client_kind", ["provision-client", "bare-client-without-retries"])
def test_bulk_429s_and_request_503s_still_index_everything(
    client_kind: str, tiny_model: Path, tmp_path: Path
) -> None:
    faults = Faults(bulk_item_429_rate=0.1, request_503_rate=0.05, seed=11)
    with SandboxServer(sandbox_config(faults=faults)) as server:
        helper = build_client(ConnectionOptions(url=server.url, max_retries=10, retry_backoff_base=0.01))
        index = "faulty"
        create_index(helper, index, TINY_DIMS)
        names = _photos(tmp_path / "photos", 200)  # enough requests that some surely get a 503
        stack = load_stack(
            write_stack(
                tmp_path / "stack.yaml",
                photos=tmp_path / "photos",
                model=tiny_model,
                index=index,
                dims=TINY_DIMS,
                batch_size=2,
                url=server.url,
                bulk={**FAST_BACKOFF, "chunk_size": 2},
            )
        )
        if client_kind == "provision-client":
            client = build_client(ConnectionOptions(url=server.url))
        else:
            # No transport retries at all: whatever is retried, ingest retries itself.
            client = Elasticsearch(server.url, max_retries=0, retry_on_status=())
        server.state.log.clear()
        report = run_ingest(stack, client)
        job = report.jobs[0]
        assert report.ok
        assert (job.embedded, job.indexed, job.failed) == (len(names), len(names), 0)
        assert any(entry.status == 503 for entry in server.state.log.entries), "no 503 was injected"
        assert sorted(doc["relative_path"] for doc in _all_docs(helper, index)) == names
        client.close()
        helper.close()
