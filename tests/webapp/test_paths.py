"""Images are served from the ingest job's source folder only: documents whose recorded path
leaves it (``..``, absolute, a symbolic link out, encoded variants) and URLs that try to are refused."""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

import provisioning
from tests.webapp.conftest import Served

INDEX = "quickstart-images"


@pytest.fixture
def planted(served: Served, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Documents pointing at files in and out of the source folder; removed afterwards."""
    outside = tmp_path / "secret.jpg"
    shutil.copy(served.samples / "red-circle-000.jpg", outside)
    (tmp_path / "secret.txt").write_text("do not serve")
    links = {
        "escape.jpg": outside,  # a link inside the folder to a file outside it
        "escape-dir": tmp_path,  # a link to a folder outside
        "inside-link.jpg": served.samples / "blue-star-000.jpg",  # a link that stays inside
    }
    for name, target in links.items():
        (served.samples / name).symlink_to(target)
    (served.samples / "notes.txt").write_text("inside, but not an image the job selects")
    depth = len(served.samples.parts) - 1
    paths = {
        "dotdot": "../secret.jpg",
        "dotdot-nested": "sub/../../secret.jpg",
        "dotdot-deep": "/".join([".."] * depth) + "/etc/hostname",
        "absolute": str(outside),
        "absolute-etc": "/etc/hostname",
        "backslash": "..\\secret.jpg",
        "drive": "C:\\secret.jpg",
        "symlink-out": "escape.jpg",
        "symlink-dir-out": "escape-dir/secret.jpg",
        "not-selected": "notes.txt",
        "encoded": "%2e%2e/secret.jpg",
        "encoded-slash": "..%2fsecret.jpg",
        "double-encoded": "%252e%252e%252fsecret.jpg",
        "nul": "red-circle-000.jpg\x00.txt",
        "symlink-in": "inside-link.jpg",
        "gone": "no-such-file.jpg",
    }
    client = served.cluster.client
    for doc_id, relative in paths.items():
        client.index(
            index=INDEX, id=f"planted-{doc_id}", document={"relative_path": relative, "image_name": "x.jpg"}
        )
    client.indices.refresh(index=INDEX)
    try:
        yield paths
    finally:
        for doc_id in paths:
            client.delete(index=INDEX, id=f"planted-{doc_id}", refresh=True)
        for name in [*links, "notes.txt"]:
            (served.samples / name).unlink()


REFUSED = [
    "dotdot",
    "dotdot-nested",
    "dotdot-deep",
    "absolute",
    "absolute-etc",
    "backslash",
    "drive",
    "symlink-out",
    "symlink-dir-out",
    "not-selected",
    "nul",
]


@pytest.mark.parametrize("endpoint", ["images", "thumbnails"])
def test_documents_pointing_outside_the_source_folder_are_refused(
    served: Served, planted: dict[str, str], endpoint: str
) -> None:
    for doc_id in REFUSED:
        response = requests.get(f"{served.url}/api/{endpoint}/planted-{doc_id}", timeout=30)
        assert response.status_code == 403, (doc_id, response.text)
        assert response.json()["error"]["type"] == "forbidden"
        assert b"do not serve" not in response.content and b"JFIF" not in response.content
    for doc_id in ("encoded", "encoded-slash", "double-encoded", "gone"):  # never decoded: no such file
        response = requests.get(f"{served.url}/api/{endpoint}/planted-{doc_id}", timeout=30)
        assert response.status_code == 404, (doc_id, response.text)
        assert response.json()["error"]["type"] == "not_found"
    inside = requests.get(f"{served.url}/api/{endpoint}/planted-symlink-in", timeout=30)
    assert inside.status_code == 200 and inside.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/images/../../../../etc/passwd",
        "/api/images/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/images/%2Fetc%2Fpasswd",
        "/api/images//etc/passwd",
        "/api/thumbnails/..%5C..%5Cetc%5Cpasswd",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/..%2f..%2f..%2fcli%2fcommands.py",
    ],
)
def test_traversal_in_the_url_finds_nothing(served: Served, raw_path: str) -> None:
    """Sent byte for byte (no client-side normalisation of dot segments)."""
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", raw_path)
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status in (400, 404), (raw_path, answer.status, body[:200])
    assert b"root:" not in body and b"import" not in body and b"def " not in body


def test_static_files_are_served(served: Served) -> None:
    for name, kind in (("search.css", "text/css"), ("search.js", "javascript")):
        response = requests.get(f"{served.url}/static/{name}", timeout=30)
        assert response.status_code == 200 and kind in response.headers["content-type"]


def test_symlinked_source_folder_itself_is_fine(served: Served, tmp_path: Path) -> None:
    """The folder may itself be reached through a link: containment is checked on resolved paths."""
    from provisioning.image_files import image_file

    link = tmp_path / "linked-samples"
    link.symlink_to(served.samples, target_is_directory=True)
    body = yaml.safe_load(served.stack.path.read_text())
    job = next(iter(body["ingest"]))
    body["ingest"][job]["source"]["path"] = str(link)
    linked_path = tmp_path / "stack.yaml"
    linked_path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    linked = provisioning.load_stack(linked_path)
    index = linked.spec.ingest[job].index
    hits = served.cluster.client.search(
        index=index, query={"term": {"image_name": "red-circle-000.jpg"}}, source=False
    )["hits"]["hits"]
    found = image_file(linked, served.cluster, hits[0]["_id"], index=index)
    assert found.path == (served.samples / "red-circle-000.jpg").resolve()
    assert found.relative_path == "red-circle-000.jpg"
