"""YAML text into nodes, within limits that make a hostile stack file cheap to refuse.

A stack file is plain data written by people, so it never needs much of what YAML allows; an
attacker (or an accident) can use the rest to make a loader spend minutes and gigabytes: aliases
that repeat aliases ("billion laughs"), nesting deep enough to exhaust the interpreter's stack, files
of many megabytes, tags that ask for Python objects. This module composes documents from the
parser's events itself, iteratively (no recursion, whatever the nesting), and enforces, while it
composes and before anything is expanded:

- :data:`MAX_FILE_BYTES` (1 MiB) per file read and :data:`MAX_TOTAL_BYTES` (8 MiB) over all reads
  of one stack (a referenced file counts each time it is referenced); enforced by the reader;
- :data:`MAX_NODES` (50,000) nodes in the stack and every file it references, each alias counted
  as the nodes it repeats, so an alias bomb is refused at the alias that crosses the limit, without
  being expanded;
- :data:`MAX_DEPTH` (100) levels of nesting, counted from the stack's root through aliases and
  ``{file:}`` references, and :data:`MAX_REFERENCE_DEPTH` (16) files referencing files;
- only the standard YAML tags of plain data: ``!!str``, ``!!int``, ``!!float``, ``!!bool``,
  ``!!null``, ``!!timestamp``, ``!!binary`` on scalars, ``!!map`` and ``!!seq`` on collections.
  Anything else (``!!python/...``, ``!!set``, ``!!omap``, ``!custom``) is refused rather than read
  as a plain mapping or list.

The limits are far above real stacks: the largest stack in this repository with its referenced
files is a few hundred nodes, 12 levels deep and a few kilobytes per file; Elasticsearch itself
refuses mappings nested more than 20 objects (40 YAML levels) deep. At the limits, composing and
converting takes well under a second and under 100 MB.

Parsing uses libyaml (PyYAML's C parser) where PyYAML was built with it, else PyYAML's Python
parser; either way the nodes are PyYAML's, with their marks, so positions reach every message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import yaml
from yaml.composer import ComposerError
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 8 << 20
MAX_NODES = 50_000
MAX_DEPTH = 100
MAX_REFERENCE_DEPTH = 16

_YAML = "tag:yaml.org,2002:"
SCALAR_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary"))
_MAP_TAG = _YAML + "map"
_SEQ_TAG = _YAML + "seq"

_RESOLVER = Resolver()
_Parser: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
)

PathPart = str | int


def _start_of(event: Event) -> Mark:
    """The event's start mark (libyaml's marks have the same line and column as PyYAML's)."""
    return cast(Mark, event.start_mark)


def _end_of(event: Event) -> Mark:
    """The event's end mark."""
    return cast(Mark, event.end_mark)


