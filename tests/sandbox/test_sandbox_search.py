"""Search: kNN scores per similarity against numpy, hybrid kNN + query, script_score exact search,
the query DSL, sorting, paging, source filtering, and ES's validation errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.sandbox.sandbox_helpers import index_name

__all__ = ["index_name"]

RNG = np.random.default_rng(7)


def _es_score(similarity: str, doc: np.ndarray, query: np.ndarray) -> float:
    """Elasticsearch's documented kNN score for one similarity."""
    if similarity == "cosine":
        cos = float(doc @ query / (np.linalg.norm(doc) * np.linalg.norm(query)))
        return (1 + cos) / 2
    if similarity == "dot_product":
        return (1 + float(doc @ query)) / 2
    if similarity == "l2_norm":
        return 1 / (1 + float(np.sum((doc - query) ** 2)))
    dot = float(doc @ query)
    return 1 / (1 - dot) if dot < 0 else dot + 1


def _load(
    es: Elasticsearch, index: str, vectors: np.ndarray, similarity: str, extra: dict[str, Any] | None = None
) -> None:
    es.indices.create(
        index=index,
        mappings={
            "properties": {
                "v": {"type": "dense_vector", "dims": vectors.shape[1], "similarity": similarity},
                "tag": {"type": "keyword"},
                "n": {"type": "integer"},
                **(extra or {}),
            }
        },
    )
    operations: list[dict[str, Any]] = []
    for i, vector in enumerate(vectors):
        operations.append({"index": {"_index": index, "_id": str(i)}})
        operations.append({"v": [float(x) for x in vector], "tag": "even" if i % 2 == 0 else "odd", "n": i})
    response = es.bulk(operations=operations, refresh=True)
    assert not response["errors"]


@pytest.mark.parametrize("similarity", ["cosine", "dot_product", "l2_norm", "max_inner_product"])
def test_knn_scores_match_es_formulas(es: Elasticsearch, index_name: str, similarity: str) -> None:
    vectors = RNG.normal(size=(40, 8)).astype(np.float32)
    query = RNG.normal(size=8).astype(np.float32)
    if similarity == "dot_product":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        query /= np.linalg.norm(query)
    _load(es, index_name, vectors, similarity)
    response = es.search(
        index=index_name,
        knn={"field": "v", "query_vector": [float(x) for x in query], "k": 5, "num_candidates": 20},
        source=False,
    )
    expected = sorted(
        (
            (_es_score(similarity, v.astype(np.float64), query.astype(np.float64)), i)
            for i, v in enumerate(vectors)
        ),
        reverse=True,
    )[:5]
    hits = response["hits"]["hits"]
    assert [int(h["_id"]) for h in hits] == [i for _, i in expected]
    for hit, (score, _) in zip(hits, expected, strict=True):
        assert hit["_score"] == pytest.approx(score, rel=1e-4)
    assert response["hits"]["total"] == {"value": 5, "relation": "eq"}


def test_knn_filter_similarity_boost_and_name(es: Elasticsearch, index_name: str) -> None:
    vectors = RNG.normal(size=(30, 4)).astype(np.float32)
    _load(es, index_name, vectors, "l2_norm")
    query = [float(x) for x in vectors[3]]
    response = es.search(
        index=index_name,
        knn={
            "field": "v",
            "query_vector": query,
            "k": 3,
            "num_candidates": 10,
            "filter": {"term": {"tag": "odd"}},
            "boost": 2.0,
            "_name": "near",
        },
    )
    hits = response["hits"]["hits"]
    assert next(h["_id"] for h in hits) == "3"
    assert hits[0]["_score"] == pytest.approx(2.0)
    assert all(h["_source"]["tag"] == "odd" for h in hits)
    assert all(h["matched_queries"] == ["near"] for h in hits)
    close = es.search(
        index=index_name,
        knn={"field": "v", "query_vector": query, "k": 10, "num_candidates": 10, "similarity": 1e-6},
    )
    assert [h["_id"] for h in close["hits"]["hits"]] == ["3"]


def test_hybrid_knn_and_query_sum_scores(es: Elasticsearch, index_name: str) -> None:
    vectors = RNG.normal(size=(20, 4)).astype(np.float32)
    _load(es, index_name, vectors, "cosine")
    query = [float(x) for x in vectors[0]]
    knn_only = {
        h["_id"]: h["_score"]
        for h in es.search(
            index=index_name, knn={"field": "v", "query_vector": query, "k": 3, "num_candidates": 5}
        )["hits"]["hits"]
    }
    hybrid = es.search(
        index=index_name,
        knn={"field": "v", "query_vector": query, "k": 3, "num_candidates": 5},
        query={"term": {"n": 15}},
        size=10,
    )
    hits = {h["_id"]: h["_score"] for h in hybrid["hits"]["hits"]}
    assert set(hits) == set(knn_only) | {"15"}
    assert hybrid["hits"]["total"]["value"] == len(hits)
    assert hits["15"] >= 1.0  # a numeric term query scores 1.0 (plus its kNN score if it is a neighbour)


