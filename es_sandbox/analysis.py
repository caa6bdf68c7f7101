"""Text analysis: enough of Lucene's analyzers for ``match`` queries on captions and names.

The standard analyzer (Unicode word boundaries + lowercase) is approximated with a regular
expression that keeps ES's notable joins: ``cow.jpg``, ``hitchhiker's`` and ``1.5`` stay one
token, as UAX#29 keeps them. Built-in ``simple``, ``whitespace``, ``keyword``, ``stop`` and
``english`` (stop words only, no stemming) are available; custom analyzers defined in index
settings are honoured for their tokenizer (standard, whitespace, keyword, letter) and the
lowercase/uppercase/asciifolding/stop filters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

_STANDARD = re.compile(r"\w+(?:[.'’:]\w+)*", re.UNICODE)
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)

ENGLISH_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

BUILTIN = ("standard", "simple", "whitespace", "keyword", "stop", "english", "default")

Analyzer = Callable[[str], list[str]]


def _standard(text: str) -> list[str]:
    return [t.lower() for t in _STANDARD.findall(text) if len(t) <= 255]


def _fold(token: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", token) if not unicodedata.combining(c))


def builtin(name: str) -> Analyzer | None:
    if name in ("standard", "default"):
        return _standard
    if name in ("simple", "stop"):
        stop = name == "stop"
        return lambda text: [
            t.lower() for t in _LETTERS.findall(text) if not (stop and t.lower() in ENGLISH_STOP)
        ]
    if name == "whitespace":
        return lambda text: text.split()
    if name == "keyword":
        return lambda text: [text]
    if name == "english":
        return lambda text: [t for t in _standard(text) if t not in ENGLISH_STOP]
    return None


def custom(definition: Mapping[str, Any]) -> Analyzer:
    """A custom analyzer from ``index.analysis.analyzer.<name>`` (tokenizer + simple filters)."""
    tokenizer_name = str(definition.get("tokenizer", "standard"))
    filters = definition.get("filter", [])
    if isinstance(filters, str):
        filters = [filters]

    def tokenize(text: str) -> list[str]:
        if tokenizer_name == "whitespace":
            return text.split()
        if tokenizer_name == "keyword":
            return [text]
        if tokenizer_name == "letter":
            return _LETTERS.findall(text)
        return _STANDARD.findall(text)

    def analyze(text: str) -> list[str]:
        tokens = tokenize(text)
        for name in filters:
            if name == "lowercase":
                tokens = [t.lower() for t in tokens]
            elif name == "uppercase":
                tokens = [t.upper() for t in tokens]
            elif name == "asciifolding":
                tokens = [_fold(t) for t in tokens]
            elif name == "stop":
                tokens = [t for t in tokens if t.lower() not in ENGLISH_STOP]
        return tokens

    return analyze


def resolve(name: str, settings: Mapping[str, Any]) -> Analyzer | None:
    """The analyzer called ``name`` for an index (its custom analyzers first, then built-ins)."""
    prefix = f"index.analysis.analyzer.{name}."
    definition = {k[len(prefix) :]: v for k, v in settings.items() if k.startswith(prefix)}
    if definition:
        if "filter" not in definition:
            filters = [v for k, v in definition.items() if k.startswith("filter.")]
            if filters:
                definition["filter"] = filters
        return custom(definition)
    return builtin(name)


def standard(text: str) -> list[str]:
    return _standard(text)
