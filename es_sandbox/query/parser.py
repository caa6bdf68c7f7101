"""Parsing the query DSL (and ``knn`` clauses) into query nodes, with Elasticsearch's errors.

A query is parsed once per request; syntax errors are the ``parsing_exception``s (and
``x_content_parse_exception``s) Elasticsearch answers with, before any index is touched. A ``knn``
clause (the ``knn`` query and the top-level ``knn`` section) is validated as KnnSearchBuilder does,
defaults applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from es_sandbox import versions
from es_sandbox.http import ApiError, unknown_field
from es_sandbox.query.compound import parse_function_score, parse_nested
from es_sandbox.query.context import parsing_error
from es_sandbox.query.inner_hits import parse_inner_hits
from es_sandbox.query.nodes import (
    Bool,
    ConstantScore,
    DisMax,
    Exists,
    Ids,
    Knn,
    Match,
    MatchAll,
    MatchNone,
    MultiMatch,
    Prefix,
    Query,
    Range,
    ScriptScore,
    Term,
    Terms,
    Wildcard,
)
from es_sandbox.query.script import parse_script
from es_sandbox.util import es_str, json_type

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
    "has_child": "parent/child joins are not modelled",
    "has_parent": "parent/child joins are not modelled",
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
    "nested": lambda b: parse_nested(b, parse_query, _boost_name),
    "function_score": lambda b: parse_function_score(b, parse_query, _boost_name),
    "query_string": _parse_query_string,
    "simple_query_string": _parse_simple_query_string,
}


# -- the knn clause: the knn query and the top-level knn section ------------------------------------------
NUM_CANDS_LIMIT = 10_000
KNN_KEYS = (
    "field",
    "query_vector",
    "query_vector_builder",
    "k",
    "num_candidates",
    "filter",
    "similarity",
    "boost",
    "_name",
    "rescore_vector",
    "inner_hits",
    "visit_percentage",
)


def _int_field(body: dict[str, Any], name: str, parser: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(
            400,
            "x_content_parse_exception",
            f"[{parser}] {name} doesn't support values of type: {json_type(value)}",
        )
    try:
        number = float(value)
    except ValueError as exc:
        raise ApiError(
            400, "x_content_parse_exception", f"[{parser}] failed to parse field [{name}]"
        ).with_cause(ApiError(400, "number_format_exception", f'For input string: "{value}"')) from exc
    if not number.is_integer():
        raise ApiError(400, "x_content_parse_exception", f"[{parser}] failed to parse field [{name}]")
    return int(number)


LOOKUP_KEYS = ("id", "index", "path", "routing")


def _check_lookup_builder(spec: Any) -> None:
    """LookupQueryVectorBuilder's parser: id, index and path required, routing optional."""
    if not isinstance(spec, dict):
        raise ApiError(400, "x_content_parse_exception", "[lookup] failed to parse object")
    for key in spec:
        if key not in LOOKUP_KEYS:
            raise unknown_field("lookup", key, LOOKUP_KEYS)
    missing = [key for key in ("id", "index", "path") if not isinstance(spec.get(key), str)]
    if missing:
        raise ApiError(400, "illegal_argument_exception", f"Required [{', '.join(missing)}]")