def test_multiple_knn_clauses(es: Elasticsearch, index_name: str) -> None:
    vectors = RNG.normal(size=(10, 4)).astype(np.float32)
    _load(
        es,
        index_name,
        vectors,
        "l2_norm",
        extra={"w": {"type": "dense_vector", "dims": 4, "similarity": "l2_norm"}},
    )
    response = es.search(
        index=index_name,
        knn=[
            {"field": "v", "query_vector": [float(x) for x in vectors[1]], "k": 1, "num_candidates": 5},
            {"field": "v", "query_vector": [float(x) for x in vectors[2]], "k": 1, "num_candidates": 5},
        ],
    )
    assert {h["_id"] for h in response["hits"]["hits"]} == {"1", "2"}


@pytest.mark.parametrize(
    ("knn", "message"),
    [
        ({"k": 10, "num_candidates": 5}, "[num_candidates] cannot be less than [k]"),
        ({"k": 0, "num_candidates": 5}, "[k] must be greater than 0"),
        ({"k": 10, "num_candidates": 10001}, "[num_candidates] cannot exceed [10000]"),
    ],
)
def test_knn_parameter_validation(
    es: Elasticsearch, index_name: str, knn: dict[str, Any], message: str
) -> None:
    _load(es, index_name, RNG.normal(size=(3, 4)).astype(np.float32), "cosine")
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index_name, knn={"field": "v", "query_vector": [1.0, 0.0, 0.0, 0.0], **knn})
    assert caught.value.error == "illegal_argument_exception"
    assert caught.value.body["error"]["reason"] == message


def test_knn_shard_level_errors(es: Elasticsearch, index_name: str) -> None:
    _load(es, index_name, RNG.normal(size=(3, 4)).astype(np.float32), "cosine")
    with pytest.raises(BadRequestError) as caught:
        es.search(
            index=index_name, knn={"field": "v", "query_vector": [1.0, 0.0, 0.0], "k": 1, "num_candidates": 1}
        )
    error = caught.value.body["error"]
    assert error["type"] == "search_phase_execution_exception"
    assert error["root_cause"][0]["type"] == "query_shard_exception"
    assert error["root_cause"][0]["reason"] == (
        "failed to create query: The query vector has a different number of dimensions [3] than the document vectors [4]."
    )
    with pytest.raises(BadRequestError) as caught:
        es.search(
            index=index_name,
            knn={"field": "tag", "query_vector": [1.0, 0.0, 0.0, 0.0], "k": 1, "num_candidates": 1},
        )
    assert caught.value.body["error"]["root_cause"][0]["reason"] == (
        "failed to create query: [knn] queries are only supported on [dense_vector] fields"
    )
    empty = es.search(
        index=index_name,
        knn={"field": "nope", "query_vector": [1.0, 0.0, 0.0, 0.0], "k": 1, "num_candidates": 1},
    )
    assert empty["hits"]["hits"] == []


@pytest.mark.parametrize(
    ("source", "similarity"),
    [
        ("cosineSimilarity(params.query_vector, 'v') + 1.0", "cosine"),
        ("dotProduct(params.query_vector, 'v') + 10", "dot"),
        ("1 / (1 + l2norm(params.query_vector, 'v'))", "l2"),
    ],
)
def test_script_score_exact_search(es: Elasticsearch, index_name: str, source: str, similarity: str) -> None:
    vectors = RNG.normal(size=(25, 6)).astype(np.float32)
    _load(es, index_name, vectors, "l2_norm")
    query = RNG.normal(size=6)
    response = es.search(
        index=index_name,
        size=25,
        query={
            "script_score": {
                "query": {"term": {"tag": "even"}},
                "script": {"source": source, "params": {"query_vector": [float(x) for x in query]}},
            }
        },
    )
    docs = vectors.astype(np.float64)
    expected = {}
    for i in range(0, 25, 2):
        if similarity == "cosine":
            expected[str(i)] = (
                float(docs[i] @ query / (np.linalg.norm(docs[i]) * np.linalg.norm(query))) + 1.0
            )
        elif similarity == "dot":
            expected[str(i)] = float(docs[i] @ query) + 10
        else:
            expected[str(i)] = 1 / (1 + float(np.linalg.norm(docs[i] - query)))
    hits = response["hits"]["hits"]
    assert {h["_id"] for h in hits} == set(expected)
    for hit in hits:
        assert hit["_score"] == pytest.approx(expected[hit["_id"]], rel=1e-5)
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)


