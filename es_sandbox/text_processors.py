"""The string-reshaping ingest processors: ``split``, ``join``, ``gsub`` and ``html_strip``.

As in Elasticsearch's ingest-common module: ``split`` cuts a string at a (Java) regular expression
(``preserve_trailing`` keeps trailing empty parts), ``join`` glues an array with a separator,
``gsub`` replaces every match of a pattern (``$1`` references groups), and ``html_strip`` removes
markup the way Lucene's HTMLStripCharFilter does: block-level elements become a newline, other tags
vanish, character entities are decoded. Each takes ``field``, ``target_field`` and
``ignore_missing``; ``gsub`` and ``html_strip`` also work on arrays of strings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.ingest_document import IngestDocument, java_type
from es_sandbox.processors import Processor, ProcessorConfig, register_processor
from es_sandbox.state import SandboxState

# Lucene HTMLStripCharFilter's block-level elements: their tags are replaced by a newline.
BLOCK_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "center", "dd", "dir", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1",
        "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "iframe", "li",
        "map", "menu", "nav", "noframes", "noscript", "ol", "optgroup", "option", "p", "pre",
        "section", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
    }
)  # fmt: skip
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*>|<!--.*?-->", re.DOTALL)


def html_strip(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        return "\n" if name is not None and name.lower() in BLOCK_ELEMENTS else ""

    return html.unescape(_TAG.sub(replace, text))


def _missing(doc: IngestDocument, src: str, ignore_missing: bool, what: str) -> bool:
    """True when the field is absent/null and ignore_missing allows it; ES's errors otherwise."""
    if doc.has(src) and doc.get(src) is not None:
        return False
    if ignore_missing:
        return True
    if not doc.has(src):
        raise ApiError(
            400, "illegal_argument_exception", f"field [{src}] not present as part of path [{src}]"
        )
    raise ApiError(400, "illegal_argument_exception", f"field [{src}] is null, cannot {what}.")


def _cast_error(src: str, value: Any, target: str) -> ApiError:
    return ApiError(
        400,
        "illegal_argument_exception",
        f"field [{src}] of type [{java_type(value)}] cannot be cast to [{target}]",
    )


def _build_split(p: Processor, cfg: ProcessorConfig) -> None:
    source = cfg.string("field")
    separator = cfg.string("separator")
    target = cfg.string("target_field", required=False, default=source)
    ignore_missing = cfg.boolean("ignore_missing", False)
    preserve_trailing = cfg.boolean("preserve_trailing", False)
    pattern = re.compile(str(separator))

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        src = doc.render(source)
        if _missing(doc, src, ignore_missing, "split"):
            return
        value = doc.get(src)
        if not isinstance(value, str):
            raise _cast_error(src, value, "java.lang.String")
        parts = pattern.split(value)
        if not preserve_trailing:
            while parts and parts[-1] == "":
                parts.pop()
        doc.set(doc.render(target or src), parts)

    p.run = run


def _build_join(p: Processor, cfg: ProcessorConfig) -> None:
    source = cfg.string("field")
    separator = cfg.string("separator")
    target = cfg.string("target_field", required=False, default=source)
    ignore_missing = cfg.boolean("ignore_missing", False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        src = doc.render(source)
        if _missing(doc, src, ignore_missing, "join"):
            return
        value = doc.get(src)
        if not isinstance(value, list):
            raise _cast_error(src, value, "java.util.List")
        doc.set(doc.render(target or src), str(separator).join(str(v) for v in value))

    p.run = run


def _string_or_strings(transform: Callable[[str], str]) -> Callable[[Processor, ProcessorConfig], None]:
    def build(p: Processor, cfg: ProcessorConfig) -> None:
        source = cfg.string("field")
        target = cfg.string("target_field", required=False, default=source)
        ignore_missing = cfg.boolean("ignore_missing", False)
        apply = transform if p.type != "gsub" else _gsub(cfg)

        def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
            src = doc.render(source)
            if _missing(doc, src, ignore_missing, "process it"):
                return
            value = doc.get(src)
            if isinstance(value, list):
                if not all(isinstance(v, str) for v in value):
                    raise _cast_error(src, value, "java.lang.String")
                result: Any = [apply(v) for v in value]
            elif isinstance(value, str):
                result = apply(value)
            else:
                raise _cast_error(src, value, "java.lang.String")
            doc.set(doc.render(target or src), result)

        p.run = run

    return build


def _gsub(cfg: ProcessorConfig) -> Callable[[str], str]:
    raw_pattern = cfg.string("pattern")
    replacement = str(cfg.string("replacement"))
    try:
        pattern = re.compile(str(raw_pattern))
    except re.error as exc:
        raise cfg.error("pattern", f"Invalid regex pattern. {exc}") from exc
    python_replacement = re.sub(r"\$(\d+)", r"\\g<\1>", replacement.replace("\\", "\\\\"))
    return lambda text: pattern.sub(python_replacement, text)


register_processor("split", _build_split)
register_processor("join", _build_join)
register_processor("gsub", _string_or_strings(lambda text: text))
register_processor("html_strip", _string_or_strings(html_strip))
