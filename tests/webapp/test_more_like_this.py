"""More like this through the library: the vector read back from the document the way the
cluster's version allows (Elasticsearch 9.2 leaves vectors out of ``_source`` by default)."""

from __future__ import annotations

from typing import Any

import pytest

import provisioning
from provisioning.more_like_this import similar, stored_vector, vector_fetch_options
from provisioning.queries import UnknownImage
from tests.webapp.conftest import Served

INDEX = "quickstart-images"


def a_red_circle(served: Served) -> str:
    hits = provisioning.search(served.stack, served.cluster, text="a red circle", k=1).hits
    return hits[0].id


def test_vectors_are_left_out_of_source_from_9_2_and_fetched_on_request(served: Served) -> None:
    doc_id = a_red_circle(served)
    version = served.cluster.version()
    plain = served.cluster.client.get(index=INDEX, id=doc_id).body["_source"]
    # left out by default from 9.2 (as the sandbox emulates), kept in _source before
    assert ("image_embedding" in plain) == (version < (9, 2, 0)), version
    vector = stored_vector(served.cluster, INDEX, doc_id, "image_embedding")
    assert len(vector) == 32 and all(isinstance(x, float) for x in vector)
    explicit = served.cluster.client.get(index=INDEX, id=doc_id, source_exclude_vectors=False).body["_source"]
    assert explicit["image_embedding"] == pytest.approx(vector)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((9, 0, 3), {"source_includes": ["v"]}),
        ((9, 1, 0), {"source_includes": ["v"]}),
        ((9, 2, 0), {"source_includes": ["v"], "source_exclude_vectors": False}),
        ((9, 4, 1), {"source_includes": ["v"], "source_exclude_vectors": False}),
    ],
)
def test_vector_fetch_follows_the_version(version: tuple[int, int, int], expected: dict[str, Any]) -> None:
    assert vector_fetch_options(version, "v") == expected


def test_similar_leaves_the_image_itself_out_unless_asked(served: Served) -> None:
    doc_id = a_red_circle(served)
    others = similar(served.stack, served.cluster, doc_id, k=3)
    assert doc_id not in [h.id for h in others.hits] and others.hits[0].name.startswith("red-circle-")
    with_self = similar(served.stack, served.cluster, doc_id, k=3, include_self=True)
    assert with_self.hits[0].id == doc_id and with_self.hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert with_self.kind == "image" and with_self.query == doc_id


def test_similar_with_a_filter_and_unknown_ids(served: Served) -> None:
    doc_id = a_red_circle(served)
    only = {"bool": {"filter": [{"terms": {"image_name": ["blue-star-000.jpg"]}}]}}
    result = similar(served.stack, served.cluster, doc_id, k=3, filter=only)
    assert [h.name for h in result.hits] == ["blue-star-000.jpg"] and result.filter == only
    with pytest.raises(UnknownImage, match="no image with id"):
        similar(served.stack, served.cluster, "f" * 64)
