"""Requests and wall time of a no-op apply of the example stack, against a first apply in the same run.

Run: ``python bench/noop_apply.py`` (the sandbox runs in-process; nothing else should use the CPU).
Goal (issue 4): a no-op apply sends 0 writes and at most one read per resource.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import provisioning  # noqa: E402
from es_sandbox import SandboxConfig, SandboxServer  # noqa: E402
from provisioning.cluster import Cluster, ConnectionOptions  # noqa: E402
from provisioning.stackfile import load_stack  # noqa: E402
from tests.integration.test_quickstart import absolute_stack  # noqa: E402

RUNS = 5


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="noop-apply-"))
    os.environ.setdefault("PROVISION_CACHE_DIR", str(workdir / "cache"))
    stack = load_stack(absolute_stack(workdir), {})
    config = SandboxConfig(port=0, license="trial", deployment_start_delay_s=0.05, allocation_delay_s=0.05)
    with SandboxServer(config) as server:
        cluster = Cluster.connect(ConnectionOptions(url=server.url, max_retries=0))
        started = time.perf_counter()
        first = provisioning.apply(provisioning.plan(stack, cluster), cluster)
        first_s = time.perf_counter() - started
        assert first.ok, first.to_json()
        first_requests = list(server.state.log.entries)
        walls: list[float] = []
        for _ in range(RUNS):
            server.state.log.clear()
            started = time.perf_counter()
            plan = provisioning.plan(stack, cluster)
            report = provisioning.apply(plan, cluster)
            walls.append(time.perf_counter() - started)
            entries = list(server.state.log.entries)
    resources = len(plan.unchanged)
    kinds = len({address.split("/")[0] for address in plan.unchanged})
    writes = [e for e in entries if e.write]
    reads = [e for e in entries if not e.write]
    per_resource = len(reads) / resources
    first_writes = sum(e.write for e in first_requests)
    print(f"example stack: examples/quickstart/stack.yaml, {resources} resources of {kinds} kinds")
    print(
        f"first apply : {len(first_requests):>3} requests ({first_writes} writes), {first_s:.2f} s (tracing from the cache)"
    )
    print(
        f"no-op apply : {len(entries):>3} requests ({len(writes)} writes, {len(reads)} reads = {per_resource:.2f} per resource), "
        f"median {statistics.median(walls) * 1000:.0f} ms over {RUNS} runs"
    )
    for entry in reads:
        print(f"    read: {entry.method} {entry.path}")
    ok = not writes and not report.results and per_resource <= 1.0
    print(f"goal 0 writes and <= 1 read per resource: {'met' if ok else 'NOT met'}")
    print(
        f"ratios: noop_vs_first_requests={len(entries) / len(first_requests):.2f} noop_reads_per_resource={per_resource:.2f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
