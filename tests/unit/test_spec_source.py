"""Reading stack files: locations, duplicate keys, interpolation, file references."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.errors import SpecError
from provisioning.stackfile import load_stack
from provisioning.stackfile.source import read_source


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_locations_point_at_values_and_keys(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "s.yaml", "name: a\nmodels:\n  m:\n    model_id: x\n"))
    assert src.value == {"name": "a", "models": {"m": {"model_id": "x"}}}
    loc = src.locate(("models", "m", "model_id"))
    assert loc is not None and (loc.line, loc.column) == (4, 15)
    key = src.locate(("models", "m", "model_id"), key=True)
    assert key is not None and (key.line, key.column) == (4, 5)
    # an unknown path falls back to its nearest located ancestor
    fallback = src.locate(("models", "m", "nope", "deeper"))
    assert fallback is not None and fallback.line == 4


def test_duplicate_keys_are_errors_not_last_wins(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "s.yaml", "name: a\nindices:\n  x: {}\n  x: {settings: {}}\n"))
    assert [i.message for i in src.issues] == ["duplicate key 'x' (first defined at line 3)"]
    assert src.issues[0].location is not None and src.issues[0].location.line == 4


def test_interpolation_defaults_and_types(tmp_path: Path) -> None:
    text = (
        "a: ${SET}\n"
        "b: ${UNSET:-fallback}\n"
        "c: ${EMPTY:-used-when-empty}\n"
        "d: ${EMPTY-kept-empty}\n"
        "e: ${NUM}\n"
        "f: '${NUM}'\n"
        "g: prefix-${SET}-suffix\n"
        "h: costs $$5\n"
    )
    env = {"SET": "value", "EMPTY": "", "NUM": "3"}
    src = read_source(write(tmp_path / "s.yaml", text), env)
    assert not src.issues
    assert src.value == {
        "a": "value",
        "b": "fallback",
        "c": "used-when-empty",
        "d": "",
        "e": 3,
        "f": "3",
        "g": "prefix-value-suffix",
        "h": "costs $5",
    }


def test_unset_variable_names_variable_and_place(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "s.yaml", "name: ok\nurl: http://${HOST}:9200\n"), {})
    (issue,) = src.issues
    assert "HOST is not set" in issue.message
    assert issue.location is not None and issue.location.line == 2
    assert issue.path == "url"


def test_file_reference_relative_to_referencing_file_with_its_own_locations(tmp_path: Path) -> None:
    (tmp_path / "bodies").mkdir()
    write(
        tmp_path / "bodies" / "outer.yaml",
        "settings: {file: inner.yaml}\nmappings:\n  dynamic: ${DYN:-strict}\n",
    )
    write(tmp_path / "bodies" / "inner.yaml", "index:\n  number_of_shards: 1\n")
    src = read_source(write(tmp_path / "s.yaml", "tpl:\n  template: {file: bodies/outer.yaml}\n"), {})
    assert not src.issues
    assert src.value == {
        "tpl": {
            "template": {"settings": {"index": {"number_of_shards": 1}}, "mappings": {"dynamic": "strict"}}
        }
    }
    inner = src.locate(("tpl", "template", "settings", "index", "number_of_shards"))
    assert inner is not None and inner.file.name == "inner.yaml" and inner.line == 2


def test_file_reference_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "x: {file: b.yaml}\n")
    write(tmp_path / "b.yaml", "y: {file: a.yaml}\n")
    src = read_source(write(tmp_path / "s.yaml", "top: {file: a.yaml}\n"), {})
    assert any("cycle" in i.message for i in src.issues)


def test_all_problems_reported_in_one_pass(tmp_path: Path) -> None:
    stack = write(
        tmp_path / "s.yaml",
        "name: ok\nmodls: {}\nindices:\n  UPPER: {}\nsmoke_tests:\n  t: {index: x, text: hi, model: m, k: 0}\n",
    )
    with pytest.raises(SpecError) as caught:
        load_stack(stack, {})
    messages = [i.message for i in caught.value.issues]
    assert len(messages) >= 3
    assert any("did you mean 'models'" in m for m in messages)
    assert any("must be lowercase" in m for m in messages)
    assert any("greater than or equal to 1" in m for m in messages)


def test_schema_errors_and_cross_reference_errors_together(tmp_path: Path) -> None:
    stack = write(
        tmp_path / "s.yaml",
        "name: ok\n"
        "encoders:\n  e: {source: {hub: a/b}, dims: 8, batchsize: 3}\n"
        "index_templates:\n  t:\n    index_patterns: [img*]\n"
        "    template: {mappings: {properties: {v: {type: dense_vector, dims: 4}}}}\n"
        "ingest:\n  j: {index: img, source: {path: .}, encoder: e, vector_field: v}\n",
    )
    with pytest.raises(SpecError) as caught:
        load_stack(stack, {})
    messages = [i.message for i in caught.value.issues]
    assert any("did you mean 'batch_size'" in m for m in messages)
    # the broken encoder is left out of cross-checks rather than reported as undeclared
    assert not any("is not declared" in m for m in messages)


def test_valid_stack_resolves_paths_relative_to_stack_file(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    stack = write(
        tmp_path / "s.yaml",
        "name: ok\n"
        "encoders:\n  e: {source: {hub: a/b}, dims: 4}\n"
        "index_templates:\n  t:\n    index_patterns: [img*]\n"
        "    template: {mappings: {properties: {v: {type: dense_vector, dims: 4}}}}\n"
        "ingest:\n  j: {index: img, source: {path: photos}, encoder: e, vector_field: v}\n",
    )
    loaded = load_stack(stack, {})
    assert loaded.resolve(loaded.spec.ingest["j"].source.path) == tmp_path / "photos"
    assert loaded.effective_mappings("img")["properties"]["v"]["dims"] == 4


def test_explicit_keys_override_merged_ones_and_only_explicit_duplicates_are_errors(tmp_path: Path) -> None:
    """YAML's merge key type: keys of the mapping itself override those '<<' brings in; among the
    merged mappings the first listed wins; two explicit keys of one name are still a duplicate."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "a: &base {x: 1, y: 2}\nb: {<<: *base, y: 3}\nc: {<<: [*base, {x: 9, w: 4}], z: 1}\nd: {p: 1, p: 2}\n"
    )
    located = read_source(path, {})
    assert located.value["b"] == {"x": 1, "y": 3}
    assert located.value["c"] == {"x": 1, "y": 2, "w": 4, "z": 1}
    assert [issue.path for issue in located.issues] == ["d.p"]
