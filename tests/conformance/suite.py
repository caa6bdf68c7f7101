"""Reading YAML REST test files into sections and steps.

A file holds several YAML documents: an optional ``setup``, an optional ``teardown`` and named tests,
each a list of one-key steps. The clients-tests flavour adds a document ``requires: {stack: ...,
serverless: ..., feature_flag: ...}`` that applies to the whole file.

Values are read with YAML 1.2 core-schema typing (only ``true``/``false`` are booleans, no
sexagesimal numbers or implicit timestamps), which is how Elasticsearch's own runner reads them:
PyYAML's YAML 1.1 defaults would turn ``no``, ``12:30`` or ``2023-05-25T12:30:00Z`` into other types.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PREREQUISITE_KINDS = ("skip", "requires")


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit typing."""


_CoreSchemaLoader.yaml_implicit_resolvers = {}
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreSchemaLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


_CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml_documents(text: str) -> list[Any]:
    """All documents of a YAML stream, typed by the YAML 1.2 core schema."""
    return list(yaml.load_all(text, Loader=_CoreSchemaLoader))


@dataclass
class Step:
    """One step of a section: ``kind`` is ``do``, ``match``, ``skip``... and ``payload`` its value."""

    kind: str
    payload: Any


@dataclass
class Section:
    """A setup, teardown or test: its leading skip/requires steps apart from the rest."""

    name: str
    prerequisites: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


@dataclass
class TestFile:
    __test__ = False  # not a pytest test class
    path: Path
    display: str  # how results name the file
    setup: Section | None = None
    teardown: Section | None = None
    tests: list[Section] = field(default_factory=list)
    file_requires: dict[str, Any] | None = None  # the clients-tests ``requires`` document
    error: str | None = None  # set when the file cannot be read; every test of it then fails


class SuiteError(Exception):
    """A file that does not follow the YAML REST test format."""


def _parse_section(name: str, raw: Any) -> Section:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise SuiteError(f"section [{name}] must be a list of steps, got {type(raw).__name__}")
    section = Section(name)
    leading = True
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or len(item) != 1:
            raise SuiteError(f"section [{name}] step {index + 1} must be a mapping with exactly one key")
        ((kind, payload),) = item.items()
        step = Step(str(kind), payload)
        if leading and step.kind in PREREQUISITE_KINDS:
            section.prerequisites.append(step)
            continue
        leading = False
        section.steps.append(step)
    return section


def parse_file(path: Path, display: str) -> TestFile:
    """Parse one test file; a malformed file comes back with ``error`` set instead of raising."""
    test_file = TestFile(path, display)
    try:
        documents = load_yaml_documents(path.read_text(encoding="utf-8"))
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict):
                raise SuiteError(f"a document must be a mapping, got {type(document).__name__}")
            for name, raw in document.items():
                name = str(name)
                if name == "requires" and isinstance(raw, dict):
                    test_file.file_requires = {**(test_file.file_requires or {}), **raw}
                elif name == "setup":
                    test_file.setup = _parse_section(name, raw)
                elif name == "teardown":
                    test_file.teardown = _parse_section(name, raw)
                else:
                    test_file.tests.append(_parse_section(name, raw))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, SuiteError) as exc:
        test_file.error = f"cannot read test file: {type(exc).__name__}: {exc}"
    return test_file


def discover(paths: list[Path]) -> Iterator[TestFile]:
    """The test files under ``paths`` (files or folders), in a stable order, each named relative to
    the argument it was found under (a folder argument's own name is not repeated)."""
    for root in paths:
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()):
                yield parse_file(path, path.relative_to(root).as_posix())
        elif root.is_file():
            yield parse_file(root, root.name)
        else:
            test_file = TestFile(root, str(root))
            test_file.error = f"no such file or folder: {root}"
            yield test_file
