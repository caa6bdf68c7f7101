"""Containment of served files: what a document's ``relative_path`` may name under its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.image_files import UnsafeImagePath, inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "trips").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"a")
    (folder / "trips" / "b.jpg").write_bytes(b"b")
    (tmp_path / "secret.jpg").write_bytes(b"s")
    (folder / "out.jpg").symlink_to(tmp_path / "secret.jpg")
    (folder / "out-dir").symlink_to(tmp_path, target_is_directory=True)
    (folder / "in.jpg").symlink_to(folder / "trips" / "b.jpg")
    return folder.resolve()


@pytest.mark.parametrize("relative", ["a.jpg", "trips/b.jpg", "./a.jpg", "trips//b.jpg", "in.jpg"])
def test_files_inside_are_found(root: Path, relative: str) -> None:
    found = inside(root, relative)
    assert found.is_file() and found.is_relative_to(root)


@pytest.mark.parametrize(
    "relative",
    [
        "../secret.jpg",
        "trips/../../secret.jpg",
        "trips/../a.jpg",  # '..' is refused even where it would stay inside
        "/etc/passwd",
        "//etc/passwd",
        "\\\\server\\share\\x.jpg",
        "C:\\secret.jpg",
        "C:secret.jpg",
        "..\\secret.jpg",
        "out.jpg",
        "out-dir/secret.jpg",
        "",
        "a.jpg\x00.png",
    ],
)
def test_paths_leaving_the_folder_are_refused(root: Path, relative: str) -> None:
    with pytest.raises(UnsafeImagePath, match="refused path"):
        inside(root, relative)


@pytest.mark.parametrize("relative", ["%2e%2e/secret.jpg", "..%2fsecret.jpg", "missing.jpg", "trips"])
def test_encoded_or_missing_paths_are_not_files(root: Path, relative: str) -> None:
    with pytest.raises(FileNotFoundError):
        inside(root, relative)
