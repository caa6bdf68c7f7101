"""``script_score`` scripts: a small expression language over Elasticsearch's vector functions.

Supported: ``cosineSimilarity``, ``dotProduct``, ``l1norm``, ``l2norm`` and ``hamming`` inside
arithmetic over ``params``, ``_score``, ``doc['field'].value`` and ``Math`` functions, as the
painless scripts of exact kNN use them; other painless is refused as out of the sandbox's scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_sandbox.http import ApiError
from es_sandbox.query.context import ShardContext, parsing_error


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
        "(params.<vector>, '<field>'), params.<number>, _score, doc['<field>'].value, Math.sqrt/log/abs/exp/log10/max/min/pow.",
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
            or ident in ("Math.max", "Math.min", "Math.pow", "sigmoid", "saturation")
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
        if name == "Math.pow":
            return np.power(values[0], values[1])
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
