"""The web application's pieces that need no cluster: request values, filters, error statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.app.http_errors import HttpError, classify
from provisioning.app.service import Limits, QueryOptions, SearchService
from provisioning.cluster import Cluster, ClusterError, ConnectionOptions
from provisioning.image_files import UnsafeImagePath
from provisioning.queries import ModelUnavailable, QueryImageError, SearchError, UnknownImage
from provisioning.query_filters import (
    FilterError,
    keyword_fields,
    parse_filter,
    term_filter,
    without_document,
)
from provisioning.stackfile import Stack, load_stack
from tests.integration.stacks import absolute_stack


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return load_stack(absolute_stack(tmp_path), {})


@pytest.fixture
def service(stack: Stack) -> SearchService:
    cluster = Cluster.connect(ConnectionOptions(url="http://127.0.0.1:9", max_retries=0))  # never contacted
    return SearchService.create(stack, cluster)


def test_keyword_fields_come_from_the_stack_mapping(stack: Stack) -> None:
    assert keyword_fields(stack, "quickstart-images") == [
        "collection",
        "image_id",
        "image_name",
        "relative_path",
    ]


def test_term_filters(stack: Stack) -> None:
    assert term_filter(stack, "quickstart-images", []) is None
    assert term_filter(stack, "quickstart-images", [("collection", "x"), ("image_name", "a:b.jpg")]) == {
        "bool": {
            "filter": [
                {"terms": {"collection": ["x"]}},
                {"terms": {"image_name": ["a:b.jpg"]}},
            ]
        }
    }
    assert parse_filter("image_name:a:b.jpg") == ("image_name", "a:b.jpg")
    with pytest.raises(FilterError, match="keyword fields: collection, image_id"):
        term_filter(stack, "quickstart-images", [("caption", "x")])
    with pytest.raises(FilterError, match="not field:value"):
        parse_filter("collection")
    assert without_document("d", None) == {"bool": {"must_not": [{"ids": {"values": ["d"]}}]}}


def test_request_values(service: SearchService) -> None:
    assert service.options({}) == QueryOptions(12, None, ())
    assert service.options({"k": "5", "min_score": "0.5"}, ["collection:x"], default_k=10) == QueryOptions(
        5, 0.5, (("collection", "x"),)
    )
    assert service.options({"filter_field": "image_name", "filter_value": " a.jpg "}).filters == (
        ("image_name", "a.jpg"),
    )
    assert service.options({"filter_field": "image_name", "filter_value": ""}).filters == ()
    for values in ({"k": "0"}, {"k": "101"}, {"k": "1.5"}, {"min_score": "inf"}, {"min_score": "-0.1"}):
        with pytest.raises(HttpError) as caught:
            service.options(values)
        assert caught.value.status == 400
    assert QueryOptions(5, 0.25, (("collection", "x"),)).to_params() == [
        ("k", "5"),
        ("min_score", "0.25"),
        ("filter", "collection:x"),
    ]
    with pytest.raises(HttpError):
        service.check_id("a\nb")
    assert service.limits == Limits() and service.limits.max_upload_bytes == 20 * 1024 * 1024


def test_unknown_index_is_refused(stack: Stack) -> None:
    cluster = Cluster.connect(ConnectionOptions(url="http://127.0.0.1:9", max_retries=0))
    with pytest.raises(SearchError, match="index elsewhere is not declared"):
        SearchService.create(stack, cluster, "elsewhere")


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (QueryImageError("bomb", "too many pixels"), 413, "payload_too_large"),
        (QueryImageError("unidentified", "not an image"), 415, "unsupported_media_type"),
        (QueryImageError("truncated", "cut"), 400, "invalid_image"),
        (FilterError("bad field"), 400, "invalid_filter"),
        (UnknownImage("no such id"), 404, "not_found"),
        (UnsafeImagePath("out"), 403, "forbidden"),
        (ModelUnavailable("not deployed"), 503, "model_unavailable"),
        (ClusterError("cannot reach"), 503, "cluster_unavailable"),
        (ClusterError("busy", status=429), 503, "cluster_unavailable"),
        (ClusterError("gone", status=404, error_type="index_not_found_exception"), 503, "index_missing"),
        (ClusterError("refused", status=400, error_type="parsing_exception"), 502, "search_refused"),
        (SearchError("no vector"), 400, "invalid_parameter"),
        (RuntimeError("boom"), 500, "internal_error"),
    ],
)
def test_errors_map_to_statuses(error: Exception, status: int, kind: str) -> None:
    mapped = classify(error)
    assert (mapped.status, mapped.type) == (status, kind)


def test_unexpected_errors_hide_details_and_secrets(caplog: pytest.LogCaptureFixture) -> None:
    mapped = classify(RuntimeError("token s3cret leaked"), ["s3cret"])
    assert "s3cret" not in mapped.message and "s3cret" not in caplog.text and "***" in caplog.text
