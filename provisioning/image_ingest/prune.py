"""Which indexed documents a prune may delete: those whose file is gone (or changed) on disk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath


def prune_decision(
    relative: str,
    root: Path,
    index_roots: Sequence[Path],
    shared: bool,
    selected: Callable[[str], bool],
    unreadable: set[str],
) -> bool:
    """Whether a document with this ``relative_path`` (whose id no scanned file has) is stale.

    Stale when its file is missing under every source folder writing to the index; or, when this job
    alone writes to the index, when the file still exists and is selected by the globs (so it was
    scanned, and its content has changed). A path that is absolute, climbs with ``..``, or could not
    be read in this run is never stale.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or relative in unreadable:
        return False
    here = root.joinpath(*parts)
    if not here.exists():
        return not any(other.joinpath(*parts).exists() for other in index_roots)
    return not shared and selected(relative)
