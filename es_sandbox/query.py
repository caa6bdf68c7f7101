"""The query DSL: parsed once per request (syntax errors as ES reports them), evaluated per index.

Evaluation is vectorised over a searcher's rows: every query yields a boolean match mask and a
float32 score array, combined by ``bool`` the way Lucene's BooleanQuery combines scorers
(``must``/``should`` scores add up, ``filter``/``must_not`` do not score). Text scoring is BM25
(k1=1.2, b=0.75, without the (k1+1) factor, as Lucene 8+), with collection statistics over the
searcher's live documents. ``script_score`` supports the vector functions used for exact kNN
(``cosineSimilarity``, ``dotProduct``, ``l1norm``, ``l2norm``, ``hamming``) inside arithmetic
over ``params``, ``_score`` and ``doc['field'].value``; other painless is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np

from es_sandbox import analysis
from es_sandbox.dates import DateFormat, DateFormatError, parse_date_math
from es_sandbox.http import ApiError
from es_sandbox.mapping import NUMERIC_TYPES, LeafField, parse_geo_point
from es_sandbox.util import es_str, get_path, json_type, simple_match

K1 = 1.2
B = 0.75

Result = tuple[np.ndarray, np.ndarray]


def parsing_error(reason: str, **extra: Any) -> ApiError:
    return ApiError(400, "parsing_exception", reason, **extra)


def shard_error(ctx: ShardContext, reason: str, cause: ApiError | None = None) -> ApiError:
    """ES's QueryShardException ("failed to create query: ..."), raised while building a query."""
    error = ApiError(
        400,
        "query_shard_exception",
        f"failed to create query: {reason}",
        index_uuid=ctx.index_uuid,
        index=ctx.index_name,
    )
    return error.with_cause(cause or ApiError(400, "illegal_argument_exception", reason))


class ShardContext:
    """One index's searcher plus what queries need: mapping, stats caches, named-query masks."""

    def __init__(
        self,
        index_name: str,
        index_uuid: str,
        searcher: Any,
        fields: Mapping[str, LeafField],
        objects: Mapping[str, Any],
        settings: Mapping[str, Any],
        now_millis: int,
        store: Any = None,
        state: Any = None,
    ) -> None:
        self.index_name = index_name
        self.index_uuid = index_uuid
        self.searcher = searcher
        self.n = searcher.n
        self.fields = fields
        self.objects = objects
        self.settings = settings
        self.now_millis = now_millis
        self.store = store
        self.state = state
        self.named: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.allow_unmapped = settings.get("index.query.parse.allow_unmapped_fields", "true") != "false"
        self._stats: dict[str, tuple[int, float]] = {}

    def empty(self) -> Result:
        return np.zeros(self.n, dtype=bool), np.zeros(self.n, dtype=np.float32)

    def everything(self, score: float = 1.0) -> Result:
        return np.ones(self.n, dtype=bool), np.full(self.n, score, dtype=np.float32)

    def column(self, path: str) -> list[list[Any] | None]:
        column: list[list[Any] | None] = self.searcher.column(path)
        return column

    def live(self) -> np.ndarray:
        live: np.ndarray = self.searcher.live
        return live

    def field(self, name: str) -> LeafField | None:
        return self.fields.get(name)

    def unmapped(self, name: str) -> Result:
        if not self.allow_unmapped:
            raise shard_error(self, f"field [{name}] does not exist in the mapping")
        return self.empty()

    def text_stats(self, path: str) -> tuple[int, float]:
        """(documents with the field, average field length) over live rows, for BM25."""
        cached = self._stats.get(path)
        if cached is None:
            live = self.live()
            lengths = self.column(f"{path}\x00len")
            values = self.column(path)
            count = 0
            total = 0
            for row in range(self.n):
                if not live[row]:
                    continue
                entry = values[row]
                if entry is None:
                    continue
                count += 1
                length_entry = lengths[row]
                total += sum(length_entry) if length_entry else len(entry)
            cached = (count, (total / count) if count else 1.0)
            self._stats[path] = cached
        return cached


def bm25(ctx: ShardContext, path: str, term: Any, is_text: bool, boost: float) -> Result:
    """BM25 for one term in one field (Lucene 8+ formula), mask of the docs containing it."""
    values = ctx.column(path)
    n = ctx.n
    mask = np.zeros(n, dtype=bool)
    freqs = np.zeros(n, dtype=np.float32)
    for row in range(n):
        entry = values[row]
        if entry is not None and term in entry:
            mask[row] = True
            freqs[row] = entry.count(term) if is_text else 1
    live_mask = mask & ctx.live()
    doc_count, avgdl = ctx.text_stats(path) if is_text else (_docs_with_field(ctx, path), 1.0)
    df = int(live_mask.sum())
    scores = np.zeros(n, dtype=np.float32)
    if df == 0:
        return mask, scores
    idf = math.log(1 + (doc_count - df + 0.5) / (df + 0.5))
    rows = np.flatnonzero(mask)
    if is_text:
        lengths_col = ctx.column(f"{path}\x00len")
        dl = np.array([float(sum(lengths_col[r] or [len(values[r] or [])])) for r in rows], dtype=np.float64)
    else:
        dl = np.ones(len(rows), dtype=np.float64)
    tf = freqs[rows].astype(np.float64)
    norm = K1 * (1 - B + B * dl / avgdl)
    scores[rows] = (boost * idf * tf / (tf + norm)).astype(np.float32)
    return mask, scores


def _docs_with_field(ctx: ShardContext, path: str) -> int:
    cached = ctx._stats.get(path)
    if cached is None:
        values = ctx.column(path)
        live = ctx.live()
        count = sum(1 for row in range(ctx.n) if live[row] and values[row] is not None)
        cached = (count, 1.0)
        ctx._stats[path] = cached
    return cached[0]


# ---------------------------------------------------------------------------------------------------
# query nodes


@dataclass
class Query:
    name: str | None = None
    boost: float = 1.0

    def evaluate(self, ctx: ShardContext) -> Result:
        mask, scores = self._evaluate(ctx)
        if self.boost != 1.0:
            scores = scores * np.float32(self.boost)
        if self.name is not None:
            ctx.named[self.name] = (mask, scores)
        return mask, scores

    def _evaluate(self, ctx: ShardContext) -> Result:
        raise NotImplementedError


@dataclass
class MatchAll(Query):
    def _evaluate(self, ctx: ShardContext) -> Result:
        return ctx.everything()


