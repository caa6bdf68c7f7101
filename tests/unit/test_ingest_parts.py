"""The pieces of the ingest pipeline that need no cluster: in-order bounded map, check groups, the
seen-id window, documents, static-field clashes, prune decisions, the report and its renderings."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from provisioning.image_ingest.decode import ImageFacts
from provisioning.image_ingest.documents import (
    build_document,
    check_static_fields,
    index_action,
    is_content_id,
)
from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.prune import prune_decision
from provisioning.image_ingest.report import MAX_LISTED_FAILURES, FileFailure, IngestReport, JobReport
from provisioning.image_ingest.scan import PathFilter
from provisioning.image_ingest.streams import SeenIds, growing_groups, ordered_map
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.render import render_ingest as render_text


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002 * (i % 3))
        with lock:
            running -= 1
        return i * i

    pulled = 0

    def items() -> object:
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield i

    with ThreadPoolExecutor(4) as pool:
        results = ordered_map(pool, work, items(), window=5)
        first = next(results)
        assert first == 0 and pulled <= 6  # lazy: only the window (plus one refill) was pulled
        assert [first, *results] == [i * i for i in range(40)]
    assert most <= 4


def test_ordered_map_short_inputs() -> None:
    with ThreadPoolExecutor(2) as pool:
        assert list(ordered_map(pool, str, [], window=3)) == []
        assert list(ordered_map(pool, str, [1, 2], window=3)) == ["1", "2"]


def test_check_groups_start_small_and_grow() -> None:
    groups = list(growing_groups(iter(range(100)), first=4, largest=32))
    assert [len(g) for g in groups] == [4, 8, 16, 32, 32, 8]
    assert [x for g in groups for x in g] == list(range(100))
    assert list(growing_groups(iter([]), first=4, largest=8)) == []


def test_seen_ids_window() -> None:
    ids = [f"{i:064x}" for i in range(10)]
    window = SeenIds(limit=3)
    for doc_id in ids:
        window.add(doc_id)
    assert len(window) == 3 and ids[9] in window and ids[0] not in window
    everything = SeenIds(limit=None)
    for doc_id in ids:
        everything.add(doc_id)
    assert all(doc_id in everything for doc_id in ids)


def test_document_fields() -> None:
    vector = np.array([0.25, -0.5], dtype=np.float32)
    facts = ImageFacts(60, 80, "2021-06-01T12:34:56", (-33.86, 151.21))
    doc = build_document(
        doc_id="a" * 64,
        relative_path="trips/2021/IMG_1.jpg",
        facts=facts,
        vector=vector,
        vector_field="image_embedding",
        static_fields={"source": "phone"},
    )
    assert doc == {
        "source": "phone",
        "image_id": "a" * 64,
        "image_name": "IMG_1.jpg",
        "relative_path": "trips/2021/IMG_1.jpg",
        "width": 60,
        "height": 80,
        "exif": {"date": "2021-06-01T12:34:56", "location": {"lat": -33.86, "lon": 151.21}},
        "image_embedding": [0.25, -0.5],
    }
    plain = build_document(
        doc_id="b" * 64,
        relative_path="x.png",
        facts=ImageFacts(1, 2),
        vector=vector,
        vector_field="emb",
        static_fields={},
    )
    assert "exif" not in plain
    json.dumps(index_action("images", "b" * 64, plain))  # serialisable as is
    assert is_content_id("b" * 64) and not is_content_id("B" * 64) and not is_content_id("plain-id")


@pytest.mark.parametrize(
    "clash", ["relative_path", "exif", "exif.date", "image_embedding", "image_embedding.x"]
)
def test_static_fields_may_not_overwrite_what_ingest_writes(clash: str) -> None:
    with pytest.raises(IngestError, match=f"ingest.photos.fields sets {clash}"):
        check_static_fields("photos", {clash: 1}, "image_embedding")
    check_static_fields("photos", {"camera": "x", "tags": ["a"]}, "image_embedding")


def test_prune_decisions(tmp_path: Path) -> None:
    root, other = tmp_path / "a", tmp_path / "b"
    for folder, name in (
        (root, "kept.jpg"),
        (root, "changed.jpg"),
        (root, "excluded.gif"),
        (other, "theirs.jpg"),
    ):
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"x")
    selected = PathFilter(["**/*.jpg"])

    def stale(relative: str, *, shared: bool = False, unreadable: frozenset[str] = frozenset()) -> bool:
        roots = [root, other] if shared else [root]
        return prune_decision(relative, root, roots, shared, selected, set(unreadable))

    assert stale("gone.jpg")  # the file is missing
    assert stale("changed.jpg")  # present and selected, but no scanned file has the document's id
    assert not stale("excluded.gif")  # present but not selected: not ours to judge
    assert not stale("changed.jpg", unreadable=frozenset({"changed.jpg"}))
    assert not stale("../a/gone.jpg") and not stale("/etc/passwd") and not stale("")
    # Another job writes to the same index: only files missing under every source folder are stale.
    assert not stale("theirs.jpg", shared=True)
    assert stale("gone.jpg", shared=True)
    assert not stale("changed.jpg", shared=True)


def _job() -> JobReport:
    job = JobReport("photos", "images", "/photos", "clip", full=False, scanned=5, embedded=3, indexed=3)
    job.already_indexed = 1
    job.add_failure(FileFailure("bad/empty.jpg", "decode", "empty", "empty file (0 bytes)"))
    job.elapsed_s = 1.5
    return job


def test_report_json_and_text() -> None:
    report = IngestReport(jobs=[_job()], elapsed_s=2.0)
    assert not report.ok  # a bad input file is reported, and by default no failed file is tolerated
    document = json.loads(json.dumps(report.to_dict()))
    job = document["jobs"][0]
    assert job["failed"] == 1 and job["failures"][0]["kind"] == "empty"
    assert job["images_per_s"] == 2.0 and document["ok"] is False and job["over_tolerance"] is True
    text = render_text(report)
    assert "5 scanned, 1 already indexed, 3 embedded, 3 indexed, 1 failed" in text
    assert "decode failed: bad/empty.jpg: empty file (0 bytes)" in text
    assert "FAILED ingest job 'photos': 1 of 5 files failed, more than max_failed 0 allows (0)" in text

    tolerated = _job()
    tolerated.max_failed = FailureTolerance.parse("20%")
    report = IngestReport(jobs=[tolerated], elapsed_s=2.0)
    assert report.ok and report.to_dict()["ok"] is True  # 1 of 5 is within 20%
    assert "FAILED" not in render_text(report)


def test_index_failures_make_the_report_not_ok() -> None:
    job = _job()
    job.indexed = 2
    job.add_failure(FileFailure("a.jpg", "index", "mapper_parsing_exception", "bad dims"))
    assert not IngestReport(jobs=[job]).ok


def test_failures_are_listed_up_to_a_limit_and_counted_beyond() -> None:
    job = _job()
    for i in range(MAX_LISTED_FAILURES + 5):
        job.add_failure(FileFailure(f"{i}.jpg", "decode", "corrupt", "x"))
    assert job.failed == MAX_LISTED_FAILURES + 6 and len(job.failures) == MAX_LISTED_FAILURES
    assert "more failures (--output json lists them)" in render_text(IngestReport(jobs=[job]))


def test_tqdm_progress_draws_on_the_stream_it_is_given() -> None:
    import io

    from provisioning.image_ingest.progress import TqdmProgress

    stream = io.StringIO()
    progress = TqdmProgress(stream)
    progress.start("photos", 3)
    for indexed in (1, 2):
        progress.advance(1, indexed=indexed, skipped=0, failed=0)
    progress.advance(1, indexed=2, skipped=0, failed=1)
    progress.finish()
    assert "photos" in stream.getvalue() and "3/3" in stream.getvalue()
