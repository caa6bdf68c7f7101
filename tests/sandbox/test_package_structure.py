"""The sandbox is its own package, apart from the product, and reads as one: checked on the source.

Everything here parses the source with :mod:`ast`; no module of either package is imported.

- ``provisioning/`` never imports ``es_sandbox``: no import statement names it (at any level,
  ``TYPE_CHECKING`` blocks and functions included), and no string names one of its modules (what
  ``importlib`` would need) except the target of the one ``LazyCommand`` in ``provisioning/lazy.py``
  that ``provision sandbox`` loads on first use.
- ``es_sandbox``'s import graph has no cycle. An edge is any import that runs: at module level or
  inside a function (a function-level import does not remove a cycle, it only hides it), plus
  ``importlib.import_module("literal")``; imports under ``if TYPE_CHECKING:`` are left out.
  ``from package import name`` is an edge to the submodule ``package.name`` when there is one, else
  to ``package``; importing ``a.b`` is not counted as an edge to ``a`` (Python runs ``a/__init__``
  first, but a partially initialised parent package is harmless).
- Each ``es_sandbox`` module has a docstring and at most 800 lines, unless its docstring says it
  is a pure data table.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = REPO / "provisioning"
SANDBOX = REPO / "es_sandbox"
LAZY_HELPER = PRODUCT / "lazy.py"
MAX_SANDBOX_LINES = 800
DATA_TABLE_MARK = "pure data table"
SANDBOX_MODULE_NAME = re.compile(r"^es_sandbox(?:[.:]|$)")


def _modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` names the package)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: all of them except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module a (possibly relative) ``from`` import names."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _imported_names(module: str, path: Path, nodes: Iterator[ast.AST]) -> Iterator[tuple[str, int]]:
    """(dotted name, line) for each import among ``nodes``; ``from a import b`` gives ``a.b`` and ``a``."""
    is_package = path.name == "__init__.py"
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
            yield base, node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# --- the product never imports the sandbox -----------------------------------------------------------


def test_product_modules_do_not_import_the_sandbox() -> None:
    offences = []
    for module, path in _modules(PRODUCT).items():
        for name, line in _imported_names(module, path, ast.walk(_parse(path))):
            if SANDBOX_MODULE_NAME.match(name):
                offences.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not offences, "the product must not import the sandbox:\n" + "\n".join(offences)


def _lazy_targets(tree: ast.Module) -> set[int]:
    """ids of the string nodes passed as ``target`` to ``LazyCommand(...)`` (second argument)."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "LazyCommand":
            candidates = node.args[1:2] + [k.value for k in node.keywords if k.arg == "target"]
            targets.update(id(c) for c in candidates if isinstance(c, ast.Constant))
    return targets


def test_the_product_names_sandbox_modules_only_as_a_lazy_command_target() -> None:
    """A string naming an ``es_sandbox`` module is what ``importlib`` would import: only the lazy helper has one."""
    offences = []
    lazy_targets_found = 0
    for path in _modules(PRODUCT).values():
        tree = _parse(path)
        allowed = _lazy_targets(tree) if path == LAZY_HELPER else set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if not SANDBOX_MODULE_NAME.match(node.value.strip()):
                continue
            if id(node) in allowed:
                lazy_targets_found += 1
            else:
                offences.append(f"{path.relative_to(REPO)}:{node.lineno} names {node.value!r}")
    assert not offences, "only provisioning/lazy.py's LazyCommand may name the sandbox:\n" + "\n".join(
        offences
    )
    assert lazy_targets_found == 1, "provision sandbox is registered through one LazyCommand in lazy.py"


# --- the sandbox's import graph ------------------------------------------------------------------------


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports at run time (see the module docstring)."""
    modules = _modules(package_dir)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        tree = _parse(path)
        for name, _line in _imported_names(module, path, _runtime_nodes(tree)):
            if name in modules and name != module:
                edges.add(name)
        # ``from a import b`` yields both ``a.b`` and ``a``: keep ``a`` only when ``b`` is not a module.
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(module, path.name == "__init__.py", node.level, node.module)
                if all(f"{base}.{alias.name}" in modules for alias in node.names):
                    edges.discard(base)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor in on_path:
                return [*path[path.index(successor) :], successor]
            if successor not in done:
                cycle = visit(successor)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def test_find_cycle_reports_the_path() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_import_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""p."""\n')
    (package / "sub" / "__init__.py").write_text('"""s."""\nfrom . import leaf\n')
    (package / "sub" / "leaf.py").write_text('"""l."""\ndef f():\n    from pkg import top\n')
    (package / "top.py").write_text(
        '"""t."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import leaf\n'
        'import importlib\nimportlib.import_module("pkg.sub")\n'
    )
    graph = import_graph(package)
    assert graph == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": {"pkg.top"},
        "pkg.top": {"pkg.sub"},
    }
    assert find_cycle(graph) == ["pkg.sub", "pkg.sub.leaf", "pkg.top", "pkg.sub"]


def test_the_sandbox_has_no_import_cycle() -> None:
    graph = import_graph(SANDBOX)
    assert len(graph) > 20
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in es_sandbox: " + " -> ".join(cycle or [])


def test_the_sandbox_imports_from_the_product_only_its_dependency_free_modules() -> None:
    allowed = {"provisioning.vectors", "provisioning.units"}
    offences = []
    for module, path in _modules(SANDBOX).items():
        for node in ast.walk(_parse(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offences += [
                f"{module}:{node.lineno} imports {name}"
                for name in names
                if (name == "provisioning" or name.startswith("provisioning.")) and name not in allowed
            ]
    assert not offences, "\n".join(offences)


# --- module size and docstrings --------------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(_modules(SANDBOX)))
def test_each_sandbox_module_says_what_it_is_and_stays_small(module: str) -> None:
    path = _modules(SANDBOX)[module]
    docstring = ast.get_docstring(_parse(path)) or ""
    assert docstring.strip(), f"{path.relative_to(REPO)} has no docstring saying what it is"
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if DATA_TABLE_MARK not in docstring:
        assert lines <= MAX_SANDBOX_LINES, (
            f"{path.relative_to(REPO)} has {lines} lines (at most {MAX_SANDBOX_LINES} unless its "
            f"docstring says it is a {DATA_TABLE_MARK}): split it along its seams"
        )
