"""Indices, mappings (dense_vector in full), settings, aliases and templates, with ES's errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

from es_sandbox.versions import Emulation, parse_version
from tests.sandbox.sandbox_helpers import index_name, unique

__all__ = ["index_name"]


@pytest.fixture
def templates(es: Elasticsearch) -> Iterator[list[tuple[str, str]]]:
    """Templates created by a test, deleted afterwards (index templates before components)."""
    created: list[tuple[str, str]] = []
    yield created
    for kind, name in reversed(created):
        if kind == "index":
            es.options(ignore_status=404).indices.delete_index_template(name=name)
    for kind, name in reversed(created):
        if kind == "component":
            es.options(ignore_status=404).cluster.delete_component_template(name=name)


def _mapping(es: Elasticsearch, index: str) -> dict[str, Any]:
    return dict(es.indices.get_mapping(index=index)[index]["mappings"])


def test_get_index_reports_settings_the_way_es_does(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_shards": 1, "number_of_replicas": 0})
    body = es.indices.get(index=index_name)[index_name]
    settings = body["settings"]["index"]
    assert settings["number_of_shards"] == "1"
    assert settings["number_of_replicas"] == "0"
    assert settings["provided_name"] == index_name
    assert settings["creation_date"].isdigit()
    assert len(settings["uuid"]) >= 20
    assert settings["version"]["created"].isdigit()
    assert body["aliases"] == {}
    assert body["mappings"] == {}


def test_invalid_names_and_duplicates(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index="Upper")
    assert caught.value.error == "invalid_index_name_exception"
    assert caught.value.body["error"]["reason"] == "Invalid index name [Upper], must be lowercase"
    es.indices.create(index=index_name)
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name)
    assert caught.value.error == "resource_already_exists_exception"


def test_unknown_setting_is_refused(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name, settings={"knn": True})
    assert caught.value.error == "illegal_argument_exception"
    assert caught.value.body["error"]["reason"].startswith("unknown setting [index.knn]")


def test_unknown_mapping_parameter(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "keyword", "dims": 3}}})
    error = caught.value.body["error"]
    assert error["type"] == "mapper_parsing_exception"
    assert (
        error["reason"] == "Failed to parse mapping: unknown parameter [dims] on mapper [f] of type [keyword]"
    )
    assert error["root_cause"][0]["reason"] == "unknown parameter [dims] on mapper [f] of type [keyword]"
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "vector"}}})
    assert (
        caught.value.body["error"]["root_cause"][0]["reason"]
        == "No handler for type [vector] declared on field [f]"
    )


def test_dense_vector_defaults(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "small": {"type": "dense_vector", "dims": 3},
                "clip": {"type": "dense_vector", "dims": 512},
                "raw": {"type": "dense_vector", "dims": 4, "index": False},
                "bytes": {"type": "dense_vector", "dims": 4, "element_type": "byte", "similarity": "l2_norm"},
            }
        },
    )
    props = _mapping(es, index_name)["properties"]
    assert props["small"] == {
        "type": "dense_vector",
        "dims": 3,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100},
    }
    # The 512-dim default depends on the version and license (es_sandbox.versions): bbq_disk from
    # 9.4 where the license allows it, bbq_hnsw from 9.1, int8_hnsw before.
    version = Emulation(parse_version(es.info()["version"]["number"]))
    enterprise = es.license.get()["license"]["type"] in ("trial", "enterprise")
    if version.has("dense_vector.default_bbq_disk") and enterprise:
        expected = {"type": "bbq_disk", "cluster_size": 384, "rescore_vector": {"oversample": 3.0}}
    elif version.has("dense_vector.default_bbq_hnsw"):
        expected = {
            "type": "bbq_hnsw",
            "m": 16,
            "ef_construction": 100,
            "rescore_vector": {"oversample": 3.0},
        }
    else:
        expected = {"type": "int8_hnsw", "m": 16, "ef_construction": 100}
    assert props["clip"]["index_options"] == expected
    assert props["raw"] == {"type": "dense_vector", "dims": 4, "index": False}
    assert props["bytes"]["element_type"] == "byte"
    assert "index_options" not in props["bytes"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            {"type": "dense_vector", "dims": 5000},
            "The number of dimensions should be in the range [1, 4096] but was [5000]",
        ),
        (
            {"type": "dense_vector", "dims": 0},
            "The number of dimensions should be in the range [1, 4096] but was [0]",
        ),
        (
            {"type": "dense_vector", "dims": 32, "index_options": {"type": "bbq_hnsw"}},
            "bbq_hnsw does not support dimensions fewer than 64; provided=32",
        ),
        (
            {"type": "dense_vector", "dims": 3, "index_options": {"type": "int4_hnsw"}},
            "int4_hnsw only supports even dimensions; provided=3",
        ),
        (
            {
                "type": "dense_vector",
                "dims": 4,
                "element_type": "byte",
                "index_options": {"type": "int8_hnsw"},
            },
            "[element_type] cannot be [byte] when using index type [int8_hnsw]",
        ),
        (
            {"type": "dense_vector", "dims": 4, "index_options": {"type": "ivf"}},
            "Unknown vector index options type [ivf] for field [v]",
        ),
        (
            {"type": "dense_vector", "dims": 4, "index": False, "similarity": "cosine"},
            "Field [similarity] can only be specified for a field of type [dense_vector] when it is indexed",
        ),
        (
            {"type": "dense_vector", "dims": 12, "element_type": "bit"},
            "The number of dimensions for should be a multiple of 8 but was [12]",
        ),
        (
            {"type": "dense_vector", "dims": 16, "element_type": "bit", "similarity": "cosine"},
            "The [l2_norm] similarity is the only supported similarity for bit vectors",
        ),
        (
            {
                "type": "dense_vector",
                "dims": 4,
                "index_options": {"type": "int8_hnsw", "rescore_vector": {"oversample": 20}},
            },
            "oversample must be less than or equal to 10",
        ),
    ],
)
def test_dense_vector_validation(
    es: Elasticsearch, index_name: str, field: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index_name, mappings={"properties": {"v": field}})
    assert caught.value.error == "mapper_parsing_exception"
    assert caught.value.body["error"]["root_cause"][0]["reason"] == message


def test_mapping_updates_are_additive_and_conflicts_are_refused(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "v": {"type": "dense_vector", "dims": 4, "similarity": "dot_product"},
                "name": {"type": "keyword"},
            }
        },
    )
    es.indices.put_mapping(index=index_name, properties={"caption": {"type": "text"}})
    assert set(_mapping(es, index_name)["properties"]) == {"v", "name", "caption"}
    with pytest.raises(BadRequestError) as caught:
        es.indices.put_mapping(
            index=index_name,
            properties={"v": {"type": "dense_vector", "dims": 8, "similarity": "dot_product"}},
        )
    assert caught.value.error == "illegal_argument_exception"
    assert caught.value.body["error"]["reason"] == (
        "Mapper for [v] conflicts with existing mapper:\n\tCannot update parameter [dims] from [4] to [8]"
    )
    with pytest.raises(BadRequestError) as caught:
        es.indices.put_mapping(
            index=index_name, properties={"v": {"type": "dense_vector", "dims": 4, "similarity": "cosine"}}
        )
    assert (
        "Cannot update parameter [similarity] from [dot_product] to [cosine]"
        in caught.value.body["error"]["reason"]
    )
    with pytest.raises(BadRequestError) as caught:
        es.indices.put_mapping(index=index_name, properties={"name": {"type": "text"}})
    assert (
        caught.value.body["error"]["reason"]
        == "mapper [name] cannot be changed from type [keyword] to [text]"
    )


def test_dims_are_set_by_the_first_document(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"v": {"type": "dense_vector"}}})
    assert "dims" not in _mapping(es, index_name)["properties"]["v"]
    es.index(index=index_name, id="1", document={"v": [0.1, 0.2, 0.3]}, refresh=True)
    assert _mapping(es, index_name)["properties"]["v"]["dims"] == 3


def test_dynamic_mapping(es: Elasticsearch, index_name: str) -> None:
    es.index(
        index=index_name,
        id="1",
        document={
            "title": "Snow",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "when": "2024-01-02",
            "meta": {"a": "b"},
        },
    )
    props = _mapping(es, index_name)["properties"]
    assert props["title"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["count"] == {"type": "long"}
    assert props["ratio"] == {"type": "float"}
    assert props["ok"] == {"type": "boolean"}
    assert props["when"] == {"type": "date"}
    assert props["meta"] == {
        "properties": {"a": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}}
    }


def test_strict_dynamic_mapping(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name, mappings={"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}
    )
    with pytest.raises(BadRequestError) as caught:
        es.index(index=index_name, id="1", document={"a": "x", "b": "y"})
    assert caught.value.error == "strict_dynamic_mapping_exception"
    assert (
        "mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed"
        in caught.value.body["error"]["reason"]
    )


def test_delete_refuses_wildcards_and_reports_missing(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    with pytest.raises(BadRequestError) as caught:
        es.indices.delete(index=index_name[:6] + "*")
    assert caught.value.body["error"]["reason"] == "Wildcard expressions or all indices are not allowed"
    es.indices.delete(index=index_name)
    with pytest.raises(NotFoundError):
        es.indices.delete(index=index_name)
    assert es.options(ignore_status=404).indices.delete(index=index_name, ignore_unavailable=True)[
        "acknowledged"
    ]


def test_aliases(es: Elasticsearch, index_name: str) -> None:
    alias = unique("alias")
    es.indices.create(index=index_name, aliases={alias: {}})
    assert es.indices.get_alias(name=alias) == {index_name: {"aliases": {alias: {}}}}
    es.index(index=alias, id="1", document={"x": 1}, refresh=True)
    assert es.count(index=alias)["count"] == 1
    es.indices.delete_alias(index=index_name, name=alias)
    assert not es.indices.exists_alias(name=alias)


def test_settings_update(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    es.indices.put_settings(
        index=index_name, settings={"index": {"refresh_interval": "5s", "number_of_replicas": 0}}
    )
    settings = es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert settings["refresh_interval"] == "5s" and settings["number_of_replicas"] == "0"
    with pytest.raises(BadRequestError):
        es.indices.put_settings(index=index_name, settings={"index": {"number_of_shards": 2}})


# -- templates ------------------------------------------------------------------------------------------


def test_template_composition_order_and_simulation(
    es: Elasticsearch, templates: list[tuple[str, str]]
) -> None:
    base, vectors, tmpl = unique("ct-base"), unique("ct-vec"), unique("it")
    pattern = unique("img") + "-*"
    es.cluster.put_component_template(
        name=base,
        template={
            "settings": {"number_of_shards": 1, "refresh_interval": "2s"},
            "mappings": {"properties": {"name": {"type": "keyword"}, "caption": {"type": "keyword"}}},
        },
    )
    templates.append(("component", base))
    es.cluster.put_component_template(
        name=vectors,
        template={
            "settings": {"refresh_interval": "3s"},
            "mappings": {
                "properties": {"caption": {"type": "text"}, "v": {"type": "dense_vector", "dims": 4}}
            },
        },
    )
    templates.append(("component", vectors))
    es.indices.put_index_template(
        name=tmpl,
        index_patterns=[pattern],
        composed_of=[base, vectors],
        priority=200,
        template={"settings": {"number_of_replicas": 0}, "aliases": {"images": {}}},
        meta={"managed_by": "provision"},
        version=3,
    )
    templates.append(("index", tmpl))
    got = es.indices.get_index_template(name=tmpl)["index_templates"][0]["index_template"]
    assert got["composed_of"] == [base, vectors]
    assert got["_meta"] == {"managed_by": "provision"} and got["version"] == 3 and got["priority"] == 200

    index = pattern.replace("*", "1")
    simulated = es.indices.simulate_index_template(name=index)["template"]
    settings = simulated["settings"]["index"]
    assert settings["refresh_interval"] == "3s"  # the later component wins
    assert settings["number_of_replicas"] == "0"
    assert simulated["mappings"]["properties"]["caption"] == {"type": "text"}
    assert simulated["mappings"]["properties"]["name"] == {"type": "keyword"}
    assert "images" in simulated["aliases"]

    es.indices.create(index=index, mappings={"properties": {"extra": {"type": "long"}}})
    try:
        created = es.indices.get(index=index)[index]
        assert set(created["mappings"]["properties"]) == {"name", "caption", "v", "extra"}
        assert created["settings"]["index"]["refresh_interval"] == "3s"
        assert "images" in created["aliases"]
    finally:
        es.indices.delete(index=index)


def test_overlapping_templates_need_different_priorities(
    es: Elasticsearch, templates: list[tuple[str, str]]
) -> None:
    first, second = unique("it-a"), unique("it-b")
    prefix = unique("ov")
    es.indices.put_index_template(name=first, index_patterns=[f"{prefix}-*"], priority=10)
    templates.append(("index", first))
    with pytest.raises(BadRequestError) as caught:
        es.indices.put_index_template(name=second, index_patterns=[f"{prefix}-x*"], priority=10)
    assert caught.value.body["error"]["reason"] == (
        f"index template [{second}] has index patterns [{prefix}-x*] matching patterns from existing templates "
        f"[{first}] with patterns ({first} => [{prefix}-*]) that have the same priority [10], multiple index "
        "templates may not match during index creation, please use a different priority"
    )
    es.indices.put_index_template(name=second, index_patterns=[f"{prefix}-x*"], priority=11)
    templates.append(("index", second))


def test_template_errors(es: Elasticsearch, templates: list[tuple[str, str]]) -> None:
    name = unique("it")
    with pytest.raises(BadRequestError) as caught:
        es.indices.put_index_template(name=name, index_patterns=["zz-*"], composed_of=["no-such-component"])
    assert caught.value.error == "invalid_index_template_exception"
    assert (
        "specifies component templates [no-such-component] that do not exist"
        in caught.value.body["error"]["reason"]
    )
    component = unique("ct")
    es.cluster.put_component_template(name=component, template={"settings": {"number_of_shards": 1}})
    templates.append(("component", component))
    es.indices.put_index_template(name=name, index_patterns=[unique("zz") + "-*"], composed_of=[component])
    templates.append(("index", name))
    with pytest.raises(BadRequestError) as caught:
        es.cluster.delete_component_template(name=component)
    assert caught.value.body["error"]["reason"] == (
        f"component templates [{component}] cannot be removed as they are still in use by index templates [{name}]"
    )
    with pytest.raises(NotFoundError) as missing:
        es.indices.get_index_template(name=unique("none"))
    assert missing.value.error == "resource_not_found_exception"


def test_template_mapping_is_validated(es: Elasticsearch) -> None:
    with pytest.raises(ApiError) as caught:
        es.cluster.put_component_template(
            name=unique("ct"),
            template={"mappings": {"properties": {"v": {"type": "dense_vector", "dims": 9000}}}},
        )
    assert caught.value.meta.status == 400
    assert caught.value.body["error"]["root_cause"][0]["reason"] == (
        "The number of dimensions should be in the range [1, 4096] but was [9000]"
    )


def test_cluster_health_waits_for_named_indices_to_exist(es: Elasticsearch, index_name: str) -> None:
    # A concrete name that does not exist is waited for (ES's TransportClusterHealthAction): red,
    # then 408 with timed_out once the timeout passes; a wildcard matching nothing is green at once.
    missing = es.options(ignore_status=408).cluster.health(index=unique("absent"), timeout="200ms")
    assert missing.meta.status == 408
    assert (missing["status"], missing["timed_out"]) == ("red", True)
    empty = es.cluster.health(index=f"{unique('absent')}*", timeout="200ms")
    assert (empty["status"], empty["timed_out"]) == ("green", False)
    es.indices.create(index=index_name, settings={"number_of_replicas": 0})
    found = es.cluster.health(index=index_name, wait_for_status="green", timeout="5s")
    assert (found["status"], found["timed_out"]) == ("green", False)


def test_deleting_templates_by_names_and_patterns(
    es: Elasticsearch, templates: list[tuple[str, str]]
) -> None:
    # MetadataIndexTemplateService: several names are exact and must all exist (the error names the
    # missing ones); one name is a pattern that must match something unless it is "*".
    kept, absent = unique("ct"), unique("absent")
    es.cluster.put_component_template(name=kept, template={})
    templates.append(("component", kept))
    with pytest.raises(NotFoundError) as several:
        es.cluster.delete_component_template(name=f"{kept},{absent}")
    assert several.value.body["error"]["reason"] == absent
    with pytest.raises(NotFoundError) as pattern:
        es.cluster.delete_component_template(name=f"{absent}*")
    assert pattern.value.body["error"]["reason"] == f"{absent}*"
    with pytest.raises(NotFoundError) as index_templates:
        es.indices.delete_index_template(name=f"{absent},{absent}-2")
    assert index_templates.value.body["error"]["reason"] == f"index_template [{absent},{absent}-2] missing"
    assert es.cluster.get_component_template(name=kept)["component_templates"]  # nothing was removed
    assert es.cluster.delete_component_template(name=f"{kept[:-3]}*")["acknowledged"]
    assert es.options(ignore_status=404).cluster.get_component_template(name=kept).meta.status == 404
