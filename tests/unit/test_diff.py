"""Canonical comparison: what counts as drift and what is Elasticsearch's normalisation."""

from __future__ import annotations

from provisioning.canonical import flatten_settings
from provisioning.resources.diff import diff, equal, mapping_diff


def test_settings_in_any_spelling_compare_equal() -> None:
    a = flatten_settings({"number_of_shards": 1, "index": {"refresh_interval": "1s"}})
    b = flatten_settings({"index": {"number_of_shards": "1", "refresh_interval": "1s"}})
    c = flatten_settings({"index.number_of_shards": "1", "index.refresh_interval": "1s"})
    assert a == b == c == {"index.number_of_shards": "1", "index.refresh_interval": "1s"}
    assert flatten_settings({"index": {"hidden": True}}) == {"index.hidden": "true"}


def test_numbers_compare_as_json_numbers_but_not_bools() -> None:
    assert equal(1, 1.0)
    assert not equal(1, True)
    assert not equal("1", 1)
    assert equal({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})


def test_exact_diff_reports_adds_removes_and_changes() -> None:
    changes = diff({"a": 1, "b": {"c": 2}}, {"b": {"c": 3}, "d": 4})
    assert [(c.path, c.op, c.before, c.after) for c in changes] == [
        ("a", "add", None, 1),
        ("b.c", "change", 3, 2),
        ("d", "remove", 4, None),
    ]
    assert diff({"a": 1}, {"a": 1, "extra": 2}, exact=False) == []


def test_mapping_defaults_are_not_drift_but_unknown_fields_are_in_templates() -> None:
    desired = {"properties": {"v": {"type": "dense_vector", "dims": 4}}}
    live_with_defaults = {
        "properties": {
            "v": {
                "type": "dense_vector",
                "dims": 4,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": "int8_hnsw"},
            }
        }
    }
    assert mapping_diff(desired, live_with_defaults) == []
    live_with_extra_field = {
        "properties": {"v": {"type": "dense_vector", "dims": 4}, "hand_added": {"type": "keyword"}}
    }
    assert [(c.path, c.op) for c in mapping_diff(desired, live_with_extra_field)] == [
        ("properties.hand_added", "remove")
    ]
    # an index's dynamic mapping may add fields: not drift there
    assert mapping_diff(desired, live_with_extra_field, fields_exact=False) == []
    changed = {"properties": {"v": {"type": "dense_vector", "dims": 8}}}
    assert [(c.path, c.before, c.after) for c in mapping_diff(desired, changed)] == [
        ("properties.v.dims", 8, 4)
    ]


def test_declared_defaults_that_elasticsearch_omits_are_not_drift() -> None:
    desired = {
        "properties": {"v": {"type": "dense_vector", "dims": 4, "element_type": "float", "index": True}}
    }
    live = {"properties": {"v": {"type": "dense_vector", "dims": 4}}}
    assert mapping_diff(desired, live, prefix="mappings", fields_exact=False) == []
    non_default = {"properties": {"v": {"type": "dense_vector", "dims": 4, "element_type": "byte"}}}
    assert [c.path for c in mapping_diff(non_default, live)] == ["properties.v.element_type"]