class Refused(Exception):
    """A document refused while composing: the mark where, the key path within the file, why."""

    def __init__(self, mark: Mark | None, path: tuple[PathPart, ...], message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.path = path
        self.message = message


@dataclass
class Budget:
    """What one stack may still spend, shared by the stack file and every file it references.

    ``events`` (parser events composed), ``bytes_read`` and ``converted`` (nodes turned into plain
    data by the reader) count the work done, so tests can assert a bound on it.
    """

    nodes_left: int = MAX_NODES
    bytes_left: int = MAX_TOTAL_BYTES
    events: int = 0
    bytes_read: int = 0
    converted: int = 0


def show_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/name:os.system`` as it is written: ``!!python/name:os.system``."""
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def _tag_refusal(tag: str) -> str:
    return (
        f"YAML tag {show_tag(tag)} is not allowed; a stack file holds plain data only (mappings, "
        "lists, strings, numbers, booleans, null)"
    )


def resolve_scalar(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag YAML gives an untagged scalar (``1`` -> int, ``yes`` -> bool, ``a`` -> str)."""
    return str(_RESOLVER.resolve(ScalarNode, value, implicit))  # type: ignore[no-untyped-call]


@dataclass
class _Open:
    """A collection being composed: its node, what it has added up to, the key awaiting its value."""

    node: CollectionNode
    anchor: str | None
    size: int = 1
    height: int = 1
    key: Node | None = None
    items: list[Node] = field(default_factory=list)


def compose(text: str, *, base: tuple[PathPart, ...], budget: Budget) -> Node | None:
    """Compose the one document in ``text`` into nodes, or refuse it.

    ``base`` is where the document's root lands in the stack (a referenced file's root is the
    reference's place), so depths and key paths count from the stack's root. Returns None for a
    stream with no document. Raises :class:`Refused` for a limit, a disallowed tag, a recursive
    alias or a second document; ``yaml.MarkedYAMLError`` for YAML syntax errors (with marks).
    """
    loader = _Parser(text)
    try:
        return _Composer(base, budget).run(loader)
    finally:
        loader.dispose()


class _Composer:
    def __init__(self, base: tuple[PathPart, ...], budget: Budget) -> None:
        self.base = base
        self.budget = budget
        self.open: list[_Open] = []
        self.anchors: dict[str, tuple[Node, int, int]] = {}
        self.unfinished: set[str] = set()
        self.root: Node | None = None

    def run(self, loader: yaml.SafeLoader | yaml.CSafeLoader) -> Node | None:
        budget = self.budget
        while loader.check_event():
            event = loader.get_event()
            budget.events += 1
            if isinstance(event, ScalarEvent):
                self._scalar(event)
            elif isinstance(event, AliasEvent):
                self._alias(event)
            elif isinstance(event, CollectionStartEvent):
                self._start(event)
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                self._end(_end_of(event))
        return self.root

    # -- where we are ---------------------------------------------------------------------------
    def _path(self, key: str | None = None) -> tuple[PathPart, ...]:
        """The key path of the slot the next node fills (``key``: the scalar being added as a key)."""
        parts: list[PathPart] = list(self.base)
        for frame in self.open:
            if isinstance(frame.node, SequenceNode):
                parts.append(len(frame.items))
            elif frame.key is not None:
                parts.append(str(frame.key.value) if isinstance(frame.key, ScalarNode) else "?")
            elif key is not None:
                parts.append(key)
        return tuple(parts)

    def _level(self) -> int:
        return len(self.base) + len(self.open)

    def _check(self, mark: Mark, size: int, height: int, key: str | None = None) -> None:
        """Refuse a node of ``size`` nodes and ``height`` levels at the current slot if over a limit."""
        if self._level() + height - 1 > MAX_DEPTH:
            where = self._path(key)
            raise Refused(
                mark,
                where if len(where) <= 12 else (*where[:12], "..."),
                f"nested more than {MAX_DEPTH} levels deep (counting through aliases and file "
                "references); a stack file needs far fewer",
            )
        if size > self.budget.nodes_left:
            self.budget.nodes_left = 0
            raise Refused(
                mark,
                self._path(key),
                f"more than {MAX_NODES} YAML nodes in the stack and the files it references, each "
                "alias counted as the nodes it repeats; is this an alias bomb?",
            )
        self.budget.nodes_left -= size

    def _anchor(self, anchor: str | None, node: Node, mark: Mark) -> None:
        if anchor is None:
            return
        if anchor in self.anchors or anchor in self.unfinished:
            first = self.anchors[anchor][0].start_mark if anchor in self.anchors else None
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence", first, "second occurrence", mark
            )

    # -- events ---------------------------------------------------------------------------------
    def _one_document(self, mark: Mark) -> None:
        """Refuse a second document at its first node, before composing any of it."""
        if not self.open and self.root is not None:
            raise Refused(mark, (), "expected one YAML document, found several (remove the extra '---')")

    def _scalar(self, event: ScalarEvent) -> None:
        self._one_document(_start_of(event))
        tag = event.tag
        key = event.value if self._at_key() else None
        if tag is None or tag == "!":
            tag = resolve_scalar(event.value, event.implicit)
        elif tag not in SCALAR_TAGS:
            raise Refused(_start_of(event), self._path(key), _tag_refusal(tag))
        self._check(_start_of(event), 1, 1, key)
        # libyaml spells the plain style "", the Python parser None; nodes use None, as PyYAML composes them.
        node = ScalarNode(tag, event.value, _start_of(event), _end_of(event), style=event.style or None)
        self._anchor(event.anchor, node, _start_of(event))
        if event.anchor is not None:
            self.anchors[event.anchor] = (node, 1, 1)
        self._add(node, 1, 1)

    def _alias(self, event: AliasEvent) -> None:
        self._one_document(_start_of(event))
        anchor = str(event.anchor)
        if anchor in self.unfinished:
            raise Refused(
                _start_of(event),
                self._path(),
                f"alias *{anchor} is used inside the node it names; recursive structures are not allowed",
            )
        if anchor not in self.anchors:
            raise ComposerError(None, None, f"found undefined alias {anchor!r}", _start_of(event))
        node, size, height = self.anchors[anchor]
        self._check(_start_of(event), size, height)
        self._add(node, size, height)

    def _start(self, event: CollectionStartEvent) -> None:
        self._one_document(_start_of(event))
        is_map = isinstance(event, MappingStartEvent)
        default = _MAP_TAG if is_map else _SEQ_TAG
        tag = event.tag
        if tag is None or tag == "!":
            tag = default
        elif tag != default:
            raise Refused(_start_of(event), self._path(), _tag_refusal(tag))
        self._check(_start_of(event), 1, 1)
        node: CollectionNode
        if is_map:
            node = MappingNode(tag, [], _start_of(event), None, flow_style=event.flow_style)
        else:
            assert isinstance(event, SequenceStartEvent)
            node = SequenceNode(tag, [], _start_of(event), None, flow_style=event.flow_style)
        self._anchor(event.anchor, node, _start_of(event))
        if event.anchor is not None:
            self.unfinished.add(event.anchor)
        self.open.append(_Open(node, event.anchor))

    def _end(self, mark: Mark) -> None:
        frame = self.open.pop()
        node = frame.node
        node.end_mark = mark
        if isinstance(node, MappingNode):
            node.value = list(zip(frame.items[0::2], frame.items[1::2], strict=True))
        else:
            node.value = frame.items
        if frame.anchor is not None:
            self.unfinished.discard(frame.anchor)
            self.anchors[frame.anchor] = (node, frame.size, frame.height)
        self._add(node, frame.size, frame.height)

    def _at_key(self) -> bool:
        return bool(self.open) and isinstance(self.open[-1].node, MappingNode) and self.open[-1].key is None

    def _add(self, node: Node, size: int, height: int) -> None:
        if not self.open:
            self.root = node
            return
        parent = self.open[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        parent.items.append(node)
        if isinstance(parent.node, MappingNode):
            parent.key = node if parent.key is None else None
