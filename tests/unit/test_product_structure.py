"""The product reads as one concept per module: checked on the source, nothing imported.

- every module of ``provisioning/`` has a docstring and at most 500 lines;
- the types of plans, changes and resource payloads hold no ``Any``: ``changes.py``,
  ``plan_document.py`` and every module of ``resources/`` never name ``typing.Any``;
- no module of ``provisioning/`` is named like one of the public functions of ``provisioning``
  (a submodule ``plan`` would replace the function ``provisioning.plan`` once imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import provisioning

PRODUCT = Path(__file__).resolve().parents[2] / "provisioning"
MAX_LINES = 500
TYPED_MODULES = [
    PRODUCT / "changes.py",
    PRODUCT / "plan_document.py",
    *sorted((PRODUCT / "resources").glob("*.py")),
]
MODULES = sorted(PRODUCT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PRODUCT)))
def test_module_is_small_and_says_what_it_is(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(PRODUCT)} has {lines} lines; split it along its concepts"
    assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(PRODUCT)} has no docstring"


@pytest.mark.parametrize("path", TYPED_MODULES, ids=lambda p: str(p.relative_to(PRODUCT)))
def test_plan_and_payload_types_hold_no_any(path: Path) -> None:
    tree = ast.parse(path.read_text())
    named = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
        or (isinstance(node, ast.alias) and node.name == "Any")
    ]
    assert not named, f"{path.relative_to(PRODUCT)} uses Any at lines {named}"


def test_no_module_shadows_a_public_function() -> None:
    functions = {name for name in provisioning.__all__ if name[0].islower()}
    modules = {p.stem for p in PRODUCT.glob("*.py")} | {p.name for p in PRODUCT.iterdir() if p.is_dir()}
    assert not functions & modules, f"modules named like public functions: {sorted(functions & modules)}"
    assert functions >= {
        "load_stack",
        "connect",
        "plan",
        "apply",
        "converge",
        "destroy",
        "status",
        "ingest",
        "verify",
        "search",
    }