def test_script_score_out_of_scope_and_negative(es: Elasticsearch, index_name: str) -> None:
    _load(es, index_name, RNG.normal(size=(3, 2)).astype(np.float32), "l2_norm")
    with pytest.raises(BadRequestError):
        es.search(
            index=index_name,
            query={"script_score": {"query": {"match_all": {}}, "script": {"source": "Math.random()"}}},
        )
    with pytest.raises(BadRequestError) as caught:
        es.search(
            index=index_name, query={"script_score": {"query": {"match_all": {}}, "script": {"source": "-1"}}}
        )
    assert "Must be a non-negative score!" in str(caught.value.body)


def test_query_dsl_sort_paging_and_fields(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "caption": {"type": "text"},
                "name": {"type": "keyword"},
                "n": {"type": "integer"},
                "when": {"type": "date"},
            }
        },
    )
    docs = [
        ("1", "A mountain covered in snow", "snow.jpg", 5, "2024-01-01"),
        ("2", "A red rose in a garden", "rose.jpg", 3, "2024-02-01"),
        ("3", "Snow on the rose", "snowrose.jpg", 9, "2024-03-01"),
        ("4", "A cat", "cat.jpg", 1, "2024-04-01"),
    ]
    for doc_id, caption, name, n, when in docs:
        es.index(
            index=index_name, id=doc_id, document={"caption": caption, "name": name, "n": n, "when": when}
        )
    es.indices.refresh(index=index_name)

    def ids(**kwargs: Any) -> list[str]:
        return [h["_id"] for h in es.search(index=index_name, **kwargs)["hits"]["hits"]]

    assert set(ids(query={"match": {"caption": "snow"}})) == {"1", "3"}
    assert ids(query={"match": {"caption": {"query": "snow rose", "operator": "and"}}}) == ["3"]
    assert ids(query={"term": {"name": "cat.jpg"}}) == ["4"]
    assert set(ids(query={"terms": {"name": ["cat.jpg", "rose.jpg"]}})) == {"2", "4"}
    assert set(ids(query={"range": {"n": {"gte": 3, "lt": 9}}})) == {"1", "2"}
    assert ids(query={"range": {"when": {"gt": "2024-02-15"}}}, sort=[{"when": "desc"}]) == ["4", "3"]
    assert ids(query={"ids": {"values": ["2", "9"]}}) == ["2"]
    assert set(
        ids(query={"bool": {"must": [{"match": {"caption": "snow"}}], "must_not": [{"term": {"n": 9}}]}})
    ) == {"1"}
    # With a filter, should clauses are optional (minimum_should_match 0): they only rank.
    ranked = ids(
        query={
            "bool": {
                "should": [{"term": {"n": 1}}, {"term": {"n": 3}}],
                "filter": [{"exists": {"field": "caption"}}],
            }
        }
    )
    assert set(ranked) == {"1", "2", "3", "4"} and set(ranked[:2]) == {"2", "4"}
    assert set(ids(query={"bool": {"should": [{"term": {"n": 1}}, {"term": {"n": 3}}]}})) == {"2", "4"}
    assert ids(sort=[{"n": "asc"}], size=2) == ["4", "2"]
    assert ids(sort=[{"n": "asc"}], size=2, from_=2) == ["1", "3"]
    response = es.search(
        index=index_name,
        query={"match": {"caption": "snow"}},
        fields=["name", "when"],
        source=["n"],
        track_total_hits=True,
    )
    hit = response["hits"]["hits"][0]
    assert set(hit["fields"]) == {"name", "when"}
    assert hit["fields"]["when"][0].endswith("T00:00:00.000Z")
    assert set(hit["_source"]) == {"n"}
    assert response["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert response["hits"]["max_score"] == hit["_score"]
    sorted_hit = es.search(index=index_name, sort=[{"n": "desc"}], size=1)["hits"]["hits"][0]
    assert sorted_hit["sort"] == [9] and sorted_hit["_score"] is None
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index_name, sort=[{"caption": "asc"}])
    assert "Text fields are not optimised" in str(caught.value.body)
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index_name, query={"no_such_query": {}})
    assert caught.value.error == "parsing_exception"


def test_count_with_query(es: Elasticsearch, index_name: str) -> None:
    _load(es, index_name, RNG.normal(size=(9, 2)).astype(np.float32), "l2_norm")
    assert es.count(index=index_name)["count"] == 9
    assert es.count(index=index_name, query={"term": {"tag": "even"}})["count"] == 5


def test_result_window(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index_name, size=10001)
    assert "Result window is too large" in str(caught.value.body)
