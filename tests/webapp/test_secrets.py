"""Credentials never reach the browser or the log: not in pages, API answers or errors, also when
the cluster is gone and the error quotes the connection."""

from __future__ import annotations

import logging

import pytest
import requests

import provisioning
from provisioning.app import create_app, for_serving
from tests.webapp.conftest import Served
from tests.webapp.support import running

API_KEY = "c2VjcmV0LWFwaS1rZXktdmFsdWU="
PASSWORD = "hunter2-very-secret"


def test_no_secret_in_any_answer_or_log(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with_key = provisioning.connect(served.stack, url=served.proxy.url, api_key=API_KEY)
    with_password = provisioning.connect(
        served.stack, url=f"http://elastic:{PASSWORD}@127.0.0.1:{served.proxy.port}"
    )
    bodies: list[str] = []
    for cluster in (with_key, with_password):
        with running(create_app(served.stack, for_serving(cluster))) as url:
            for path in ("/", "/?text=a+red+circle", "/api/search?text=a", "/healthz", "/api/similar/x"):
                bodies.append(requests.get(url + path, timeout=30).text)
            served.proxy.cut()
            try:
                for path in ("/?text=a+red+circle", "/api/search?text=a", "/healthz", "/api/images/x"):
                    answer = requests.get(url + path, timeout=30)
                    assert answer.status_code == 503, answer.text
                    bodies.append(answer.text)
            finally:
                served.proxy.restore()
    text = "\n".join(bodies) + "\n" + caplog.text
    assert "cannot reach Elasticsearch" in text  # the errors were seen...
    assert API_KEY not in text and PASSWORD not in text  # ...without the secrets
