"""The body of ``_search`` (and ``_count``, ``_knn_search``) parsed and validated as a whole.

Body keys, query syntax, kNN parameters, sort, paging and source options are checked before any
index is touched: these fail with a plain 400 as in Elasticsearch (not as shard failures); features
out of the sandbox's scope are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from es_sandbox.aggregations import Aggregation, parse_aggregations
from es_sandbox.fetch import SourceSpec, parse_source_spec
from es_sandbox.http import ApiError
from es_sandbox.query.context import parsing_error
from es_sandbox.query.nodes import Knn, Query
from es_sandbox.query.parser import parse_knn_clause, parse_query, query_string
from es_sandbox.util import es_str, json_type, split_names

SEARCH_KEYS = {
    "query",
    "knn",
    "size",
    "from",
    "sort",
    "_source",
    "fields",
    "track_total_hits",
    "track_scores",
    "min_score",
    "post_filter",
    "search_after",
    "timeout",
    "terminate_after",
    "version",
    "seq_no_primary_term",
    "explain",
    "stored_fields",
    "docvalue_fields",
    "stats",
    "profile",
    "indices_boost",
    "runtime_mappings",
    "aggs",
    "aggregations",
    "highlight",
    "suggest",
    "collapse",
    "rescore",
    "pit",
    "retriever",
    "rank",
    "script_fields",
    "ext",
    "slice",
    "_name",
}

OUT_OF_SCOPE = {
    "highlight": "highlighting is not implemented",
    "suggest": "suggesters are not implemented",
    "collapse": "field collapsing is not implemented",
    "rescore": "rescoring is not implemented",
    "pit": "point in time searches are not implemented",
    "retriever": "retrievers are not implemented (use query + knn)",
    "rank": "rank (RRF) is not implemented",
    "script_fields": "script fields need painless",
    "runtime_mappings": "runtime fields need painless",
    "slice": "sliced scrolls are not implemented",
}


def out_of_scope(what: str, why: str) -> ApiError:
    return ApiError(
        400, "illegal_argument_exception", f"[{what}] is out of the provision sandbox's scope: {why}"
    )


@dataclass
class SearchRequest:
    query: Query | None
    knn: list[Knn]
    size: int
    from_: int
    sort: list[tuple[str, str, dict[str, Any]]] | None
    source: SourceSpec
    fields: list[Any]
    track_total_hits: bool | int
    track_scores: bool
    min_score: float | None
    post_filter: Query | None
    search_after: list[Any] | None
    version: bool
    seq_no_primary_term: bool
    rest_total_hits_as_int: bool
    named_scores: bool = False
    docvalue_fields: list[Any] | None = None
    profile: bool = False
    aggs: list[Aggregation] | None = None


def _int_value(body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or value is None:
        raise parsing_error(
            f"[{key}] failed to parse field [{key}]" if value is not None else f"[{key}] cannot be null"
        )
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(
            400, "x_content_parse_exception", f"[search] failed to parse field [{key}]"
        ).with_cause(
            ApiError(400, "number_format_exception", f'For input string: "{es_str(value)}"')
        ) from exc
    return number


def _float_value(value: Any, key: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "x_content_parse_exception", f"[search] failed to parse field [{key}]") from exc


def parse_sort(raw: Any) -> list[tuple[str, str, dict[str, Any]]]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            name, _, order = item.partition(":")
            out.append((name, order or ("desc" if name == "_score" else "asc"), {}))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, spec),) = item.items()
            if isinstance(spec, str):
                if spec not in ("asc", "desc"):
                    raise ApiError(400, "illegal_argument_exception", f"Unknown SortOrder [{spec}]")
                out.append((name, spec, {}))
            elif isinstance(spec, dict):
                for key in spec:
                    if key not in ("order", "missing", "mode", "unmapped_type", "format", "numeric_type"):
                        raise parsing_error(
                            f"[{name}] unknown field [{key}]"
                            if name != "_score"
                            else f"[_score] unknown field [{key}]"
                        )
                order = spec.get("order", "desc" if name == "_score" else "asc")
                if order not in ("asc", "desc"):
                    raise ApiError(400, "illegal_argument_exception", f"Unknown SortOrder [{order}]")
                out.append((name, order, spec))
            else:
                raise parsing_error(f"[sort] unsupported sort spec for [{name}]")
        else:
            raise parsing_error("[sort] malformed sort format")
    return out


def parse_search(
    body: Mapping[str, Any], params: Mapping[str, str], knn_endpoint: bool = False
) -> SearchRequest:
    for key, value in body.items():
        if key not in SEARCH_KEYS:
            raise parsing_error(f"Unknown key for a {json_type(value)} in [{key}].")
        if key in OUT_OF_SCOPE and value not in (None, {}, []):
            raise out_of_scope(key, OUT_OF_SCOPE[key])
    if body.get("explain"):
        raise out_of_scope("explain", "score explanations are not implemented")
    size = _int_value(body, "size", int(params.get("size", 10)))
    from_ = _int_value(body, "from", int(params.get("from", 0)))
    if size < 0:
        raise ApiError(
            400, "illegal_argument_exception", f"[size] parameter cannot be negative, found [{size}]"
        )
    if from_ < 0:
        raise ApiError(
            400, "illegal_argument_exception", f"[from] parameter cannot be negative, found [{from_}]"
        )
    query: Query | None = None
    if "query" in body and body["query"] is not None:
        query = parse_query(body["query"])
    q = params.get("q")
    if q is not None:
        df = params.get("df")
        query = query_string(q, [df] if df else None, (params.get("default_operator") or "or").lower())
    knn_raw = body.get("knn")
    knn: list[Knn] = []
    if knn_raw is not None:
        items = knn_raw if isinstance(knn_raw, list) else [knn_raw]
        for item in items:
            knn.append(parse_knn_clause(item, "knn", size))
        search_type = params.get("search_type")
        if search_type is not None:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "cannot set [search_type] when using [knn] search, since the search type is determined automatically",
            )
    sort = None
    if "sort" in body:
        sort = parse_sort(body["sort"])
    elif params.get("sort"):
        sort = parse_sort(split_names(params["sort"]))
    track_total: bool | int = 10_000
    raw_tth = body.get("track_total_hits", params.get("track_total_hits"))
    if raw_tth is not None:
        if raw_tth in (True, "true"):
            track_total = True
        elif raw_tth in (False, "false"):
            track_total = False
        else:
            try:
                track_total = int(raw_tth)
            except (TypeError, ValueError) as exc:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"[track_total_hits] must be a boolean or an integer, got [{raw_tth}]",
                ) from exc
            if track_total < -1:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"[track_total_hits] parameter must be positive or equals to -1, got {track_total}",
                )
    rest_int = params.get("rest_total_hits_as_int") in ("", "true")
    if rest_int and track_total is not True and track_total is not False:
        if track_total != 10_000 and raw_tth is not None:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got "
                + str(track_total),
            )
        track_total = True
    fields = body.get("fields") or []
    if not isinstance(fields, list):
        raise parsing_error("[fields] must be an array")
    search_after = body.get("search_after")
    if search_after is not None and sort is None:
        raise ApiError(400, "illegal_argument_exception", "[search_after] requires a sort")
    post_filter = parse_query(body["post_filter"]) if body.get("post_filter") is not None else None
    min_score = body.get("min_score", params.get("min_score"))
    return SearchRequest(
        query=query,
        knn=knn,
        size=size,
        from_=from_,
        sort=sort,
        source=parse_source_spec(body.get("_source"), params),
        fields=list(fields),
        track_total_hits=track_total,
        track_scores=bool(body.get("track_scores", params.get("track_scores") in ("", "true"))),
        min_score=_float_value(min_score, "min_score"),
        post_filter=post_filter,
        search_after=list(search_after) if search_after is not None else None,
        version=bool(body.get("version", params.get("version") in ("", "true"))),
        seq_no_primary_term=bool(
            body.get("seq_no_primary_term", params.get("seq_no_primary_term") in ("", "true"))
        ),
        rest_total_hits_as_int=rest_int,
        named_scores=params.get("include_named_queries_score") in ("", "true"),
        docvalue_fields=list(body["docvalue_fields"]) if body.get("docvalue_fields") else None,
        profile=bool(body.get("profile", False)),
        aggs=_aggregations(body),
    )


def _aggregations(body: Mapping[str, Any]) -> list[Aggregation] | None:
    if body.get("aggs") is not None and body.get("aggregations") is not None:
        raise parsing_error("Found two aggregation definitions: [aggs] and [aggregations]")
    raw = body.get("aggs", body.get("aggregations"))
    return parse_aggregations(raw) if raw else None
