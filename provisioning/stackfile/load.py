"""``load_stack``: a stack file in, a validated :class:`Stack` or one :class:`SpecError` with every problem out."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from provisioning.errors import SpecError, SpecIssue
from provisioning.stackfile.checks import cross_check
from provisioning.stackfile.schema import StackSpec
from provisioning.stackfile.source import Located, PathKey, read_source, render_path
from provisioning.stackfile.stack import Stack


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Optional/Union/Annotated peeled off)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _models_at(path: PathKey, data: Any) -> list[type[BaseModel]]:
    """The spec model classes that describe the node at ``path`` (for did-you-mean suggestions)."""
    candidates: list[Any] = [StackSpec]
    for part in path:
        nxt: list[Any] = []
        for cand in candidates:
            for typ in _unwrap(cand):
                if isinstance(typ, type) and issubclass(typ, BaseModel):
                    for name, info in typ.model_fields.items():
                        if part in (name, info.alias):
                            nxt.append(info.annotation)
                else:
                    origin = typing.get_origin(typ)
                    args = typing.get_args(typ)
                    if origin is dict and len(args) == 2 and isinstance(part, str):
                        nxt.append(args[1])
                    elif origin is list and args and isinstance(part, int):
                        nxt.append(args[0])
        candidates = nxt
    found: list[type[BaseModel]] = []
    for cand in candidates:
        for typ in _unwrap(cand):
            if isinstance(typ, type) and issubclass(typ, BaseModel):
                found.append(typ)
    return found


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _walk(value: Any, loc: tuple[int | str, ...]) -> tuple[PathKey, bool]:
    """Map a pydantic error location onto a data path (dropping union tags); True when a dict key is at fault."""
    path: list[str | int] = []
    current = value
    key_error = False
    for part in loc:
        if part == "[key]":
            key_error = True
            continue
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif isinstance(current, Mapping) and isinstance(part, str) and not path:
            path.append(part)  # a missing top-level key
        elif isinstance(current, Mapping) and isinstance(part, str):
            path.append(part)
            current = None
    return tuple(path), key_error


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_issues(located: Located, exc: ValidationError) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        path, key_error = _walk(located.value, tuple(error["loc"]))
        kind = error["type"]
        msg = str(error["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif msg.startswith("Assertion failed, "):
            msg = msg[len("Assertion failed, ") :]
        if kind == "extra_forbidden":
            key = str(path[-1]) if path else "?"
            models = _models_at(path[:-1], located.value)
            allowed = sorted({n for m in models for n in _field_names(m)})
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
            )
            issue = located.issue(path, f"unknown key '{key}'{hint}", key=True)
        elif kind == "missing":
            key = str(path[-1]) if path else "?"
            issue = located.issue(path[:-1], f"missing required key '{key}'")
            issue = SpecIssue(issue.location, render_path(path), issue.message, issue.file)
        elif key_error:
            issue = located.issue(path, msg, key=True)
        else:
            if (
                "input" in error
                and kind not in ("value_error", "assertion_error")
                and not isinstance(error["input"], dict | list)
            ):
                msg = f"{msg} (got {_describe(error['input'])})"
            issue = located.issue(path, msg)
        marker = (issue.path, issue.message)
        if marker not in seen:
            seen.add(marker)
            issues.append(issue)
    return issues


def load_stack(path: str | Path, env: Mapping[str, str] | None = None, *, check: bool = True) -> Stack:
    """Read, interpolate, validate and cross-check a stack file.

    Raises SpecError holding every problem found; the spec is returned only when there is none.
    """
    file = Path(path)
    if file.is_dir():
        raise SpecError(
            [
                SpecIssue(
                    None, "", f"{file} is a directory; pass the stack file (e.g. {file / 'stack.yaml'})", file
                )
            ]
        )
    located = read_source(file, env)
    if located.value is None:
        raise SpecError(located.issues or [SpecIssue(None, "", "the stack file is empty", file)])
    if not isinstance(located.value, dict):
        kind = type(located.value).__name__
        kind = {
            "list": "a list",
            "str": "a string",
            "int": "a number",
            "float": "a number",
            "bool": "a boolean",
        }.get(kind, kind)
        raise SpecError(
            [
                *located.issues,
                located.issue(
                    (), f"the stack file must be a mapping of sections (name:, models:, ...), not {kind}"
                ),
            ]
        )
    issues = list(located.issues)
    failed_paths = {issue.path for issue in issues}
    try:
        spec = StackSpec.model_validate(located.value)
    except ValidationError as exc:
        issues += [i for i in _pydantic_issues(located, exc) if not _covered(i.path, failed_paths)]
        if check and not located.issues:
            issues += _partial_cross_check(file, located, exc)
        raise SpecError(issues) from None
    stack = Stack(spec=spec, path=file, located=located)
    if check and not located.issues:
        # Cross-checks on a tree with holes (unreadable files, failed interpolation) only add noise.
        issues += cross_check(stack)
    if issues:
        raise SpecError(issues)
    return stack


def _covered(path: str, failed: set[str]) -> bool:
    """True when an earlier problem (bad interpolation, missing file) already explains ``path``."""
    return any(path == f or f.startswith(path + ".") or path.startswith(f + ".") for f in failed)


_PLACEHOLDER_NAME = "invalid-stack-name"


def _partial_cross_check(file: Path, located: Located, exc: ValidationError) -> list[SpecIssue]:
    """Cross-check what did validate, so one pass reports reference and dims problems too.

    Entries with schema errors are left out; checks that would only complain that a left-out entry
    is missing are suppressed, since its own error is already reported.
    """
    data = dict(located.value)
    broken: set[tuple[str, str]] = set()
    left_out: dict[str, set[str]] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if not loc:
            return []
        section = str(loc[0])
        if section == "name":
            data["name"] = _PLACEHOLDER_NAME
        elif section == "cluster" or section not in data:
            data.pop(section, None)
        elif len(loc) >= 2 and isinstance(data.get(section), dict):
            entry = str(loc[1])
            broken.add((section, entry))
            left_out.setdefault(section, set()).add(entry)
        else:
            data.pop(section, None)
            broken.add((section, "*"))
    for section, entries in left_out.items():  # once per section: linear in the entries, however many fail
        if isinstance(data.get(section), dict):
            data[section] = {k: v for k, v in data[section].items() if k not in entries}
    try:
        spec = StackSpec.model_validate(data)
    except ValidationError:
        return []
    partial = Stack(spec=spec, path=file, located=located)
    kept: list[SpecIssue] = []
    names = {entry for _, entry in broken}
    for section, entry in broken:
        models = located.value.get("models")
        raw = models.get(entry) if section == "models" and isinstance(models, dict) else None
        if isinstance(raw, dict):
            names |= {str(raw[k]) for k in ("model_id", "alias") if k in raw}
            if isinstance(raw.get("deployment"), dict) and "deployment_id" in raw["deployment"]:
                names.add(str(raw["deployment"]["deployment_id"]))
    sections = {section for section, _ in broken}
    for issue in cross_check(partial):
        if any(f"'{name}' is not declared" in issue.message for name in names) or any(
            issue.path.startswith(section + ".") for section, entry in broken if entry == "*"
        ):
            continue
        if "*" in {e for s, e in broken if s in sections} and "is not declared" in issue.message:
            continue
        kept.append(issue)
    return kept