@dataclass
class MatchNone(Query):
    def _evaluate(self, ctx: ShardContext) -> Result:
        return ctx.empty()


def _term_value(leaf: LeafField, value: Any, ctx: ShardContext) -> Any:
    """A query value converted to the field's indexed form (what term/terms/range compare)."""
    ftype = leaf.type
    if ftype in ("keyword", "wildcard", "constant_keyword", "flattened"):
        text = es_str(value)
        return text.lower() if leaf.params.get("normalizer") == "lowercase" else text
    if ftype in ("text", "match_only_text"):
        return es_str(value)
    if ftype in NUMERIC_TYPES:
        if isinstance(value, bool):
            raise shard_error(ctx, f"Can't parse boolean value [{es_str(value)}], expected [true] or [false]")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise shard_error(
                ctx,
                f'For input string: "{es_str(value)}"',
                ApiError(400, "number_format_exception", f'For input string: "{es_str(value)}"'),
            ) from exc
        return (
            int(number)
            if ftype in ("long", "integer", "short", "byte", "unsigned_long") and number.is_integer()
            else number
        )
    if ftype in ("date", "date_nanos"):
        fmt = leaf.date_format or DateFormat("strict_date_optional_time||epoch_millis")
        try:
            return parse_date_math(value, fmt, ctx.now_millis)
        except DateFormatError as exc:
            raise shard_error(
                ctx, f"failed to parse date field [{es_str(value)}] with format [{fmt.spec}]"
            ) from exc
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise shard_error(ctx, f"Can't parse boolean value [{es_str(value)}], expected [true] or [false]")
    if ftype == "ip":
        return es_str(value)
    if ftype == "dense_vector":
        raise shard_error(ctx, f"Field [{leaf.path}] of type [dense_vector] doesn't support term queries")
    if ftype == "geo_point":
        raise shard_error(
            ctx,
            f"Geometry fields do not support exact searching, use dedicated geometry queries instead: [{leaf.path}]",
        )
    return value


def _metadata_match(ctx: ShardContext, field_name: str, values: list[Any]) -> Result | None:
    if field_name == "_id":
        wanted = {es_str(v) for v in values}
        rows = ctx.searcher.rows
        mask = np.fromiter((rows[i].id in wanted for i in range(ctx.n)), dtype=bool, count=ctx.n)
        return mask, mask.astype(np.float32)
    if field_name == "_index":
        hit = any(simple_match(es_str(v), ctx.index_name) for v in values)
        return ctx.everything() if hit else ctx.empty()
    if field_name == "_routing":
        wanted = {es_str(v) for v in values}
        rows = ctx.searcher.rows
        mask = np.fromiter((rows[i].routing in wanted for i in range(ctx.n)), dtype=bool, count=ctx.n)
        return mask, mask.astype(np.float32)
    return None


@dataclass
class Term(Query):
    field: str = ""
    value: Any = None
    case_insensitive: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        meta = _metadata_match(ctx, self.field, [self.value])
        if meta is not None:
            return meta
        leaf = ctx.field(self.field)
        if leaf is None:
            return ctx.unmapped(self.field)
        term = _term_value(leaf, self.value, ctx)
        if leaf.type in ("keyword", "text", "match_only_text", "wildcard", "constant_keyword", "flattened"):
            if self.case_insensitive:
                lowered = str(term).lower()
                values = ctx.column(leaf.path)
                mask = np.fromiter(
                    (v is not None and any(str(x).lower() == lowered for x in v) for v in values),
                    dtype=bool,
                    count=ctx.n,
                )
                return mask, mask.astype(np.float32)
            return bm25(ctx, leaf.path, term, leaf.type in ("text", "match_only_text"), 1.0)
        return _constant(ctx, leaf.path, lambda v: v == term)


def _constant(ctx: ShardContext, path: str, predicate: Callable[[Any], bool]) -> Result:
    values = ctx.column(path)
    mask = np.fromiter(
        (v is not None and any(predicate(x) for x in v) for v in values), dtype=bool, count=ctx.n
    )
    return mask, mask.astype(np.float32)


@dataclass
class Terms(Query):
    field: str = ""
    values: list[Any] = dc_field(default_factory=list)

    def _evaluate(self, ctx: ShardContext) -> Result:
        meta = _metadata_match(ctx, self.field, self.values)
        if meta is not None:
            return meta
        leaf = ctx.field(self.field)
        if leaf is None:
            return ctx.unmapped(self.field)
        wanted = {_term_value(leaf, v, ctx) for v in self.values}
        return _constant(ctx, leaf.path, lambda v: v in wanted)


@dataclass
class Ids(Query):
    values: list[str] = dc_field(default_factory=list)

    def _evaluate(self, ctx: ShardContext) -> Result:
        result = _metadata_match(ctx, "_id", list(self.values))
        assert result is not None
        return result


@dataclass
class Exists(Query):
    field: str = ""

    def _evaluate(self, ctx: ShardContext) -> Result:
        paths = [p for p in ctx.fields if p == self.field or p.startswith(self.field + ".")]
        if "*" in self.field:
            paths = [p for p in ctx.fields if simple_match(self.field, p)]
        if not paths:
            if self.field in ("_id", "_index"):
                return ctx.everything()
            return ctx.empty()
        mask = np.zeros(ctx.n, dtype=bool)
        for path in paths:
            leaf = ctx.fields[path]
            if leaf.type == "dense_vector":
                view = ctx.searcher.vectors.get(path)
                if view is not None:
                    mask |= view.present[: ctx.n]
                continue
            values = ctx.column(path)
            mask |= np.fromiter((v is not None for v in values), dtype=bool, count=ctx.n)
            rows = ctx.searcher.rows
            ignored = np.fromiter((path in rows[i].ignored for i in range(ctx.n)), dtype=bool, count=ctx.n)
            mask |= ignored
        return mask, mask.astype(np.float32)


