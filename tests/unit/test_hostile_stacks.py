"""Hostile stack files end quickly, in little memory, with exit 1 and a located message.

Alias bombs, nesting deep enough to exhaust the interpreter's stack, multi-megabyte files, files
referenced over and over, and tags that ask for Python objects. The small ones are in the
malformed-stack corpus (tests/data/bad_stacks); the big ones are generated here.

Each case is checked twice:
- in process, through ``read_source`` and ``load_stack``: the pass criterion is the work done
  (parser events, nodes converted, bytes read, all counted by the reader's budget), which is
  deterministic;
- as a user runs it, ``python -m provisioning validate`` in a child process under a 1 GiB address
  space limit, whose peak RSS comes from ``wait4`` in a small launcher process: under 200 MB, with
  a wide wall-clock guard (10 s; before the limits existed, the alias bomb ran past 60 s and 1 GB).
Run with ``-s`` to see the measured time and memory of each case.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioning.errors import SpecError
from provisioning.stackfile import load_stack
from provisioning.stackfile.compose import MAX_DEPTH, MAX_NODES, MAX_TOTAL_BYTES
from provisioning.stackfile.source import read_source

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad_stacks"
LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): ", re.M)

MAX_RSS_MB = 200
TIME_GUARD_S = 10.0
CHILD_ADDRESS_SPACE = 1 << 30


def _stack(directory: Path, text: str, name: str = "stack.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _flow_nesting(d: Path) -> Path:
    return _stack(d, "name: x\nmodels: " + "[" * 100_000 + "]" * 100_000 + "\n")


def _block_nesting(d: Path) -> Path:
    lines = ["name: x", "models:"] + ["  " * i + f"k{i}:" for i in range(1, 600)] + ["  " * 600 + "v: 1"]
    return _stack(d, "\n".join(lines) + "\n")


def _alias_nesting(d: Path) -> Path:
    """Shallow as written, deep once expanded: each anchor wraps the previous one in a list."""
    lines = ["name: x", "x-chain:", "  a0: &a0 [x]"]
    lines += [f"  a{i}: &a{i} [*a{i - 1}]" for i in range(1, 150)]
    return _stack(d, "\n".join(lines) + "\n")


def _reference_chain(d: Path) -> Path:
    for i in range(1, 30):
        _stack(d, f"{{file: f{i + 1}.yaml}}\n" if i < 29 else "{}\n", f"f{i}.yaml")
    return _stack(d, "name: x\npipelines:\n  p: {file: f1.yaml}\n")


def _big_stack(d: Path) -> Path:
    return _stack(d, "name: x\n" + ("# " + "x" * 98 + "\n") * 50_000)  # 5 MB of comments


def _big_reference(d: Path) -> Path:
    _stack(d, "processors: []\n" + ("# " + "x" * 98 + "\n") * 30_000, "pipeline.yaml")  # 3 MB
    return _stack(d, "name: x\npipelines:\n  p: {file: pipeline.yaml}\n")


def _referenced_too_often(d: Path) -> Path:
    """Each file is under the per-file limit; referenced ten times, they exceed the total."""
    _stack(d, "processors: []\n" + ("# " + "x" * 98 + "\n") * 10_000, "pipeline.yaml")  # 1 MB
    refs = "".join(f"  p{i}: {{file: pipeline.yaml}}\n" for i in range(10))
    return _stack(d, "name: x\npipelines:\n" + refs)


def _many_nodes(d: Path) -> Path:
    return _stack(d, "name: x\nmodels: [" + ",".join("a" for _ in range(500_000)) + "]\n")  # 1 MB


def _huge_integer(d: Path) -> Path:
    return _stack(d, "name: x\nmodels: {m: {dims: " + "9" * 100_000 + "}}\n")


def _corpus(name: str) -> Callable[[Path], Path]:
    return lambda _: BAD / name


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    expect: str


CASES = [
    Case("alias_bomb", _corpus("yaml_alias_bomb.yaml"), "is this an alias bomb?"),
    Case("merge_key_bomb", _corpus("yaml_merge_key_bomb.yaml"), "is this an alias bomb?"),
    Case("recursive_alias", _corpus("yaml_recursive_alias.yaml"), "recursive structures are not allowed"),
    Case("deep_nesting", _corpus("yaml_deep_nesting.yaml"), f"nested more than {MAX_DEPTH} levels deep"),
    Case("flow_nesting_100k", _flow_nesting, "nest"),
    Case("block_nesting_600", _block_nesting, f"nested more than {MAX_DEPTH} levels deep"),
    Case("alias_nesting", _alias_nesting, f"nested more than {MAX_DEPTH} levels deep"),
    Case("reference_chain", _reference_chain, "file references nested more than 16 files deep"),
    Case("big_stack_file", _big_stack, "is larger than 1.0 MiB"),
    Case("big_referenced_file", _big_reference, "is larger than 1.0 MiB"),
    Case("referenced_too_often", _referenced_too_often, "come to more than 8.0 MiB"),
    Case("many_nodes", _many_nodes, f"more than {MAX_NODES} YAML nodes"),
    Case("huge_integer", _huge_integer, "is not a valid !!int"),
    Case("python_object_tag", _corpus("yaml_python_object_tag.yaml"), "!!python/object/apply:os.system"),
    Case("python_name_tag", _corpus("yaml_python_name_tag.yaml"), "!!python/name:os.system is not allowed"),
    Case("custom_mapping_tag", _corpus("yaml_custom_tag_mapping.yaml"), "!Deployment is not allowed"),
    Case("device_reference", _corpus("file_ref_device.yaml"), "/dev/zero is not a regular file"),
]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case's stack file, generated once."""
    out: dict[str, Path] = {}
    for case in CASES:
        out[case.name] = case.make(tmp_path_factory.mktemp(case.name))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reading_does_bounded_work_and_locates_the_problem(case: Case, made: dict[str, Path]) -> None:
    path = made[case.name]
    started = time.perf_counter()
    located = read_source(path, env={})
    seconds = time.perf_counter() - started
    budget = located.budget
    assert budget.events <= MAX_NODES + 100, budget
    assert budget.converted <= MAX_NODES, budget
    assert budget.bytes_read <= MAX_TOTAL_BYTES + 1, budget
    matching = [i for i in located.issues if case.expect in i.message]
    assert matching, [str(i) for i in located.issues]
    assert all(i.location is not None for i in matching)
    assert seconds < TIME_GUARD_S

    with pytest.raises(SpecError) as raised:
        load_stack(path, env={})
    assert any(case.expect in issue.message and issue.location for issue in raised.value.issues)


