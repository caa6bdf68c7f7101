"""Finding the files of an ingest job: include/exclude globs under a source folder.

The walk is lazy (a corpus is never listed in memory), in a deterministic order (entries sorted by
name, depth first), and safe with symbolic links: a linked folder is entered only with
``follow_symlinks``, and never twice (a link back to an ancestor would otherwise loop forever).

Globs are relative to the source folder, ``/``-separated, and matched case-insensitively: cameras
write ``IMG_0001.JPG`` and editors ``img_0001.jpg``, and the default ``**/*.jpg`` must find both.
``**`` matches any number of folders (none included), ``*`` and ``?`` stay within one path segment,
``[abc]`` is a character class.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from provisioning.image_ingest.errors import IngestError


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where it is, and its path relative to the source folder (``/``-separated)."""

    path: Path
    relative_path: str

    @property
    def name(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ScanProblem:
    """A folder or entry that could not be read; the walk goes on without it."""

    relative_path: str
    reason: str


def _translate(pattern: str) -> str:
    """A glob as a regular expression over a relative ``/``-separated path."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            at_end = i + 2 == n or pattern[i + 2] == "/"
            if at_start and at_end:
                if i + 2 == n:
                    out.append(".*")  # trailing '**': everything below
                    i += 2
                else:
                    out.append("(?:[^/]*/)*")  # '**/': zero or more folders
                    i += 3
                continue
            out.append("[^/]*")  # '**' inside a segment is just '*'
            i += 2
            continue
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The compiled matcher of one glob (see the module docstring for the syntax)."""
    cleaned = pattern.strip()
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if not cleaned or cleaned.startswith("/"):
        raise IngestError(f"glob {pattern!r} must be a non-empty path relative to the source folder")
    return re.compile(_translate(cleaned) + r"\Z", re.IGNORECASE | re.DOTALL)


class PathFilter:
    """Include and exclude globs: a path is selected when an include matches and no exclude does."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str] = ()) -> None:
        self._include = [compile_glob(p) for p in include]
        self._exclude = [compile_glob(p) for p in exclude]

    def __call__(self, relative_path: str) -> bool:
        return any(p.match(relative_path) for p in self._include) and not any(
            p.match(relative_path) for p in self._exclude
        )


def scan(
    root: Path,
    include: Sequence[str],
    exclude: Sequence[str] = (),
    *,
    follow_symlinks: bool = False,
    problems: list[ScanProblem] | None = None,
) -> Iterator[SourceFile]:
    """The files under ``root`` selected by the globs, lazily, in a deterministic order.

    Unreadable folders and broken links are appended to ``problems`` (when given) and skipped.
    ``root`` itself must be a readable folder: a missing source is an error, not an empty corpus
    (prune would otherwise take it for "every file was deleted").
    """
    selected = PathFilter(include, exclude)
    try:
        root_stat = root.stat()
    except OSError as exc:
        raise IngestError(f"source folder {root} cannot be read: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(root_stat.st_mode):
        raise IngestError(f"source {root} is not a folder")
    visited = {(root_stat.st_dev, root_stat.st_ino)}
    try:
        with os.scandir(root) as probe:
            next(probe, None)
    except OSError as exc:
        raise IngestError(f"source folder {root} cannot be listed: {exc.strerror or exc}") from exc
    yield from _walk(root, "", selected, follow_symlinks, visited, problems)


def _walk(
    folder: Path,
    prefix: str,
    selected: PathFilter,
    follow_symlinks: bool,
    visited: set[tuple[int, int]],
    problems: list[ScanProblem] | None,
) -> Iterator[SourceFile]:
    def problem(relative: str, reason: str) -> None:
        if problems is not None:
            problems.append(ScanProblem(relative, reason))

    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        problem(prefix.rstrip("/") or ".", f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        relative = prefix + entry.name
        try:
            is_link = entry.is_symlink()
            if is_link and not follow_symlinks:
                if entry.is_dir(follow_symlinks=True):
                    continue  # a linked folder, not entered unless asked
                if not entry.is_file(follow_symlinks=True):
                    if not Path(entry.path).exists():
                        problem(relative, "broken symbolic link")
                    continue
            info = entry.stat(follow_symlinks=True)
        except OSError as exc:
            problem(relative, f"cannot read: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in visited:
                continue  # a link to a folder already walked (or to an ancestor: a loop)
            visited.add(key)
            yield from _walk(Path(entry.path), relative + "/", selected, follow_symlinks, visited, problems)
        elif stat.S_ISREG(info.st_mode) and selected(relative):
            yield SourceFile(Path(entry.path), relative)