@dataclass
class Range(Query):
    field: str = ""
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None
    format: str | None = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        leaf = ctx.field(self.field)
        if leaf is None:
            return ctx.unmapped(self.field)
        bounds: list[tuple[str, Any]] = []
        for op, raw in (("gt", self.gt), ("gte", self.gte), ("lt", self.lt), ("lte", self.lte)):
            if raw is None:
                continue
            if leaf.type in ("date", "date_nanos"):
                fmt = (
                    DateFormat(self.format)
                    if self.format
                    else (leaf.date_format or DateFormat("strict_date_optional_time||epoch_millis"))
                )
                try:
                    value: Any = parse_date_math(raw, fmt, ctx.now_millis, round_up=op in ("gt", "lte"))
                except DateFormatError as exc:
                    raise shard_error(
                        ctx, f"failed to parse date field [{es_str(raw)}] with format [{fmt.spec}]"
                    ) from exc
            else:
                value = _term_value(leaf, raw, ctx)
            bounds.append((op, value))

        def predicate(v: Any) -> bool:
            for op, bound in bounds:
                if op == "gt" and not v > bound:
                    return False
                if op == "gte" and not v >= bound:
                    return False
                if op == "lt" and not v < bound:
                    return False
                if op == "lte" and not v <= bound:
                    return False
            return True

        if leaf.type == "text":
            raise shard_error(ctx, f"Field [{leaf.path}] of type [text] does not support range queries")
        return _constant(ctx, leaf.path, predicate)


@dataclass
class Prefix(Query):
    field: str = ""
    value: str = ""
    case_insensitive: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        leaf = ctx.field(self.field)
        if leaf is None:
            return ctx.unmapped(self.field)
        prefix = self.value.lower() if self.case_insensitive else self.value
        return _constant(
            ctx,
            leaf.path,
            lambda v: isinstance(v, str) and (v.lower() if self.case_insensitive else v).startswith(prefix),
        )


@dataclass
class Wildcard(Query):
    field: str = ""
    value: str = ""
    case_insensitive: bool = False
    regexp: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        leaf = ctx.field(self.field)
        if leaf is None:
            return ctx.unmapped(self.field)
        if self.regexp:
            pattern = re.compile(self.value, re.IGNORECASE if self.case_insensitive else 0)
        else:
            regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in self.value)
            pattern = re.compile(regex, re.IGNORECASE if self.case_insensitive else 0)
        return _constant(ctx, leaf.path, lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None)


def _minimum_should_match(spec: Any, optional: int) -> int:
    if spec is None:
        return 0
    text = str(spec).strip()
    if "<" in text:
        return optional  # combinations: the strictest reasonable reading
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            count = int(optional * abs(pct) / 100)
            return optional - count if pct < 0 else count
        number = int(text)
    except ValueError as exc:
        raise ApiError(400, "number_format_exception", f'For input string: "{text}"') from exc
    return optional + number if number < 0 else number


@dataclass
class Match(Query):
    field: str = ""
    query: Any = None
    operator: str = "or"
    minimum_should_match: Any = None
    zero_terms_query: str = "none"
    analyzer: str | None = None
    phrase: bool = False
    slop: int = 0
    lenient: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        leaf = ctx.field(self.field)
        meta = _metadata_match(ctx, self.field, [self.query])
        if meta is not None:
            return meta
        if leaf is None:
            return ctx.unmapped(self.field)
        if leaf.type not in ("text", "match_only_text"):
            if self.lenient:
                try:
                    return Term(field=self.field, value=self.query)._evaluate(ctx)
                except ApiError:
                    return ctx.empty()
            return Term(field=self.field, value=self.query)._evaluate(ctx)
        analyzer = leaf.search_analyzer or analysis.standard
        if self.analyzer:
            analyzer = analysis.resolve(self.analyzer, ctx.settings) or analyzer
        tokens = analyzer(es_str(self.query))
        if not tokens:
            return ctx.everything(0.0) if self.zero_terms_query == "all" else ctx.empty()
        if self.phrase:
            return self._phrase(ctx, leaf, tokens, analyzer)
        unique = list(dict.fromkeys(tokens))
        results = [bm25(ctx, leaf.path, token, True, 1.0) for token in tokens]
        count = np.zeros(ctx.n, dtype=np.int32)
        scores = np.zeros(ctx.n, dtype=np.float32)
        seen: dict[str, np.ndarray] = {}
        for token, (mask, score) in zip(tokens, results, strict=True):
            scores += score
            if token not in seen:
                seen[token] = mask
                count += mask
        required = (
            len(unique)
            if self.operator == "and"
            else max(1, _minimum_should_match(self.minimum_should_match, len(unique)))
        )
        mask = count >= required
        return mask, np.where(mask, scores, 0).astype(np.float32)

    def _phrase(
        self, ctx: ShardContext, leaf: LeafField, tokens: list[str], analyzer: Callable[[str], list[str]]
    ) -> Result:
        results = [bm25(ctx, leaf.path, t, True, 1.0) for t in tokens]
        mask = np.ones(ctx.n, dtype=bool)
        scores = np.zeros(ctx.n, dtype=np.float32)
        for m, s in results:
            mask &= m
            scores += s
        source_path = leaf.multi_field_of or leaf.path
        rows = ctx.searcher.rows
        for row in np.flatnonzero(mask):
            found = False
            for value in get_path(rows[row].source, source_path):
                seq = analyzer(es_str(value))
                for start in range(len(seq) - len(tokens) + 1):
                    if seq[start : start + len(tokens)] == tokens:
                        found = True
                        break
                if found:
                    break
            if not found:
                mask[row] = False
        return mask, np.where(mask, scores, 0).astype(np.float32)


@dataclass
class MultiMatch(Query):
    fields: list[str] = dc_field(default_factory=list)
    query: Any = None
    type: str = "best_fields"
    operator: str = "or"
    minimum_should_match: Any = None
    tie_breaker: float | None = None
    lenient: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        targets: list[tuple[str, float]] = []
        for spec in self.fields or ["*"]:
            name, _, weight = spec.partition("^")
            boost = float(weight) if weight else 1.0
            if "*" in name:
                for path, leaf in ctx.fields.items():
                    if simple_match(name, path) and leaf.type in ("text", "keyword", "match_only_text"):
                        targets.append((path, boost))
            else:
                targets.append((name, boost))
        if not targets:
            return ctx.empty()
        results = []
        for path, boost in targets:
            if ctx.field(path) is None:
                continue
            try:
                mask, scores = Match(
                    field=path,
                    query=self.query,
                    operator=self.operator,
                    minimum_should_match=self.minimum_should_match,
                    phrase=self.type in ("phrase", "phrase_prefix"),
                    lenient=self.lenient or "*" in "".join(self.fields or ["*"]),
                )._evaluate(ctx)
            except ApiError:
                if self.lenient:
                    continue
                raise
            results.append((mask, scores * np.float32(boost)))
        if not results:
            return ctx.empty()
        masks = np.array([r[0] for r in results])
        score_matrix = np.array([r[1] for r in results])
        mask = np.asarray(masks.any(axis=0))
        if self.type == "most_fields":
            scores = score_matrix.sum(axis=0)
        else:
            tie = (
                self.tie_breaker
                if self.tie_breaker is not None
                else (1.0 if self.type == "cross_fields" else 0.0)
            )
            best = score_matrix.max(axis=0)
            scores = best + tie * (score_matrix.sum(axis=0) - best)
        return mask, np.where(mask, scores, 0).astype(np.float32)