def test_an_alias_bomb_is_refused_without_being_expanded() -> None:
    located = read_source(BAD / "yaml_alias_bomb.yaml", env={})
    assert located.budget.events < 500  # the file's own events; 9**9 nodes if expanded
    assert located.budget.converted == 0
    assert located.value is None


# A small launcher process runs the command and measures it. Measuring straight from the test
# process would not work: Linux carries a process's peak RSS across exec, so a child forked from a
# pytest that has loaded torch would report pytest's size, not its own.
_LAUNCHER = """
import json, os, resource, subprocess, sys, time
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"code": proc.returncode, "seconds": time.perf_counter() - started,
               "rss_mb": usage.ru_maxrss / 1024}, out)
"""


def _validate_in_child(path: Path, tmp_path: Path) -> tuple[int, str, float, float]:
    """Exit code, stderr, wall seconds and peak RSS (MB) of ``python -m provisioning validate``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    measured = tmp_path / "measured.json"
    command = [sys.executable, "-m", "provisioning", "validate", path.name]
    launcher = [sys.executable, "-c", _LAUNCHER, str(measured), str(CHILD_ADDRESS_SPACE), *command]
    done = subprocess.run(launcher, cwd=path.parent, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(measured.read_text())
    return int(numbers["code"]), done.stderr, float(numbers["seconds"]), float(numbers["rss_mb"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_exits_1_fast_and_small(case: Case, made: dict[str, Path], tmp_path: Path) -> None:
    code, stderr, seconds, rss_mb = _validate_in_child(made[case.name], tmp_path)
    measured = f"{case.name}: {seconds:.2f} s, {rss_mb:.0f} MB peak RSS"
    print(f"\n{measured}")
    assert code == 1, f"{measured}, exit {code}: {stderr[-2000:]}"
    assert "Traceback" not in stderr
    lines = [m.group(0) for m in LOCATED.finditer(stderr)]
    assert lines, stderr[-2000:]
    assert any(case.expect in line for line in stderr.splitlines() if LOCATED.match(line)), stderr[-2000:]
    assert rss_mb < MAX_RSS_MB, measured
    assert seconds < TIME_GUARD_S, measured


# -- what real stacks do still reads as before -------------------------------------------------


def test_anchors_merge_keys_and_standard_tags_still_read(tmp_path: Path) -> None:
    text = (
        "defaults: &d {number_of_allocations: 1, priority: normal}\n"
        "a: {<<: *d, threads_per_allocation: 2}\n"
        "b: *d\n"
        "patterns: &p [x*, y*]\n"
        "c: {index_patterns: *p}\n"
        "s: !!str 123\n"
        "f: !!float 1\n"
        "i: !!int '7'\n"
        "n: !!null ''\n"
        "t: !!timestamp 2024-01-02\n"
        "m: !!map {k: v}\n"
        "q: !!seq [1]\n"
        "plain: 12\n"
    )
    located = read_source(_stack(tmp_path, text), env={})
    assert not located.issues, [str(i) for i in located.issues]
    value = located.value
    assert value["a"] == {"number_of_allocations": 1, "priority": "normal", "threads_per_allocation": 2}
    assert value["b"] == {"number_of_allocations": 1, "priority": "normal"}
    assert value["c"] == {"index_patterns": ["x*", "y*"]}
    assert (value["s"], value["f"], value["i"], value["n"]) == ("123", 1.0, 7, None)
    assert value["t"] == "2024-01-02"
    assert (value["m"], value["q"], value["plain"]) == ({"k": "v"}, [1], 12)
    loc = located.locate(("b", "priority"))
    assert loc is not None and loc.line == 1  # an alias is located where its anchor was written


def test_the_limits_leave_room_for_large_real_stacks(tmp_path: Path) -> None:
    """A mapping of 1,000 fields (Elasticsearch's default field limit) with objects nested 20 deep
    (its depth limit), shared by five templates through an alias: far beyond real stacks (a few
    hundred nodes, 9 levels), and within the limits."""
    fields = "".join(f"      f{i}: {{type: keyword}}\n" for i in range(1000))
    nested = "      deep: " + "{properties: {o: " * 20 + "{type: keyword}" + "}}" * 20 + "\n"
    templates = "".join(
        f"  t{i}: {{index_patterns: [t{i}-*], template: {{mappings: *m}}}}\n" for i in range(5)
    )
    text = (
        "name: big\nx-mappings:\n  m: &m\n    properties:\n"
        + fields
        + nested
        + "index_templates:\n"
        + templates
    )
    located = read_source(_stack(tmp_path, text), env={})
    assert not located.issues, [str(i) for i in located.issues][:5]
    assert 20_000 < MAX_NODES - located.budget.nodes_left <= MAX_NODES
    mappings = located.value["index_templates"]["t4"]["template"]["mappings"]
    assert len(mappings["properties"]) == 1001


@pytest.mark.parametrize(
    "name", ["alias_bomb", "recursive_alias", "flow_nesting_100k", "block_nesting_600", "many_nodes"]
)
def test_the_limits_hold_with_pyyaml_pure_python_parser(
    name: str, made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where PyYAML was built without libyaml, its Python parser feeds the same composer."""
    import yaml

    from provisioning.stackfile import compose

    monkeypatch.setattr(compose, "_Parser", yaml.SafeLoader)
    case = next(c for c in CASES if c.name == name)
    located = read_source(made[name], env={})
    assert located.budget.events <= MAX_NODES + 100
    assert any(case.expect in i.message and i.location for i in located.issues), located.issues
