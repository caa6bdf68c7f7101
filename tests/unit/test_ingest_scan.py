"""Scanning a source folder: globs, order, symbolic links (loops included), unreadable entries."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from provisioning.image_ingest.errors import IngestError
from provisioning.image_ingest.scan import PathFilter, ScanProblem, compile_glob, scan


def _touch(root: Path, *relative: str) -> None:
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.jpg", "a.jpg", True),
        ("**/*.jpg", "x/y/a.jpg", True),
        ("**/*.jpg", "x/y/a.JPG", True),  # case-insensitive: cameras write upper case
        ("**/*.jpg", "x/a.jpeg", False),
        ("*.jpg", "a.jpg", True),
        ("*.jpg", "x/a.jpg", False),  # '*' stays within one segment
        ("x/**", "x/a/b.png", True),
        ("x/**", "y/x/a.png", False),
        ("**/thumbs/**", "a/thumbs/b.jpg", True),
        ("**/thumbs/**", "thumbs/b.jpg", True),
        ("**/thumbs/**", "athumbs/b.jpg", False),
        ("img_??.png", "IMG_01.png", True),
        ("img_??.png", "IMG_001.png", False),
        ("[ab].png", "b.png", True),
        ("[!ab].png", "b.png", False),
        ("[!ab].png", "c.png", True),
        ("./photos/*.jpg", "photos/a.jpg", True),
        ("a**b.jpg", "axxb.jpg", True),  # '**' inside a segment is '*'
        ("a**b.jpg", "a/b.jpg", False),
        ("a+b (1).jpg", "a+b (1).jpg", True),  # regex metacharacters are literal
    ],
)
def test_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).match(path)) is matches


def test_absolute_or_empty_globs_are_refused() -> None:
    for bad in ("/abs/*.jpg", "", "   "):
        with pytest.raises(IngestError, match="relative to the source folder"):
            compile_glob(bad)


def test_include_and_exclude() -> None:
    selected = PathFilter(["**/*.jpg", "**/*.png"], ["**/thumbs/**", "**/.*"])
    assert selected("a/b.jpg")
    assert not selected("a/thumbs/b.jpg")
    assert not selected("a/.hidden.png")
    assert not selected("a/b.gif")


def test_order_is_deterministic_depth_first_by_name(tmp_path: Path) -> None:
    _touch(tmp_path, "b.jpg", "a/z.jpg", "a/b/c.jpg", "c.png", "a.jpg", "notes.txt")
    found = [f.relative_path for f in scan(tmp_path, ["**/*.jpg", "**/*.png"])]
    assert found == ["a/b/c.jpg", "a/z.jpg", "a.jpg", "b.jpg", "c.png"]
    files = list(scan(tmp_path, ["**/*.jpg"]))
    assert files[0].name == "c.jpg" and files[0].path == tmp_path / "a" / "b" / "c.jpg"


def test_scan_is_lazy(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"{i:03d}.jpg" for i in range(50)))
    walk = scan(tmp_path, ["*.jpg"])
    assert next(walk).relative_path == "000.jpg"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlinked_folders_are_entered_only_when_asked_and_loops_end(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _touch(root, "a/one.jpg")
    _touch(tmp_path, "elsewhere/two.jpg")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a link back to an ancestor
    (root / "other").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "link.jpg").symlink_to(tmp_path / "elsewhere" / "two.jpg")  # a linked file is a file
    problems: list[ScanProblem] = []
    (root / "broken.jpg").symlink_to(tmp_path / "missing.jpg")

    plain = [f.relative_path for f in scan(root, ["**/*.jpg"], problems=problems)]
    assert plain == ["a/one.jpg", "link.jpg"]
    assert problems == [ScanProblem("broken.jpg", "broken symbolic link")]

    followed = [f.relative_path for f in scan(root, ["**/*.jpg"], follow_symlinks=True)]
    assert followed == ["a/one.jpg", "link.jpg", "other/two.jpg"]  # the loop is not walked again


def _scan_unprivileged(root: Path) -> tuple[list[str], list[str]]:
    """Scan as an unprivileged user: root reads every folder, so as root the scan runs in a child
    process that has dropped to ``nobody``."""
    if os.geteuid() != 0:
        problems: list[ScanProblem] = []
        found = [f.relative_path for f in scan(root, ["**/*.jpg"], problems=problems)]
        return found, [p.relative_path for p in problems]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, scan, report through the pipe
        status = 1
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            problems = []
            found = [f.relative_path for f in scan(root, ["**/*.jpg"], problems=problems)]
            os.write(write_end, json.dumps([found, [p.relative_path for p in problems]]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the unprivileged scan failed"
    found, problems = json.loads(data)
    return found, problems


def test_unreadable_folder_is_a_problem_not_an_error() -> None:
    base = Path(tempfile.mkdtemp(prefix="scan-unreadable-"))
    try:
        base.chmod(0o755)
        _touch(base, "ok/a.jpg", "locked/b.jpg")
        for folder in (base / "ok",):
            folder.chmod(0o755)
            (folder / "a.jpg").chmod(0o644)
        (base / "locked").chmod(0)
        found, problems = _scan_unprivileged(base)
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)
    assert found == ["ok/a.jpg"]
    assert problems == ["locked"]


def test_missing_or_non_folder_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot be read"):
        list(scan(tmp_path / "missing", ["**/*.jpg"]))
    _touch(tmp_path, "file.jpg")
    with pytest.raises(IngestError, match="is not a folder"):
        list(scan(tmp_path / "file.jpg", ["**/*.jpg"]))
