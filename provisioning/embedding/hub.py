"""Reaching the Hugging Face hub, or failing fast with a message that names the fix.

With no network, transformers' hub lookups retry for more than a minute before failing with a
message that does not say what to do. Every hub access (tracing text models, loading encoders)
goes through here instead: the local cache is tried first, and otherwise one short HTTP probe
decides, so an unreachable hub is an error within seconds that points at ``source.path``.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from provisioning.errors import ProvisionError
from provisioning.stackfile.schema import SourceSpec

HUB_ENDPOINT = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
PROBE_TIMEOUT_S = 3.0
_TRUTHY = {"1", "on", "yes", "true"}
# sentence-transformers resolves an id without an organisation to its own organisation.
ST_HUB_ORGANISATION = "sentence-transformers"


class HubUnavailable(ProvisionError):
    """A hub model is needed but cannot be had: the hub is unreachable or offline and nothing is cached."""


def hub_repo_id(hub: str) -> str:
    """The repository a sentence-transformers hub name refers to (``clip-ViT-B-32`` has no owner)."""
    return hub if "/" in hub else f"{ST_HUB_ORGANISATION}/{hub}"


def hub_offline_requested() -> bool:
    """Whether the environment forbids hub requests (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUTHY
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_is_cached(repo_id: str, revision: str | None) -> bool:
    """Whether the local Hugging Face cache holds the model (its modules.json or config.json)."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("modules.json", "config.json"):
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(found, str):
            return True
    return False


def _proxy_for(url: str) -> str | None:
    """The proxy an HTTPS request to ``url`` would go through, from the usual variables."""
    host = urlsplit(url).hostname or ""
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    for entry in (e.strip().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    scheme = urlsplit(url).scheme
    names = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    for var in (*names, "ALL_PROXY", "all_proxy"):
        if os.environ.get(var):
            return os.environ[var]
    return None


def probe_endpoint(url: str, timeout: float) -> str | None:
    """None if an HTTP(S) server answers at ``url`` within ``timeout`` s (any status), else why not.

    A plain TCP connect is not enough: interception proxies accept connections to any address and
    then never answer for the real host. Name resolution and TLS have no overall timeout in the
    standard library, so the request runs in a daemon thread that is abandoned, not waited for, when
    it takes too long. The usual proxy variables apply, as they do to the hub client.
    """
    proxy = _proxy_for(url)
    where = urlsplit(url).netloc + (
        f" (through the proxy {urlsplit(proxy).netloc or proxy})" if proxy else ""
    )
    outcome: list[str | None] = []
    silent = f"{where} did not answer within {timeout:g}s"

    def attempt() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # a status code is an answer: the server is there
        except urllib.error.URLError as exc:
            # The socket's own timeout can fire before the join below gives up: the same silence.
            outcome.append(silent if isinstance(exc.reason, TimeoutError) else f"{where}: {exc.reason}")
        except TimeoutError:
            outcome.append(silent)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            outcome.append(f"{where}: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return silent
    return outcome[0]


def cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The local snapshot directory of a cached hub model, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def unavailable_reason(repo_id: str, revision: str | None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why ``repo_id`` cannot be fetched now (offline and not cached, or hub unreachable), or None."""
    if hub_is_cached(repo_id, revision):
        return None
    if hub_offline_requested():
        return "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT
    why = probe_endpoint(endpoint, timeout)
    return f"the Hugging Face hub cannot be reached ({why})" if why else None


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
    repo_id = hub_repo_id(source.hub)
    cached = cached_snapshot(repo_id, source.revision)
    if cached is not None:
        return cached
    why = unavailable_reason(repo_id, source.revision)
    if why is not None:
        raise HubUnavailable(
            f"{what}: cannot fetch {repo_id}: {why}; download it where the hub is reachable "
            f"(e.g. `huggingface-cli download {repo_id} --local-dir DIR`) and set {what}.source.path to that folder"
        )
    return repo_id
