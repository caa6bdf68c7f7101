"""An ingest run as a child process, killed in its middle: what the resume tests of both engines do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from elasticsearch import Elasticsearch

from tests.conftest import REPO


def count_documents(client: Elasticsearch, index: str) -> int:
    """Documents searchable in ``index`` now (after a refresh)."""
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


def ingest_process(stack: Path, url: str, output: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """``provision ingest STACK --output json --es-url URL ARGS...`` started in the background, its JSON
    written to ``output``; ``env`` adds variables."""
    command = [
        sys.executable,
        "-m",
        "provisioning",
        "ingest",
        str(stack),
        "--output",
        "json",
        "--es-url",
        url,
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **env}
    with output.open("wb") as out:
        return subprocess.Popen([*command, *args], stdout=out, env=environment, cwd=REPO)


def kill_after(
    process: subprocess.Popen[bytes], client: Elasticsearch, index: str, documents: int, within_s: float
) -> None:
    """SIGKILL ``process`` once ``index`` holds ``documents`` documents; fails the test when the run
    ends first or indexes fewer within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    try:
        while count_documents(client, index) < documents:
            assert process.poll() is None, "the first run ended before it could be killed"
            assert time.monotonic() < deadline, f"the first run indexed too little within {within_s:.0f} s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
