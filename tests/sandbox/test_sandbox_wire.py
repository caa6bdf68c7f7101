"""Wire conventions: product header, media types and compatibility, error bodies, HEAD, parameters.

These use raw HTTP where the official client would hide what is on the wire; they hold against a
real Elasticsearch 9 as well as against the sandbox.
"""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from tests.conftest import Target
from tests.sandbox.sandbox_helpers import VENDOR_9, Raw, error_type, index_name, unique

__all__ = ["index_name"]


@pytest.fixture
def raw(es_target: Target) -> Raw:
    return Raw(es_target.url)


def test_every_response_carries_the_product_header(raw: Raw, index_name: str) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", f"/{index_name}"),
        ("HEAD", f"/{index_name}"),
        ("GET", "/_nope/x/y"),
    ):
        status, headers, _ = raw.request(method, path)
        assert headers.get("x-elastic-product") == "Elasticsearch", (method, path, status)


def test_vendor_media_type_is_answered_in_kind(raw: Raw) -> None:
    for version in (9, 8):
        media = f"application/vnd.elasticsearch+json; compatible-with={version}"
        status, headers, body = raw.request("GET", "/", headers={"Accept": media})
        assert status == 200
        assert (
            headers["content-type"].replace(" ", "")
            == f"application/vnd.elasticsearch+json;compatible-with={version}"
        )
        assert body["tagline"] == "You Know, for Search"
    status, headers, _ = raw.request("GET", "/", headers={"Accept": "application/json"})
    assert status == 200 and headers["content-type"].startswith("application/json")


def test_unsupported_compatible_with_is_refused_like_es(raw: Raw) -> None:
    media = "application/vnd.elasticsearch+json; compatible-with=7"
    status, _, body = raw.request("GET", "/", headers={"Accept": media})
    assert status == 400
    assert body["error"]["type"] == "media_type_header_exception"
    assert body["error"]["reason"] == "Invalid media-type value on headers [Accept, Content-Type]"
    assert body["error"]["caused_by"]["type"] == "status_exception"
    assert "Accept version must be either version 9 or 8, but found 7" in body["error"]["caused_by"]["reason"]
    assert body["error"]["root_cause"][0]["type"] == "media_type_header_exception"


def test_accept_and_content_type_versions_must_match(raw: Raw, index_name: str) -> None:
    status, _, body = raw.request(
        "PUT",
        f"/{index_name}",
        body={},
        headers={"Accept": VENDOR_9, "Content-Type": "application/vnd.elasticsearch+json; compatible-with=8"},
    )
    assert status == 400
    assert error_type(body) == "media_type_header_exception"
    assert "compatible versions must match" in body["error"]["caused_by"]["reason"]


def test_body_without_a_json_content_type_is_not_acceptable(raw: Raw, index_name: str) -> None:
    status, _, body = raw.request("PUT", f"/{index_name}", body="{}", headers={"Content-Type": "text/plain"})
    assert status == 406
    assert body == {"error": "Content-Type header [text/plain] is not supported", "status": 406}


def test_error_body_shape(es: Elasticsearch) -> None:
    name = unique("missing")
    with pytest.raises(NotFoundError) as caught:
        es.indices.get(index=name)
    body = caught.value.body
    assert body["status"] == 404
    error = body["error"]
    assert error["type"] == "index_not_found_exception"
    assert error["reason"] == f"no such index [{name}]"
    assert error["index"] == name
    assert error["resource.type"] == "index_or_alias"
    assert error["root_cause"] == [{k: v for k, v in error.items() if k != "root_cause"}]


def test_unknown_query_parameter_is_refused_with_a_suggestion(raw: Raw) -> None:
    status, _, body = raw.request("GET", "/_search?sise=3")
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert (
        body["error"]["reason"]
        == "request [/_search] contains unrecognized parameter: [sise] -> did you mean [size]?"
    )


def test_wrong_method_and_unknown_endpoint(raw: Raw) -> None:
    status, _, body = raw.request("DELETE", "/_cluster/health")
    assert status == 405
    assert body == {
        "error": "Incorrect HTTP method for uri [/_cluster/health] and method [DELETE], allowed: [GET]",
        "status": 405,
    }
    status, _, body = raw.request("GET", "/_no/such/endpoint/here")
    assert status == 400
    assert body == {"error": "no handler found for uri [/_no/such/endpoint/here] and method [GET]"}


def test_head_checks_existence(es: Elasticsearch, index_name: str) -> None:
    assert not es.indices.exists(index=index_name)
    es.indices.create(index=index_name)
    assert es.indices.exists(index=index_name)
    assert not es.exists(index=index_name, id="nope")


def test_filter_path_and_pretty(raw: Raw, es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    status, _, body = raw.request("GET", f"/{index_name}?filter_path=*.settings.index.number_of_shards")
    assert status == 200
    assert body == {index_name: {"settings": {"index": {"number_of_shards": "1"}}}}
    status, _, body = raw.request("GET", "/?filter_path=-version,-tagline")
    assert "version" not in body and "tagline" not in body and "cluster_name" in body
    status, _, text = raw.request("GET", "/?pretty&filter_path=tagline")
    assert text == {"tagline": "You Know, for Search"}


def test_malformed_json_body_is_a_parse_error(raw: Raw, index_name: str) -> None:
    status, _, body = raw.request("PUT", f"/{index_name}", body="{not json")
    assert status == 400
    assert error_type(body) in ("x_content_parse_exception", "parse_exception", "json_parse_exception")


def test_client_errors_map_to_exceptions(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name)
    assert caught.value.error == "resource_already_exists_exception"
    assert caught.value.body["error"]["index"] == index_name
