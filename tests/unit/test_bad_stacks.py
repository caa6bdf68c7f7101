"""Every malformed stack in tests/data/bad_stacks is rejected with exit 1, a located message, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"
BAD = sorted((DATA / "bad_stacks").glob("*.yaml"))
LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): ", re.M)


def _expected(path: Path) -> str | None:
    first = path.read_bytes().split(b"\n", 1)[0]
    if first.startswith(b"# expect: "):
        return first[len(b"# expect: ") :].decode("latin-1")
    return None


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_corpus_is_large_enough() -> None:
    assert len(BAD) >= 30


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_stack_is_rejected_with_location(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(path.parent)
    monkeypatch.delenv("PROVISION_TEST_UNSET_VARIABLE", raising=False)
    code, out, err = _run(["validate", path.name], capsys)
    assert code == 1
    assert "Traceback" not in err + out
    located = list(LOCATED.finditer(err))
    assert located, f"no file:line:col in {err!r}"
    for match in located:
        reported = path.parent / match.group("file")
        assert reported.is_file(), f"message names {match.group('file')}, which is not a file"
        lines = reported.read_bytes().count(b"\n") + 1
        assert 1 <= int(match.group("line")) <= lines
    expected = _expected(path)
    if expected is not None:
        assert expected in err
    assert f"{path.name}: invalid" in err


def test_good_base_of_the_corpus_is_valid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(DATA)
    code, out, _ = _run(["validate", "good_stack.yaml"], capsys)
    assert code == 0
    assert "valid stack 'bad-stack-corpus-base'" in out


def test_directory_as_stack_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["validate", str(DATA)], capsys)
    assert code == 1
    assert "is a directory" in err and "Traceback" not in err


def test_missing_stack_file_is_rejected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(["validate", str(tmp_path / "nope.yaml")], capsys)
    assert code == 1
    assert "file not found" in err


def test_console_script_reports_without_traceback() -> None:
    """The installed entry point, as a user runs it, on a few representative files."""
    for name in ("yaml_tab_indent.yaml", "binary_garbage.yaml", "dims_mismatch.yaml"):
        proc = subprocess.run(
            [sys.executable, "-m", "provisioning", "validate", name],
            cwd=DATA / "bad_stacks",
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert LOCATED.search(proc.stderr)


def test_json_output_lists_every_issue(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.chdir(DATA / "bad_stacks")
    code, out, _ = _run(["validate", "--output", "json", "unknown_model_key.yaml"], capsys)
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    unknown = [i for i in doc["issues"] if "task_typ'" in i["message"]]
    assert unknown and unknown[0]["line"] == 7 and unknown[0]["path"] == "models.tiny-text.task_typ"
