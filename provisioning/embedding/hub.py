"""Resolving a model source to a local directory, failing fast when the hub cannot be reached.

With no network, transformers' hub lookups retry for about 80 seconds before failing with a
message that does not name the fix. Every hub access goes through here instead: the local
cache is tried first, and otherwise one short probe decides, so an unreachable hub is an error
within seconds that points at ``source.path``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from provisioning.errors import ProvisionError
from provisioning.spec.model import SourceSpec

HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
PROBE_TIMEOUT_S = 3.0


class HubUnavailable(ProvisionError):
    """A hub model is needed but cannot be fetched."""


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the hub opens within ``timeout``, else why not."""
    parts = urlsplit(HUB_URL)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def resolve_source(source: SourceSpec, base_dir: Path, *, what: str) -> Path | str:
    """A local directory for ``source``, or the hub id when it must (and can) be downloaded.

    ``what`` names the model in messages (``models.clip-text``).
    """
    if source.path is not None:
        path = Path(source.path).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_dir():
            raise ProvisionError(f"{what}: model directory not found: {path}")
        return path
    assert source.hub is not None
    cached = _cached_snapshot(source.hub, source.revision)
    if cached is not None:
        return cached
    fix = (
        f"download it where the hub is reachable (e.g. `huggingface-cli download {source.hub} --local-dir DIR`) "
        f"and set {what}.source.path to that folder"
    )
    if _offline():
        raise HubUnavailable(
            f"{what}: {source.hub} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; {fix}"
        )
    why = hub_reachable()
    if why is not None:
        raise HubUnavailable(
            f"{what}: cannot reach the Hugging Face hub at {HUB_URL} ({why}) to fetch {source.hub}; {fix}"
        )
    return source.hub
