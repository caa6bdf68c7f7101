"""``_search``, ``_count`` and ``_knn_search``: request parsing, per-index execution, merge, fetch.

Each index is one shard. A request is validated as a whole first (body keys, query syntax, kNN
parameters: these fail with a plain 400 as in ES), then run per index against that index's
current searcher; errors raised while building a query on an index are shard failures, reported
as ES does (``search_phase_execution_exception`` "all shards failed" when every index failed).
Top-level ``knn`` is hybrid with ``query`` the way ES combines them: the union of the query's
matches and each clause's global top ``k``, scores summed (each clause's scores times its boost).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_sandbox.dates import format_millis
from es_sandbox.http import ApiError, Request
from es_sandbox.mapper.lookup import LeafField
from es_sandbox.mapper.parameters import NUMERIC_TYPES
from es_sandbox.metadata import Index, indices_part
from es_sandbox.node import NODE_ID
from es_sandbox.query.context import ShardContext, parsing_error
from es_sandbox.query.nodes import Knn, MatchAll, Query, iter_queries
from es_sandbox.query.parser import parse_knn_clause, parse_query, query_string
from es_sandbox.state import SandboxState
from es_sandbox.util import es_str, filter_source, get_path, json_type, now_millis, simple_match, split_names

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
    "aggs": "aggregations are not implemented",
    "aggregations": "aggregations are not implemented",
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
    "profile": "profiling is not implemented",
}
MAX_RESULT_WINDOW = 10_000


def out_of_scope(what: str, why: str) -> ApiError:
    return ApiError(
        400, "illegal_argument_exception", f"[{what}] is out of the provision sandbox's scope: {why}"
    )


def f32(value: float) -> float:
    """A score as ES prints it (a Java float): the shortest decimal of the float32 value."""
    return float(str(np.float32(value)))


@dataclass
class SourceSpec:
    enabled: bool = True
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    exclude_vectors: bool | None = None


def parse_source_spec(raw: Any, params: Mapping[str, str] | None = None) -> SourceSpec:
    spec = SourceSpec()
    if raw is not None:
        if isinstance(raw, bool):
            spec.enabled = raw
        elif isinstance(raw, str):
            spec.includes = [raw]
        elif isinstance(raw, list):
            spec.includes = [str(v) for v in raw]
        elif isinstance(raw, dict):
            for key, value in raw.items():
                if key in ("includes", "include"):
                    spec.includes = [value] if isinstance(value, str) else [str(v) for v in value]
                elif key in ("excludes", "exclude"):
                    spec.excludes = [value] if isinstance(value, str) else [str(v) for v in value]
                elif key == "exclude_vectors":
                    spec.exclude_vectors = bool(value)
                else:
                    raise parsing_error(f"Unknown key for a {json_type(value)} in [{key}].")
        else:
            raise parsing_error(
                "Expected one of [VALUE_BOOLEAN, VALUE_STRING, START_ARRAY, START_OBJECT] but found ["
                + json_type(raw)
                + "]"
            )
    if params:
        value = params.get("_source")
        if value is not None:
            if value in ("true", "false"):
                spec.enabled = value == "true"
            else:
                spec.includes = split_names(value)
        if params.get("_source_includes") is not None:
            spec.includes = split_names(params["_source_includes"])
        if params.get("_source_excludes") is not None:
            spec.excludes = split_names(params["_source_excludes"])
        if params.get("_source_exclude_vectors") is not None:
            spec.exclude_vectors = params["_source_exclude_vectors"] in ("", "true")
    return spec


def render_source(
    index: Index, record: Any, spec: SourceSpec, searcher: Any = None, row: int | None = None
) -> dict[str, Any] | None:
    """The ``_source`` of a hit or GET: vectors back in unless excluded, then include/exclude."""
    if not spec.enabled:
        return None
    if index.mapping.get("_source", {}).get("enabled", True) is False:
        return None
    exclude_vectors = (
        spec.exclude_vectors if spec.exclude_vectors is not None else index.exclude_source_vectors
    )
    source = record.source if exclude_vectors else index.store.source_with_vectors(record, searcher, row)
    stored = index.mapping.get("_source", {})
    if stored.get("includes") or stored.get("excludes"):
        source = filter_source(source, stored.get("includes"), stored.get("excludes"))
    if spec.includes or spec.excludes:
        source = filter_source(source, spec.includes, spec.excludes)
    return source


def format_field_value(leaf: LeafField, value: Any) -> Any:
    ftype = leaf.type
    if ftype in ("keyword", "text", "match_only_text", "wildcard", "constant_keyword", "ip", "flattened"):
        text = es_str(value)
        if ftype == "keyword" and leaf.params.get("normalizer") == "lowercase":
            text = text.lower()
        return text
    if ftype in NUMERIC_TYPES:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
            return int(number)
        return number
    if ftype in ("date", "date_nanos"):
        assert leaf.date_format is not None
        try:
            return format_millis(leaf.date_format.parse(value))
        except ValueError:
            return value
    if ftype == "boolean":
        return value if isinstance(value, bool) else value == "true"
    if ftype == "geo_point":
        from es_sandbox.mapper.geo import parse_geo_point

        lat, lon = parse_geo_point(value, leaf.path)
        return {"type": "Point", "coordinates": [lon, lat]}
    return value


def fetch_fields(
    index: Index, record: Any, patterns: list[Any], searcher: Any, row: int | None = None
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    source = None
    for pattern in patterns:
        name = pattern.get("field") if isinstance(pattern, dict) else pattern
        if not isinstance(name, str):
            raise parsing_error("[fields] entries must be strings or objects with a [field]")
        for path, leaf in index.compiled.fields.items():
            if not simple_match(name, path):
                continue
            if leaf.type == "dense_vector":
                if source is None:
                    source = index.store.source_with_vectors(record, searcher, row)
                values = get_path(source, path)
                if values:
                    out[path] = [float(v) for v in values]
                continue
            source_path = leaf.multi_field_of or path
            values = get_path(record.source, source_path)
            formatted = []
            for value in values:
                if isinstance(value, dict) and leaf.type != "geo_point":
                    continue
                if leaf.type == "keyword" and len(es_str(value)) > int(
                    leaf.params.get("ignore_above", 2147483647)
                ):
                    continue
                formatted.append(format_field_value(leaf, value))
            if formatted:
                out[path] = formatted
    return out


# ---------------------------------------------------------------------------------------------------


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
    )


@dataclass
class Shard:
    index: Index
    searcher: Any
    ctx: ShardContext
    mask: np.ndarray | None = None
    scores: np.ndarray | None = None
    knn_masks: list[np.ndarray] = field(default_factory=list)
    knn_named: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)
    knn_results: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    error: ApiError | None = None


def _shard_failure(shard: Shard, error: ApiError) -> dict[str, Any]:
    return {
        "shard": 0,
        "index": shard.index.name,
        "node": NODE_ID,
        "reason": error.to_error_object(),
    }


def _phase_error(failures: list[tuple[Shard, ApiError]]) -> ApiError:
    first = failures[0][1]
    error = ApiError(
        max(e.status for _, e in failures),
        "search_phase_execution_exception",
        "all shards failed",
        phase="query",
        grouped=True,
        failed_shards=[_shard_failure(s, e) for s, e in failures[:1]],
    )
    roots = []
    for _, e in failures:
        root = e.root_cause()
        if root not in roots:
            roots.append(root)
    error.root_cause = lambda: roots[0]  # type: ignore[method-assign]
    cause = (
        first.caused_by if first.type == "query_shard_exception" and first.caused_by is not None else first
    )
    return error.with_cause(cause)


def open_shards(state: SandboxState, expression: str | None, params: Mapping[str, str]) -> list[Shard]:
    ignore_unavailable = params.get("ignore_unavailable") in ("", "true")
    allow_no_indices = params.get("allow_no_indices", "true") != "false"
    expand = params.get("expand_wildcards", "open") or "open"
    now = time.time()
    shards: list[Shard] = []
    with state.lock:
        indices = indices_part(state).resolve(
            expression,
            ignore_unavailable=ignore_unavailable,
            allow_no_indices=allow_no_indices,
            expand_wildcards=expand,
        )
        for index in indices:
            searcher = index.searcher(now)
            ctx = ShardContext(
                index.name,
                index.uuid,
                searcher,
                dict(index.compiled.fields),
                dict(index.compiled.objects),
                dict(index.settings),
                now_millis(),
                index.store,
                state,
            )
            shards.append(Shard(index, searcher, ctx))
    return shards


def execute(
    state: SandboxState, request: Request, expression: str | None, body: Mapping[str, Any]
) -> dict[str, Any]:
    started = time.perf_counter()
    search = parse_search(body, request.params)
    if "scroll" in request.params:
        raise out_of_scope("scroll", "scroll searches are not implemented (use from/size or search_after)")
    for clause in search.knn:
        clause.resolve_vector(state)
    if search.query is not None:
        for node in iter_queries(search.query):
            if isinstance(node, Knn):
                node.resolve_vector(state)
    shards = open_shards(state, expression, request.params)
    return run(state, search, shards, started)


def run(state: SandboxState, search: SearchRequest, shards: list[Shard], started: float) -> dict[str, Any]:
    failures: list[tuple[Shard, ApiError]] = []
    for shard in shards:
        try:
            _run_query(search, shard)
        except ApiError as error:
            shard.error = error
            failures.append((shard, error))
    live_shards = [s for s in shards if s.error is None]
    if shards and not live_shards:
        raise _phase_error(failures)
    # kNN clauses: each clause keeps its global top k across indices.
    for clause_number, clause in enumerate(search.knn):
        candidates: list[tuple[float, int, int]] = []
        for shard_number, shard in enumerate(live_shards):
            rows, scores = shard.knn_results[clause_number]
            candidates.extend((float(s), shard_number, int(r)) for r, s in zip(rows, scores, strict=True))
        candidates.sort(key=lambda t: (-t[0], t[1], t[2]))
        assert clause.k is not None
        kept = candidates[: clause.k]
        for shard_number, shard in enumerate(live_shards):
            mask = np.zeros(shard.ctx.n, dtype=bool)
            knn_scores = np.zeros(shard.ctx.n, dtype=np.float32)
            for score, number, row in kept:
                if number == shard_number:
                    mask[row] = True
                    knn_scores[row] = score * clause.boost
            shard.knn_masks.append(mask)
            assert shard.mask is not None and shard.scores is not None
            shard.mask |= mask
            shard.scores += knn_scores
            if clause.name is not None:
                shard.knn_named.append((clause.name, mask, knn_scores))
    hits: list[tuple[Any, ...]] = []
    total = 0
    max_score: float | None = None
    sorting = search.sort is not None and not (
        len(search.sort) == 1 and search.sort[0][0] == "_score" and search.sort[0][1] == "desc"
    )
    for shard_number, shard in enumerate(live_shards):
        assert shard.mask is not None and shard.scores is not None
        mask = shard.mask & shard.ctx.live()[: shard.ctx.n]
        if search.post_filter is not None:
            post_mask, _ = search.post_filter.evaluate(shard.ctx)
            mask &= post_mask
        if search.min_score is not None:
            mask &= shard.scores >= search.min_score
        rows = np.flatnonzero(mask)
        total += len(rows)
        if len(rows) and (not sorting or search.track_scores):
            best = float(shard.scores[rows].max())
            max_score = best if max_score is None else max(max_score, best)
        for row_number in rows:
            hits.append((shard_number, int(row_number), float(shard.scores[row_number])))
    ordered: list[tuple[int, int, float, list[Any] | None]]
    if sorting:
        assert search.sort is not None
        keyed = [(_sort_values(search.sort, live_shards[s], r, score), s, r, score) for s, r, score in hits]
        keyed.sort(key=lambda t: _sort_key(search.sort or [], t[0], t[1], t[2]))
        if search.search_after is not None:
            keyed = [t for t in keyed if _after(search.sort, t[0], search.search_after)]
        ordered = [(s, r, score, values) for values, s, r, score in keyed]
    else:
        hits.sort(key=lambda t: (-t[2], t[0], t[1]))
        ordered = [(s, r, score, None) for s, r, score in hits]
    page = ordered[search.from_ : search.from_ + search.size]
    window = search.from_ + search.size
    for shard in live_shards:
        limit = int(shard.index.settings.get("index.max_result_window", MAX_RESULT_WINDOW))
        if window > limit:
            raise _phase_error(
                [
                    (
                        shard,
                        ApiError(
                            400,
                            "illegal_argument_exception",
                            f"Result window is too large, from + size must be less than or equal to: [{limit}] but was "
                            f"[{window}]. See the scroll api for a more efficient way to request large data sets. This "
                            "limit can be set by changing the [index.max_result_window] index level setting.",
                        ),
                    )
                ]
            )
    hit_bodies = [_hit(search, live_shards[s], r, score, values, sorting) for s, r, score, values in page]
    hits_obj: dict[str, Any] = {}
    tth = search.track_total_hits
    if search.rest_total_hits_as_int:
        hits_obj["total"] = total if tth is not False else -1
    elif tth is True:
        hits_obj["total"] = {"value": total, "relation": "eq"}
    elif tth is not False:
        limit = int(tth)
        hits_obj["total"] = (
            {"value": min(total, limit), "relation": "gte" if total > limit else "eq"}
            if limit >= 0
            else {"value": total, "relation": "eq"}
        )
    hits_obj["max_score"] = f32(max_score) if max_score is not None else None
    hits_obj["hits"] = hit_bodies
    response: dict[str, Any] = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {
            "total": len(shards),
            "successful": len(live_shards),
            "skipped": 0,
            "failed": len(failures),
        },
        "hits": hits_obj,
    }
    if failures:
        response["_shards"]["failures"] = [_shard_failure(s, e) for s, e in failures]
    return response


def _run_query(search: SearchRequest, shard: Shard) -> None:
    ctx = shard.ctx
    if search.query is not None:
        mask, scores = search.query.evaluate(ctx)
        scores = scores.copy()
    elif search.knn:
        mask, scores = ctx.empty()
    else:
        mask, scores = MatchAll().evaluate(ctx)
    shard.mask = mask.copy()
    shard.scores = np.where(mask, scores, 0).astype(np.float32)
    results = []
    for clause in search.knn:
        from es_sandbox.query.knn import knn_search

        filter_mask = None
        if clause.filters:
            filter_mask = np.ones(ctx.n, dtype=bool)
            for item in clause.filters:
                m, _ = item.evaluate(ctx)
                filter_mask &= m
        assert clause.k is not None
        results.append(
            knn_search(ctx, clause.field, clause.vector(ctx), clause.k, filter_mask, clause.similarity)
        )
    shard.knn_results = results


_MISSING_LAST = object()


def _sort_values(
    sort: list[tuple[str, str, dict[str, Any]]], shard: Shard, row: int, score: float
) -> list[Any]:
    values: list[Any] = []
    for name, order, spec in sort:
        if name == "_score":
            values.append(f32(score))
            continue
        if name == "_doc":
            values.append(row)
            continue
        if name == "_id":
            values.append(shard.searcher.rows[row].id)
            continue
        leaf = shard.ctx.field(name)
        if leaf is None:
            if spec.get("unmapped_type"):
                values.append(None)
                continue
            raise _phase_error(
                [
                    (
                        shard,
                        ApiError(
                            400,
                            "query_shard_exception",
                            f"No mapping found for [{name}] in order to sort on",
                            index_uuid=shard.index.uuid,
                            index=shard.index.name,
                        ),
                    )
                ]
            )
        if leaf.type == "text" and not leaf.params.get("fielddata"):
            raise _phase_error(
                [
                    (
                        shard,
                        ApiError(
                            400,
                            "illegal_argument_exception",
                            f"Fielddata is disabled on [{name}] in [{shard.index.name}]. Text fields are not optimised for "
                            "operations that require per-document field data like aggregations and sorting, so these "
                            "operations are disabled by default. Please use a keyword field instead. Alternatively, set "
                            f"fielddata=true on [{name}] in order to load field data by uninverting the inverted index. "
                            "Note that this can use significant memory.",
                        ),
                    )
                ]
            )
        if leaf.type == "dense_vector":
            raise _phase_error(
                [
                    (
                        shard,
                        ApiError(
                            400,
                            "illegal_argument_exception",
                            f"Field [{name}] of type [dense_vector] doesn't support sort",
                        ),
                    )
                ]
            )
        entry = shard.ctx.column(leaf.path)[row]
        if not entry:
            values.append(None)
            continue
        mode = spec.get("mode") or ("max" if order == "desc" else "min")
        if mode == "max":
            value = max(entry)
        elif mode in ("avg", "median", "sum") and leaf.type in NUMERIC_TYPES:
            value = (
                sum(entry) / len(entry)
                if mode == "avg"
                else (sum(entry) if mode == "sum" else sorted(entry)[len(entry) // 2])
            )
        else:
            value = min(entry)
        if isinstance(value, bool):
            value = 1 if value else 0
        values.append(value)
    return values


def _sort_key(
    sort: list[tuple[str, str, dict[str, Any]]], values: list[Any], shard: int, row: int
) -> tuple[Any, ...]:
    key: list[Any] = []
    for (_name, order, spec), value in zip(sort, values, strict=True):
        missing = spec.get("missing", "_last")
        if value is None:
            first = missing == "_first"
            key.append((0 if first else 2, 0))
            continue
        if isinstance(value, str):
            key.append((1, _Desc(value) if order == "desc" else value))
        else:
            key.append((1, -value if order == "desc" else value))
    key.extend([shard, row])
    return tuple(key)


class _Desc:
    """A string that sorts descending inside an ascending tuple sort."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _after(sort: list[tuple[str, str, dict[str, Any]]], values: list[Any], after: list[Any]) -> bool:
    for (_name, order, _), value, bound in zip(sort, values, after, strict=False):
        if value == bound:
            continue
        if value is None:
            return True
        if bound is None:
            return False
        try:
            greater = value > type(value)(bound) if not isinstance(value, str) else value > str(bound)
        except (TypeError, ValueError):
            greater = str(value) > str(bound)
        return greater if order == "asc" else not greater
    return False


