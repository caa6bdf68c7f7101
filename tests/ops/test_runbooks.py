"""Every runbook's runnable blocks (see tests/ops/runbooks.py) run green against a fresh sandbox
with the quickstart applied, from a copy of the quickstart folder, with ES_URL and STACK set as an
operator would set them.

The quickstart is applied once, into a sandbox that persists its state; each runbook then gets a
sandbox started from a copy of that state, so runbooks cannot affect each other.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import provisioning
from es_sandbox import SandboxServer
from tests.conftest import REPO, sandbox_config
from tests.ops.runbooks import merge_patch, runnable_blocks, script
from tests.ops.workspace import quickstart_workspace, shell_env

RUNBOOKS = REPO / "docs" / "runbooks"
RUN = [
    "scale-deployment.md",
    "deployment-stuck.md",
    "change-vectors-or-model.md",
    "resume-ingest.md",
    "rotate-api-key.md",
    "upgrade-elasticsearch.md",
]
DOCUMENTATION_ONLY = {"model-rollover.md"}  # walks through its own stack edits; tested by test_models.py

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def applied_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox data directory holding the quickstart, applied and ingested."""
    base = tmp_path_factory.mktemp("runbook-template")
    data = base / "data"
    stack = provisioning.load_stack(quickstart_workspace(base / "quickstart"))
    server = SandboxServer(sandbox_config(data_dir=data)).start()
    try:
        cluster = provisioning.connect(stack, url=server.url)
        report = provisioning.converge(stack, cluster)
        cluster.close()
        assert report.ok, report.to_json()
    finally:
        server.stop()
    yield data


def test_every_runbook_is_run_or_documented_as_not() -> None:
    present = {p.name for p in RUNBOOKS.glob("*.md")}
    assert present == set(RUN) | DOCUMENTATION_ONLY
    for name in RUN:
        assert runnable_blocks(RUNBOOKS / name), f"{name} has no runnable block"


def test_merge_patch() -> None:
    before = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(before, {"a": {"b": None, "c": [3]}, "e": {"f": 1}}) == {
        "a": {"c": [3]},
        "d": 1,
        "e": {"f": 1},
    }


@pytest.mark.parametrize("runbook", RUN)
def test_runbook_runs_green(runbook: str, applied_state: Path, tmp_path: Path) -> None:
    assert shutil.which("curl"), "the runbooks use curl; install it"
    data = tmp_path / "data"
    shutil.copytree(applied_state, data)
    workspace = quickstart_workspace(tmp_path / "work").parent
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    commands = script(RUNBOOKS / runbook, scratch)
    (scratch / "runbook.sh").write_text(commands)
    with SandboxServer(sandbox_config(data_dir=data)) as server:
        done = subprocess.run(
            ["bash", str(scratch / "runbook.sh")],
            cwd=workspace,
            env=shell_env(ES_URL=server.url, STACK="stack.yaml"),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    output = done.stdout + done.stderr
    print(output)  # shown with pytest -rP
    failed_at = [line for line in done.stdout.splitlines() if line.startswith("### ")]
    assert done.returncode == 0, f"{runbook} failed after {failed_at[-1:]}:\n{output[-6000:]}"
    assert failed_at[-1] == "### done"
