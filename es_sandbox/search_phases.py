"""Running a parsed search: the query phase on each index, the merge, sorting and paging, the fetch.

Each index is one shard, searched against its current searcher; errors raised while building a
query on an index are shard failures, reported as ES does (``search_phase_execution_exception``
"all shards failed" when every index failed). Top-level ``knn`` is hybrid with ``query`` the way
ES combines them: the union of the query's matches and each clause's global top ``k``, scores
summed (each clause's scores times its boost). ``_count`` runs the query phase only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_sandbox.aggregations import collect
from es_sandbox.fetch import fetch_fields, render_source
from es_sandbox.http import ApiError, Request
from es_sandbox.mapper.parameters import NUMERIC_TYPES
from es_sandbox.metadata import Index, indices_part
from es_sandbox.node import NODE_ID
from es_sandbox.query.context import ShardContext, parsing_error
from es_sandbox.query.inner_hits import knn_under_nested
from es_sandbox.query.knn import knn_search
from es_sandbox.query.nodes import Knn, MatchAll, Query, iter_queries
from es_sandbox.query.parser import parse_query, query_string
from es_sandbox.search_fetch import docvalue_fields, render_inner_hits
from es_sandbox.search_request import SearchRequest, out_of_scope, parse_search
from es_sandbox.state import SandboxState
from es_sandbox.util import now_millis

MAX_RESULT_WINDOW = 10_000


def f32(value: float) -> float:
    """A score as ES prints it (a Java float): the shortest decimal of the float32 value."""
    return float(str(np.float32(value)))


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
    alias_filters: list[dict[str, Any]] | None = None  # the filtered aliases the search came through
    query_nanos: int = 0  # the query phase's time on this index (``profile``)

    def alias_mask(self) -> np.ndarray | None:
        """Rows the alias filters let through (any of them), or None when no filter applies."""
        if not self.alias_filters:
            return None
        mask = np.zeros(self.ctx.n, dtype=bool)
        for body in self.alias_filters:
            matched, _ = parse_query(body).evaluate(self.ctx)
            mask |= matched
        return mask


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
            if index.state == "close":
                if ignore_unavailable:
                    continue
                raise ApiError(
                    400, "index_closed_exception", "closed", index_uuid=index.uuid, index=index.name
                )
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
            shards.append(
                Shard(
                    index, searcher, ctx, alias_filters=indices_part(state).alias_filters(expression, index)
                )
            )
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
            began = time.perf_counter_ns()
            _run_query(search, shard)
            shard.query_nanos = time.perf_counter_ns() - began
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
    aggregated: list[tuple[ShardContext, np.ndarray]] = []
    for shard_number, shard in enumerate(live_shards):
        assert shard.mask is not None and shard.scores is not None
        mask = shard.mask & shard.ctx.live()[: shard.ctx.n]
        if search.aggs:
            aggregated.append((shard.ctx, mask.copy()))
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
    if search.aggs:
        response["aggregations"] = collect(search.aggs, aggregated)
    if search.profile:
        response["profile"] = {"shards": [_profile(search, shard) for shard in live_shards]}
    return response


def _profile(search: SearchRequest, shard: Shard) -> dict[str, Any]:
    """``profile: true``: each shard's query tree (as the sandbox ran it) and its measured time.

    The sandbox has no Lucene scorers, so the breakdown's timings are not split by phase: the whole
    query time is reported as ``score`` and the other entries are zero.
    """
    query = search.query if search.query is not None else (search.knn[0] if search.knn else MatchAll())
    nanos = shard.query_nanos
    breakdown = dict.fromkeys(
        (
            "set_min_competitive_score",
            "match",
            "shallow_advance",
            "next_doc",
            "score_count",
            "compute_max_score",
            "advance",
            "count_weight",
            "create_weight",
            "build_scorer",
            "next_doc_count",
            "advance_count",
            "match_count",
            "build_scorer_count",
            "create_weight_count",
            "shallow_advance_count",
            "set_min_competitive_score_count",
            "count_weight_count",
            "compute_max_score_count",
        ),
        0,
    )
    breakdown["score"] = nanos
    return {
        "id": f"[{NODE_ID}][{shard.index.name}][0]",
        "node_id": NODE_ID,
        "shard_id": 0,
        "index": shard.index.name,
        "cluster": "(local)",
        "searches": [
            {
                "query": [
                    {
                        "type": type(query).__name__ + "Query",
                        "description": repr(query)[:200],
                        "time_in_nanos": nanos,
                        "breakdown": breakdown,
                    }
                ],
                "rewrite_time": 0,
                "collector": [
                    {"name": "QueryPhaseCollector", "reason": "search_query_phase", "time_in_nanos": nanos}
                ],
            }
        ],
        "aggregations": [],
    }


def _run_query(search: SearchRequest, shard: Shard) -> None:
    ctx = shard.ctx
    if search.query is not None:
        mask, scores = search.query.evaluate(ctx)
        scores = scores.copy()
    elif search.knn:
        mask, scores = ctx.empty()
    else:
        mask, scores = MatchAll().evaluate(ctx)
    alias_mask = shard.alias_mask()
    if alias_mask is not None:
        mask = mask & alias_mask
    shard.mask = mask.copy()
    shard.scores = np.where(mask, scores, 0).astype(np.float32)
    results = []
    for clause in search.knn:
        filter_mask = alias_mask.copy() if alias_mask is not None else None
        if clause.filters:
            if filter_mask is None:
                filter_mask = np.ones(ctx.n, dtype=bool)
            for item in clause.filters:
                m, _ = item.evaluate(ctx)
                filter_mask &= m
        assert clause.k is not None
        leaf = ctx.field(clause.field)
        if leaf is not None and leaf.nested_path is not None:
            if filter_mask is not None:
                clause = dataclasses.replace(clause, filters=[*clause.filters, _MaskQuery(mask=filter_mask)])
            mask, knn_scores = knn_under_nested(ctx, clause, clause.inner_hits)
            rows = np.flatnonzero(mask)
            order = np.lexsort((rows, -knn_scores[rows]))
            results.append((rows[order].astype(np.int64), knn_scores[rows][order]))
            continue
        k = clause.k if clause.k is not None else 10
        results.append(knn_search(ctx, clause.field, clause.vector(ctx), k, filter_mask, clause.similarity))
    shard.knn_results = results


_MISSING_LAST = object()


@dataclass
class _MaskQuery(Query):
    """A precomputed mask as a query (an alias filter handed to a nested kNN)."""

    mask: np.ndarray | None = None

    def _evaluate(self, ctx: ShardContext) -> tuple[np.ndarray, np.ndarray]:
        assert self.mask is not None
        return self.mask, np.zeros(ctx.n, dtype=np.float32)


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
    if search.fields or search.docvalue_fields:
        fields = (
            fetch_fields(shard.index, record, search.fields, shard.searcher, row) if search.fields else {}
        )
        if search.docvalue_fields:
            fields.update(docvalue_fields(shard.index, record, search.docvalue_fields, shard.searcher, row))
        if fields:
            hit["fields"] = fields
    if shard.ctx.inner_hits:
        exclude = (
            search.source.exclude_vectors
            if search.source.exclude_vectors is not None
            else shard.index.exclude_source_vectors
        )
        hit["inner_hits"] = render_inner_hits(shard.index, record, row, shard.ctx.inner_hits, exclude)
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
        alias_mask = shard.alias_mask()
        if alias_mask is not None:
            mask &= alias_mask
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
