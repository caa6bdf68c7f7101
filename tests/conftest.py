"""Shared fixtures: the Elasticsearch target every integration test runs against.

``--es=sandbox`` (default) starts the sandbox in-process on a free port, emulating the Elasticsearch
version given by ``--es-version`` (or ``PROVISION_TEST_ES_VERSION``; default the newest the sandbox
emulates); ``--es=container`` starts the official Elasticsearch 9 image with testcontainers (ML
enabled, trial license); ``--es=url`` uses the cluster at ES_URL. A target that cannot start fails the run with the reason; container
tests are skipped, with the reason, only where no container engine exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from es_sandbox import SandboxConfig, SandboxServer
from es_sandbox.versions import NEWEST, UnsupportedVersion, parse_version
from tests.shared_data import conformance_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = conformance_dir()
ES_IMAGE = os.environ.get("ES_IMAGE", "docker.elastic.co/elasticsearch/elasticsearch:9.2.0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--es",
        choices=["sandbox", "container", "url"],
        default=os.environ.get("PROVISION_TEST_ES", "sandbox"),
        help="Elasticsearch target for integration tests (default: sandbox)",
    )
    parser.addoption(
        "--es-version",
        default=os.environ.get("PROVISION_TEST_ES_VERSION", NEWEST.minor_line),
        help="Elasticsearch version the sandbox target emulates, e.g. 9.0, 9.2.5 "
        f"(default: $PROVISION_TEST_ES_VERSION or {NEWEST.minor_line})",
    )


# The version the sandbox target emulates in this run (set from --es-version at configure time).
_SANDBOX_VERSION = {"value": str(NEWEST)}


def pytest_configure(config: pytest.Config) -> None:
    raw = str(config.getoption("--es-version"))
    try:
        _SANDBOX_VERSION["value"] = str(parse_version(raw))
    except UnsupportedVersion as exc:
        raise pytest.UsageError(f"--es-version: {exc}") from exc


def sandbox_version() -> str:
    """The Elasticsearch version the sandbox target emulates in this run (``--es-version``)."""
    return _SANDBOX_VERSION["value"]


@dataclass
class Target:
    """The cluster under test. ``sandbox`` is set only when the target is the in-process sandbox."""

    kind: str
    url: str
    sandbox: SandboxServer | None = None
    api_key: str | None = None
    basic_auth: tuple[str, str] | None = None

    def client(self, **kwargs: object) -> Elasticsearch:
        return Elasticsearch(self.url, api_key=self.api_key, basic_auth=self.basic_auth, **kwargs)  # type: ignore[arg-type]


def _container_engine_available() -> str | None:
    """None when a container engine answers, else why not."""
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means "no engine"
        return f"no container engine is reachable ({type(exc).__name__}: {exc})"
    return None


def sandbox_config(**overrides: object) -> SandboxConfig:
    """The configuration tests use: fast deployment transitions, everything else as shipped."""
    base: dict[str, object] = {
        "port": 0,
        "deployment_start_delay_s": 0.05,
        "allocation_delay_s": 0.05,
        "es_version": sandbox_version(),
    }
    base.update(overrides)
    return SandboxConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def _trace_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One trace cache per test session: real tracing once, cache hits after, nothing in ~/.cache."""
    previous = os.environ.get("PROVISION_CACHE_DIR")
    path = tmp_path_factory.mktemp("provision-cache")
    os.environ["PROVISION_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("PROVISION_CACHE_DIR", None)
    else:
        os.environ["PROVISION_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def es_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    kind = request.config.getoption("--es")
    if kind == "sandbox":
        server = SandboxServer(sandbox_config()).start()
        try:
            yield Target("sandbox", server.url, sandbox=server)
        finally:
            server.stop()
    elif kind == "url":
        url = os.environ.get("ES_URL")
        if not url:
            pytest.fail("--es=url needs ES_URL to name the cluster")
        user, password = os.environ.get("ES_USERNAME"), os.environ.get("ES_PASSWORD")
        yield Target(
            "url",
            url,
            api_key=os.environ.get("ES_API_KEY"),
            basic_auth=(user, password) if user and password else None,
        )
    else:
        why = _container_engine_available()
        if why:
            pytest.skip(f"--es=container: {why}")
        from testcontainers.elasticsearch import ElasticSearchContainer

        container = ElasticSearchContainer(ES_IMAGE, mem_limit="4g")
        container.with_env("xpack.security.enabled", "false")
        container.with_env("xpack.license.self_generated.type", "trial")
        container.with_env("xpack.ml.enabled", "true")
        container.with_env("ES_JAVA_OPTS", "-Xms1g -Xmx1g")
        with container:
            yield Target("container", container.get_url())


@pytest.fixture
def sandbox(es_target: Target) -> SandboxServer:
    """The in-process sandbox, for tests of sandbox-only behaviour (request log, faults)."""
    if es_target.sandbox is None:
        pytest.skip(f"needs the sandbox target (running against --es={es_target.kind})")
    return es_target.sandbox


@pytest.fixture
def es(es_target: Target) -> Iterator[Elasticsearch]:
    client = es_target.client(request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxServer]:
    """A private sandbox for tests that change its configuration or need it empty."""
    with SandboxServer(sandbox_config()) as server:
        yield server
