"""Never two encoders in one vector field: the record ingest keeps in the index, the refusal of an
incremental ingest with another encoder, ``--full`` replacing it, ``status`` showing it, and apply
keeping the record when it rewrites the index's ``_meta``.

Against the test target, with a tiny random CLIP (torch, and the same model converted for ONNX
Runtime) and generated photos; each test has an index of its own.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch

import provisioning
from bench.ingest.corpus import small_jpeg
from bench.ingest.models import TINY_DIMS, save_tiny_clip
from bench.ingest.stacks import image_index_body
from provisioning.image_ingest import run_ingest
from provisioning.image_ingest.encoder_record import (
    META_KEY,
    EncoderMismatchError,
    EncoderRecord,
    read_meta,
    write_record,
)
from provisioning.stackfile.schema import BulkSpec
from tests.conftest import Target
from tests.integration.stacks import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("model") / "tiny-clip")


def _body(name: str, model: Path, photos: Path, url: str, **encoder: Any) -> dict[str, Any]:
    index = image_index_body(TINY_DIMS)
    return {
        "name": name,
        "cluster": {"url": url},
        "encoders": {"clip": {"source": {"path": str(model)}, "batch_size": 4, "device": "cpu", **encoder}},
        "indices": {f"{name}-images": {"settings": index["settings"], "mappings": index["mappings"]}},
        "ingest": {"photos": {"index": f"{name}-images", "source": {"path": str(photos)}, "encoder": "clip"}},
    }


def _load(directory: Path, body: dict[str, Any]) -> provisioning.Stack:
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return provisioning.load_stack(path, {})


@contextmanager
def _applied(
    target: Target, model: Path, tmp_path: Path, photos: int
) -> Iterator[tuple[dict[str, Any], provisioning.Stack, provisioning.Cluster, str]]:
    """A stack of its own over ``photos`` small JPEGs, applied (nothing ingested yet): its body, the
    loaded stack, a connection and its index; everything it made is destroyed after."""
    name = f"records-{uuid.uuid4().hex[:8]}"
    _photos(tmp_path / "photos", photos)
    body = _body(name, model, tmp_path / "photos", target.url)
    stack = _load(tmp_path, body)
    cluster = connect(target.url)
    assert provisioning.apply(provisioning.plan(stack, cluster), cluster).ok
    try:
        yield body, stack, cluster, f"{name}-images"
    finally:
        provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=True))


def _photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"img_{i:03d}.jpg").write_bytes(small_jpeg(2000 + i))


def _record(es: Elasticsearch, index: str) -> EncoderRecord:
    found = read_meta(es, index, BulkSpec()).record("image_embedding")
    assert isinstance(found, EncoderRecord), found
    return found


def test_another_encoder_is_refused_until_full_reembeds(
    es: Elasticsearch, es_target: Target, tiny_model: Path, tmp_path: Path
) -> None:
    with _applied(es_target, tiny_model, tmp_path, 6) as (torch_body, stack, cluster, index):
        first = run_ingest(stack, es)
        assert first.ok and first.jobs[0].indexed == 6
        recorded = _record(es, index)
        assert recorded.encoder == "clip" and recorded.replacing is None
        assert recorded.fingerprint.runtime == "torch" and recorded.fingerprint.precision == "fp32"
        assert first.jobs[0].vectors == recorded.fingerprint.describe()

        # The same stack again: accepted, nothing to embed, the record unchanged.
        again = run_ingest(stack, es)
        assert again.jobs[0].already_indexed == 6 and _record(es, index) == recorded

        # The stack switches to ONNX Runtime: an incremental ingest refuses before embedding anything.
        onnx_body = copy.deepcopy(torch_body)
        onnx_body["encoders"]["clip"]["runtime"] = "onnx"
        onnx_stack = _load(tmp_path, onnx_body)
        _photos(tmp_path / "photos", 8)  # two new files that would otherwise be embedded
        with pytest.raises(EncoderMismatchError) as caught:
            run_ingest(onnx_stack, es)
        message = str(caught.value)
        assert f"index '{index}' field 'image_embedding'" in message
        assert "clip: torch fp32 of sha256:" in message and "clip: onnx fp32 of sha256:" in message
        assert "--full" in message
        es.indices.refresh(index=index)
        assert es.count(index=index)["count"] == 6  # nothing was written

        status = provisioning.status(onnx_stack, cluster)
        details = next(r.details for r in status.resources if r.kind == "index")
        assert details["vectors.image_embedding"] == recorded.describe()
        assert "refused" in str(details["vectors.image_embedding.next_ingest"])
        assert "onnx fp32" in str(details["vectors.image_embedding.next_ingest"])

        # --full re-embeds everything with the new encoder and records it.
        full = run_ingest(onnx_stack, es, full=True)
        assert full.ok and full.jobs[0].embedded == 8 and full.jobs[0].indexed == 8
        assert (
            full.jobs[0].vectors_note == f"replaced every vector of index '{index}' field 'image_embedding'"
        )
        replaced = _record(es, index)
        assert replaced.fingerprint.runtime == "onnx" and replaced.replacing is None
        status = provisioning.status(onnx_stack, cluster)
        details = next(r.details for r in status.resources if r.kind == "index")
        assert "onnx fp32" in str(details["vectors.image_embedding"])
        assert "vectors.image_embedding.next_ingest" not in details

        # Now the old torch stack is the one refused.
        with pytest.raises(EncoderMismatchError, match="onnx fp32"):
            run_ingest(stack, es)


def test_an_unfinished_full_run_keeps_refusing_incremental_ingest(
    es: Elasticsearch, es_target: Target, tiny_model: Path, tmp_path: Path
) -> None:
    with _applied(es_target, tiny_model, tmp_path, 4) as (_, stack, cluster, index):
        assert run_ingest(stack, es).ok
        recorded = _record(es, index)
        # What a --full run killed half-way leaves: its encoder recorded, replacing another's vectors.
        write_record(
            es,
            index,
            "image_embedding",
            EncoderRecord("clip", recorded.fingerprint, "0123456789abcdef"),
            BulkSpec(),
        )
        with pytest.raises(EncoderMismatchError, match="did not finish") as caught:
            run_ingest(stack, es)
        assert "0123456789abcdef" in str(caught.value) and "--full" in str(caught.value)
        status = provisioning.status(stack, cluster)
        details = next(r.details for r in status.resources if r.kind == "index")
        assert "has not finished" in str(details["vectors.image_embedding"])

        finished = run_ingest(stack, es, full=True)
        assert finished.ok and finished.jobs[0].indexed == 4
        assert _record(es, index).replacing is None
        assert run_ingest(stack, es).jobs[0].already_indexed == 4


def test_apply_keeps_the_record_when_it_rewrites_the_mapping_meta(
    es: Elasticsearch, es_target: Target, tiny_model: Path, tmp_path: Path
) -> None:
    with _applied(es_target, tiny_model, tmp_path, 3) as (body, stack, cluster, index):
        assert run_ingest(stack, es).ok
        recorded = _record(es, index)
        assert provisioning.plan(stack, cluster).changes == []  # the record is not drift

        grown = copy.deepcopy(body)
        grown["indices"][index]["mappings"]["properties"]["caption"] = {"type": "text"}
        grown_stack = _load(tmp_path, grown)
        plan = provisioning.plan(grown_stack, cluster)
        assert [(c.action, c.address) for c in plan.changes] == [("update", f"index/{index}")]
        assert provisioning.apply(plan, cluster).ok
        meta = es.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
        assert meta["stack"] == stack.spec.name and META_KEY in meta  # ownership rewritten, record kept
        assert _record(es, index) == recorded
        assert run_ingest(grown_stack, es).jobs[0].already_indexed == 3
