"""Elastic's YAML REST tests against the test target (``--es``, the in-process sandbox by default).

Two gates, both documented in ``docs/conformance.md``:
- at least 90% of all tests in ``<conformance>/yaml`` and ``<conformance>/yaml-next`` together pass
  (passed / (passed + failed + skipped)), with the figures per folder in the output; emulating an
  older version, the tests that need what only a later version has (``es_sandbox.versions``: a
  cluster of that version skips them too) leave the count;
- every skip matches the documented allow-list of features and APIs out of the sandbox's scope.

Against the sandbox the run emulates the session's Elasticsearch version (``--es-version``).

The conformance folder is ``$PROVISION_CONFORMANCE_DIR`` or ``<repo>/../shared/conformance``; where
it is absent these tests skip and say so. The run wipes the target between tests, as Elasticsearch's
own test framework does.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from es_sandbox import SandboxServer
from es_sandbox.versions import NEWEST, Emulation, parse_version
from tests.conformance.cli import REPO, default_conformance_dir, pass_rate, summary_line
from tests.conformance.runner import Runner, TestResult
from tests.conformance.spec import SpecRegistry
from tests.conformance.suite import discover
from tests.conformance.transport import Transport
from tests.conftest import Target, sandbox_config, sandbox_version

PASS_RATE = 0.90
FOLDERS = ("yaml", "yaml-next")
DOC = REPO / "docs" / "conformance.md"
ALLOW_LIST_START = "<!-- skip-allow-list:start -->"
ALLOW_LIST_END = "<!-- skip-allow-list:end -->"


def load_allow_list(doc: Path = DOC) -> list[tuple[re.Pattern[str], str]]:
    """The (pattern, why) rows of the skip allow-list table in the docs.

    Each pattern is a regular expression searched in ``file::test: skip reason``.
    """
    text = doc.read_text(encoding="utf-8")
    if ALLOW_LIST_START not in text or ALLOW_LIST_END not in text:
        raise AssertionError(f"{doc} has no skip allow-list between {ALLOW_LIST_START} and {ALLOW_LIST_END}")
    block = text.split(ALLOW_LIST_START, 1)[1].split(ALLOW_LIST_END, 1)[0]
    rows = []
    for line in block.splitlines():
        found = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if found:
            rows.append((re.compile(found.group(1)), found.group(2).strip()))
    return rows


_NEEDS_CAPABILITY = re.compile(
    r"requires capability (\S+) (\S+) \[([^\]]+)\], which the target does not support"
)
_NEEDS_FEATURE = re.compile(r"requires cluster feature \[([^\]]+)\], which the target lacks")


def later_version_only(result: TestResult, version: str) -> bool:
    """A skip for want of a capability or cluster feature that the sandbox has only from a version
    later than ``version``: a cluster of ``version`` skips the test too, so it is not counted."""
    if result.outcome != "skip":
        return False
    emulated, newest = Emulation(parse_version(version)), Emulation(NEWEST, lambda: "trial")
    capability = _NEEDS_CAPABILITY.search(result.message)
    if capability:
        method, path, names = capability.group(1), capability.group(2), capability.group(3).split(", ")
        return set(names) <= newest.capabilities(method, path) and not set(names) <= emulated.capabilities(
            method, path
        )
    feature = _NEEDS_FEATURE.search(result.message)
    if feature:
        name = feature.group(1)
        return name in newest.cluster_features() and name not in emulated.cluster_features()
    return False


def counted(results: list[TestResult], target: Target) -> list[TestResult]:
    """The results the pass rate counts: against the sandbox, all but ``later_version_only`` skips."""
    if target.sandbox is None:
        return results
    return [r for r in results if not later_version_only(r, sandbox_version())]


def undocumented_skips(results: list[TestResult], allow_list: list[tuple[re.Pattern[str], str]]) -> list[str]:
    return [
        r.line()
        for r in results
        if r.outcome == "skip"
        and not any(pattern.search(f"{r.id}: {r.message}") for pattern, _ in allow_list)
    ]


@pytest.fixture(scope="module")
def conformance_results(es_target: Target) -> list[TestResult]:
    conformance = default_conformance_dir()
    folders = [conformance / name for name in FOLDERS if (conformance / name).is_dir()]
    if not folders:
        pytest.skip(
            f"no conformance tests at {conformance / FOLDERS[0]} (set PROVISION_CONFORMANCE_DIR to the "
            "conformance folder)"
        )
    spec_dir = conformance / "rest-api-spec"
    registry = SpecRegistry([spec_dir] if spec_dir.is_dir() else [])
    private: SandboxServer | None = None
    url = es_target.url
    if es_target.sandbox is not None:
        # A sandbox of its own, on a trial license like Elasticsearch's own test clusters: the run
        # wipes the cluster between tests, which must not touch the session's shared sandbox.
        private = SandboxServer(sandbox_config(license="trial")).start()
        url = private.url
    transport = Transport(url, api_key=es_target.api_key, basic_auth=es_target.basic_auth)
    per_folder: dict[str, list[TestResult]] = {}
    try:
        runner = Runner(transport, registry)
        for folder in folders:
            per_folder[folder.name] = list(runner.run(discover([folder])))
    finally:
        transport.close()
        if private is not None:
            private.stop()
    results = [result for found in per_folder.values() for result in found]
    for result in results:
        print(result.line())
    for name, found in per_folder.items():
        print(f"  {name}: {summary_line(found)} ({pass_rate(found)} passed)")
    print(summary_line(results))
    return results


@pytest.mark.slow
def test_pass_rate(conformance_results: list[TestResult], es_target: Target) -> None:
    results = counted(conformance_results, es_target)
    total = len(results)
    assert total > 0, "the conformance folder holds no tests"
    passed = sum(r.outcome == "pass" for r in results)
    not_passed = [r.line() for r in results if r.outcome != "pass"]
    rate = passed / total
    assert rate >= PASS_RATE, (
        f"{passed}/{total} = {rate:.1%} of the YAML REST tests ({', '.join(FOLDERS)}) pass, below {PASS_RATE:.0%} "
        f"({summary_line(results)}); not passing:\n" + "\n".join(not_passed)
    )


@pytest.mark.slow
def test_every_skip_is_documented_out_of_scope(
    conformance_results: list[TestResult], es_target: Target
) -> None:
    undocumented = undocumented_skips(counted(conformance_results, es_target), load_allow_list())
    assert not undocumented, (
        "skips not covered by the allow-list in docs/conformance.md (a skip is only for a feature or API "
        "documented as out of the sandbox's scope):\n" + "\n".join(undocumented)
    )


def test_allow_list_is_documented_and_strict() -> None:
    rows = load_allow_list()
    assert rows, "the skip allow-list in docs/conformance.md is empty"
    assert all(why for _, why in rows), "every allow-list row says why it is out of scope"
    # The allow-list must not wave through skips in general, only the documented ones.
    made_up = TestResult(
        "elasticsearch/x.yml",
        "t",
        "skip",
        "requires runner feature [teleport], which this runner does not support",
    )
    assert undocumented_skips([made_up], rows) == [made_up.line()]


def test_only_what_arrives_in_a_later_version_leaves_the_count() -> None:
    tracking = TestResult(
        "elasticsearch/ingest/20_tracking.yml",
        "t",
        "skip",
        "requires capability PUT /_ingest/pipeline/{id} [pipeline_tracking_info], which the target does "
        "not support: Pipelines have tracking info",
    )
    assert later_version_only(tracking, "9.1") and not later_version_only(tracking, "9.2")
    bbq = TestResult(
        "x.yml",
        "t",
        "skip",
        "requires cluster feature [search.vectors.mappers.default_bbq_hnsw], which the target lacks",
    )
    assert later_version_only(bbq, "9.0") and not later_version_only(bbq, "9.1")
    never = TestResult(
        "x.yml",
        "t",
        "skip",
        "requires capability GET /_search [include_vectors_param], which the target does not support",
    )
    assert not later_version_only(never, "9.0")
    failed = dataclasses.replace(tracking, outcome="fail")
    assert not later_version_only(failed, "9.0")