@dataclass
class Bool(Query):
    must: list[Query] = dc_field(default_factory=list)
    should: list[Query] = dc_field(default_factory=list)
    filter: list[Query] = dc_field(default_factory=list)
    must_not: list[Query] = dc_field(default_factory=list)
    minimum_should_match: Any = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        mask = np.ones(ctx.n, dtype=bool)
        scores = np.zeros(ctx.n, dtype=np.float32)
        for clause in self.must:
            m, s = clause.evaluate(ctx)
            mask &= m
            scores += s
        for clause in self.filter:
            m, _ = clause.evaluate(ctx)
            mask &= m
        for clause in self.must_not:
            m, _ = clause.evaluate(ctx)
            mask &= ~m
        if self.should:
            count = np.zeros(ctx.n, dtype=np.int32)
            for clause in self.should:
                m, s = clause.evaluate(ctx)
                count += m
                scores += np.where(m, s, 0).astype(np.float32)
            default = 0 if (self.must or self.filter) else 1
            required = (
                _minimum_should_match(self.minimum_should_match, len(self.should))
                if self.minimum_should_match is not None
                else default
            )
            if required > 0:
                mask &= count >= required
        return mask, np.where(mask, scores, 0).astype(np.float32)


@dataclass
class ConstantScore(Query):
    filter_query: Query | None = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        assert self.filter_query is not None
        mask, _ = self.filter_query.evaluate(ctx)
        return mask, mask.astype(np.float32)


@dataclass
class DisMax(Query):
    queries: list[Query] = dc_field(default_factory=list)
    tie_breaker: float = 0.0

    def _evaluate(self, ctx: ShardContext) -> Result:
        if not self.queries:
            return ctx.empty()
        results = [q.evaluate(ctx) for q in self.queries]
        masks = np.array([r[0] for r in results])
        score_matrix = np.array([np.where(r[0], r[1], 0) for r in results])
        best = score_matrix.max(axis=0)
        scores = best + self.tie_breaker * (score_matrix.sum(axis=0) - best)
        mask = np.asarray(masks.any(axis=0))
        return mask, np.where(mask, scores, 0).astype(np.float32)


@dataclass
class Knn(Query):
    """The ``knn`` query (and the top-level ``knn`` section, evaluated the same way per index)."""

    field: str = ""
    query_vector: Any = None
    builder: dict[str, Any] | None = None
    k: int | None = None
    num_candidates: int | None = None
    filters: list[Query] = dc_field(default_factory=list)
    similarity: float | None = None
    resolved_vector: np.ndarray | None = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        from es_sandbox.knn import knn_search

        filter_mask = None
        if self.filters:
            filter_mask = np.ones(ctx.n, dtype=bool)
            for clause in self.filters:
                m, _ = clause.evaluate(ctx)
                filter_mask &= m
        k = self.k if self.k is not None else 10
        rows, scores = knn_search(ctx, self.field, self.vector(ctx), k, filter_mask, self.similarity)
        mask = np.zeros(ctx.n, dtype=bool)
        out = np.zeros(ctx.n, dtype=np.float32)
        mask[rows] = True
        out[rows] = scores
        return mask, out

    def vector(self, ctx: ShardContext | None) -> np.ndarray:
        if self.resolved_vector is None:
            raise ApiError(400, "illegal_argument_exception", "missing rewrite")
        return self.resolved_vector


