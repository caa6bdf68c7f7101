"""The quickstart, converged once for the web application's tests and served through a proxy
that the tests can cut to make the cluster disappear."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import provisioning
from provisioning.app import create_app, for_serving
from provisioning.app.service import SearchService
from provisioning.cluster import Cluster
from provisioning.stackfile import Stack
from tests.conftest import Target
from tests.integration.stacks import QUICKSTART, absolute_stack
from tests.webapp.support import Proxy, running

QUERIES = QUICKSTART / "queries"


@dataclass
class Served:
    url: str  # the application
    stack: Stack
    cluster: Cluster  # direct, for set-up and recovery
    samples: Path  # the ingest job's source folder (a copy of the quickstart's samples)
    proxy: Proxy  # between the application and the cluster
    service: SearchService


def quickstart_copy(directory: Path) -> tuple[Path, Path]:
    """The quickstart stack with absolute paths, ingesting a private copy of its samples."""
    samples = directory / "samples"
    shutil.copytree(QUICKSTART / "samples", samples)
    path = absolute_stack(directory)
    body = yaml.safe_load(path.read_text())
    body["ingest"]["samples"]["source"]["path"] = str(samples)
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    return path, samples


def connect(stack: Stack, target: Target, url: str) -> Cluster:
    user, password = target.basic_auth or (None, None)
    return provisioning.connect(stack, url=url, api_key=target.api_key, username=user, password=password)


@pytest.fixture(scope="package")
def served(es_target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("webapp")
    path, samples = quickstart_copy(directory)
    stack = provisioning.load_stack(path)
    cluster = connect(stack, es_target, es_target.url)
    report = provisioning.converge(stack, cluster, provisioning.ConvergeOptions(skip_verify=True))
    assert report.ok, report.to_json()
    upstream = urlsplit(es_target.url)
    proxy = Proxy(upstream.hostname or "127.0.0.1", upstream.port or 9200).start()
    via_proxy = connect(stack, es_target, proxy.url)
    app = create_app(stack, for_serving(via_proxy))
    try:
        with running(app) as url:
            yield Served(url, stack, cluster, samples, proxy, app.state.service)
    finally:
        proxy.cut()
        provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=True))


@pytest.fixture
def live(served: Served) -> Iterator[Served]:
    """The served quickstart, with the cluster reachable and the model deployed again afterwards."""
    yield served
    served.proxy.restore()
    report = provisioning.converge(
        served.stack, served.cluster, provisioning.ConvergeOptions(skip_ingest=True, skip_verify=True)
    )
    assert report.ok, report.to_json()
    served.service.forget_health()