def parse_knn_clause(body: Any, parser: str, size: int | None, as_query: bool = False) -> Knn:
    """A ``knn`` section (or knn query) validated as KnnSearchBuilder does, defaults applied."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "x_content_parse_exception",
            f"[{parser}] knn search must be an object or an array of objects",
        )
    for key in body:
        if key not in KNN_KEYS:
            raise unknown_field(parser, key, KNN_KEYS)
    inner_hits = parse_inner_hits(body["inner_hits"]) if body.get("inner_hits") is not None else None
    if "field" not in body or not isinstance(body.get("field"), str):
        raise ApiError(400, "illegal_argument_exception", "Required [field]")
    k = _int_field(body, "k", parser)
    num_candidates = _int_field(body, "num_candidates", parser)
    vector = body.get("query_vector")
    builder = body.get("query_vector_builder")
    if vector is None and builder is None:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "either [query_vector_builder] or [query_vector] must be provided",
        )
    if vector is not None and builder is not None:
        raise ApiError(
            400, "illegal_argument_exception", "cannot provide both [query_vector_builder] and [query_vector]"
        )
    if vector is not None:
        if isinstance(vector, str):
            # Hex (byte and bit fields) or, from 9.4, base64 (float fields): decoded against the field.
            pass
        elif not isinstance(vector, list) or not set(map(type, vector)) <= {int, float}:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [query_vector]"
            )
    if builder is not None:
        if not isinstance(builder, dict) or len(builder) != 1:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [query_vector_builder]"
            )
        ((kind, spec),) = builder.items()
        builders = ["text_embedding"]
        if versions.current().has("knn.lookup_query_vector_builder"):
            builders.append("lookup")
        if kind == "lookup" and kind in builders:
            _check_lookup_builder(spec)
        elif kind not in builders:
            raise ApiError(
                400,
                "x_content_parse_exception",
                f"[{parser}] failed to parse field [query_vector_builder]",
            ).with_cause(ApiError(400, "named_object_not_found_exception", f"unknown field [{kind}]"))
        else:
            if not isinstance(spec, dict) or "model_text" not in spec:
                raise ApiError(400, "illegal_argument_exception", "Required [model_text]")
            for key in spec:
                if key not in ("model_id", "model_text"):
                    raise unknown_field("text_embedding", key, ("model_id", "model_text"))
            if not spec.get("model_id"):
                raise ApiError(400, "illegal_argument_exception", "[model_id] must not be null.")
    similarity = body.get("similarity")
    if similarity is not None:
        try:
            similarity = float(similarity)
        except (TypeError, ValueError) as exc:
            raise ApiError(
                400, "x_content_parse_exception", f"[{parser}] failed to parse field [similarity]"
            ) from exc
    boost = body.get("boost", 1.0)
    try:
        boost = float(boost)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "x_content_parse_exception", f"[{parser}] failed to parse field [boost]") from exc
    request_size = size if size is not None and size >= 0 else 10
    if as_query:
        if num_candidates is None:
            num_candidates = round(min(NUM_CANDS_LIMIT, 1.5 * (k if k is not None else request_size)))
        if k is None:
            k = num_candidates
    else:
        if k is None:
            k = request_size
        if num_candidates is None:
            num_candidates = round(min(NUM_CANDS_LIMIT, 1.5 * k))
    problem = None
    if k < 1:
        problem = "[k] must be greater than 0"
    elif num_candidates < k:
        problem = "[num_candidates] cannot be less than [k]"
    elif num_candidates > NUM_CANDS_LIMIT:
        problem = f"[num_candidates] cannot exceed [{NUM_CANDS_LIMIT}]"
    if problem is not None:
        cause = ApiError(400, "illegal_argument_exception", problem)
        if as_query:
            # The knn query's ConstructingObjectParser wraps what its constructor throws.
            raise ApiError(
                400,
                "x_content_parse_exception",
                "[knn] failed to build [knn] after last required field arrived",
            ).with_cause(cause)
        raise cause
    filters_raw = body.get("filter")
    filters: list[Query] = []
    if filters_raw is not None:
        items = filters_raw if isinstance(filters_raw, list) else [filters_raw]
        filters = [parse_query(item) for item in items]
    name = body.get("_name")
    return Knn(
        name=str(name) if name is not None else None,
        boost=boost,
        field=body["field"],
        query_vector=vector,
        builder=builder,
        k=k,
        num_candidates=num_candidates,
        filters=filters,
        similarity=similarity,
        resolved_vector=np.asarray(vector, dtype=np.float64) if isinstance(vector, list) else None,
        inner_hits=inner_hits,
    )
