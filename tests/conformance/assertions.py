"""The stash, response paths and the comparisons behind the assertion steps.

Semantics follow Elasticsearch's Java runner (``org.elasticsearch.test.rest.yaml``): paths split on
unescaped dots, ``_arbitrary_key_`` yields a key, ``is_true``/``is_false`` look at the value's string
form, numbers compare as doubles, ``/.../`` in ``match`` is a verbose (``x`` flag) regular
expression searched in the value's string form.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

STASH_EMBEDDED = re.compile(r"\$\{([^}]+)\}")
ARBITRARY_KEY = "_arbitrary_key_"


class StepFailure(AssertionError):
    """A step did not hold; the message is the concise first mismatch."""


def java_str(value: Any) -> str:
    """``Object.toString()`` of the value as Java's runner sees it (maps ``{k=v}``, lists ``[a, b]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e7:
            return f"{value:.1f}"
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    return str(value)


def short(value: Any, limit: int = 160) -> str:
    """A value for a failure message: JSON-ish, cut at ``limit`` characters."""
    text = repr(value) if isinstance(value, str) else java_str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Stash:
    """Values saved by ``set``; ``$name`` is a whole value, ``${name}`` is spliced into a string.

    ``$body`` is always the last response body.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.body: Any = None

    def clear(self) -> None:
        self.values.clear()
        self.body = None

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def _get(self, key: str) -> Any:
        if key == "body":
            return self.body
        if key not in self.values:
            raise StepFailure(f"stashed value not found for key [{key}]")
        return self.values[key]

    @staticmethod
    def is_reference(value: Any) -> bool:
        return isinstance(value, str) and (value.startswith("$") or "${" in value)

    def lookup(self, text: str) -> Any:
        """The value a stash reference stands for (raises when it names nothing stashed)."""
        if text.startswith("$") and not text.startswith("${"):
            return copy.deepcopy(self._get(text[1:]))
        if STASH_EMBEDDED.search(text) is None:
            return text
        return STASH_EMBEDDED.sub(lambda m: java_str(self._get(m.group(1))), text)

    def resolve(self, value: Any) -> Any:
        """``value`` with stash references replaced, in keys and values, recursively."""
        if isinstance(value, str):
            return self.lookup(value) if self.is_reference(value) else value
        if isinstance(value, dict):
            resolved: dict[Any, Any] = {}
            for key, item in value.items():
                if self.is_reference(key):
                    key = java_str(self.lookup(key))
                resolved[key] = self.resolve(item)
            return resolved
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value


def split_path(path: str) -> list[str]:
    """``a.b\\.c.0`` -> ``["a", "b.c", "0"]`` (a backslash escapes the next character)."""
    tokens: list[str] = []
    current: list[str] = []
    escaped = False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


_MISSING = object()


def evaluate(body: Any, path: str, stash: Stash) -> Any:
    """The value at ``path`` in ``body``; None when any level is missing."""
    value: Any = body
    for raw_token in split_path(path):
        token = raw_token
        if Stash.is_reference(token):
            token = java_str(stash.lookup(token))
        if isinstance(value, dict):
            if token == ARBITRARY_KEY:
                if not value:
                    raise StepFailure(
                        f"path [{path}]: no key to pick for [{ARBITRARY_KEY}] in an empty object"
                    )
                return next(iter(value))
            value = value.get(token, _MISSING)
        elif isinstance(value, list):
            try:
                index = int(token)
            except ValueError as exc:
                raise StepFailure(f"path [{path}]: element is a list but [{token}] is not a number") from exc
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            return None
        if value is _MISSING:
            return None
    return value


def first_difference(actual: Any, expected: Any, where: str = "") -> str | None:
    """None when equal (numbers as doubles), else where and how they first differ."""
    at = f" at [{where}]" if where else ""
    if is_number(actual) and is_number(expected):
        if float(actual) == float(expected) or (
            isinstance(actual, float)
            and isinstance(expected, float)
            and math.isnan(actual)
            and math.isnan(expected)
        ):
            return None
        return f"expected {short(expected)} but was {short(actual)}{at}"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            if key not in actual:
                return f"missing key [{key}]{at} (expected {short(expected[key])})"
        for key in actual:
            if key not in expected:
                return f"unexpected key [{key}]{at} with value {short(actual[key])}"
        for key, item in expected.items():
            diff = first_difference(actual[key], item, f"{where}.{key}" if where else str(key))
            if diff:
                return diff
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"expected {len(expected)} element(s) but was {len(actual)}{at}: {short(actual)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            diff = first_difference(a, e, f"{where}.{index}" if where else str(index))
            if diff:
                return diff
        return None
    if type(actual) is not type(expected) and not (actual is None or expected is None):
        return f"expected {short(expected)} ({type(expected).__name__}) but was {short(actual)} ({type(actual).__name__}){at}"
    if actual != expected:
        return f"expected {short(expected)} but was {short(actual)}{at}"
    return None


def is_regex(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value.strip()) > 2
        and value.strip().startswith("/")
        and value.strip().endswith("/")
    )


def match_regex(pattern: str, value: Any, *, verbose: bool) -> bool:
    """Java's ``find()``: the pattern (between the slashes) occurs in the value's string form."""
    body = pattern.strip()[1:-1]
    text = value if isinstance(value, str) else java_str(value)
    return re.search(body, text, re.VERBOSE if verbose else 0) is not None


def truthy(value: Any) -> bool:
    """``is_true``: not null, and its string form is not ``""``, ``"false"`` (any case) or ``"0"``."""
    if value is None:
        return False
    text = java_str(value)
    return text not in ("", "0") and text.lower() != "false"


def contains(actual: Any, expected: Any) -> bool:
    """``contains``: a list holding an element that has (at least) the expected content, or a substring."""
    if isinstance(actual, str) and isinstance(expected, str):
        return expected in actual
    if not isinstance(actual, list):
        return False
    for element in actual:
        if isinstance(expected, dict) and isinstance(element, dict):
            if all(k in element and first_difference(element[k], v) is None for k, v in expected.items()):
                return True
        elif first_difference(element, expected) is None:
            return True
    return False


def compare(actual: Any, expected: Any) -> int:
    """-1/0/1 for ordered assertions: numbers as doubles, strings lexicographically."""
    try:
        if is_number(actual) and isinstance(expected, str):
            expected = float(expected)
        if isinstance(actual, str) and is_number(expected):
            actual = float(actual)
    except ValueError as exc:
        raise StepFailure(f"cannot compare {short(actual)} with {short(expected)} as numbers") from exc
    if is_number(actual) and is_number(expected):
        a, e = float(actual), float(expected)
    elif isinstance(actual, str) and isinstance(expected, str):
        a, e = actual, expected  # type: ignore[assignment]
    else:
        raise StepFailure(f"cannot compare {short(actual)} with {short(expected)}")
    return (a > e) - (a < e)
