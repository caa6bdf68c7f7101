"""The offline quickstart and the smoke tests' power to tell a working stack from a broken one."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import provisioning
from es_sandbox import SandboxServer
from provisioning.smoke_tests import SmokeTester, evaluate, recall_at_k
from provisioning.stackfile import load_stack
from tests.conftest import REPO, Target
from tests.integration.models_support import untrained_text_model
from tests.integration.stacks import QUICKSTART, absolute_stack, connect


def provision(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioning", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def applied(es_target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    stack = absolute_stack(tmp_path_factory.mktemp("quickstart"))
    result = provision("apply", str(stack), "--auto-approve", "--es-url", es_target.url)
    assert result.returncode == 0, result.stdout + result.stderr
    yield stack
    cluster = connect(es_target.url)
    provisioning.apply(provisioning.destroy_plan(load_stack(stack, {}), cluster, include_data=True), cluster)


@pytest.mark.slow
def test_quickstart_script_runs_green() -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
    }
    env.pop("ES_URL", None)
    result = subprocess.run(
        [str(QUICKSTART / "run.sh")], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "smoke tests: 5 passed, 0 failed" in output
    assert ": converged" in output
    assert "red-circle-000.jpg" in output  # the text and image searches found the red circles
    # it ends with the command that opens the app
    assert "make quickstart SERVE=1" in result.stdout.splitlines()[-2]


def test_smoke_tests_pass_with_recall_one_on_exact_knn(applied: Path, es_target: Target) -> None:
    verified = provision("verify", str(applied), "--output", "json", "--es-url", es_target.url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["passed"] == 5 and report["failed"] == 0
    en = next(r for r in report["results"] if r["name"] == "red-circle-en")
    assert en["recall"] == 1.0


def test_recall_check_fails_when_results_are_perturbed(applied: Path, es_target: Target) -> None:
    stack = load_stack(applied, {})
    tester = SmokeTester(stack, connect(es_target.url))
    test = stack.spec.smoke_tests["red-circle-en"]
    result = tester.run_one("red-circle-en", test)
    assert result.passed and result.recall == 1.0 and result.search is not None
    vector = tester.searcher.embed_text(test.text or "", "clip-text")
    exact = tester.exact(test, test.index, "image_embedding", vector)
    far = exact[-1][0]  # the worst document of the exact ranking's window
    hits = result.search.hits
    perturbed_hits = [
        hits[0],
        dataclasses.replace(hits[1], id=far, source={"image_name": "not-a-red-circle.jpg"}),
    ]
    perturbed = dataclasses.replace(result.search, hits=perturbed_hits)
    recall = recall_at_k([h.id for h in perturbed_hits], exact, test.k)
    assert recall == 0.5
    checks = {c.name: c for c in evaluate(test, perturbed, recall)}
    assert not checks["min_recall"].passed and "recall@2 0.5" in checks["min_recall"].message
    assert not checks["top_k_contains"].passed


def test_untrained_text_model_makes_verify_fail_readably(
    applied: Path, es_target: Target, tmp_path: Path
) -> None:
    untrained = untrained_text_model(tmp_path)
    broken = absolute_stack(tmp_path, path=str(untrained))
    try:
        plan = provisioning.plan(load_stack(broken, {}), connect(es_target.url))
        assert ("replace", "trained_model/tiny-clip-text-multilingual-v1") in [
            (c.action, c.address) for c in plan.changes
        ]
        result = provision("apply", str(broken), "--auto-approve", "--skip-verify", "--es-url", es_target.url)
        assert result.returncode == 0, result.stderr
        verified = provision("verify", str(broken), "--es-url", es_target.url)
        assert verified.returncode == 1
        out = verified.stdout
        for name in ("red-circle-en", "red-circle-de", "red-circle-es", "blue-star-infer"):
            assert f"FAIL {name}" in out
        assert "PASS example-image" in out  # images are embedded by the (trained) image model
        assert "missing ['red-circle-000.jpg'" in out or "missing ['red-circle-001.jpg'" in out
        assert "Traceback" not in verified.stderr
    finally:
        restored = provision("apply", str(applied), "--auto-approve", "--es-url", es_target.url)
        assert restored.returncode == 0, restored.stderr


def test_plan_of_the_root_stack_lists_the_expected_creations(fresh_sandbox: SandboxServer) -> None:
    """On an empty cluster: the quickstart's pipeline has the root stack's pipeline name."""
    url = fresh_sandbox.url
    result = provision(
        "plan", str(REPO / "stack.yaml"), "--output", "json", "--detailed-exitcode", "--es-url", url
    )
    assert result.returncode == 2, result.stderr
    plan = json.loads(result.stdout)
    created = [c["address"] for c in plan["changes"] if c["action"] == "create"]
    assert created == [
        "index_template/image-embeddings",
        "trained_model/sentence-transformers__clip-vit-b-32-multilingual-v1",
        "deployment/sentence-transformers__clip-vit-b-32-multilingual-v1",
        "pipeline/caption-embedding",
        "index/my-image-embeddings",
    ]
    assert plan["conflicts"] == []
