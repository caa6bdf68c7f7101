"""What Elasticsearch would refuse is refused before the first write: offline by ``validate`` (its
rules for the bodies a stack declares), against the cluster by ``plan`` (its own dry runs); and a
resource short of its declared state (a deployment still starting, a red index) is never counted as
done. Each case was a bug report against this kind of tool; each asserts the request log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import provisioning
from es_sandbox import SandboxServer
from tests.conftest import Target, sandbox_config
from tests.integration.stacks import QUICKSTART, absolute_stack, connect, resources_stack, unique, write_stack


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioning", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=timeout,
        check=False,
    )


def quickstart_variant(directory: Path, edit: Any) -> Path:
    """The quickstart stack (absolute paths) with its body, mapping and pipeline inlined, edited."""
    path = absolute_stack(directory)
    body = yaml.safe_load(path.read_text())
    template = body["index_templates"]["quickstart-images"]
    template["template"] = yaml.safe_load((QUICKSTART / "mappings" / "images.yaml").read_text())
    body["pipelines"]["caption-embedding"] = yaml.safe_load(
        (QUICKSTART / "pipelines" / "caption-embedding.yaml").read_text()
    )
    edit(body)
    return write_stack(directory, body)


def vector_field(body: dict[str, Any]) -> dict[str, Any]:
    field: dict[str, Any] = body["index_templates"]["quickstart-images"]["template"]["mappings"][
        "properties"
    ]["image_embedding"]
    return field


def assert_refused_offline(stack: Path, message: str, sandbox: SandboxServer) -> None:
    """validate exits 1 naming the problem; apply exits 1 and sends nothing at all."""
    validated = run("validate", str(stack))
    assert validated.returncode == 1, validated.stdout + validated.stderr
    assert message in validated.stderr, validated.stderr
    assert f"{stack}:" in validated.stderr  # located: file:line:col
    sandbox.state.log.clear()
    applied = run("apply", str(stack), "--auto-approve", "--es-url", sandbox.url)
    assert applied.returncode == 1
    assert sandbox.state.log.writes() == []


def test_bbq_on_a_32_dims_field_is_refused_by_validate(sandbox: SandboxServer, tmp_path: Path) -> None:
    def edit(body: dict[str, Any]) -> None:
        vector_field(body)["index_options"] = {"type": "bbq_hnsw"}

    stack = quickstart_variant(tmp_path, edit)
    assert_refused_offline(stack, "bbq_hnsw does not support dimensions fewer than 64; provided=32", sandbox)
    assert "image_embedding.index_options.type" in run("validate", str(stack)).stderr


def test_knn_smoke_tests_on_an_unindexed_vector_field_are_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    def edit(body: dict[str, Any]) -> None:
        field = vector_field(body)
        field["index"] = False
        field.pop("similarity")
        field.pop("index_options")

    stack = quickstart_variant(tmp_path, edit)
    assert_refused_offline(
        stack,
        "to perform knn search on field [image_embedding], its mapping must have [index] set to [true]",
        sandbox,
    )
    errors = run("validate", str(stack)).stderr
    assert errors.count("its mapping must have [index] set to [true]") == 5  # every smoke test
    assert "model" not in errors.lower()  # not blamed on the text model


def test_field_map_on_the_stacks_own_inference_endpoint_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    def edit(body: dict[str, Any]) -> None:
        body["pipelines"]["caption-embedding"]["processors"] = [
            {"inference": {"model_id": "clip-text-embedding", "field_map": {"caption": "text_field"}}}
        ]

    assert_refused_offline(
        quickstart_variant(tmp_path, edit),
        "[clip-text-embedding] is configured for the _inference API and does not accept documents as input",
        sandbox,
    )


def test_an_unmanaged_overlapping_template_is_a_plan_error_before_any_write(
    es_target: Target, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The quickstart against a cluster that already has someone else's template of the same
    priority over the same names: plan asks the cluster (simulate) and exits 1; apply writes nothing
    (no model upload, no deployment)."""
    others = unique("others")
    client = es_target.client()
    client.indices.put_index_template(
        name=others, body={"index_patterns": ["quickstart-images*"], "priority": 200, "template": {}}
    )
    try:
        stack = quickstart_variant(tmp_path, lambda body: None)
        planned = run("plan", str(stack), "--output", "json", "--es-url", es_target.url)
        assert planned.returncode == 1, planned.stdout + planned.stderr
        document = json.loads(planned.stdout)
        assert document["applicable"] is False and document["summary"]["errors"] == 1
        (error,) = document["errors"]
        assert error.startswith("index_template/quickstart-images: Elasticsearch refuses it: ")
        assert f"existing templates [{others}]" in error and "same priority [200]" in error
        sandbox.state.log.clear()
        applied = run("apply", str(stack), "--auto-approve", "--es-url", es_target.url)
        assert applied.returncode == 1 and "same priority [200]" in applied.stderr
        assert sandbox.state.log.writes() == []
    finally:
        client.indices.delete_index_template(name=others)


