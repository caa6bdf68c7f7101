"""The quickstart's last step: ``run.sh --serve`` builds the stack, then serves the search page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.stacks import QUICKSTART
from tests.webapp.support import free_port


@pytest.mark.slow
def test_quickstart_with_serve_opens_the_app(tmp_path: Path) -> None:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
    }
    env.pop("ES_URL", None)
    env["PORT"] = str(port)
    log = tmp_path / "quickstart.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(QUICKSTART / "run.sh"), "--serve"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 600
            while True:
                assert process.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.5)
            page = requests.get(f"http://127.0.0.1:{port}/", params={"text": "un círculo rojo"}, timeout=30)
            assert page.status_code == 200 and "red-circle-000.jpg" in page.text
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    output = log.read_text()
    assert "smoke tests: 5 passed, 0 failed" in output
    assert f"open http://127.0.0.1:{port}/" in output
