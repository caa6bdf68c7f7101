"""Search APIs: ``_search``, ``_count`` and the deprecated ``_knn_search``."""

from __future__ import annotations

import time
from typing import Any

from es_sandbox.http import ApiError, Request, RouteTable
from es_sandbox.query.parser import parse_knn_clause, parse_query
from es_sandbox.search_phases import count, execute, open_shards, run
from es_sandbox.search_request import parse_search
from es_sandbox.state import SandboxState

routes = RouteTable()

KNN_SEARCH_WARNING = "The kNN search API has been replaced by the `knn` option in the search API."
KNN_SEARCH_KEYS = ("knn", "filter", "_source", "fields", "docvalue_fields", "stored_fields")


@routes.route("GET|POST", "/_search", "/{index}/_search", write=False, api="search")
def search_api(state: SandboxState, request: Request) -> dict[str, Any]:
    return execute(state, request, request.path_params.get("index"), request.json_object())


@routes.route("GET|POST", "/_count", "/{index}/_count", write=False, api="count")
def count_api(state: SandboxState, request: Request) -> dict[str, Any]:
    return count(state, request, request.path_params.get("index"), request.json_object())


@routes.route("GET|POST", "/{index}/_knn_search", write=False, api="knn_search")
def knn_search_api(state: SandboxState, request: Request) -> dict[str, Any]:
    """The 8.0 kNN search endpoint: ``knn`` needs ``k`` and ``num_candidates``; ``filter`` is top level."""
    request.warn(KNN_SEARCH_WARNING)
    started = time.perf_counter()
    body = request.json_object(required=True)
    for key in body:
        if key not in KNN_SEARCH_KEYS:
            raise ApiError(400, "x_content_parse_exception", f"[knn_search] unknown field [{key}]")
    knn_body = body.get("knn")
    if not isinstance(knn_body, dict):
        raise ApiError(400, "x_content_parse_exception", "Required [knn]")
    for required in ("k", "num_candidates"):
        if required not in knn_body:
            raise ApiError(400, "x_content_parse_exception", f"[knn] failed to parse: Required [{required}]")
    clause = parse_knn_clause(dict(knn_body.items()), "knn", None)
    filters = body.get("filter")
    if filters is not None:
        items = filters if isinstance(filters, list) else [filters]
        clause.filters.extend(parse_query(item) for item in items)
    clause.resolve_vector(state)
    assert clause.k is not None
    search_request = parse_search(
        {k: v for k, v in body.items() if k in ("_source", "fields", "docvalue_fields", "stored_fields")},
        {},
    )
    search_request.knn = [clause]
    search_request.size = clause.k
    shards = open_shards(state, request.path_params["index"], request.params)
    return run(state, search_request, shards, started)
