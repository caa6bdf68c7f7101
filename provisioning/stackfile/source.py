"""Reading stack files into plain data while remembering where every node came from.

PyYAML's constructors throw positions away and silently keep the last of duplicate keys; both
defeat an error message that points at the line to fix. So documents are composed into nodes,
and converted here with a side table of locations keyed by the node's path in the tree. The same
pass expands ``${VAR}`` interpolation and ``{file: path}`` references, collecting every problem
instead of stopping at the first.

Hostile files are refused cheaply: every file read is size-capped, composition (``compose.py``)
caps nodes after alias expansion, nesting depth and tags, and references nest only so deep; the
limits and their numbers are documented there.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioning.errors import Location, SpecIssue
from provisioning.stackfile.compose import (
    MAX_FILE_BYTES,
    MAX_REFERENCE_DEPTH,
    MAX_TOTAL_BYTES,
    Budget,
    Refused,
    compose,
    resolve_scalar,
    show_tag,
)

PathKey = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_VAR = re.compile(r"\$(?:\$|\{(?P<body>[^}]*)\}|(?P<bare>\{))")
_VAR_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?$", re.S)


def render_path(path: PathKey) -> str:
    """Turn ``("index_templates", "x", "index_patterns", 0)`` into ``index_templates.x.index_patterns[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass
class Located:
    """Plain data (dicts, lists, scalars) plus where each node and mapping key was written."""

    value: Any
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)
    issues: list[SpecIssue] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)
    """What reading spent (events parsed, bytes read, nodes converted) and what was left."""

    def locate(self, path: PathKey, *, key: bool = False) -> Location | None:
        """Best location for ``path``: the node itself, else its closest located ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        probe = tuple(path)
        while True:
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def issue(self, path: PathKey, message: str, *, key: bool = False) -> SpecIssue:
        loc = self.locate(path, key=key)
        return SpecIssue(
            location=loc, path=render_path(path), message=message, file=self.files[0] if self.files else None
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _line_of_offset(text: bytes, offset: int) -> tuple[int, int]:
    before = text[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceReader:
    """Loads one stack file (and the files it references) into a :class:`Located`."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.result = Located(value=None)
        self._seen: set[Path] = set()
        self._constructor = SafeConstructor()

    # -- entry point -------------------------------------------------------------------------
    def read(self, path: Path) -> Located:
        self.result.files.append(path)
        self._seen.add(path.resolve())
        self.result.value = self._load_file(path, (), None, stack=())
        return self.result

    # -- files -------------------------------------------------------------------------------
    def _problem(self, location: Location | None, path: PathKey, message: str, file: Path) -> None:
        self.result.issues.append(
            SpecIssue(location=location, path=render_path(path), message=message, file=file)
        )

    def _read(self, file: Path, at: PathKey, where: Location | None) -> bytes | None:
        """The bytes of ``file``, or None (with the problem recorded) when it cannot or may not be read.

        Only regular files are read (a FIFO would block, ``/dev/zero`` never ends), at most
        MAX_FILE_BYTES of each and MAX_TOTAL_BYTES over all reads of one stack.
        """
        located = where or Location(file, 1, 1)
        try:
            info = file.stat()
        except FileNotFoundError:
            self._problem(where, at, f"file not found: {file}", file)
            return None
        except OSError as exc:
            self._problem(where, at, f"cannot read {file}: {exc.strerror or exc}", file)
            return None
        if stat.S_ISDIR(info.st_mode):
            self._problem(where, at, f"{file} is a directory, not a YAML file", file)
            return None
        if not stat.S_ISREG(info.st_mode):
            self._problem(located, at, f"{file} is not a regular file (a device, pipe or socket)", file)
            return None
        budget = self.result.budget
        too_big = f"{file} is larger than {_mib(MAX_FILE_BYTES)}, the most a stack file or a file it references may be"
        too_much = (
            f"the stack and the files it references come to more than {_mib(MAX_TOTAL_BYTES)} "
            "(a file counts once per reference)"
        )
        if info.st_size > MAX_FILE_BYTES:
            self._problem(located, at, f"{too_big} ({_mib(info.st_size)})", file)
            return None
        if info.st_size > budget.bytes_left:
            self._problem(located, at, too_much, file)
            return None
        try:
            with file.open("rb") as handle:  # the size may have changed since stat; read no more than allowed
                raw = handle.read(min(MAX_FILE_BYTES, budget.bytes_left) + 1)
        except OSError as exc:
            self._problem(where, at, f"cannot read {file}: {exc.strerror or exc}", file)
            return None
        budget.bytes_read += len(raw)
        if len(raw) > MAX_FILE_BYTES:
            self._problem(located, at, too_big, file)
            return None
        if len(raw) > budget.bytes_left:
            self._problem(located, at, too_much, file)
            return None
        budget.bytes_left -= len(raw)
        return raw

    def _load_file(self, file: Path, at: PathKey, ref_loc: Location | None, stack: tuple[Path, ...]) -> Any:
        where = ref_loc
        raw = self._read(file, at, where)
        if raw is None:
            return None
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, col = _line_of_offset(raw, exc.start)
            self._problem(
                Location(file, line, col),
                at,
                f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset {exc.start}); is it binary?",
                file,
            )
            return None
        if "\x00" in text:
            offset = text.index("\x00")
            line, col = _line_of_offset(raw, len(text[:offset].encode()))
            self._problem(Location(file, line, col), at, "contains NUL bytes; is it binary?", file)
            return None
        try:
            root = compose(text, base=at, budget=self.result.budget)
        except Refused as exc:
            mark = exc.mark
            loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
            self._problem(loc, exc.path, exc.message, file)
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
            detail = exc.problem or exc.context or "invalid YAML"
            if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
                detail += " (a tab; YAML does not allow tabs for indentation, use spaces)"
            self._problem(loc, at, f"YAML syntax error: {detail}", file)
            return None
        except yaml.YAMLError as exc:  # ReaderError: control characters outside any node
            position = int(getattr(exc, "position", 0) or 0)
            line, col = _line_of_offset(raw, position)
            self._problem(Location(file, line, col), at, f"not valid YAML text: {exc}", file)
            return None
        if root is None:
            self._problem(where or Location(file, 1, 1), at, f"{file} is empty", file)
            return None
        return self._convert(root, file, at, stack + (file.resolve(),))

    # -- nodes -------------------------------------------------------------------------------
    def _loc(self, node: Node, file: Path) -> Location:
        return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _convert(self, node: Node, file: Path, path: PathKey, stack: tuple[Path, ...]) -> Any:
        self.result.budget.converted += 1
        self.result.values[path] = self._loc(node, file)
        if isinstance(node, ScalarNode):
            return self._scalar(node, file, path)
        if isinstance(node, SequenceNode):
            return [self._convert(item, file, path + (i,), stack) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, file, path, stack)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - composer yields only these

    def _mapping(self, node: MappingNode, file: Path, path: PathKey, stack: tuple[Path, ...]) -> Any:
        # Keys written in this mapping, as opposed to those a '<<' merge key brings in: an explicit
        # key overrides a merged one (YAML's merge key type), two explicit ones are a duplicate.
        explicit = {id(key) for key, _ in node.value if getattr(key, "tag", None) != _MERGE_TAG}
        try:
            self._constructor.flatten_mapping(node)  # resolves '<<' merge keys the way SafeLoader does
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            loc = Location(file, mark.line + 1, mark.column + 1) if mark else self._loc(node, file)
            self._problem(loc, path, f"invalid merge key: {exc.problem}", file)
            return {}
        out: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        explicit_keys: set[str] = set()
        for key_node, value_node in node.value:
            key_loc = self._loc(key_node, file)
            if not isinstance(key_node, ScalarNode):
                self._problem(key_loc, path, "mapping keys must be plain strings", file)
                continue
            key = str(key_node.value)
            child = path + (key,)
            is_explicit = id(key_node) in explicit
            if key in first_seen and is_explicit and key in explicit_keys:
                prior = first_seen[key]
                self._problem(
                    key_loc, child, f"duplicate key '{key}' (first defined at line {prior.line})", file
                )
                continue
            if is_explicit:
                explicit_keys.add(key)
            first_seen[key] = key_loc
            self.result.keys[child] = key_loc
            out[key] = self._convert(value_node, file, child, stack)
        if set(out) == {"file"} and isinstance(out["file"], str):
            return self._reference(out["file"], file, path, stack)
        return out

    def _reference(self, target: str, file: Path, path: PathKey, stack: tuple[Path, ...]) -> Any:
        ref_loc = self.result.values.get(path + ("file",)) or self.result.values.get(path)
        resolved = (file.parent / target) if not Path(target).is_absolute() else Path(target)
        real = resolved.resolve()
        if real in stack:
            self._problem(ref_loc, path, f"file reference cycle: {target} is already being read", file)
            return None
        if len(stack) > MAX_REFERENCE_DEPTH:
            self._problem(
                ref_loc, path, f"file references nested more than {MAX_REFERENCE_DEPTH} files deep", file
            )
            return None
        if real not in self._seen:
            self._seen.add(real)
            self.result.files.append(resolved)
        if not resolved.exists():
            self._problem(
                ref_loc, path + ("file",), f"file not found: {target} (looked for {resolved})", file
            )
            return None
        # Positions inside the referenced file replace the reference's own (its only child: 'file').
        self.result.values.pop(path + ("file",), None)
        value = self._load_file(resolved, path, ref_loc, stack)
        self.result.values.setdefault(path, ref_loc or Location(resolved, 1, 1))
        return value

    def _typed(self, node: ScalarNode, file: Path, path: PathKey) -> Any:
        """A scalar's value by its (standard, checked at composition) tag; a value its tag refuses is a problem."""
        construct = SafeConstructor.yaml_constructors.get(node.tag)
        if construct is None:  # '<<' or '=' written as a value: plain text
            return node.value
        try:
            value = construct(self._constructor, node)
        except (ValueError, TypeError, KeyError, OverflowError, yaml.YAMLError):
            text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self._problem(self._loc(node, file), path, f"{text!r} is not a valid {show_tag(node.tag)}", file)
            return None
        if isinstance(value, _dt.datetime | _dt.date):
            return value.isoformat()
        if isinstance(value, bytes):
            return node.value
        return value

    def _scalar(self, node: ScalarNode, file: Path, path: PathKey) -> Any:
        if node.tag != _STR_TAG:
            return self._typed(node, file, path)
        text: str = node.value
        if "$" not in text:
            return text
        expanded = self._interpolate(text, self._loc(node, file), path, file)
        whole = _VAR.fullmatch(text)
        if expanded and node.style is None and whole and whole.group("body") is not None:
            # A plain scalar that is exactly one ${...} takes the type its value spells (1 -> int).
            tag = resolve_scalar(expanded, (True, False))
            if tag != _STR_TAG:
                return self._typed(ScalarNode(tag, expanded, node.start_mark, node.end_mark), file, path)
        return text if expanded is None else expanded

    def _interpolate(self, text: str, loc: Location, path: PathKey, file: Path) -> str | None:
        failed = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal failed
            if match.group(0) == "$$":
                return "$"
            if match.group("bare") is not None:
                failed = True
                self._problem(
                    loc, path, "unterminated '${' in interpolation (write '$$' for a literal '$')", file
                )
                return match.group(0)
            body = match.group("body") or ""
            parsed = _VAR_BODY.match(body)
            if not parsed:
                failed = True
                self._problem(
                    loc,
                    path,
                    f"malformed interpolation '${{{body}}}': expected ${{NAME}}, ${{NAME:-default}}",
                    file,
                )
                return match.group(0)
            name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
            value = self.env.get(name)
            if op == ":-":
                return value if value else arg
            if op == "-":
                return value if value is not None else arg
            if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
                failed = True
                hint = f": {arg}" if arg else ""
                self._problem(loc, path, f"environment variable {name} is required{hint}", file)
                return match.group(0)
            if value is None:
                failed = True
                self._problem(
                    loc,
                    path,
                    f"environment variable {name} is not set and has no default (write ${{{name}:-default}})",
                    file,
                )
                return match.group(0)
            return value

        out = _VAR.sub(substitute, text)
        return None if failed else out


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column of ``text`` ('' past the end)."""
    lines = text.split("\n", line + 1)
    if line >= len(lines) or column >= len(lines[line]):
        return ""
    return lines[line][column]


def read_source(path: Path, env: Mapping[str, str] | None = None) -> Located:
    """Read ``path`` with its references and interpolation; problems land in ``.issues``."""
    return SourceReader(env).read(path)