@dataclass
class ScriptScore(Query):
    query: Query | None = None
    script: Script | None = None
    min_score: float | None = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        assert self.query is not None and self.script is not None
        mask, inner = self.query.evaluate(ctx)
        rows = np.flatnonzero(mask & ctx.live())
        values = self.script.evaluate(ctx, rows, inner[rows])
        scores = np.zeros(ctx.n, dtype=np.float32)
        if len(rows):
            bad = np.flatnonzero((values < 0) | np.isnan(values))
            if len(bad):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"script_score script returned an invalid score [{es_str(float(values[bad[0]]))}] for doc "
                    f"[{int(rows[bad[0]])}]. Must be a non-negative score!",
                )
            scores[rows] = values.astype(np.float32)
        result_mask = np.zeros(ctx.n, dtype=bool)
        result_mask[rows] = True
        if self.min_score is not None:
            result_mask &= scores >= self.min_score
        return result_mask, np.where(result_mask, scores, 0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# script_score scripts: a small expression language over the vector functions


@dataclass
class Script:
    source: str
    params: dict[str, Any]
    tree: Any

    def evaluate(self, ctx: ShardContext, rows: np.ndarray, inner_scores: np.ndarray) -> np.ndarray:
        return np.asarray(
            _eval_expr(self.tree, ctx, rows, inner_scores, self.params), dtype=np.float64
        ) * np.ones(len(rows))


_TOKEN = re.compile(
    r"\s*(?:(\d+\.\d*|\.\d+|\d+)(?:[dDfF])?|([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*)|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(\S))"
)
VECTOR_FUNCTIONS = ("cosineSimilarity", "dotProduct", "l1norm", "l2norm", "hamming")
MATH_FUNCTIONS = {
    "Math.sqrt": np.sqrt,
    "Math.log": np.log,
    "Math.abs": np.abs,
    "Math.exp": np.exp,
    "Math.log10": np.log10,
}


def _script_scope_error(source: str, detail: str) -> ApiError:
    return ApiError(
        400,
        "illegal_argument_exception",
        f"script_score script [{source}] is out of the provision sandbox's scope: {detail}. Supported: arithmetic "
        "(+ - * /, parentheses, numbers, return, ;) over cosineSimilarity/dotProduct/l1norm/l2norm/hamming"
        "(params.<vector>, '<field>'), params.<number>, _score, doc['<field>'].value, Math.sqrt/log/abs/exp/log10/max/min.",
    )


def parse_script(raw: Any) -> Script:
    if isinstance(raw, str):
        raw = {"source": raw}
    if not isinstance(raw, dict):
        raise parsing_error("[script] must be an object or a string")
    for key in raw:
        if key not in ("source", "params", "lang", "id", "options"):
            raise parsing_error(f"[script] unknown field [{key}]")
    if "id" in raw:
        raise _script_scope_error(str(raw["id"]), "stored scripts are not supported")
    lang = raw.get("lang", "painless")
    if lang != "painless":
        raise _script_scope_error(str(raw.get("source")), f"script language [{lang}]")
    source = raw.get("source")
    if not isinstance(source, str):
        raise parsing_error("[script] requires [source]")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise parsing_error("[params] must be an object")
    tokens = [m for m in _TOKEN.finditer(source) if m.group(0).strip()]
    parser = _ExprParser(source, tokens)
    tree = parser.parse()
    return Script(source, params, tree)


class _ExprParser:
    def __init__(self, source: str, tokens: list[re.Match[str]]) -> None:
        self.source = source
        self.tokens = [(m.group(1), m.group(2), m.group(3), m.group(4)) for m in tokens]
        self.pos = 0

    def peek(self) -> tuple[str | None, str | None, str | None, str | None] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> tuple[str | None, str | None, str | None, str | None]:
        token = self.peek()
        if token is None:
            raise _script_scope_error(self.source, "unexpected end of script")
        self.pos += 1
        return token

    def _symbol(self) -> str | None:
        token = self.peek()
        return token[3] if token is not None else None

    def expect(self, symbol: str) -> None:
        token = self.next()
        if token[3] != symbol:
            raise _script_scope_error(self.source, f"expected [{symbol}]")

    def parse(self) -> Any:
        token = self.peek()
        if token is not None and token[1] == "return":
            self.pos += 1
        tree = self.expr()
        while self._symbol() == ";":
            self.pos += 1
        if self.peek() is not None:
            raise _script_scope_error(self.source, "statements other than one returned expression")
        return tree

    def expr(self) -> Any:
        node = self.term()
        while self._symbol() in ("+", "-"):
            op = self.next()[3]
            node = (op, node, self.term())
        return node

    def term(self) -> Any:
        node = self.unary()
        while self._symbol() in ("*", "/"):
            op = self.next()[3]
            node = (op, node, self.unary())
        return node

    def unary(self) -> Any:
        token = self.peek()
        if token is not None and token[3] == "-":
            self.pos += 1
            return ("neg", self.unary())
        if token is not None and token[3] == "(":
            self.pos += 1
            node = self.expr()
            self.expect(")")
            return node
        return self.atom()

    def atom(self) -> Any:
        number, ident, string, symbol = self.next()
        if number is not None:
            return ("num", float(number))
        if string is not None:
            return ("str", string[1:-1])
        if ident is None:
            raise _script_scope_error(self.source, f"unexpected [{symbol}]")
        if ident == "_score":
            return ("score",)
        if ident.startswith("params."):
            return ("param", ident[len("params.") :])
        if ident == "doc":
            self.expect("[")
            _, _, name, _ = self.next()
            if name is None:
                raise _script_scope_error(self.source, "doc[...] needs a quoted field name")
            self.expect("]")
            token = self.next()
            if token[1] not in (".value", "value") and token[3] != ".":
                raise _script_scope_error(self.source, "only doc['field'].value is supported")
            if token[3] == ".":
                attr = self.next()
                if attr[1] != "value":
                    raise _script_scope_error(self.source, "only doc['field'].value is supported")
            return ("doc", name[1:-1])
        if (
            ident in VECTOR_FUNCTIONS
            or ident in MATH_FUNCTIONS
            or ident in ("Math.max", "Math.min", "sigmoid", "saturation")
        ):
            self.expect("(")
            args = [self.expr()]
            while self._symbol() == ",":
                self.pos += 1
                args.append(self.expr())
            self.expect(")")
            return ("call", ident, args)
        raise _script_scope_error(self.source, f"unknown identifier [{ident}]")


def _eval_expr(
    node: Any, ctx: ShardContext, rows: np.ndarray, inner: np.ndarray, params: Mapping[str, Any]
) -> Any:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "str":
        return node[1]
    if kind == "score":
        return inner.astype(np.float64)
    if kind == "param":
        if node[1] not in params:
            raise ApiError(400, "illegal_argument_exception", f"Missing parameter [{node[1]}]")
        return params[node[1]]
    if kind == "neg":
        return -np.asarray(_eval_expr(node[1], ctx, rows, inner, params), dtype=np.float64)
    if kind in ("+", "-", "*", "/"):
        left = np.asarray(_eval_expr(node[1], ctx, rows, inner, params), dtype=np.float64)
        right = np.asarray(_eval_expr(node[2], ctx, rows, inner, params), dtype=np.float64)
        if kind == "+":
            return left + right
        if kind == "-":
            return left - right
        if kind == "*":
            return left * right
        with np.errstate(divide="ignore", invalid="ignore"):
            return left / right
    if kind == "doc":
        leaf = ctx.field(node[1])
        if leaf is None:
            raise ApiError(400, "illegal_argument_exception", f"No field found for [{node[1]}] in mapping")
        column = ctx.column(leaf.path)
        numbers: list[float] = []
        for row in rows:
            entry = column[row]
            if not entry:
                raise ApiError(
                    400,
                    "illegal_state_exception",
                    "A document doesn't have a value for a field! Use doc[<field>].size()==0 to check if a document is missing a field!",
                )
            numbers.append(float(entry[0]))
        return np.array(numbers, dtype=np.float64)
    if kind == "call":
        name, args = node[1], node[2]
        if name in VECTOR_FUNCTIONS:
            return _vector_function(name, args, ctx, rows, inner, params)
        values: list[np.ndarray] = [
            np.asarray(_eval_expr(a, ctx, rows, inner, params), dtype=np.float64) for a in args
        ]
        if name in MATH_FUNCTIONS:
            return MATH_FUNCTIONS[name](values[0])
        if name == "Math.max":
            return np.maximum(values[0], values[1])
        if name == "Math.min":
            return np.minimum(values[0], values[1])
        if name == "sigmoid":
            value, k, a = values
            return value**a / (k**a + value**a)
        if name == "saturation":
            value, pivot = values
            return value / (pivot + value)
    raise ApiError(400, "illegal_argument_exception", f"cannot evaluate script node [{kind}]")


def _vector_function(
    name: str,
    args: list[Any],
    ctx: ShardContext,
    rows: np.ndarray,
    inner: np.ndarray,
    params: Mapping[str, Any],
) -> np.ndarray:
    if len(args) != 2:
        raise ApiError(400, "illegal_argument_exception", f"{name} takes a query vector and a field name")
    query = _eval_expr(args[0], ctx, rows, inner, params)
    field_name = _eval_expr(args[1], ctx, rows, inner, params)
    if not isinstance(field_name, str):
        raise ApiError(400, "illegal_argument_exception", f"{name}: the second argument must be a field name")
    leaf = ctx.field(field_name)
    if leaf is None or leaf.type != "dense_vector":
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Field '{field_name}' is not a dense_vector field"
            if leaf is not None
            else f"No field found for [{field_name}] in mapping",
        )
    try:
        if isinstance(query, str):
            query = list(bytes.fromhex(query))
        vector = np.asarray(query, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ApiError(
            400, "illegal_argument_exception", f"{name}: the query vector must be an array of numbers"
        ) from exc
    dims = leaf.dims
    if (
        dims is not None
        and len(vector)
        != dims * (8 if leaf.element_type == "bit" and name == "hamming" and len(vector) * 8 == dims else 1)
        and not (leaf.element_type == "bit" and len(vector) * 8 == dims)
    ):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"The query vector has a different number of dimensions [{len(vector)}] than the document vectors [{dims}].",
        )
    view = ctx.searcher.vectors.get(leaf.path)
    if len(rows) == 0:
        return np.zeros(0)
    if view is None or not view.present[rows].all():
        raise ApiError(
            400, "illegal_argument_exception", "A document doesn't have a value for a vector field!"
        )
    matrix = view.data[rows].astype(np.float64)
    if name == "cosineSimilarity":
        qnorm = np.linalg.norm(vector)
        norms = np.linalg.norm(matrix, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((matrix @ vector) / (norms * qnorm))
    if name == "dotProduct":
        return np.asarray(matrix @ vector)
    if name == "l1norm":
        return np.asarray(np.abs(matrix - vector).sum(axis=1))
    if name == "l2norm":
        return np.asarray(np.sqrt(((matrix - vector) ** 2).sum(axis=1)))
    # hamming over bytes
    a = matrix.astype(np.int64).astype(np.uint8)
    b = vector.astype(np.int64).astype(np.uint8)
    return np.asarray(np.unpackbits(a ^ b, axis=1).sum(axis=1), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------
# parsing


_COMMON = ("boost", "_name")


def _boost_name(body: Mapping[str, Any], qtype: str) -> tuple[float, str | None]:
    boost = body.get("boost", 1.0)
    if isinstance(boost, bool) or not isinstance(boost, (int, float, str)):
        raise parsing_error(f"[{qtype}] query does not support [boost] of type {json_type(boost)}")
    try:
        boost_value = float(boost)
    except ValueError as exc:
        raise parsing_error(f"[{qtype}] failed to parse field [boost]") from exc
    name = body.get("_name")
    return boost_value, (str(name) if name is not None else None)


def _single_field(qtype: str, body: Any) -> tuple[str, Any, dict[str, Any]]:
    """``{"field": value}`` or ``{"field": {...}}`` plus top-level boost/_name, as term-like queries take."""
    if not isinstance(body, dict):
        raise parsing_error(f"[{qtype}] query malformed, no start_object after query name")
    extras = {k: v for k, v in body.items() if k in _COMMON}
    fields = [k for k in body if k not in _COMMON]
    if not fields:
        raise parsing_error(
            f"[{qtype}] query doesn't support multiple fields, found []"
            if qtype != "term"
            else "field name is null or empty"
        )
    if len(fields) > 1:
        raise parsing_error(
            f"[{qtype}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]"
        )
    return fields[0], body[fields[0]], extras


def _check_keys(qtype: str, body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise parsing_error(f"[{qtype}] query does not support [{key}]")


def _clauses(value: Any, qtype: str) -> list[Query]:
    if value is None:
        return []
    if isinstance(value, list):
        return [parse_query(v) for v in value]
    return [parse_query(value)]


SCOPE_QUERIES = {
    "nested": "nested documents are not modelled",
    "has_child": "parent/child joins are not modelled",
    "has_parent": "parent/child joins are not modelled",
    "function_score": "function_score is not implemented (use script_score)",
    "more_like_this": "more_like_this is not implemented",
    "geo_distance": "geo queries are not implemented",
    "geo_bounding_box": "geo queries are not implemented",
    "geo_shape": "geo queries are not implemented",
    "percolate": "percolation is not implemented",
    "semantic": "semantic_text is not implemented",
    "sparse_vector": "sparse vectors are not searchable here",
    "text_expansion": "sparse vectors are not searchable here",
    "rank_feature": "rank features are not searchable here",
    "script": "painless scripts are not supported",
    "fuzzy": "fuzzy matching is not implemented",
    "span_term": "span queries are not implemented",
    "intervals": "intervals queries are not implemented",
}


def parse_query(raw: Any) -> Query:
    """A query body (``{"match": {...}}``) as a Query tree, or ES's parsing errors."""
    if not isinstance(raw, dict):
        raise parsing_error("[_na] query malformed, must start with start_object")
    if len(raw) != 1:
        if not raw:
            return MatchAll()
        keys = list(raw)
        raise parsing_error(f"[{keys[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    ((qtype, body),) = raw.items()
    if qtype in SCOPE_QUERIES:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[{qtype}] queries are out of the provision sandbox's scope: {SCOPE_QUERIES[qtype]}",
        )
    parser = _PARSERS.get(qtype)
    if parser is None:
        raise parsing_error(f"unknown query [{qtype}]").with_cause(
            ApiError(400, "named_object_not_found_exception", f"[1:2] unknown field [{qtype}]")
        )
    return parser(body)


def _parse_match_all(body: Any) -> Query:
    body = body or {}
    _check_keys("match_all", body, _COMMON)
    boost, name = _boost_name(body, "match_all")
    return MatchAll(name=name, boost=boost)


def _parse_match_none(body: Any) -> Query:
    body = body or {}
    _check_keys("match_none", body, _COMMON)
    return MatchNone(name=body.get("_name"))


def _parse_term(body: Any) -> Query:
    name_field, value, extras = _single_field("term", body)
    boost, name = _boost_name(extras, "term")
    case_insensitive = False
    if isinstance(value, dict):
        _check_keys("term", value, ("value", "term", "boost", "_name", "case_insensitive"))
        if "value" not in value and "term" not in value:
            raise parsing_error("[term] query requires a [value]")
        boost, name = _boost_name(value, "term")
        case_insensitive = bool(value.get("case_insensitive", False))
        value = value["value"] if "value" in value else value["term"]
    if isinstance(value, (list, dict)) or value is None:
        raise parsing_error(
            "[term] query does not support array of values"
            if isinstance(value, list)
            else "[term] query requires a non-null value"
        )
    return Term(name=name, boost=boost, field=name_field, value=value, case_insensitive=case_insensitive)


def _parse_terms(body: Any) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[terms] query malformed")
    boost, name = _boost_name(body, "terms")
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise parsing_error(
            "[terms] query does not support multiple fields" if fields else "[terms] query requires a field"
        )
    values = body[fields[0]]
    if isinstance(values, dict):
        raise parsing_error("[terms] query does not support terms lookup in the provision sandbox")
    if not isinstance(values, list):
        raise parsing_error(f"[terms] query does not support [{fields[0]}]")
    return Terms(name=name, boost=boost, field=fields[0], values=list(values))


def _parse_ids(body: Any) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[ids] query malformed")
    _check_keys("ids", body, ("values", "boost", "_name"))
    boost, name = _boost_name(body, "ids")
    values = body.get("values", [])
    if not isinstance(values, list):
        raise parsing_error("[ids] failed to parse field [values]")
    return Ids(name=name, boost=boost, values=[es_str(v) for v in values])


def _parse_exists(body: Any) -> Query:
    if not isinstance(body, dict) or "field" not in body:
        raise parsing_error("[exists] must be provided with a [field]")
    _check_keys("exists", body, ("field", "boost", "_name"))
    boost, name = _boost_name(body, "exists")
    return Exists(name=name, boost=boost, field=str(body["field"]))


def _parse_range(body: Any) -> Query:
    name_field, spec, _extras = _single_field("range", body)
    if not isinstance(spec, dict):
        raise parsing_error(f"[range] query does not support [{name_field}]")
    _check_keys(
        "range",
        spec,
        (
            "gt",
            "gte",
            "lt",
            "lte",
            "from",
            "to",
            "include_lower",
            "include_upper",
            "format",
            "time_zone",
            "relation",
            "boost",
            "_name",
        ),
    )
    boost, name = _boost_name(spec, "range")
    gt, gte, lt, lte = spec.get("gt"), spec.get("gte"), spec.get("lt"), spec.get("lte")
    if "from" in spec and spec["from"] is not None:
        if spec.get("include_lower", True):
            gte = spec["from"]
        else:
            gt = spec["from"]
    if "to" in spec and spec["to"] is not None:
        if spec.get("include_upper", True):
            lte = spec["to"]
        else:
            lt = spec["to"]
    return Range(
        name=name, boost=boost, field=name_field, gt=gt, gte=gte, lt=lt, lte=lte, format=spec.get("format")
    )


def _parse_prefix(body: Any, qtype: str = "prefix") -> Query:
    name_field, spec, _ = _single_field(qtype, body)
    boost, name = 1.0, None
    case_insensitive = False
    if isinstance(spec, dict):
        _check_keys(
            qtype,
            spec,
            (
                "value",
                "boost",
                "_name",
                "case_insensitive",
                "rewrite",
                "flags",
                "max_determinized_states",
                "wildcard",
            ),
        )
        boost, name = _boost_name(spec, qtype)
        case_insensitive = bool(spec.get("case_insensitive", False))
        spec = spec.get("value", spec.get("wildcard"))
    if qtype == "prefix":
        return Prefix(
            name=name, boost=boost, field=name_field, value=es_str(spec), case_insensitive=case_insensitive
        )
    return Wildcard(
        name=name,
        boost=boost,
        field=name_field,
        value=es_str(spec),
        case_insensitive=case_insensitive,
        regexp=qtype == "regexp",
    )


def _parse_match(body: Any, phrase: bool = False) -> Query:
    qtype = "match_phrase" if phrase else "match"
    name_field, spec, _ = _single_field(qtype, body)
    if not isinstance(spec, dict):
        return Match(field=name_field, query=spec, phrase=phrase)
    allowed = (
        "query",
        "operator",
        "minimum_should_match",
        "zero_terms_query",
        "analyzer",
        "boost",
        "_name",
        "lenient",
        "fuzziness",
        "prefix_length",
        "max_expansions",
        "fuzzy_transpositions",
        "auto_generate_synonyms_phrase_query",
        "slop",
        "cutoff_frequency",
    )
    _check_keys(qtype, spec, allowed)
    if "query" not in spec:
        raise parsing_error("No text specified for text query")
    fuzziness = spec.get("fuzziness")
    if fuzziness not in (None, 0, "0"):
        raise ApiError(
            400, "illegal_argument_exception", "[match] fuzziness is out of the provision sandbox's scope"
        )
    operator = str(spec.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"No enum constant org.elasticsearch.index.query.Operator.{operator.upper()}",
        )
    boost, name = _boost_name(spec, qtype)
    zero = str(spec.get("zero_terms_query", "none")).lower()
    return Match(
        name=name,
        boost=boost,
        field=name_field,
        query=spec["query"],
        operator=operator,
        minimum_should_match=spec.get("minimum_should_match"),
        zero_terms_query=zero,
        analyzer=spec.get("analyzer"),
        phrase=phrase,
        slop=int(spec.get("slop", 0)),
        lenient=bool(spec.get("lenient", False)),
    )


def _parse_multi_match(body: Any) -> Query:
    if not isinstance(body, dict) or "query" not in body:
        raise parsing_error("[multi_match] requires query value")
    _check_keys(
        "multi_match",
        body,
        (
            "query",
            "fields",
            "type",
            "operator",
            "minimum_should_match",
            "tie_breaker",
            "boost",
            "_name",
            "lenient",
            "analyzer",
            "zero_terms_query",
            "fuzziness",
            "slop",
            "auto_generate_synonyms_phrase_query",
        ),
    )
    mtype = str(body.get("type", "best_fields"))
    if mtype not in ("best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix"):
        raise parsing_error(f"failed to parse [multi_match] query type [{mtype}]. unknown type.")
    fields = body.get("fields", ["*"])
    if isinstance(fields, str):
        fields = [fields]
    boost, name = _boost_name(body, "multi_match")
    return MultiMatch(
        name=name,
        boost=boost,
        fields=list(fields),
        query=body["query"],
        type=mtype,
        operator=str(body.get("operator", "or")).lower(),
        minimum_should_match=body.get("minimum_should_match"),
        tie_breaker=body.get("tie_breaker"),
        lenient=bool(body.get("lenient", False)),
    )


def _parse_bool(body: Any) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[bool] query malformed, no start_object after query name")
    for key in body:
        if key not in (
            "must",
            "should",
            "filter",
            "must_not",
            "minimum_should_match",
            "boost",
            "_name",
            "adjust_pure_negative",
        ):
            raise parsing_error(f"[bool] query does not support [{key}]")
    boost, name = _boost_name(body, "bool")
    return Bool(
        name=name,
        boost=boost,
        must=_clauses(body.get("must"), "must"),
        should=_clauses(body.get("should"), "should"),
        filter=_clauses(body.get("filter"), "filter"),
        must_not=_clauses(body.get("must_not"), "must_not"),
        minimum_should_match=body.get("minimum_should_match"),
    )


def _parse_constant_score(body: Any) -> Query:
    if not isinstance(body, dict) or "filter" not in body:
        raise parsing_error("[constant_score] requires a 'filter' element")
    _check_keys("constant_score", body, ("filter", "boost", "_name"))
    boost, name = _boost_name(body, "constant_score")
    return ConstantScore(name=name, boost=boost, filter_query=parse_query(body["filter"]))


def _parse_dis_max(body: Any) -> Query:
    if not isinstance(body, dict) or "queries" not in body:
        raise parsing_error("[dis_max] requires 'queries' field with at least one clause")
    _check_keys("dis_max", body, ("queries", "tie_breaker", "boost", "_name"))
    boost, name = _boost_name(body, "dis_max")
    return DisMax(
        name=name,
        boost=boost,
        queries=_clauses(body["queries"], "queries"),
        tie_breaker=float(body.get("tie_breaker", 0.0)),
    )


def _parse_script_score(body: Any) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[script_score] query malformed")
    _check_keys("script_score", body, ("query", "script", "min_score", "boost", "_name"))
    if "query" not in body:
        raise parsing_error("[script_score] requires 'query' field")
    if "script" not in body:
        raise parsing_error("[script_score] requires 'script' field")
    boost, name = _boost_name(body, "script_score")
    return ScriptScore(
        name=name,
        boost=boost,
        query=parse_query(body["query"]),
        script=parse_script(body["script"]),
        min_score=float(body["min_score"]) if body.get("min_score") is not None else None,
    )


def _parse_knn_query(body: Any) -> Query:
    from es_sandbox.knn import parse_knn_clause

    return parse_knn_clause(body, "knn", size=None, as_query=True)


def _parse_query_string(body: Any) -> Query:
    if not isinstance(body, dict) or "query" not in body:
        raise parsing_error("[query_string] must be provided with a [query]")
    fields = body.get("fields") or ([body["default_field"]] if body.get("default_field") else None)
    return query_string(
        str(body["query"]),
        fields,
        str(body.get("default_operator", "or")).lower(),
        lenient=bool(body.get("lenient", False)),
    )


def query_string(
    text: str, fields: list[str] | None, default_operator: str = "or", lenient: bool = True
) -> Query:
    """A small query_string: terms, ``field:value``, quoted phrases, +/- and AND/OR/NOT."""
    tokens = re.findall(r'[+-]?(?:[\w.*]+:)?"[^"]*"|\S+', text)
    must: list[Query] = []
    should: list[Query] = []
    must_not: list[Query] = []
    operator = default_operator
    pending_not = False
    for token in tokens:
        if token in ("AND", "&&"):
            operator = "and"
            continue
        if token in ("OR", "||"):
            operator = "or"
            continue
        if token in ("NOT", "!"):
            pending_not = True
            continue
        sign = ""
        if token[0] in "+-":
            sign, token = token[0], token[1:]
        field_names = fields
        if ":" in token and not token.startswith('"'):
            name, _, token = token.partition(":")
            field_names = [name]
        phrase = token.startswith('"') and token.endswith('"') and len(token) > 1
        value = token.strip('"')
        if value == "*" and field_names is None:
            clause: Query = MatchAll()
        elif "*" in value and not phrase:
            clause = Bool(should=[Wildcard(field=f, value=value.lower()) for f in (field_names or ["*"])])
        else:
            clause = MultiMatch(
                fields=field_names or ["*"],
                query=value,
                type="phrase" if phrase else "best_fields",
                lenient=lenient,
            )
        if sign == "-" or pending_not:
            must_not.append(clause)
        elif sign == "+" or operator == "and" or default_operator == "and":
            must.append(clause)
        else:
            should.append(clause)
        pending_not = False
    if not must and not should and must_not:
        return Bool(must=[MatchAll()], must_not=must_not)
    return Bool(must=must, should=should, must_not=must_not, minimum_should_match=None)


def _parse_simple_query_string(body: Any) -> Query:
    if not isinstance(body, dict) or "query" not in body:
        raise parsing_error("[simple_query_string] requires query")
    return query_string(
        str(body["query"]), body.get("fields"), str(body.get("default_operator", "or")).lower()
    )


_PARSERS: dict[str, Callable[[Any], Query]] = {
    "match_all": _parse_match_all,
    "match_none": _parse_match_none,
    "term": _parse_term,
    "terms": _parse_terms,
    "ids": _parse_ids,
    "exists": _parse_exists,
    "range": _parse_range,
    "prefix": lambda b: _parse_prefix(b, "prefix"),
    "wildcard": lambda b: _parse_prefix(b, "wildcard"),
    "regexp": lambda b: _parse_prefix(b, "regexp"),
    "match": _parse_match,
    "match_phrase": lambda b: _parse_match(b, phrase=True),
    "multi_match": _parse_multi_match,
    "bool": _parse_bool,
    "constant_score": _parse_constant_score,
    "dis_max": _parse_dis_max,
    "script_score": _parse_script_score,
    "knn": _parse_knn_query,
    "query_string": _parse_query_string,
    "simple_query_string": _parse_simple_query_string,
}


def iter_queries(query: Query) -> list[Query]:
    """Every node of a query tree (for resolving query vectors before evaluation)."""
    out = [query]
    children: list[Query] = []
    if isinstance(query, Bool):
        children = [*query.must, *query.should, *query.filter, *query.must_not]
    elif isinstance(query, ConstantScore) and query.filter_query is not None:
        children = [query.filter_query]
    elif isinstance(query, DisMax):
        children = list(query.queries)
    elif isinstance(query, ScriptScore) and query.query is not None:
        children = [query.query]
    elif isinstance(query, Knn):
        children = list(query.filters)
    for child in children:
        out.extend(iter_queries(child))
    return out


def geo_value(value: Any, path: str) -> tuple[float, float]:
    return parse_geo_point(value, path)
