"""The JSON API on the quickstart: text (three languages), image uploads, more like this, the
original files and thumbnails, filters and thresholds, and the errors each bad request gets."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
import requests
from PIL import Image

from tests.webapp.conftest import QUERIES, Served

RED_CIRCLES = {"red-circle-000.jpg", "red-circle-001.jpg"}


def search(served: Served, **params: object) -> requests.Response:
    return requests.get(f"{served.url}/api/search", params=params, timeout=30)  # type: ignore[arg-type]


def upload(served: Served, files: dict[str, object], **data: object) -> requests.Response:
    return requests.post(f"{served.url}/api/search/image", files=files, data=data, timeout=30)  # type: ignore[arg-type]


def names(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["hits"]]


def error_of(response: requests.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["status"] == status and error["type"] == kind, error
    assert error["message"]
    return str(error["message"])


def red_circle_id(served: Served) -> str:
    hits = search(served, text="a red circle", k=1).json()["hits"]
    assert hits[0]["name"] in RED_CIRCLES
    return str(hits[0]["id"])


@pytest.mark.parametrize("text", ["a red circle", "ein roter Kreis", "un círculo rojo"])
def test_text_search_finds_red_circles_in_three_languages(served: Served, text: str) -> None:
    response = search(served, text=text, k=5)
    found = names(response)
    assert len(found) == 5 and set(found[:2]) == RED_CIRCLES, found
    document = response.json()
    assert document["kind"] == "text" and document["query"] == text and document["k"] == 5
    assert document["index"] == "quickstart-images" and document["field"] == "image_embedding"
    assert document["latency_ms"] > 0 and document["server_ms"] >= document["latency_ms"]
    hit = document["hits"][0]
    assert hit["rank"] == 1 and 0 < hit["score"] <= 1 and hit["path"] == hit["name"]
    assert hit["image_url"] == f"/api/images/{hit['id']}"
    assert hit["thumbnail_url"] == f"/api/thumbnails/{hit['id']}"
    assert hit["similar_url"] == f"/api/similar/{hit['id']}"
    assert "image_embedding" not in hit["source"] and hit["source"]["collection"] == "quickstart-samples"
    assert [h["rank"] for h in document["hits"]] == [1, 2, 3, 4, 5]
    assert [h["score"] for h in document["hits"]] == sorted(
        (h["score"] for h in document["hits"]), reverse=True
    )


def test_uploading_the_blue_star_finds_blue_stars(served: Served) -> None:
    with (QUERIES / "blue-star.jpg").open("rb") as image:
        response = upload(served, {"image": ("blue-star.jpg", image, "image/jpeg")}, k=3)
    found = names(response)
    assert found[0].startswith("blue-star-") and set(found[:2]) == {"blue-star-000.jpg", "blue-star-001.jpg"}
    document = response.json()
    assert document["kind"] == "image" and document["query"] == "blue-star.jpg" and document["k"] == 3


def test_upload_options_come_from_form_fields_or_the_query_string(served: Served) -> None:
    data = (QUERIES / "red-circle.jpg").read_bytes()
    by_form = upload(served, {"image": ("q.jpg", data)}, k=2, filter="image_name:red-circle-001.jpg")
    assert names(by_form) == ["red-circle-001.jpg"]
    by_query = requests.post(
        f"{served.url}/api/search/image?k=4&min_score=0.0", files={"image": ("q.jpg", data)}, timeout=30
    )
    assert len(names(by_query)) == 4 and set(names(by_query)[:2]) == RED_CIRCLES


def test_more_like_a_red_circle_is_the_other_red_circle(served: Served) -> None:
    doc_id = red_circle_id(served)
    response = requests.get(f"{served.url}/api/similar/{doc_id}", params={"k": 4}, timeout=30)
    found = names(response)
    assert len(found) == 4
    assert found[0] in RED_CIRCLES and doc_id not in [h["id"] for h in response.json()["hits"]]
    assert all(name.startswith("red-") for name in found[:3]), found  # then other red shapes
    assert response.json()["query"] == doc_id


def test_filters_and_minimum_score(served: Served) -> None:
    assert len(names(search(served, text="a red circle", k=5, filter="collection:quickstart-samples"))) == 5
    assert names(search(served, text="a red circle", k=5, filter="collection:elsewhere")) == []
    only = search(
        served,
        text="a red circle",
        k=5,
        filter=["collection:quickstart-samples", "image_name:red-circle-001.jpg"],
    )
    assert names(only) == ["red-circle-001.jpg"]
    assert only.json()["filter"] == {
        "bool": {
            "filter": [
                {"terms": {"collection": ["quickstart-samples"]}},
                {"terms": {"image_name": ["red-circle-001.jpg"]}},
            ]
        }
    }
    everything = search(served, text="a red circle", k=20).json()["hits"]
    threshold = (everything[1]["score"] + everything[2]["score"]) / 2
    above = search(served, text="a red circle", k=20, min_score=threshold)
    assert set(names(above)) == RED_CIRCLES and above.json()["min_score"] == threshold
    assert names(search(served, text="a red circle", min_score=1.5)) == []


@pytest.mark.parametrize(
    ("params", "kind", "words"),
    [
        ({}, "invalid_parameter", "text"),
        ({"text": "  "}, "invalid_parameter", "empty"),
        ({"text": "x" * 1001}, "invalid_parameter", "longer than 1000"),
        ({"text": "a", "k": "0"}, "invalid_parameter", "between 1 and 100"),
        ({"text": "a", "k": "101"}, "invalid_parameter", "between 1 and 100"),
        ({"text": "a", "k": "ten"}, "invalid_parameter", "whole number"),
        ({"text": "a", "min_score": "-1"}, "invalid_parameter", "at least 0"),
        ({"text": "a", "min_score": "nan"}, "invalid_parameter", "at least 0"),
        ({"text": "a", "filter": "collection"}, "invalid_filter", "field:value"),
        ({"text": "a", "filter": "width:32"}, "invalid_filter", "keyword fields: collection"),
        ({"text": "a", "filter": "collection:"}, "invalid_filter", "no value"),
    ],
)
def test_bad_search_parameters_are_400(served: Served, params: dict[str, str], kind: str, words: str) -> None:
    assert words in error_of(search(served, **params), 400, kind)


# -- uploads ------------------------------------------------------------------------------------------


def pixel_bomb() -> bytes:
    """A small PNG that declares 30000 x 30000 pixels (900 M, ten times Pillow's limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


def test_bad_uploads_get_the_documented_errors(served: Served) -> None:
    jpeg = (QUERIES / "blue-star.jpg").read_bytes()
    too_big = jpeg + b"\0" * (20 * 1024 * 1024)
    assert "20 MB" in error_of(upload(served, {"image": ("big.jpg", too_big)}), 413, "payload_too_large")
    assert "bomb" in error_of(upload(served, {"image": ("bomb.png", pixel_bomb())}), 413, "payload_too_large")
    message = error_of(
        upload(served, {"image": ("notes.txt", b"just some text\n" * 10)}), 415, "unsupported_media_type"
    )
    assert "not an image" in message
    assert "'image'" in error_of(upload(served, {"file": ("star.jpg", jpeg)}), 400, "missing_field")
    assert "must be a file" in error_of(upload(served, {"image": (None, "star.jpg")}), 400, "missing_field")
    assert "empty" in error_of(upload(served, {"image": ("empty.jpg", b"")}), 400, "invalid_image")
    assert "truncated" in error_of(
        upload(served, {"image": ("cut.jpg", jpeg[: len(jpeg) // 3])}), 400, "invalid_image"
    )
    raw = requests.post(
        f"{served.url}/api/search/image", data=jpeg, headers={"content-type": "image/jpeg"}, timeout=30
    )
    assert "multipart/form-data" in error_of(raw, 415, "unsupported_media_type")
    two = upload(served, {"image": ("a.jpg", jpeg), "other": ("b.jpg", jpeg)})
    error_of(two, 400, "invalid_parameter")
    assert upload(served, {"image": ("ok.jpg", jpeg)}).status_code == 200  # still serving after all that


def test_oversized_upload_is_refused_by_its_declared_length(served: Served) -> None:
    """A client announcing more than the limit is answered 413 before its body is read."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(served.url.rsplit(":", 1)[1]), timeout=30)
    connection.putrequest("POST", "/api/search/image")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(200 * 1024 * 1024))
    connection.endheaders()
    connection.send(b"--x\r\n")
    answer = connection.getresponse()
    assert answer.status == 413 and b"payload_too_large" in answer.read()
    connection.close()


# -- files ----------------------------------------------------------------------------------------------


def test_original_and_thumbnail_of_a_hit(served: Served) -> None:
    doc_id = red_circle_id(served)
    original = requests.get(f"{served.url}/api/images/{doc_id}", timeout=30)
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    name = search(served, text="a red circle", k=1).json()["hits"][0]["name"]
    assert original.content == (served.samples / name).read_bytes()
    assert original.headers["x-content-type-options"] == "nosniff"
    made = served.service.thumbnails.made
    thumbnail = requests.get(f"{served.url}/api/thumbnails/{doc_id}", timeout=30)
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(thumbnail.content))
    assert picture.format == "JPEG" and max(picture.size) <= 256
    again = requests.get(f"{served.url}/api/thumbnails/{doc_id}", timeout=30)
    assert again.content == thumbnail.content and served.service.thumbnails.made <= made + 1


@pytest.mark.parametrize("path", ["/api/images/{id}", "/api/thumbnails/{id}", "/api/similar/{id}"])
def test_unknown_ids_are_404(served: Served, path: str) -> None:
    response = requests.get(served.url + path.format(id="0" * 64), timeout=30)
    assert "no image with id" in error_of(response, 404, "not_found")
    too_long = requests.get(served.url + path.format(id="a" * 600), timeout=30)
    error_of(too_long, 400, "invalid_parameter")


def test_healthz_reports_what_search_needs(served: Served) -> None:
    response = requests.get(f"{served.url}/healthz", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "cluster": {
            "reachable": True,
            "name": response.json()["cluster"]["name"],
            "version": response.json()["cluster"]["version"],
        },
        "model": {"name": "clip-text", "deployed": True},
        "index": {"name": "quickstart-images", "present": True, "documents": 84},
        "problems": [],
    }


def test_unknown_api_urls_and_methods_are_json(served: Served) -> None:
    error_of(requests.get(f"{served.url}/api/nothing", timeout=30), 404, "not_found")
    error_of(requests.get(f"{served.url}/api/search/image", timeout=30), 405, "method_not_allowed")
    error_of(requests.delete(f"{served.url}/api/images/x", timeout=30), 405, "method_not_allowed")
