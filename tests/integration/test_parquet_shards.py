"""Embed once, load many times, on the local engine: ``--export`` writes Parquet shards without a
cluster and resumes; ``--from`` refuses shards whose dims or encoder do not fit, with the reason, and
writes nothing then; the command line's exit codes and messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from elasticsearch import Elasticsearch

from bench.ingest.corpus import small_jpeg
from bench.ingest.models import TINY_DIMS, save_tiny_clip
from bench.ingest.stacks import create_index, write_stack
from provisioning.image_ingest import run_ingest
from provisioning.image_ingest.encoder_record import EncoderMismatchError
from provisioning.image_ingest.exporting import export_embeddings
from provisioning.image_ingest.loading import run_load
from provisioning.image_ingest.shards import ShardError, read_meta
from provisioning.stackfile import load_stack
from provisioning.stackfile.stack import Stack

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "http://127.0.0.1:9"  # nothing listens: an export must not need a cluster
WIDE_MODEL, WIDE_DIMS = REPO / "models" / "tiny-clip" / "image", 32  # another encoder, other dims


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("models")
    return save_tiny_clip(base / "a", seed=0), save_tiny_clip(base / "b", seed=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(10):
        (folder / f"img_{i:02d}.jpg").write_bytes(small_jpeg(4000 + i))
    return folder


def _stack(tmp_path: Path, photos: Path, model: Path, index: str, url: str, dims: int = TINY_DIMS) -> Stack:
    name = f"{index}-{uuid.uuid4().hex[:6]}.yaml"
    return load_stack(
        write_stack(
            tmp_path / name, photos=photos, model=model, index=index, dims=dims, batch_size=4, url=url
        )
    )


def _count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index)["count"])


def test_export_needs_no_cluster_and_resumes(models: tuple[Path, Path], photos: Path, tmp_path: Path) -> None:
    stack = _stack(tmp_path, photos, models[0], "unused", NOWHERE)
    shards = tmp_path / "shards"
    first = export_embeddings(stack, shards)
    job = first.jobs[0]
    assert first.ok and (job.mode, job.scanned, job.embedded, job.indexed) == ("export", 10, 10, 10)
    files = sorted((shards / "photos").glob("*.parquet"))
    assert files and not list((shards / "photos").glob(".*"))
    meta = read_meta(files[0])
    assert meta.dims == TINY_DIMS and meta.encoder == "clip" and meta.job == "photos"
    table = pq.read_table(files[0])
    assert table.num_rows == 10 and table.schema.field("vector").type.list_size == TINY_DIMS

    again = export_embeddings(stack, shards)
    assert (again.jobs[0].already_indexed, again.jobs[0].embedded) == (10, 0)  # resumed: nothing embedded

    other = _stack(tmp_path, photos, models[1], "unused", NOWHERE)
    with pytest.raises(EncoderMismatchError, match="--full"):
        export_embeddings(other, shards)
    replaced = export_embeddings(other, shards, full=True)
    assert replaced.jobs[0].embedded == 10
    assert {read_meta(p).fingerprint.vectors_id for p in (shards / "photos").glob("*.parquet")} == {
        replaced.encoders[0].fingerprint["vectors_id"]  # type: ignore[index]
    }


def test_from_refuses_shards_of_other_dims(
    models: tuple[Path, Path], photos: Path, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    shards = tmp_path / "shards"
    export_embeddings(_stack(tmp_path, photos, models[0], "unused", NOWHERE), shards)
    index = f"shards-dims-{uuid.uuid4().hex[:8]}"
    create_index(es, index, WIDE_DIMS)
    stack = _stack(tmp_path, photos, WIDE_MODEL, index, es_target.url, dims=WIDE_DIMS)
    with pytest.raises(ShardError) as refused:
        run_load(stack, es, shards)
    message = str(refused.value)
    assert f"hold {TINY_DIMS}-dims vectors" in message and f"has dims {WIDE_DIMS}" in message
    assert str(shards / "photos") in message
    assert _count(es, index) == 0


def test_from_refuses_shards_of_another_encoder(
    models: tuple[Path, Path], photos: Path, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    shards = tmp_path / "shards"
    export_embeddings(_stack(tmp_path, photos, models[0], "unused", NOWHERE), shards)
    index = f"shards-encoder-{uuid.uuid4().hex[:8]}"
    create_index(es, index, TINY_DIMS)
    # The index holds model b's vectors (recorded in its _meta); the shards are model a's.
    other = _stack(tmp_path, photos, models[1], index, es_target.url)
    assert run_ingest(other, es).ok
    with pytest.raises(ShardError, match="vectors of two encoders must not share a field") as refused:
        run_load(other, es, shards)
    assert "holds vectors of clip" in str(refused.value)
    # A fresh index, but the job's encoder (model b) is not the one that made the shards.
    fresh = f"shards-fresh-{uuid.uuid4().hex[:8]}"
    create_index(es, fresh, TINY_DIMS)
    with pytest.raises(ShardError, match="point the job at the encoder that made the shards"):
        run_load(_stack(tmp_path, photos, models[1], fresh, es_target.url), es, shards)
    assert _count(es, fresh) == 0


def _provision(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "provisioning", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_command_line_export_then_from(
    models: tuple[Path, Path], photos: Path, es: Elasticsearch, es_target: Any, tmp_path: Path
) -> None:
    index = f"shards-cli-{uuid.uuid4().hex[:8]}"
    create_index(es, index, TINY_DIMS)
    stack = write_stack(
        tmp_path / "stack.yaml", photos=photos, model=models[0], index=index, dims=TINY_DIMS, url=NOWHERE
    )
    shards = tmp_path / "shards"
    exported = _provision("ingest", str(stack), "--export", str(shards), "--output", "json")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout)["jobs"][0]["mode"] == "export"

    both = _provision("ingest", str(stack), "--export", str(shards), "--from", str(shards))
    assert both.returncode == 1 and "exclude each other" in both.stderr

    loaded = _provision("ingest", str(stack), "--from", str(shards), "--es-url", es_target.url)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert (
        f"load photos <- {shards / 'photos'} -> {index}: 10 rows, 0 already indexed, 10 indexed"
        in loaded.stdout
    )
    assert _count(es, index) == 10

    wide = f"shards-cli-wide-{uuid.uuid4().hex[:8]}"
    create_index(es, wide, WIDE_DIMS)
    wrong = write_stack(
        tmp_path / "wide.yaml", photos=photos, model=WIDE_MODEL, index=wide, dims=WIDE_DIMS, url=NOWHERE
    )
    refused = _provision("ingest", str(wrong), "--from", str(shards), "--es-url", es_target.url)
    assert refused.returncode == 1
    assert f"hold {TINY_DIMS}-dims vectors" in refused.stderr and "Traceback" not in refused.stderr
