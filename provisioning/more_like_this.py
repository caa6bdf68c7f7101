""" "More like this": the images nearest to one already indexed, found with its stored vector.

The query is exactly the point the index holds (nothing is recomputed, no image decoded). How it
gets there depends on the version (:mod:`provisioning.es_versions`): from Elasticsearch 9.4 the
search builds it itself (``query_vector_builder.lookup``: one request); before, the vector is read
back first (:func:`stored_vector`): 9.2 leaves ``dense_vector`` values out of ``_source`` for new
indices (``index.mapping.exclude_source_vectors``) and returns them on request with
``_source_exclude_vectors=false``; earlier 9.x versions keep them in ``_source``.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.cluster import Cluster
from provisioning.es_versions import source_excludes_vectors, supports_lookup
from provisioning.queries import (
    Searcher,
    SearchError,
    SearchResult,
    UnknownImage,
    default_num_candidates,
    source_value,
)
from provisioning.query_filters import without_document
from provisioning.stackfile.stack import Stack


def vector_fetch_options(version: tuple[int, int, int], field: str) -> dict[str, Any]:
    """The ``GET <index>/_doc/<id>`` options that return ``field``'s vector on ``version``."""
    options: dict[str, Any] = {"source_includes": [field]}
    if source_excludes_vectors(version):
        options["source_exclude_vectors"] = False
    return options


def stored_vector(cluster: Cluster, index: str, doc_id: str, field: str) -> list[float]:
    """The vector document ``doc_id`` of ``index`` holds in ``field``.

    Raises UnknownImage when there is no such document, SearchError when it has no vector in that
    field, ClusterError when the cluster refuses or cannot be reached.
    """
    try:
        answer = cluster.client.get(index=index, id=doc_id, **vector_fetch_options(cluster.version(), field))
    except NotFoundError:
        raise UnknownImage(f"no image with id {doc_id!r} in index {index}") from None
    except (ApiError, TransportError) as exc:
        raise cluster.error(exc, f"read the vector of {doc_id} in {index}") from None
    node = source_value(answer.body.get("_source") or {}, field)
    if not isinstance(node, list) or not node:
        raise SearchError(f"image {doc_id} in index {index} has no vector in field {field}")
    return [float(x) for x in node]


def similar(
    stack: Stack,
    cluster: Cluster,
    doc_id: str,
    *,
    k: int = 10,
    index: str | None = None,
    filter: dict[str, Any] | None = None,
    min_score: float | None = None,
    include_self: bool = False,
    searcher: Searcher | None = None,
) -> SearchResult:
    """The ``k`` images nearest to the indexed image ``doc_id``, by its stored vector.

    The image itself is left out unless ``include_self``; ``filter`` and ``min_score`` work as in
    :func:`provisioning.search`. Returns a SearchResult of kind ``image`` whose ``query`` is the
    id. Raises UnknownImage (no such document), SearchError, or ClusterError.
    """
    searcher = searcher or Searcher(stack, cluster)
    index = index or searcher.default_index()
    field = searcher.vector_field(index)
    knn_filter = filter if include_self else without_document(doc_id, filter)
    common: dict[str, Any] = {
        "index": index,
        "field": field,
        "k": k,
        "num_candidates": default_num_candidates(k),
        "filter": knn_filter,
        "min_score": min_score,
        "query": doc_id,
        "kind": "image",
    }
    if supports_lookup(cluster.version()):
        result = searcher.knn(lookup={"id": doc_id, "index": index, "path": field}, **common)
    else:
        result = searcher.knn(query_vector=stored_vector(cluster, index, doc_id, field), **common)
    result.filter = filter
    return result
