"""Where Elastic's conformance data lives: never copied into the repository, read from beside it.

In order: ``$PROVISION_CONFORMANCE_DIR``; ``<repo>/../shared/conformance``; and, for a clone made
elsewhere (CI clones into a fresh folder), the same place beside the repository it was cloned from
(a local ``remote.origin.url``). Tests that need the data skip, saying where they looked, only when
none of these exists.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _origin_checkout() -> Path | None:
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not url or "://" in url or url.startswith("git@"):
        return None
    path = Path(url.removeprefix("file:")).expanduser()
    return path if path.is_dir() else None


def conformance_candidates() -> list[Path]:
    configured = os.environ.get("PROVISION_CONFORMANCE_DIR")
    if configured:
        return [Path(configured)]
    found = [REPO.parent / "shared" / "conformance"]
    origin = _origin_checkout()
    if origin is not None:
        found.append(origin.resolve().parent / "shared" / "conformance")
    return found


def conformance_dir() -> Path:
    """The first candidate that exists (else the first, so messages name where it was expected)."""
    candidates = conformance_candidates()
    return next((c for c in candidates if c.is_dir()), candidates[0])
