"""Ingest end to end against the test target: bad input, incremental reruns, --full, duplicates,
prune, a mapping that refuses everything, progress, and the command line.

The encoder is a tiny randomly initialised CLIP (real sentence-transformers inference); images are
generated. Each test writes to an index of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

import provisioning
from bench.ingest.corpus import small_jpeg, write_bad_input_corpus
from bench.ingest.models import TINY_DIMS, save_tiny_clip
from bench.ingest.stacks import create_index, write_stack
from provisioning.embedding.encoders import Encoder
from provisioning.embedding.loading import load_encoder
from provisioning.image_ingest import IngestError, run_ingest
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.stackfile import load_stack
from provisioning.stackfile.schema import EncoderSpec, SourceSpec
from provisioning.stackfile.stack import Stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("model") / "tiny-clip")


@pytest.fixture(scope="module")
def encoder(tiny_model: Path) -> Encoder:
    return load_encoder("clip", EncoderSpec(source=SourceSpec(path=str(tiny_model)), batch_size=4), Path("/"))


@pytest.fixture
def index(es: Elasticsearch) -> Iterator[str]:
    name = f"ingest-test-{uuid.uuid4().hex[:10]}"
    create_index(es, name, TINY_DIMS)
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


def _stack(tmp_path: Path, photos: Path, model: Path, index: str, url: str, **job: Any) -> Stack:
    path = write_stack(
        tmp_path / "stack.yaml",
        photos=photos,
        model=model,
        index=index,
        dims=TINY_DIMS,
        batch_size=4,
        url=url,
        **job,
    )
    return load_stack(path)


def _docs(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    """relative_path -> document source (with its id), every document of the index."""
    es.indices.refresh(index=index)
    # Elasticsearch 9.2 leaves vectors out of _source unless asked (index.mapping.exclude_source_vectors).
    hits = es.search(index=index, query={"match_all": {}}, size=1000, source_exclude_vectors=False)["hits"][
        "hits"
    ]
    docs = {}
    for hit in hits:
        source = dict(hit["_source"])
        source["_id"] = hit["_id"]
        assert source["relative_path"] not in docs, f"two documents for {source['relative_path']}"
        docs[source["relative_path"]] = source
    return docs


def _count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index)["count"])


def _photos(folder: Path, count: int, start: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(start, start + count):
        (folder / f"img_{i:03d}.jpg").write_bytes(small_jpeg(1000 + i))
        names.append(f"img_{i:03d}.jpg")
    return names


class RecordingProgress:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.done = 0
        self.last: dict[str, int] = {}
        self.finished = 0

    def start(self, job: str, total: int | None) -> None:
        self.totals.append(total)

    def advance(self, done: int, *, indexed: int, skipped: int, failed: int) -> None:
        self.done += done
        self.last = {"indexed": indexed, "skipped": skipped, "failed": failed}

    def finish(self) -> None:
        self.finished += 1


def test_bad_input_corpus_every_case(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    cases = write_bad_input_corpus(photos)
    stack = _stack(tmp_path, photos, tiny_model, index, es_target.url)
    progress = RecordingProgress()
    report = run_ingest(stack, es, progress=progress)
    job = report.jobs[0]

    embeddable = [c for c in cases if c.embeddable]
    bad = {c.relative_path: c for c in cases if not c.embeddable}
    assert job.scanned == len(cases)  # notes.txt is not selected by the default globs
    assert job.embedded == job.indexed == len(embeddable)
    assert {f.relative_path: f.kind for f in job.failures} == {path: c.kind for path, c in bad.items()}
    assert all(f.stage == "decode" and f.reason for f in job.failures)
    # Everything usable was indexed, every bad file listed; by default no failed file is tolerated.
    assert not report.ok and report.over_tolerance == [job] and job.failed_allowed == 0
    assert report.problem == (
        f"ingest job 'photos': {len(bad)} of {len(cases)} files failed, more than max_failed 0 allows (0)"
    )

    docs = _docs(es, index)
    assert _count(es, index) == len(embeddable)
    assert sorted(docs) == sorted(c.relative_path for c in embeddable)  # unique across sub-folders
    for case in embeddable:
        doc = docs[case.relative_path]
        assert doc["_id"] == doc["image_id"] and len(doc["_id"]) == 64
        assert doc["image_name"] == case.relative_path.rsplit("/", 1)[-1]
        assert len(doc["image_embedding"]) == TINY_DIMS
        if case.width is not None:
            assert (doc["width"], doc["height"]) == (case.width, case.height), case.relative_path
        if case.date is not None:
            assert doc["exif"]["date"] == case.date
        if case.location is not None:
            assert doc["exif"]["location"] == pytest.approx(
                {"lat": case.location[0], "lon": case.location[1]}
            )
    assert (docs["ok/rotated.jpg"]["width"], docs["ok/rotated.jpg"]["height"]) == (60, 80)

    assert progress.totals == [len(cases)] and progress.finished == 1
    assert progress.done == len(cases)
    assert progress.last == {"indexed": len(embeddable), "skipped": 0, "failed": len(bad)}


def test_failed_files_within_the_job_tolerance_keep_the_run_ok(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    """4 files scanned, 1 not an image: the stack's max_failed (a count or a percentage of the files
    scanned) decides, and the max_failed argument overrides it; nothing is lost either way."""
    _photos(tmp_path / "photos", 3)
    (tmp_path / "photos" / "empty.jpg").write_bytes(b"")
    for declared, ok in ((1, True), ("25%", True), ("24%", False), (0, False)):
        stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url, max_failed=declared)
        report = run_ingest(stack, es, full=True)
        job = report.jobs[0]
        assert (job.scanned, job.indexed, job.failed) == (4, 3, 1)
        assert (report.ok, job.over_tolerance) == (ok, not ok), declared
    tolerant = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url, max_failed=1)
    assert not run_ingest(tolerant, es, max_failed=FailureTolerance.parse("20%")).ok
    strict = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    assert run_ingest(strict, es, max_failed=FailureTolerance.parse(1)).ok


def test_documents_are_searchable_by_their_own_vector(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    _photos(tmp_path / "photos", 6)
    run_ingest(_stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url), es)
    docs = _docs(es, index)
    probe = docs["img_003.jpg"]
    answer = es.search(
        index=index,
        knn={
            "field": "image_embedding",
            "query_vector": probe["image_embedding"],
            "k": 1,
            "num_candidates": 10,
        },
        source=["relative_path"],
    )
    assert answer["hits"]["hits"][0]["_source"]["relative_path"] == "img_003.jpg"


def test_rerun_skips_indexed_files_before_decoding_and_full_reembeds(
    es: Elasticsearch, es_target: Any, index: str, encoder: Encoder, tiny_model: Path, tmp_path: Path
) -> None:
    names = _photos(tmp_path / "photos", 10)
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    first = run_ingest(stack, es, encoders={"clip": encoder}).jobs[0]
    assert (first.embedded, first.indexed) == (10, 10)
    before = _docs(es, index)

    calls = encoder.images_encoded
    sandbox = es_target.sandbox
    if sandbox is not None:
        sandbox.state.log.clear()
    again = run_ingest(stack, es, encoders={"clip": encoder}).jobs[0]
    assert (again.scanned, again.already_indexed, again.embedded, again.indexed) == (10, 10, 0, 0)
    assert encoder.images_encoded == calls  # nothing decoded nor encoded
    if sandbox is not None:
        assert not [e for e in sandbox.state.log.entries if e.path.endswith("_bulk")]

    _photos(tmp_path / "photos", 3, start=10)  # new files arrive
    grown = run_ingest(stack, es, encoders={"clip": encoder}).jobs[0]
    assert (grown.already_indexed, grown.embedded, grown.indexed) == (10, 3, 3)
    assert encoder.images_encoded == calls + 3

    full = run_ingest(stack, es, full=True, encoders={"clip": encoder}).jobs[0]
    assert (full.already_indexed, full.embedded, full.indexed) == (0, 13, 13)
    after = _docs(es, index)
    assert len(after) == 13  # idempotent: same ids, overwritten, not duplicated
    assert all(after[name]["_id"] == before[name]["_id"] for name in names)


def test_identical_files_are_one_document(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 3)
    (photos / "copy").mkdir()
    (photos / "copy" / "img_001.jpg").write_bytes((photos / "img_001.jpg").read_bytes())
    job = run_ingest(_stack(tmp_path, photos, tiny_model, index, es_target.url), es).jobs[0]
    assert (job.scanned, job.duplicates, job.embedded, job.indexed) == (4, 1, 3, 3)
    assert _count(es, index) == 3


def test_static_fields_are_added(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    _photos(tmp_path / "photos", 2)
    stack = _stack(
        tmp_path, tmp_path / "photos", tiny_model, index, es_target.url, fields={"collection": "trip"}
    )
    run_ingest(stack, es)
    assert {doc["collection"] for doc in _docs(es, index).values()} == {"trip"}


def test_prune_deletes_documents_of_deleted_and_replaced_files_only(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 5)
    stack = _stack(tmp_path, photos, tiny_model, index, es_target.url)
    run_ingest(stack, es)
    old_ids = {path: doc["_id"] for path, doc in _docs(es, index).items()}
    es.index(index=index, id="not-ours", document={"relative_path": "img_000.jpg"}, refresh=True)
    (photos / "img_000.jpg").unlink()  # deleted
    (photos / "img_001.jpg").write_bytes(small_jpeg(5000))  # replaced by other content

    no_prune = run_ingest(stack, es).jobs[0]
    assert no_prune.pruned == 0 and _count(es, index) == 7  # prune is opt-in

    pruned = run_ingest(stack, es, prune=True).jobs[0]
    assert pruned.pruned == 2 and pruned.already_indexed == 4
    docs = _docs_by_id(es, index)
    assert old_ids["img_000.jpg"] not in docs and old_ids["img_001.jpg"] not in docs
    assert "not-ours" in docs  # no image_id: not written by provision, never pruned
    assert sorted(d.get("relative_path") for d in docs.values()) == [
        "img_000.jpg",  # the foreign document
        "img_001.jpg",
        "img_002.jpg",
        "img_003.jpg",
        "img_004.jpg",
    ]
    assert run_ingest(stack, es, prune=True).jobs[0].pruned == 0


def _docs_by_id(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"match_all": {}}, size=1000)["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_prune_spares_documents_of_other_jobs_writing_to_the_same_index(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    _photos(ours, 2)
    _photos(theirs, 2, start=50)
    jobs = {
        "ours": {"index": index, "source": {"path": str(ours)}, "encoder": "clip"},
        "theirs": {"index": index, "source": {"path": str(theirs)}, "encoder": "clip"},
    }
    stack_file = write_stack(
        tmp_path / "stack.yaml",
        photos=ours,
        model=tiny_model,
        index=index,
        dims=TINY_DIMS,
        url=es_target.url,
        jobs=jobs,
    )
    stack = load_stack(stack_file)
    run_ingest(stack, es)
    assert _count(es, index) == 4
    (ours / "img_000.jpg").unlink()
    job = run_ingest(stack, es, ["ours"], prune=True).jobs[0]
    assert job.pruned == 1
    assert sorted(_docs(es, index)) == ["img_001.jpg", "img_050.jpg", "img_051.jpg"]


def test_prune_is_skipped_when_part_of_the_source_cannot_be_read(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 2)
    (photos / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    job = run_ingest(_stack(tmp_path, photos, tiny_model, index, es_target.url), es, prune=True).jobs[0]
    assert job.pruned == 0 and job.prune_skipped is not None
    assert [(f.relative_path, f.stage) for f in job.failures] == [("broken.jpg", "scan")]


def test_an_index_that_refuses_every_document_stops_the_job_early(
    es: Elasticsearch, es_target: Any, tiny_model: Path, tmp_path: Path
) -> None:
    index = f"ingest-test-{uuid.uuid4().hex[:10]}"
    create_index(es, index, TINY_DIMS * 2)  # the wrong dims for this encoder
    try:
        _photos(tmp_path / "photos", 40)
        stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
        with pytest.raises(IngestError, match="the first 20 documents were all refused"):
            run_ingest(stack, es)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_unknown_job_and_clashing_fields_are_errors(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    _photos(tmp_path / "photos", 1)
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    with pytest.raises(IngestError, match="no ingest job named nope"):
        run_ingest(stack, es, ["nope"])
    clashing = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url, fields={"width": 3})
    with pytest.raises(IngestError, match="fields sets width"):
        run_ingest(clashing, es)


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def test_python_m_provisioning_ingest_prints_one_json_document(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    """A file that is not an image: listed, the rest indexed, and exit 1 unless tolerated."""
    _photos(tmp_path / "photos", 3)
    (tmp_path / "photos" / "empty.jpg").write_bytes(b"")
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    done = _run_module(
        "provisioning", "ingest", str(stack.path), "--output", "json", "--es-url", es_target.url
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)  # still one JSON document on stdout, with the whole report
    job = report["jobs"][0]
    assert (job["embedded"], job["indexed"], job["failed"]) == (3, 3, 1)
    assert job["failures"][0]["kind"] == "empty"
    assert (report["ok"], job["over_tolerance"], job["max_failed"], job["failed_allowed"]) == (
        False,
        True,
        0,
        0,
    )
    error = "error: ingest job 'photos': 1 of 4 files failed, more than max_failed 0 allows (0)"
    assert done.stderr.strip().splitlines()[-1] == error

    tolerated = _run_module(
        "provisioning",
        "ingest",
        str(stack.path),
        "--max-failed",
        "25%",
        "--output",
        "json",
        "--es-url",
        es_target.url,
    )
    assert tolerated.returncode == 0, tolerated.stderr
    assert json.loads(tolerated.stdout)["jobs"][0]["failed_allowed"] == 1


def test_the_command_line_tolerance_overrides_the_stack(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    _photos(tmp_path / "photos", 3)
    (tmp_path / "photos" / "not-an-image.jpg").write_text("hello")
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url, max_failed=1)
    text = _run_module(
        "provisioning", "ingest", str(stack.path), "--max-failed", "20%", "--es-url", es_target.url
    )
    assert text.returncode == 1, text.stderr
    failed_lines = [line for line in text.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed_lines == [
        "FAILED ingest job 'photos': 1 of 4 files failed, more than max_failed 20% allows (0)"
    ]
    assert "not-an-image.jpg" in text.stdout  # the failure itself, with its reason
    bad = _run_module(
        "provisioning", "ingest", str(stack.path), "--max-failed", "lots", "--es-url", es_target.url
    )
    assert bad.returncode == 1 and "--max-failed" in bad.stderr and "Traceback" not in bad.stderr


def test_apply_stops_at_ingest_after_indexing_what_it_can(
    es: Elasticsearch, es_target: Any, tiny_model: Path, tmp_path: Path
) -> None:
    """`provision apply` (converge's ingest stage): exit 1 with stopped_at ingest when a job has more
    failed files than it tolerates, after creating the index and indexing every usable image."""
    index = f"ingest-test-{uuid.uuid4().hex[:10]}"
    _photos(tmp_path / "photos", 3)
    (tmp_path / "photos" / "truncated.jpg").write_bytes(small_jpeg(7)[:200])
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    try:
        args = ("provisioning", "apply", str(stack.path), "--auto-approve", "--output", "json")
        done = _run_module(*args, "--es-url", es_target.url)
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        assert (document["ok"], document["stopped_at"]) == (False, "ingest")
        assert (
            document["error"] == "ingest job 'photos': 1 of 4 files failed, more than max_failed 0 allows (0)"
        )
        job = document["ingest"]["jobs"][0]
        assert (job["indexed"], job["failed"], job["failures"][0]["relative_path"]) == (3, 1, "truncated.jpg")
        assert _count(es, index) == 3

        again = _run_module(*args, "--max-failed", "1", "--es-url", es_target.url)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["ok"] is True

        cluster = provisioning.connect(stack, url=es_target.url)
        report = provisioning.converge(stack, cluster, provisioning.ConvergeOptions())
        assert (report.ok, report.stopped_at) == (False, "ingest")
        assert report.ingest is not None and report.ingest.over_tolerance == report.ingest.jobs
        tolerated = provisioning.converge(
            stack,
            cluster,
            provisioning.ConvergeOptions(max_failed=provisioning.FailureTolerance.parse("25%")),
        )
        assert tolerated.ok and tolerated.stopped_at is None
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_provision_ingest_command(
    es: Elasticsearch, es_target: Any, index: str, tiny_model: Path, tmp_path: Path
) -> None:
    _photos(tmp_path / "photos", 3)
    stack = _stack(tmp_path, tmp_path / "photos", tiny_model, index, es_target.url)
    done = _run_module(
        "provisioning", "ingest", str(stack.path), "--output", "json", "--es-url", es_target.url
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["jobs"][0]  # stdout holds the JSON document and nothing else
    assert (job["scanned"], job["embedded"], job["indexed"]) == (3, 3, 3)

    (tmp_path / "photos" / "img_000.jpg").unlink()
    text = _run_module(
        "provisioning", "ingest", str(stack.path), "photos", "--prune", "--es-url", es_target.url
    )
    assert text.returncode == 0, text.stderr
    assert (
        "ingest photos -> " in text.stdout
        and "2 already indexed" in text.stdout
        and "1 pruned" in text.stdout
    )

    unknown = _run_module("provisioning", "ingest", str(stack.path), "nope", "--es-url", es_target.url)
    assert unknown.returncode == 1 and "no ingest job named nope" in unknown.stderr


@pytest.mark.parametrize(("version", "encoding"), [("9.2.0", "array"), ("9.3.0", "base64")])
def test_vectors_travel_as_base64_from_9_3_and_index_the_same(
    tiny_model: Path, tmp_path: Path, version: str, encoding: str
) -> None:
    """From 9.3 the bulk body carries each vector as base64 of its big-endian float32 bytes: a
    smaller body (the report says by how much) and the same vectors in the index."""
    from es_sandbox import SandboxServer
    from tests.conftest import sandbox_config

    with SandboxServer(sandbox_config(es_version=version)) as server:
        client = Elasticsearch(server.url)
        name = f"b64-{uuid.uuid4().hex[:8]}"
        create_index(client, name, TINY_DIMS)
        _photos(tmp_path / "photos", 4)
        stack = _stack(tmp_path, tmp_path / "photos", tiny_model, name, server.url)
        report = provisioning.ingest(stack, provisioning.connect(stack, url=server.url))
        job = report.jobs[0]
        assert (job.indexed, job.vector_encoding) == (4, encoding)
        assert job.bytes_per_document is not None and job.bytes_per_document_as_array is not None
        if encoding == "base64":
            assert job.bytes_per_document < 0.7 * job.bytes_per_document_as_array
        else:
            assert job.bytes_per_document == job.bytes_per_document_as_array
        docs = _docs(client, name)
        encoder = load_encoder(
            "clip", EncoderSpec(source=SourceSpec(path=str(tiny_model)), batch_size=4), Path("/")
        )
        from provisioning.image_ingest.decode import open_image

        for relative, doc in docs.items():
            image = open_image(tmp_path / "photos" / relative, min_size=encoder.input_size).image
            expected = encoder.encode_images([image])[0]
            assert doc["image_embedding"] == pytest.approx(expected.tolist(), abs=1e-5)
