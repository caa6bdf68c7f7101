"""The query DSL's nodes, evaluated per index, vectorised over a searcher's rows.

Every query yields a boolean match mask and a float32 score array, combined by ``bool`` the way
Lucene's BooleanQuery combines scorers (``must``/``should`` scores add up, ``filter``/``must_not``
do not score). Text scoring is BM25 (:mod:`es_sandbox.query.bm25`); ``knn`` is exact
(:mod:`es_sandbox.query.knn`); ``script_score`` runs :mod:`es_sandbox.query.script`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np

from es_sandbox import analysis, ml, versions
from es_sandbox.dates import DateFormat, DateFormatError, parse_date_math
from es_sandbox.http import ApiError
from es_sandbox.mapper.geo import parse_geo_point
from es_sandbox.mapper.lookup import LeafField
from es_sandbox.mapper.parameters import NUMERIC_TYPES
from es_sandbox.query.bm25 import bm25
from es_sandbox.query.context import Result, ShardContext, shard_error
from es_sandbox.query.inner_hits import knn_under_nested
from es_sandbox.query.knn import knn_search
from es_sandbox.query.script import Script
from es_sandbox.query.vector_lookup import lookup_vector
from es_sandbox.util import es_str, get_path, simple_match


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
    inner_hits: Any = None  # inner_hits.InnerHitsSpec, for a knn on a nested vector

    def _evaluate(self, ctx: ShardContext) -> Result:
        leaf = ctx.field(self.field)
        if leaf is not None and leaf.nested_path is not None:
            return knn_under_nested(ctx, self, self.inner_hits)
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

    def resolve_vector(self, state: Any) -> None:
        """Run query_vector_builder (text_embedding through the ML area) into a concrete vector."""
        if self.resolved_vector is not None or self.builder is None:
            return
        if "lookup" in self.builder:
            self.resolved_vector = lookup_vector(state, self.builder["lookup"])
            return
        spec = self.builder["text_embedding"]
        results = ml.infer(state, str(spec["model_id"]), [str(spec["model_text"])], prefix_type="search")
        value = results[0].get("predicted_value") if results else None
        if not isinstance(value, list):
            raise ApiError(
                400,
                "illegal_argument_exception",
                "[query_vector_builder] with name [text_embedding] returned null query_vector",
            )
        self.resolved_vector = np.asarray(value, dtype=np.float64)

    def vector(self, ctx: ShardContext | None) -> np.ndarray:
        if self.resolved_vector is None and isinstance(self.query_vector, str) and ctx is not None:
            return decode_query_vector(ctx, self.field, self.query_vector)
        if self.resolved_vector is None:
            raise ApiError(400, "illegal_argument_exception", "missing rewrite")
        return self.resolved_vector


def decode_query_vector(ctx: ShardContext, field: str, text: str) -> np.ndarray:
    """A string query_vector: hex bytes for byte and bit fields; base64 big-endian float32 for float
    fields from 9.4 (es_sandbox.versions: knn.query_vector_base64)."""
    leaf = ctx.field(field)
    element = leaf.element_type if leaf is not None and leaf.type == "dense_vector" else "byte"
    try:
        if element in ("byte", "bit"):
            return np.asarray([b if b < 128 else b - 256 for b in bytes.fromhex(text)], dtype=np.float64)
        if versions.current().has("knn.query_vector_base64"):
            raw = base64.b64decode(text, validate=True)
            return np.frombuffer(raw, dtype=">f4").astype(np.float64)
        return np.asarray([b if b < 128 else b - 256 for b in bytes.fromhex(text)], dtype=np.float64)
    except (ValueError, binascii.Error) as exc:
        raise ApiError(
            400, "x_content_parse_exception", "[knn] failed to parse field [query_vector]"
        ) from exc


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
    else:
        # Other compound queries (nested, function_score) name their sub-queries in these fields.
        inner = getattr(query, "query", None)
        children = [inner] if isinstance(inner, Query) else []
        for function in getattr(query, "functions", []):
            if isinstance(getattr(function, "filter", None), Query):
                children.append(function.filter)
    for child in children:
        out.extend(iter_queries(child))
    return out


def geo_value(value: Any, path: str) -> tuple[float, float]:
    return parse_geo_point(value, path)
