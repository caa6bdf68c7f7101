"""The quickstart on every Elasticsearch version the sandbox emulates (``es_sandbox.versions``):
converged through the library, planned again as unchanged, its smoke tests passing, then destroyed
with its data, on a private sandbox per version (whatever ``--es-version`` the run targets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import provisioning
from es_sandbox import SandboxServer
from tests.conftest import Target, sandbox_config
from tests.integration.stacks import absolute_stack

# Each minor line's first release, and the 9.2 patch release that tightened low-priority deployments.
VERSIONS = ["9.0.0", "9.1.0", "9.2.0", "9.2.5", "9.3.0", "9.4.0"]


@pytest.fixture(params=VERSIONS)
def emulated(request: pytest.FixtureRequest, es_target: Target) -> Iterator[SandboxServer]:
    if es_target.kind != "sandbox":
        pytest.skip("starts a private sandbox per emulated version")
    server = SandboxServer(sandbox_config(es_version=request.param)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_quickstart_converges_and_is_destroyed(emulated: SandboxServer, tmp_path: Path) -> None:
    stack = provisioning.load_stack(absolute_stack(tmp_path))
    cluster = provisioning.connect(stack, url=emulated.url)
    assert cluster.client.info()["version"]["number"] == emulated.config.es_version

    report = provisioning.converge(stack, cluster)
    try:
        assert report.ok, report.to_json()
        assert report.verify is not None
        assert [(r.name, r.passed) for r in report.verify.results] == [
            (name, True) for name in stack.spec.smoke_tests
        ]
        assert provisioning.plan(stack, cluster).changes == []
    finally:
        destroyed = provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=True))
    assert destroyed.ok, destroyed.to_json()
    after = provisioning.plan(stack, cluster).changes
    assert after, "destroy left everything in place"
    remaining = {c.address for c in after if c.action != "create"}
    assert remaining == set(), remaining
    assert not any(cluster.client.indices.exists(index=name) for name in stack.spec.indices)
