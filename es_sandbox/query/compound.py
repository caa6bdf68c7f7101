"""Compound queries over other queries: ``nested`` and ``function_score``.

``nested``: a document matches when one of its nested objects under ``path`` does. For a ``knn``
query on a vector inside the nested objects this is exact (ES's diversifying-children kNN: a
document scores as its best nested vector, the ``k`` best documents match) and ``inner_hits`` lists
each hit's nested objects by score. Other inner queries are evaluated against the document's nested
values all together (the sandbox indexes a nested object's values into its parent), so a condition
on two fields can be met by two different nested objects; ``inner_hits`` is only for ``knn``.

``function_score``: ``weight`` functions, each with an optional ``filter``, combined by
``score_mode`` and applied to the query's score by ``boost_mode`` (``max_boost``, ``min_score``);
script, decay, random and field-value functions need features out of the sandbox's scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.query.context import Result, ShardContext, parsing_error
from es_sandbox.query.inner_hits import InnerHitsSpec, knn_under_nested, parse_inner_hits
from es_sandbox.query.nodes import Knn, MatchAll, Query

Parse = Callable[[Any], Query]


def _nested_error(ctx: ShardContext, path: str) -> ApiError:
    return ApiError(
        400,
        "query_shard_exception",
        f"[nested] failed to find nested object under path [{path}]",
        index_uuid=ctx.index_uuid,
        index=ctx.index_name,
    )


@dataclass
class Nested(Query):
    path: str = ""
    query: Query | None = None
    score_mode: str = "avg"
    inner_hits: InnerHitsSpec | None = None
    ignore_unmapped: bool = False

    def _evaluate(self, ctx: ShardContext) -> Result:
        definition = ctx.objects.get(self.path)
        if definition is None or definition.get("type") != "nested":
            if self.ignore_unmapped:
                return ctx.empty()
            raise _nested_error(ctx, self.path)
        inner = self.query or MatchAll()
        leaf = ctx.field(inner.field) if isinstance(inner, Knn) else None
        if isinstance(inner, Knn) and leaf is not None and leaf.nested_path is not None:
            mask, scores = knn_under_nested(ctx, inner, self.inner_hits, self.path)
            scores = scores * np.float32(inner.boost)
            if inner.name is not None:
                ctx.named[inner.name] = (mask, scores)
        else:
            if self.inner_hits is not None:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    "[inner_hits] of a [nested] query other than [knn] are out of the provision sandbox's scope",
                )
            mask, scores = inner.evaluate(ctx)
        if self.score_mode == "none":
            scores = np.zeros(ctx.n, dtype=np.float32)
        return mask, scores


def parse_nested(
    body: Any, parse: Parse, boost_name: Callable[[Mapping[str, Any], str], tuple[float, str | None]]
) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[nested] query malformed, no start_object after query name")
    for key in body:
        if key not in ("path", "query", "score_mode", "inner_hits", "ignore_unmapped", "boost", "_name"):
            raise parsing_error(f"[nested] query does not support [{key}]")
    if "path" not in body:
        raise parsing_error("[nested] requires 'path' field")
    if "query" not in body:
        raise parsing_error("[nested] requires 'query' field")
    score_mode = str(body.get("score_mode", "avg"))
    if score_mode not in ("avg", "max", "min", "sum", "none"):
        raise ApiError(400, "illegal_argument_exception", f"No ScoreMode found for value [{score_mode}]")
    boost, name = boost_name(body, "nested")
    return Nested(
        name=name,
        boost=boost,
        path=str(body["path"]),
        query=parse(body["query"]),
        score_mode=score_mode,
        inner_hits=parse_inner_hits(body["inner_hits"]) if body.get("inner_hits") is not None else None,
        ignore_unmapped=bool(body.get("ignore_unmapped", False)),
    )


# -- function_score --------------------------------------------------------------------------------------

SCORE_MODES = ("multiply", "sum", "avg", "first", "max", "min")
BOOST_MODES = ("multiply", "replace", "sum", "avg", "max", "min")
OUT_OF_SCOPE_FUNCTIONS = ("script_score", "random_score", "field_value_factor", "gauss", "linear", "exp")


@dataclass
class WeightFunction:
    weight: float = 1.0
    filter: Query | None = None


@dataclass
class FunctionScore(Query):
    query: Query | None = None
    functions: list[WeightFunction] = dc_field(default_factory=list)
    score_mode: str = "multiply"
    boost_mode: str = "multiply"
    max_boost: float = float(np.finfo(np.float32).max)
    min_score: float | None = None

    def _evaluate(self, ctx: ShardContext) -> Result:
        mask, scores = (self.query or MatchAll()).evaluate(ctx)
        scores = scores.astype(np.float64)
        matrix = []
        for function in self.functions:
            applies = (
                function.filter.evaluate(ctx)[0] if function.filter is not None else np.ones(ctx.n, bool)
            )
            matrix.append(np.where(applies, function.weight, np.nan))
        if matrix:
            values = np.array(matrix, dtype=np.float64)
            any_match = ~np.all(np.isnan(values), axis=0)
            factor = _combine(values, self.score_mode)
            factor = np.where(any_match, factor, 1.0)
        else:
            factor = np.ones(ctx.n, dtype=np.float64)
        factor = np.minimum(factor, self.max_boost)
        combined = _apply(scores, factor, self.boost_mode)
        if self.min_score is not None:
            mask = mask & (combined >= self.min_score)
        return mask, np.where(mask, combined, 0).astype(np.float32)


def _combine(values: np.ndarray, mode: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if mode == "multiply":
            return np.asarray(np.nanprod(values, axis=0))
        if mode == "sum":
            return np.asarray(np.nansum(values, axis=0))
        if mode == "avg":
            return np.asarray(np.nanmean(values, axis=0))
        if mode == "max":
            return np.asarray(np.nanmax(values, axis=0))
        if mode == "min":
            return np.asarray(np.nanmin(values, axis=0))
    first = np.full(values.shape[1], np.nan)
    for row in values[::-1]:
        first = np.where(np.isnan(row), first, row)
    return first


def _apply(scores: np.ndarray, factor: np.ndarray, mode: str) -> np.ndarray:
    if mode == "replace":
        return factor
    combined: np.ndarray
    if mode == "sum":
        combined = scores + factor
    elif mode == "avg":
        combined = (scores + factor) / 2
    elif mode == "max":
        combined = np.maximum(scores, factor)
    elif mode == "min":
        combined = np.minimum(scores, factor)
    else:
        combined = scores * factor
    return combined


def parse_function_score(
    body: Any, parse: Parse, boost_name: Callable[[Mapping[str, Any], str], tuple[float, str | None]]
) -> Query:
    if not isinstance(body, dict):
        raise parsing_error("[function_score] malformed query, expected a [START_OBJECT]")
    allowed = (
        "query",
        "functions",
        "score_mode",
        "boost_mode",
        "max_boost",
        "min_score",
        "weight",
        "filter",
        "boost",
        "_name",
    )
    for key in body:
        if key in OUT_OF_SCOPE_FUNCTIONS:
            raise _function_out_of_scope(key)
        if key not in allowed:
            raise parsing_error(f"function_score query does not support [{key}]")
    functions: list[WeightFunction] = []
    for raw in body.get("functions") or []:
        if not isinstance(raw, dict):
            raise parsing_error("[function_score] malformed query, expected a [START_OBJECT] in [functions]")
        for key in raw:
            if key in OUT_OF_SCOPE_FUNCTIONS:
                raise _function_out_of_scope(key)
            if key not in ("filter", "weight"):
                raise parsing_error(f"function_score query does not support [{key}] in [functions]")
        if "weight" not in raw:
            raise parsing_error("an entry in functions list is missing a function.")
        functions.append(
            WeightFunction(
                float(raw["weight"]), parse(raw["filter"]) if raw.get("filter") is not None else None
            )
        )
    if "weight" in body:
        functions.append(WeightFunction(float(body["weight"]), None))
    score_mode = str(body.get("score_mode", "multiply"))
    boost_mode = str(body.get("boost_mode", "multiply"))
    if score_mode not in SCORE_MODES:
        raise ApiError(400, "illegal_argument_exception", f"illegal score_mode [{score_mode}]")
    if boost_mode not in BOOST_MODES:
        raise ApiError(400, "illegal_argument_exception", f"illegal boost_mode [{boost_mode}]")
    boost, name = boost_name(body, "function_score")
    return FunctionScore(
        name=name,
        boost=boost,
        query=parse(body["query"]) if body.get("query") is not None else None,
        functions=functions,
        score_mode=score_mode,
        boost_mode=boost_mode,
        max_boost=float(body.get("max_boost", float(np.finfo(np.float32).max))),
        min_score=float(body["min_score"]) if body.get("min_score") is not None else None,
    )


def _function_out_of_scope(kind: str) -> ApiError:
    return ApiError(
        400,
        "illegal_argument_exception",
        f"[function_score] [{kind}] functions are out of the provision sandbox's scope (weight functions are implemented)",
    )