def _hit(
    search: SearchRequest, shard: Shard, row: int, score: float, sort_values: list[Any] | None, sorting: bool
) -> dict[str, Any]:
    record = shard.searcher.rows[row]
    hit: dict[str, Any] = {"_index": shard.index.name, "_id": record.id}
    if search.version:
        hit["_version"] = record.version
    if search.seq_no_primary_term:
        hit["_seq_no"] = record.seq_no
        hit["_primary_term"] = record.primary_term
    hit["_score"] = None if sorting and not search.track_scores else f32(score)
    if record.routing is not None:
        hit["_routing"] = record.routing
    if record.ignored:
        hit["_ignored"] = sorted(set(record.ignored))
    source = render_source(shard.index, record, search.source, shard.searcher, row)
    if source is not None:
        hit["_source"] = source
    if search.fields:
        fields = fetch_fields(shard.index, record, search.fields, shard.searcher, row)
        if fields:
            hit["fields"] = fields
    named = [(name, mask, scores) for name, mask, scores in shard.knn_named]
    named += [(name, mask, scores) for name, (mask, scores) in shard.ctx.named.items()]
    matched = [(name, float(scores[row])) for name, mask, scores in named if mask[row]]
    if matched:
        hit["matched_queries"] = (
            {name: f32(s) for name, s in matched} if search.named_scores else [name for name, _ in matched]
        )
    if sort_values is not None:
        hit["sort"] = [_sort_output(v) for v in sort_values]
    return hit


def _sort_output(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return value


def count(
    state: SandboxState, request: Request, expression: str | None, body: Mapping[str, Any]
) -> dict[str, Any]:
    for key in body:
        if key not in ("query",):
            raise parsing_error(f"request does not support [{key}]")
    query = parse_query(body["query"]) if body.get("query") is not None else None
    if request.params.get("q") is not None:
        df = request.params.get("df")
        query = query_string(
            request.params["q"],
            [df] if df else None,
            (request.params.get("default_operator") or "or").lower(),
        )
    shards = open_shards(state, expression, request.params)
    total = 0
    failures: list[tuple[Shard, ApiError]] = []
    min_score = request.params.get("min_score")
    for shard in shards:
        try:
            mask, scores = (query or MatchAll()).evaluate(shard.ctx)
        except ApiError as error:
            failures.append((shard, error))
            continue
        mask = mask & shard.ctx.live()[: shard.ctx.n]
        if min_score is not None:
            mask &= scores >= float(min_score)
        total += int(mask.sum())
    if shards and len(failures) == len(shards):
        raise _phase_error(failures)
    return {
        "count": total,
        "_shards": {
            "total": len(shards),
            "successful": len(shards) - len(failures),
            "skipped": 0,
            "failed": len(failures),
        },
    }
