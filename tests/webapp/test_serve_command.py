"""``provision serve`` as a user runs it: a real process, loopback by default, the index chosen
with --index, an unknown index refused before listening, no secret in its output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import REPO
from tests.webapp.conftest import Served
from tests.webapp.support import free_port

SECRET = "c2VydmUtY29tbWFuZC1zZWNyZXQ="


def provision(*args: str) -> list[str]:
    return [sys.executable, "-c", "from provisioning.cli import main; main()", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "ES_API_KEY": SECRET, "HF_HUB_OFFLINE": "1"}


def test_serve_answers_on_loopback_and_stops_cleanly(served: Served, tmp_path: Path) -> None:
    port = free_port()
    stack = served.stack.path
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            provision("serve", str(stack), "--port", str(port), "--es-url", served.proxy.url),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment(),
            cwd=tmp_path,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    break
                except requests.ConnectionError:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            assert health.status_code == 200, health.text
            found = requests.get(
                f"http://127.0.0.1:{port}/api/search", params={"text": "a red circle", "k": 2}, timeout=30
            )
            assert {h["name"] for h in found.json()["hits"]} == {"red-circle-000.jpg", "red-circle-001.jpg"}
            page = requests.get(f"http://127.0.0.1:{port}/?text=a+red+circle", timeout=30)
            assert page.status_code == 200 and "red-circle-000.jpg" in page.text
        finally:
            process.terminate()
            process.wait(timeout=30)
    output = log.read_text()
    assert f"open http://127.0.0.1:{port}/" in output and "index quickstart-images" in output
    assert "GET /api/search?text=a+red+circle" in output  # uvicorn's access log, on stderr
    assert SECRET not in output


def test_serve_refuses_an_index_the_stack_does_not_declare(served: Served, tmp_path: Path) -> None:
    done = subprocess.run(
        provision("serve", str(served.stack.path), "--port", str(free_port()), "--index", "elsewhere"),
        capture_output=True,
        text=True,
        env=environment(),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "index elsewhere is not declared" in done.stderr and SECRET not in done.stderr + done.stdout


def test_serve_help_lists_the_options() -> None:
    done = subprocess.run(
        provision("serve", "--help"),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
        check=True,
    )
    for option in ("--host", "--port", "--index", "--es-url", "--api-key", "127.0.0.1", "8080"):
        assert option in done.stdout
