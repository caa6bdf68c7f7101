"""plan / apply / destroy against a cluster: idempotence, drift, ownership, pruning, safety."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from elasticsearch import Elasticsearch

import provisioning
from es_sandbox import Faults, SandboxServer
from provisioning.executor import PlanNotApplicable
from provisioning.plan_document import plan_schema
from tests.conftest import REPO, Target, sandbox_config
from tests.integration.stacks import connect, load, resources_stack, unique, write_stack


def converge(tmp_path: Path, url: str, body: dict[str, Any]) -> None:
    stack = load(tmp_path, body)
    cluster = connect(url)
    report = provisioning.apply(provisioning.plan(stack, cluster), cluster)
    assert report.ok, report.to_json()


def addresses(plan: Any, action: str | None = None) -> list[str]:
    return [c.address for c in plan.changes if action is None or c.action == action]


def test_apply_creates_everything_then_plan_is_empty(es_target: Target, tmp_path: Path) -> None:
    name = unique("rec")
    body = resources_stack(name)
    stack = load(tmp_path, body)
    cluster = connect(es_target.url)
    first = provisioning.plan(stack, cluster)
    assert addresses(first, "create") == [
        f"component_template/{name}-settings",
        f"index_template/{name}-images",
        f"pipeline/{name}-tag",
        f"index/{name}-images",
    ]
    assert provisioning.apply(first, cluster).ok
    second = provisioning.plan(load(tmp_path, body), cluster)
    assert second.changes == [] and second.conflicts == []
    assert sorted(second.unchanged) == sorted(addresses(first))


def test_second_apply_sends_no_write_request(sandbox: SandboxServer, tmp_path: Path) -> None:
    name = unique("idem")
    body = resources_stack(name)
    converge(tmp_path, sandbox.url, body)
    sandbox.state.log.clear()
    stack = load(tmp_path, body)
    cluster = connect(sandbox.url)
    report = provisioning.apply(provisioning.plan(stack, cluster), cluster)
    assert report.results == []
    writes = sandbox.state.log.writes()
    assert writes == [], [(w.method, w.path) for w in writes]
    reads = sandbox.state.log.reads()
    assert (
        len([r for r in reads if r.path != "/"])
        <= len(addresses(provisioning.plan(stack, cluster)) or [1]) + 8
    )


def without_tracking(body: dict[str, Any]) -> dict[str, Any]:
    """A GET body that can be PUT back: without the dates ES 9.2+ manages (and refuses in a PUT)."""
    return {k: v for k, v in body.items() if k.split("_date")[0] not in ("created", "modified")}


def test_out_of_band_edits_each_show_as_exactly_one_update(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name = unique("drift")
    body = resources_stack(name)
    converge(tmp_path, es_target.url, body)
    tpl = without_tracking(
        es.indices.get_index_template(name=f"{name}-images").body["index_templates"][0]["index_template"]
    )
    tpl["priority"] = 301
    es.indices.put_index_template(name=f"{name}-images", body=tpl)
    pipe = without_tracking(es.ingest.get_pipeline(id=f"{name}-tag").body[f"{name}-tag"])
    pipe["description"] = "edited by hand"
    es.ingest.put_pipeline(id=f"{name}-tag", body=pipe)
    es.indices.put_mapping(
        index=f"{name}-images", properties={"image_name": {"type": "keyword", "ignore_above": 512}}
    )

    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert addresses(plan) == [
        f"index_template/{name}-images",
        f"pipeline/{name}-tag",
        f"index/{name}-images",
    ]
    assert {c.action for c in plan.changes} == {"update"}
    by_address = {c.address: c for c in plan.changes}
    assert [(d.path, d.before, d.after) for d in by_address[f"index_template/{name}-images"].diff] == [
        ("priority", 301, 300)
    ]
    assert [(d.path, d.before, d.after) for d in by_address[f"pipeline/{name}-tag"].diff] == [
        ("description", "edited by hand", "tag documents")
    ]
    index_diff = by_address[f"index/{name}-images"].diff
    assert [(d.path, d.before, d.after) for d in index_diff] == [
        ("mappings.properties.image_name.ignore_above", 512, 256)
    ]
    assert all(c.blocked is None for c in plan.changes)
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_removed_resource_is_planned_for_deletion(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name = unique("prune")
    body = resources_stack(name)
    body["pipelines"][f"{name}-extra"] = {
        "processors": [{"remove": {"field": "tmp", "ignore_missing": True}}]
    }
    converge(tmp_path, es_target.url, body)
    del body["pipelines"][f"{name}-extra"]
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [(c.action, c.address) for c in plan.changes] == [("delete", f"pipeline/{name}-extra")]
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert f"{name}-extra" not in es.ingest.get_pipeline().body


def test_unmanaged_resource_with_a_declared_name_is_a_conflict(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name = unique("owner")
    body = resources_stack(name)
    es.ingest.put_pipeline(id=f"{name}-tag", processors=[{"set": {"field": "x", "value": "hand-made"}}])
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert [c.address for c in plan.conflicts] == [f"pipeline/{name}-tag"]
    assert "not managed by provision" in plan.conflicts[0].reason
    assert "--adopt pipeline/" in plan.conflicts[0].hint
    with pytest.raises(PlanNotApplicable):
        provisioning.apply(plan, connect(es_target.url))
    # nothing was written: the hand-made pipeline is intact and nothing else was created
    assert (
        es.ingest.get_pipeline(id=f"{name}-tag").body[f"{name}-tag"]["processors"][0]["set"]["value"]
        == "hand-made"
    )
    assert not es.indices.exists_index_template(name=f"{name}-images")
    adopted = provisioning.plan(load(tmp_path, body), connect(es_target.url), adopt=[f"pipeline/{name}-tag"])
    assert adopted.conflicts == []
    assert f"pipeline/{name}-tag" in addresses(adopted, "update")
    assert provisioning.apply(adopted, connect(es_target.url)).ok
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_another_stacks_resource_is_a_conflict(es_target: Target, tmp_path: Path) -> None:
    name = unique("shared")
    first = resources_stack(name)
    converge(tmp_path, es_target.url, first)
    second = copy.deepcopy(first)
    second["name"] = unique("other")
    plan = provisioning.plan(load(tmp_path, second), connect(es_target.url))
    assert len(plan.conflicts) == 4
    assert all(f"another stack ('{name}')" in c.reason for c in plan.conflicts)


def test_destroy_removes_only_what_the_stack_manages(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name = unique("destroy")
    body = resources_stack(name)
    converge(tmp_path, es_target.url, body)
    es.ingest.put_pipeline(id=f"{name}-unmanaged", processors=[{"set": {"field": "x", "value": 1}}])
    es.indices.create(index=f"{name}-images-handmade")
    es.index(index=f"{name}-images", document={"image_name": "a.jpg"}, refresh=True)
    stack = load(tmp_path, body)
    plan = provisioning.destroy_plan(stack, connect(es_target.url))
    assert addresses(plan) == [
        f"index/{name}-images",
        f"pipeline/{name}-tag",
        f"index_template/{name}-images",
        f"component_template/{name}-settings",
    ]
    assert plan.changes[0].blocked and "holds 1 documents" in plan.changes[0].blocked
    with pytest.raises(PlanNotApplicable):
        provisioning.apply(plan, connect(es_target.url))
    plan = provisioning.destroy_plan(stack, connect(es_target.url), include_data=True)
    assert provisioning.apply(plan, connect(es_target.url)).ok
    assert not es.indices.exists(index=f"{name}-images")
    assert not es.indices.exists_index_template(name=f"{name}-images")
    assert es.indices.exists(index=f"{name}-images-handmade")
    assert f"{name}-unmanaged" in es.ingest.get_pipeline().body


def test_incompatible_mapping_change_is_blocked_as_requiring_reindex(
    es_target: Target, tmp_path: Path
) -> None:
    name = unique("reindex")
    body = resources_stack(name)
    converge(tmp_path, es_target.url, body)
    body["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]["vec"]["dims"] = 8
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    index_change = next(c for c in plan.changes if c.kind == "index")
    assert (
        index_change.blocked and "requires reindex" in index_change.blocked and "dims" in index_change.blocked
    )
    with pytest.raises(PlanNotApplicable, match="requires reindex"):
        provisioning.apply(plan, connect(es_target.url))


def test_additive_mapping_change_is_applied_in_place(
    es: Elasticsearch, es_target: Target, tmp_path: Path
) -> None:
    name = unique("additive")
    body = resources_stack(name)
    converge(tmp_path, es_target.url, body)
    es.index(index=f"{name}-images", id="1", document={"image_name": "a.jpg"}, refresh=True)
    body["index_templates"][f"{name}-images"]["template"]["mappings"]["properties"]["width"] = {
        "type": "integer"
    }
    plan = provisioning.plan(load(tmp_path, body), connect(es_target.url))
    assert addresses(plan) == [f"index_template/{name}-images", f"index/{name}-images"]
    assert all(c.action == "update" and not c.blocked for c in plan.changes)
    assert provisioning.apply(plan, connect(es_target.url)).ok
    mapping = es.indices.get_mapping(index=f"{name}-images").body[f"{name}-images"]["mappings"]
    assert mapping["properties"]["width"] == {"type": "integer"}
    assert es.count(index=f"{name}-images").body["count"] == 1
    assert provisioning.plan(load(tmp_path, body), connect(es_target.url)).changes == []


def test_plan_json_validates_against_the_published_schema(es_target: Target, tmp_path: Path) -> None:
    name = unique("json")
    body = resources_stack(name)
    converge(tmp_path, es_target.url, body)
    body["pipelines"][f"{name}-tag"]["description"] = "changed"
    body["pipelines"][f"{name}-new"] = {"processors": [{"set": {"field": "a", "value": "b"}}]}
    document = provisioning.plan(load(tmp_path, body), connect(es_target.url)).to_json()
    schema = json.loads((REPO / "schema" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["format_version"] == 1
    assert document["summary"]["create"] == 1 and document["summary"]["update"] == 1


def test_committed_plan_schema_is_current() -> None:
    committed = json.loads((REPO / "schema" / "plan.schema.json").read_text())
    assert committed == plan_schema(), "run `make schema` and commit schema/plan.schema.json"


def _provision(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioning", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def test_cli_exit_codes_and_confirmation(es_target: Target, tmp_path: Path) -> None:
    name = unique("cli")
    stack = write_stack(tmp_path, resources_stack(name))
    url = ["--es-url", es_target.url]
    planned = _provision("plan", str(stack), "--detailed-exitcode", *url)
    assert planned.returncode == 2, planned.stderr
    assert f"+ create index_template {name}-images" in planned.stdout
    refused = _provision("apply", str(stack), *url)
    assert refused.returncode == 1
    assert "pass --auto-approve" in refused.stderr
    assert "Traceback" not in refused.stderr
    applied = _provision("apply", str(stack), "--auto-approve", "--skip-ingest", "--skip-verify", *url)
    assert applied.returncode == 0, applied.stderr
    clean = _provision("plan", str(stack), "--detailed-exitcode", "--output", "json", *url)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["has_changes"] is False
    status = _provision("status", str(stack), "--output", "json", *url)
    assert status.returncode == 0 and json.loads(status.stdout)["converged"] is True
    destroyed = _provision("destroy", str(stack), "--yes", *url)
    assert destroyed.returncode == 0, destroyed.stderr
    assert _provision("plan", str(stack), "--detailed-exitcode", *url).returncode == 2


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    stack = write_stack(tmp_path, resources_stack(unique("secret")))
    secret = "c2VjcmV0LWFwaS1rZXktdmFsdWU="
    result = _provision(
        "plan",
        str(stack),
        "--es-url",
        "http://127.0.0.1:9",
        "--api-key",
        secret,
    )
    assert result.returncode == 1
    assert "cannot reach Elasticsearch" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    both = _provision(
        "plan",
        str(stack),
        "--es-url",
        "http://elastic:hunter2-pass@127.0.0.1:9",
        "--username",
        "elastic",
        "--password",
        "hunter2-pass",
    )
    assert both.returncode == 1 and "cannot reach Elasticsearch" in both.stderr
    assert "hunter2-pass" not in both.stderr + both.stdout
    mixed = _provision(
        "plan", str(stack), "--es-url", "http://127.0.0.1:9", "--api-key", secret, "--username", "elastic"
    )
    assert mixed.returncode == 1 and "one kind of credentials" in mixed.stderr
    assert secret not in mixed.stderr + mixed.stdout


def test_killed_apply_is_completed_by_the_next_apply(tmp_path: Path) -> None:
    """SIGKILL `provision apply` after its first writes; a rerun converges and then nothing is left to do."""
    config = sandbox_config(faults=Faults(latency_ms=250))
    with SandboxServer(config) as slow:
        name = unique("killed")
        stack = write_stack(tmp_path, resources_stack(name))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provisioning",
                "apply",
                str(stack),
                "--auto-approve",
                "--skip-ingest",
                "--skip-verify",
                "--es-url",
                slow.url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len([w for w in slow.state.log.writes() if w.status < 300]) < 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert 2 <= len(slow.state.log.writes()) < 4, "the kill must land half-way"
        half = provisioning.plan(load(tmp_path, resources_stack(name)), connect(slow.url))
        assert half.changes, "something must be left to do after the kill"
        rerun = _provision(
            "apply",
            str(stack),
            "--auto-approve",
            "--skip-ingest",
            "--skip-verify",
            "--es-url",
            slow.url,
            timeout=300,
        )
        assert rerun.returncode == 0, rerun.stderr
        final = provisioning.plan(load(tmp_path, resources_stack(name)), connect(slow.url))
        assert final.changes == [] and final.conflicts == []
