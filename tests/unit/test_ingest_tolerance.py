"""How many failed files an ingest job tolerates: parsing, the stack field, the report, the text.

End to end (``provision ingest``, ``provision apply`` and ``converge`` against the test target) is
in tests/integration/test_ingest_flow.py.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import click
import pytest

from provisioning.errors import SpecError
from provisioning.image_ingest.report import FileFailure, IngestReport, JobReport
from provisioning.image_ingest.tolerance import FailureTolerance
from provisioning.render import render_ingest
from provisioning.stackfile import load_stack

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.parametrize(
    ("value", "count", "percent", "shown"),
    [
        (0, 0, None, "0"),
        (10, 10, None, "10"),
        ("10", 10, None, "10"),
        ("5%", 0, Fraction(5), "5%"),
        ("2.5%", 0, Fraction(5, 2), "2.5%"),
        ("100%", 0, Fraction(100), "100%"),
    ],
)
def test_counts_and_percentages_parse(
    value: int | str, count: int, percent: Fraction | None, shown: str
) -> None:
    tolerance = FailureTolerance.parse(value)
    assert (tolerance.count, tolerance.percent, str(tolerance)) == (count, percent, shown)
    assert tolerance.to_json() == (count if percent is None else shown)


@pytest.mark.parametrize("value", [-1, "-1", "101%", "5 %", "x", "1e3", "%", True, "0.5"])
def test_anything_else_is_refused(value: int | str) -> None:
    with pytest.raises(ValueError, match="max_failed"):
        FailureTolerance.parse(value)


def test_a_percentage_is_of_the_files_scanned_rounded_down() -> None:
    five = FailureTolerance.parse("5%")
    assert [five.allowed(n) for n in (0, 19, 20, 39, 40, 1000)] == [0, 0, 1, 1, 2, 50]
    assert not five.exceeded_by(2, 40) and five.exceeded_by(3, 40)
    assert FailureTolerance().exceeded_by(1, 1000) and not FailureTolerance().exceeded_by(0, 1000)
    assert not FailureTolerance.parse(3).exceeded_by(3, 3) and FailureTolerance.parse(3).exceeded_by(4, 9)


def _job(name: str, scanned: int, failed: int, tolerance: FailureTolerance | None = None) -> JobReport:
    job = JobReport(name, "images", "/photos", "clip", False, scanned=scanned)
    job.embedded = job.indexed = scanned - failed
    for i in range(failed):
        job.add_failure(FileFailure(f"bad-{i}.jpg", "decode", "truncated", "image file is truncated"))
    if tolerance is not None:
        job.max_failed = tolerance
    return job


def test_the_report_says_which_jobs_exceeded_their_tolerance() -> None:
    strict = _job("photos", scanned=10, failed=1)
    tolerant = _job("scans", scanned=10, failed=1, tolerance=FailureTolerance.parse("10%"))
    over = _job("archive", scanned=100, failed=6, tolerance=FailureTolerance.parse("5%"))
    report = IngestReport(jobs=[strict, tolerant, over])

    assert not report.ok
    assert report.over_tolerance == [strict, over]
    assert report.problem == (
        "ingest job 'photos': 1 of 10 files failed, more than max_failed 0 allows (0); "
        "ingest job 'archive': 6 of 100 files failed, more than max_failed 5% allows (5)"
    )
    document = json.loads(json.dumps(report.to_dict()))
    assert document["ok"] is False
    assert [
        (j["name"], j["max_failed"], j["failed_allowed"], j["over_tolerance"]) for j in document["jobs"]
    ] == [
        ("photos", 0, 0, True),
        ("scans", "10%", 1, False),
        ("archive", "5%", 5, True),
    ]
    # Within tolerance, and nothing lost: ok.
    assert IngestReport(jobs=[tolerant]).ok and IngestReport(jobs=[tolerant]).problem is None
    assert IngestReport(jobs=[_job("clean", 5, 0)]).ok


def test_an_unindexed_document_fails_the_run_whatever_the_tolerance() -> None:
    job = _job("photos", scanned=10, failed=0, tolerance=FailureTolerance.parse("100%"))
    job.indexed -= 2
    report = IngestReport(jobs=[job])
    assert not report.ok and report.over_tolerance == []
    assert report.problem == "ingest job 'photos': 2 embedded images were not indexed"


def test_the_text_says_so_in_one_line_per_job() -> None:
    report = IngestReport(
        jobs=[
            _job("photos", scanned=10, failed=1),
            _job("scans", scanned=10, failed=1, tolerance=FailureTolerance.parse(1)),
            _job("archive", scanned=100, failed=30, tolerance=FailureTolerance.parse("5%")),
        ]
    )
    text = click.unstyle(render_ingest(report))
    failed_lines = [line for line in text.splitlines() if line.startswith("FAILED ")]
    assert failed_lines == [
        "FAILED ingest job 'photos': 1 of 10 files failed, more than max_failed 0 allows (0)",
        "FAILED ingest job 'archive': 30 of 100 files failed, more than max_failed 5% allows (5)",
    ]
    assert "decode failed: bad-0.jpg: image file is truncated" in text  # every failure still listed


def _stack_with(tmp_path: Path, line: str) -> Path:
    text = (
        (DATA / "good_stack.yaml")
        .read_text()
        .replace("bad_stacks/support/", str(DATA / "bad_stacks/support") + "/")
    )
    text = text.replace("    vector_field: embedding\n", f"    vector_field: embedding\n{line}\n")
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("line", "value"), [("    max_failed: 10", 10), ("    max_failed: 2.5%", "2.5%")])
def test_the_stack_declares_a_job_tolerance(tmp_path: Path, line: str, value: int | str) -> None:
    stack = load_stack(_stack_with(tmp_path, line))
    assert stack.spec.ingest["photos"].max_failed == value
    assert load_stack(_stack_with(tmp_path, "")).spec.ingest["photos"].max_failed == 0


@pytest.mark.parametrize("value", ["-1", "150%", "true", "lots", "[1]"])
def test_an_invalid_tolerance_is_a_located_error(tmp_path: Path, value: str) -> None:
    path = _stack_with(tmp_path, f"    max_failed: {value}")
    with pytest.raises(SpecError) as raised:
        load_stack(path)
    issues = [i for i in raised.value.issues if i.path == "ingest.photos.max_failed"]
    assert issues, [str(i) for i in raised.value.issues]
    assert issues[0].location is not None
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: ingest\.photos\.max_failed: ", str(issues[0]))
