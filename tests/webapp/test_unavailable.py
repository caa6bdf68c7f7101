"""A cluster that goes away or a model that is not deployed: 503 JSON errors, /healthz says why,
the page shows a banner, and everything recovers when they come back."""

from __future__ import annotations

import time

import requests

from tests.webapp.conftest import QUERIES, Served


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_cluster_gone_then_back(live: Served) -> None:
    served = live
    served.proxy.cut()
    started = time.perf_counter()
    response = requests.get(f"{served.url}/api/search", params={"text": "a red circle"}, timeout=30)
    assert time.perf_counter() - started < 5  # the app gives up quickly
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "cluster_unavailable" and "cannot reach Elasticsearch" in error["message"]
    image = (QUERIES / "red-circle.jpg").read_bytes()
    uploaded = requests.post(f"{served.url}/api/search/image", files={"image": ("q.jpg", image)}, timeout=30)
    assert uploaded.status_code == 503 and uploaded.json()["error"]["type"] == "cluster_unavailable"
    similar = requests.get(f"{served.url}/api/similar/{'0' * 64}", timeout=30)
    assert similar.status_code == 503
    health = requests.get(f"{served.url}/healthz", timeout=30)
    assert health.status_code == 503
    assert health.json()["ok"] is False and health.json()["cluster"]["reachable"] is False
    page = requests.get(f"{served.url}/", params={"text": "a red circle"}, timeout=30)
    assert (
        page.status_code == 503 and 'id="banner"' in page.text and "cannot reach Elasticsearch" in page.text
    )
    home = requests.get(f"{served.url}/", timeout=30)
    assert home.status_code == 200 and 'id="banner"' in home.text  # the banner without a query, too

    served.proxy.restore()
    response = requests.get(f"{served.url}/api/search", params={"text": "a red circle"}, timeout=30)
    assert response.status_code == 200 and response.json()["hits"][0]["name"].startswith("red-circle-")
    assert requests.get(f"{served.url}/healthz", timeout=30).status_code == 200
    page = requests.get(f"{served.url}/", params={"text": "a red circle"}, timeout=30)
    assert page.status_code == 200 and 'id="banner"' not in page.text and "red-circle-000.jpg" in page.text


def test_model_not_deployed_then_deployed_again(live: Served) -> None:
    served = live
    model_id = served.stack.spec.models["clip-text"].model_id
    served.cluster.client.ml.stop_trained_model_deployment(model_id=model_id, force=True)

    response = requests.get(f"{served.url}/api/search", params={"text": "a red circle"}, timeout=30)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "model_unavailable" and "provision apply" in error["message"]
    health = requests.get(f"{served.url}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["model"] == {"name": "clip-text", "deployed": False}
    assert health.json()["cluster"]["reachable"] is True and health.json()["index"]["present"] is True
    page = requests.get(f"{served.url}/", timeout=30)
    assert 'id="banner"' in page.text and "text search is unavailable" in page.text
    image = (QUERIES / "blue-star.jpg").read_bytes()  # image search needs no text model
    uploaded = requests.post(f"{served.url}/api/search/image", files={"image": ("q.jpg", image)}, timeout=30)
    assert uploaded.status_code == 200 and uploaded.json()["hits"][0]["name"].startswith("blue-star-")

    import provisioning

    report = provisioning.converge(
        served.stack, served.cluster, provisioning.ConvergeOptions(skip_ingest=True, skip_verify=True)
    )
    assert report.ok, report.to_json()
    wait_for(lambda: requests.get(f"{served.url}/healthz", timeout=30).status_code == 200)
    response = requests.get(f"{served.url}/api/search", params={"text": "a red circle"}, timeout=30)
    assert response.status_code == 200 and response.json()["hits"][0]["name"].startswith("red-circle-")