def test_a_refused_pipeline_is_a_plan_error(es_target: Target, tmp_path: Path) -> None:
    """A processor Elasticsearch cannot build is refused by the pipeline dry run."""
    name = unique("pipe")
    body = resources_stack(name)
    body["pipelines"][f"{name}-tag"]["processors"] = [
        {"set": {"field": "a", "value": "x", "no_such_option": 1}}
    ]
    plan = provisioning.plan(provisioning.load_stack(write_stack(tmp_path, body), {}), connect(es_target.url))
    assert not plan.applicable
    assert [e.split(":")[0] for e in plan.errors] == [f"pipeline/{name}-tag"]
    assert "no_such_option" in plan.errors[0]


# -- a partial state is not done ----------------------------------------------------------------
@pytest.fixture
def slow_ml() -> Iterator[SandboxServer]:
    """A sandbox whose deployments take a minute in each state: a short timeout runs out first."""
    with SandboxServer(sandbox_config(deployment_start_delay_s=60, allocation_delay_s=60)) as server:
        yield server


def test_a_starting_deployment_is_never_counted_as_done(slow_ml: SandboxServer, tmp_path: Path) -> None:
    def edit(body: dict[str, Any]) -> None:
        body["models"]["clip-text"]["deployment"]["timeout"] = "2s"

    stack_path = quickstart_variant(tmp_path, edit)
    stack = provisioning.load_stack(stack_path, {})
    cluster = connect(slow_ml.url)
    options = provisioning.ConvergeOptions(skip_verify=True)
    first = provisioning.converge(stack, cluster, options)
    assert first.stopped_at == "apply"
    assert "did not reach fully_allocated within 2s" in (first.error or "")

    pending = provisioning.plan(stack, cluster)
    deployment = next(c for c in pending.changes if c.kind == "deployment")
    assert deployment.action == "update"
    assert (
        deployment.reason == "wait for deployment tiny-clip-text-multilingual-v1: starting, 0/1 allocations"
    )
    assert pending.has_changes

    slow_ml.state.log.clear()
    again = run("apply", str(stack_path), "--auto-approve", "--skip-verify", "--es-url", slow_ml.url)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "did not reach fully_allocated" in again.stderr
    writes = [(w.method, w.path) for w in slow_ml.state.log.writes()]
    assert not [w for w in writes if "deployment" in w[1]], writes  # it waited; it did not restart

    status = provisioning.status(stack, cluster)
    assert not status.converged
    (dep,) = [r for r in status.resources if r.kind == "deployment"]
    assert not dep.ready and dep.reason and "starting, 0/1 allocations" in dep.reason
    shown = run("status", str(stack_path), "--es-url", slow_ml.url)
    assert "not ready (wait for deployment" in shown.stdout and "not converged" in shown.stdout

    verified = provisioning.verify(stack, cluster, ["red-circle-en"])
    (result,) = verified.results
    assert not result.passed and result.search is None  # refused, not run
    assert "is starting with 0/1 allocations" in (result.error or "")


def test_a_red_index_is_not_counted_as_done(es_target: Target, tmp_path: Path) -> None:
    """An index whose primaries cannot be allocated (created while allocation was disabled) is red:
    plan shows it pending, status is not converged, and apply waits until it is allocated."""
    name = unique("red")
    body = resources_stack(name)
    client = es_target.client()
    stack = provisioning.load_stack(write_stack(tmp_path, body), {})
    cluster = connect(es_target.url)
    client.cluster.put_settings(transient={"cluster.routing.allocation.enable": "none"})
    try:
        assert provisioning.apply(provisioning.plan(stack, cluster), cluster).ok
        pending = provisioning.plan(stack, cluster)
        (change,) = pending.changes
        assert (change.address, change.action) == (f"index/{name}-images", "update")
        assert change.reason == f"wait for index {name}-images: health red (a primary shard is not allocated)"
        assert not provisioning.status(stack, cluster).converged
        enable = threading.Timer(
            1.0, lambda: client.cluster.put_settings(transient={"cluster.routing.allocation.enable": None})
        )
        enable.start()
        waited = provisioning.apply(pending, cluster)
        enable.join()
        assert waited.ok, waited.to_json()
        assert waited.results[0].seconds >= 0.5  # it waited for the allocation
    finally:
        client.cluster.put_settings(transient={"cluster.routing.allocation.enable": None})
    assert provisioning.plan(stack, cluster).changes == []
    assert provisioning.apply(provisioning.destroy_plan(stack, cluster, include_data=True), cluster).ok
