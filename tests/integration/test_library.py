"""The library as a program uses it: the quickstart converged, inspected and destroyed through
``provisioning``'s public calls alone (no CLI, no subprocess), reading the reports they return."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import provisioning
from tests.conftest import REPO, Target
from tests.integration.stacks import absolute_stack

SAMPLES = 84  # examples/quickstart/samples


def test_converge_the_quickstart_through_the_library(es_target: Target, tmp_path: Path) -> None:
    stack = provisioning.load_stack(absolute_stack(tmp_path))
    cluster = provisioning.connect(stack, url=es_target.url)
    seen_plans: list[provisioning.Plan] = []
    results: list[provisioning.ChangeResult] = []
    options = provisioning.ConvergeOptions(on_plan=seen_plans.append, on_change=results.append)

    report = provisioning.converge(stack, cluster, options)
    try:
        assert report.ok, report.to_json()
        assert report.stopped_at is None and report.error is None
        assert seen_plans == [report.plan]
        assert report.apply is not None and report.apply.ok
        assert [r.change.address for r in results] == [c.address for c in report.plan.changes]
        assert {c.kind for c in report.plan.changes} >= {"trained_model", "deployment", "index"}
        assert report.ingest is not None and report.ingest.jobs[0].indexed == SAMPLES
        assert report.verify is not None
        assert [(r.name, r.passed) for r in report.verify.results] == [
            (name, True) for name in stack.spec.smoke_tests
        ]
        document = report.to_json()
        assert document["ok"] is True and set(document) == {"ok", "plan", "apply", "ingest", "verify"}
        schema = json.loads((REPO / "schema" / "plan.schema.json").read_text())
        jsonschema.validate(document["plan"], schema)
        json.dumps(document)  # one JSON document, as `provision apply --output json` prints it

        again = provisioning.converge(stack, cluster, provisioning.ConvergeOptions(skip_verify=True))
        assert again.ok and again.plan.changes == [] and again.apply is None
        assert again.ingest is not None and again.ingest.jobs[0].already_indexed == SAMPLES
        assert again.verify is None

        status = provisioning.status(stack, cluster)
        assert status.converged, status.to_json()
        docs = {r.name: r.details.get("docs") for r in status.resources if r.kind == "index"}
        assert docs == {"quickstart-images": SAMPLES}

        hits = provisioning.search(stack, cluster, text="a red circle", k=2)
        assert {h.name for h in hits.hits} == {"red-circle-000.jpg", "red-circle-001.jpg"}
    finally:
        destroyed = provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=True))
    assert destroyed.ok, destroyed.to_json()
    created = [c.address for c in report.plan.changes if c.kind != "license"]  # a license is never removed
    assert [c.address for c in provisioning.plan(stack, cluster).changes] == created


def test_converge_reports_a_refused_plan_without_writing(es_target: Target, tmp_path: Path) -> None:
    stack = provisioning.load_stack(absolute_stack(tmp_path))
    cluster = provisioning.connect(stack, url=es_target.url)
    asked: list[provisioning.Plan] = []

    def refuse(plan: provisioning.Plan) -> bool:
        asked.append(plan)
        return False

    report = provisioning.converge(stack, cluster, provisioning.ConvergeOptions(approve=refuse))
    assert asked == [report.plan] and report.cancelled and not report.ok
    assert report.apply is None and report.ingest is None and report.verify is None
    assert provisioning.plan(stack, cluster).changes == report.plan.changes  # nothing was written


def test_public_api_is_typed_and_lazy() -> None:
    for name in provisioning.__all__:
        assert getattr(provisioning, name) is not None, name
    with pytest.raises(AttributeError):
        _ = provisioning.no_such_thing  # type: ignore[attr-defined]
