"""Property-based convergence: whatever valid spelling a stack uses, once applied it plans as
unchanged; and a real change to it is always seen.

Elasticsearch normalises what it stores (dotted field names become objects, numbers and booleans
given as strings come back parsed, settings come back nested with string values, alias ``routing``
comes back split, byte sizes come back in one unit). Hypothesis generates valid mappings,
settings, aliases, component and index templates, indices, pipelines and deployment parameters in
many spellings; each is applied to the cluster under test and planned again. Runs with a fixed seed
(derandomized) so CI is reproducible; the example counts are the ``EXAMPLES`` below.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import provisioning
from tests.conftest import REPO, Target
from tests.integration.stacks import connect, unique, write_stack

SEED = 20261129
EXAMPLES = 40
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure prints the example as drawn
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TEXT_MODEL = REPO / "models" / "tiny-clip" / "text"

NAMES = st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=6)


# -- spellings of one value ---------------------------------------------------------------------
def spelled_int(value: int) -> st.SearchStrategy[int | str]:
    """An integer as a number or as the string Elasticsearch parses it from."""
    return st.sampled_from([value, str(value)])


def spelled_bool(value: bool) -> st.SearchStrategy[bool | str]:
    return st.sampled_from([value, "true" if value else "false"])


# -- mappings -----------------------------------------------------------------------------------
@st.composite
def leaf_field(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["keyword", "text", "integer", "long", "float", "boolean", "date", "geo_point", "dense_vector"]
        )
    )
    field: dict[str, Any] = {"type": kind}
    if kind == "keyword":
        if draw(st.booleans()):
            field["ignore_above"] = draw(st.integers(1, 4096).flatmap(spelled_int))
        if draw(st.booleans()):
            field["doc_values"] = draw(st.booleans().flatmap(spelled_bool))
    elif kind in ("integer", "long", "float"):
        if draw(st.booleans()):
            field["coerce"] = draw(st.booleans().flatmap(spelled_bool))
        if draw(st.booleans()):
            field["ignore_malformed"] = draw(st.booleans().flatmap(spelled_bool))
    elif kind == "text":
        if draw(st.booleans()):
            field["norms"] = draw(st.booleans().flatmap(spelled_bool))
    elif kind == "date":
        if draw(st.booleans()):
            field["format"] = draw(st.sampled_from(["strict_date_optional_time||epoch_millis", "yyyy-MM-dd"]))
    elif kind == "dense_vector":
        field["dims"] = draw(st.sampled_from([4, 8, 16]))  # an integer only: the mapper refuses "4"
        field["similarity"] = draw(st.sampled_from(["cosine", "l2_norm", "max_inner_product"]))
        if draw(st.booleans()):
            itype = draw(st.sampled_from(["hnsw", "int8_hnsw", "flat", "int8_flat"]))
            options: dict[str, Any] = {"type": itype}
            if itype.endswith("hnsw"):
                options["m"] = draw(st.sampled_from([8, 16, 32]).flatmap(spelled_int))
                options["ef_construction"] = draw(st.sampled_from([64, 100, 128]))
            field["index_options"] = options
    return field


def object_tree(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """``properties`` of unique names: leaves, and (while depth allows) objects of their own."""
    child = leaf_field() if depth <= 0 else st.one_of(leaf_field(), object_field(depth - 1))
    return st.dictionaries(NAMES, child, min_size=1, max_size=4)


@st.composite
def object_field(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    field: dict[str, Any] = {"properties": draw(object_tree(depth))}
    if draw(st.booleans()):
        field["type"] = "object"
    return field


@st.composite
def spelled_properties(draw: st.DrawFn, tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with some objects written as dotted field names (``exif.date``) instead."""
    out: dict[str, Any] = {}
    for name, field in tree.items():
        if "properties" in field:
            inner = draw(spelled_properties(field["properties"]))
            if draw(st.booleans()):
                for child, definition in inner.items():
                    out[f"{name}.{child}"] = definition
                continue
            field = {**field, "properties": inner}
        out[name] = field
    return out


@st.composite
def mappings(draw: st.DrawFn) -> dict[str, Any]:
    tree = draw(object_tree(2))
    body: dict[str, Any] = {"properties": draw(spelled_properties(tree))}
    if draw(st.booleans()):
        body["dynamic"] = draw(st.sampled_from([True, False, "true", "false", "strict"]))
    return body


# -- settings and aliases -----------------------------------------------------------------------
@st.composite
def index_settings(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if draw(st.booleans()):
        values["number_of_shards"] = draw(st.integers(1, 3).flatmap(spelled_int))
    values["number_of_replicas"] = draw(st.integers(0, 2).flatmap(spelled_int))
    if draw(st.booleans()):
        values["refresh_interval"] = draw(st.sampled_from(["1s", "5s", "30s", "-1"]))
    style = draw(st.sampled_from(["nested", "dotted", "bare"]))
    if style == "nested":
        return {"index": values}
    if style == "dotted":
        return {f"index.{k}": v for k, v in values.items()}
    return values


@st.composite
def aliases(draw: st.DrawFn, prefix: str) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    out: dict[str, Any] = {}
    for name in names:
        body: dict[str, Any] = {}
        if draw(st.booleans()):
            body["routing"] = draw(st.sampled_from(["1", "2"]))
        out[f"{prefix}-{name}"] = body
    return out


# -- pipelines and deployments ------------------------------------------------------------------
@st.composite
def processor(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["set", "remove", "lowercase", "rename"]))
    field = draw(NAMES)
    if kind == "set":
        value = draw(st.one_of(st.text(alphabet="xyz", max_size=3), st.integers(0, 9), st.booleans()))
        return {"set": {"field": field, "value": value}}
    if kind == "rename":
        return {"rename": {"field": field, "target_field": field + "_renamed", "ignore_missing": True}}
    return {kind: {"field": field, "ignore_missing": True}}


@st.composite
def pipeline(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"processors": draw(st.lists(processor(), min_size=1, max_size=3))}
    if draw(st.booleans()):
        body["description"] = draw(st.text(alphabet="abc ", max_size=10))
    if draw(st.booleans()):
        body["version"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        body["on_failure"] = [{"set": {"field": "error", "value": "failed"}}]
    return body


@st.composite
def deployment(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number_of_allocations": draw(st.integers(1, 2)),
        "threads_per_allocation": draw(st.sampled_from([1, 2])),
        "queue_capacity": draw(st.sampled_from([100, 1024, 2048])),
        "wait_for": "fully_allocated",
        "timeout": "30s",
    }
    if draw(st.booleans()):
        body["cache_size"] = draw(st.sampled_from(["10mb", "10MB", "10240kb", "10485760b", "1gb"]))
    return body


# -- the stacks ---------------------------------------------------------------------------------
def template_stack(name: str, data: st.DataObject) -> dict[str, Any]:
    """Component template + index template + index, each in a drawn spelling."""
    component = {"template": {"settings": data.draw(index_settings()), "mappings": data.draw(mappings())}}
    index_template: dict[str, Any] = {
        "index_patterns": [f"{name}-idx*"],
        "priority": data.draw(st.integers(1, 500)),
        "composed_of": [f"{name}-component"],
        "template": {"aliases": data.draw(aliases(name))},
    }
    if data.draw(st.booleans()):
        index_template["version"] = data.draw(st.integers(1, 9))
    if data.draw(st.booleans()):
        index_template["_meta"] = {"owner": "team-" + data.draw(NAMES)}
    index: dict[str, Any] = {}
    if data.draw(st.booleans()):
        index["aliases"] = data.draw(aliases(name + "-own"))
    return {
        "name": name,
        "component_templates": {f"{name}-component": component},
        "index_templates": {f"{name}-images": index_template},
        "indices": {f"{name}-idx": index},
    }


def model_stack(name: str, data: st.DataObject) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": {"license": "trial"},
        "models": {
            "text": {
                "model_id": f"{name}-text",
                "source": {"path": str(TEXT_MODEL)},
                "task_type": "text_embedding",
                "max_model_input_length": 64,
                "deployment": data.draw(deployment()),
            }
        },
    }


def apply(directory: Path, url: str, body: dict[str, Any]) -> provisioning.Plan:
    """Apply ``body``, then return the plan of applying it again."""
    stack = provisioning.load_stack(write_stack(directory, copy.deepcopy(body)), {})
    cluster = connect(url)
    report = provisioning.apply(provisioning.plan(stack, cluster), cluster)
    assert report.ok, report.to_json()
    return provisioning.plan(
        provisioning.load_stack(write_stack(directory, copy.deepcopy(body)), {}), cluster
    )


def replan(directory: Path, url: str, body: dict[str, Any]) -> provisioning.Plan:
    return provisioning.plan(
        provisioning.load_stack(write_stack(directory, copy.deepcopy(body)), {}), connect(url)
    )


def destroy(directory: Path, url: str, body: dict[str, Any]) -> None:
    stack = provisioning.load_stack(write_stack(directory, copy.deepcopy(body)), {})
    cluster = connect(url)
    assert provisioning.apply(provisioning.destroy_plan(stack, cluster, include_data=True), cluster).ok


def describe(plan: provisioning.Plan) -> list[tuple[str, str, str]]:
    return [(c.address, c.action, c.reason) for c in plan.changes] + [(e, "error", "") for e in plan.errors]


# -- unchanged after apply ----------------------------------------------------------------------
@seed(SEED)
@SETTINGS
@given(data=st.data())
def test_applied_templates_and_indices_plan_as_unchanged(es_target: Target, data: st.DataObject) -> None:
    body = template_stack(unique("hyp"), data)
    with tempfile.TemporaryDirectory() as tmp:
        again = apply(Path(tmp), es_target.url, body)
        try:
            assert again.changes == [] and again.conflicts == [] and again.errors == [], describe(again)
        finally:
            destroy(Path(tmp), es_target.url, body)


@seed(SEED)
@SETTINGS
@given(data=st.data())
def test_applied_pipelines_plan_as_unchanged(es_target: Target, data: st.DataObject) -> None:
    name = unique("hyp")
    body = {"name": name, "pipelines": {f"{name}-p": data.draw(pipeline())}}
    with tempfile.TemporaryDirectory() as tmp:
        again = apply(Path(tmp), es_target.url, body)
        try:
            assert again.changes == [] and again.errors == [], describe(again)
        finally:
            destroy(Path(tmp), es_target.url, body)


@seed(SEED)
@settings(SETTINGS, max_examples=EXAMPLES // 2)
@given(data=st.data())
def test_applied_deployments_plan_as_unchanged(es_target: Target, data: st.DataObject) -> None:
    body = model_stack(unique("hyp"), data)
    with tempfile.TemporaryDirectory() as tmp:
        again = apply(Path(tmp), es_target.url, body)
        try:
            assert again.changes == [] and again.errors == [], describe(again)
        finally:
            destroy(Path(tmp), es_target.url, body)


# -- a real change is seen ----------------------------------------------------------------------
def _first_leaf(properties: dict[str, Any]) -> dict[str, Any]:
    for field in properties.values():
        if "properties" in field:
            return _first_leaf(field["properties"])
        return field
    raise AssertionError("no leaf field")


MUTATIONS: dict[str, Callable[[dict[str, Any], str], str]] = {}


def mutation(
    name: str,
) -> Callable[[Callable[[dict[str, Any], str], str]], Callable[[dict[str, Any], str], str]]:
    def register(func: Callable[[dict[str, Any], str], str]) -> Callable[[dict[str, Any], str], str]:
        MUTATIONS[name] = func
        return func

    return register


@mutation("add a field")
def _add_field(body: dict[str, Any], name: str) -> str:
    mapping = body["component_templates"][f"{name}-component"]["template"]["mappings"]
    mapping["properties"]["zzadded"] = {"type": "keyword"}
    return f"component_template/{name}-component"


@mutation("change a parameter")
def _change_parameter(body: dict[str, Any], name: str) -> str:
    mapping = body["component_templates"][f"{name}-component"]["template"]["mappings"]
    leaf = _first_leaf(mapping["properties"])
    if leaf["type"] == "keyword":
        leaf["ignore_above"] = int(leaf.get("ignore_above", 4097)) + 1
    else:
        leaf["type"] = "keyword" if leaf["type"] != "keyword" else "text"
        for param in [k for k in leaf if k != "type"]:
            del leaf[param]
    return f"component_template/{name}-component"


@mutation("change replicas")
def _change_replicas(body: dict[str, Any], name: str) -> str:
    template = body["component_templates"][f"{name}-component"]["template"]
    template["settings"] = {"index": {"number_of_replicas": 5}}
    return f"component_template/{name}-component"


@mutation("change an alias routing")
def _change_alias(body: dict[str, Any], name: str) -> str:
    template = body["index_templates"][f"{name}-images"]["template"]
    first = next(iter(template["aliases"]))
    template["aliases"][first] = {"routing": "9"}
    return f"index_template/{name}-images"


@mutation("change priority")
def _change_priority(body: dict[str, Any], name: str) -> str:
    body["index_templates"][f"{name}-images"]["priority"] += 1
    return f"index_template/{name}-images"


@seed(SEED)
@SETTINGS
@given(data=st.data(), change=st.sampled_from(sorted(MUTATIONS)))
def test_a_real_template_change_is_always_seen(es_target: Target, data: st.DataObject, change: str) -> None:
    name = unique("hyp")
    body = template_stack(name, data)
    with tempfile.TemporaryDirectory() as tmp:
        apply(Path(tmp), es_target.url, body)
        try:
            changed = copy.deepcopy(body)
            address = MUTATIONS[change](changed, name)
            planned = replan(Path(tmp), es_target.url, changed)
            assert address in {c.address for c in planned.changes}, (change, describe(planned))
        finally:
            destroy(Path(tmp), es_target.url, body)


@seed(SEED)
@SETTINGS
@given(data=st.data(), where=st.sampled_from(["value", "processor", "description"]))
def test_a_real_pipeline_change_is_always_seen(es_target: Target, data: st.DataObject, where: str) -> None:
    name = unique("hyp")
    body = {"name": name, "pipelines": {f"{name}-p": data.draw(pipeline())}}
    with tempfile.TemporaryDirectory() as tmp:
        apply(Path(tmp), es_target.url, body)
        try:
            changed = copy.deepcopy(body)
            spec = changed["pipelines"][f"{name}-p"]
            if where == "value":
                spec["processors"][0] = {"set": {"field": "zz", "value": "a value never drawn"}}
            elif where == "processor":
                spec["processors"].append({"remove": {"field": "zz", "ignore_missing": True}})
            else:
                spec["description"] = "a description never drawn"
            planned = replan(Path(tmp), es_target.url, changed)
            assert [(c.address, c.action) for c in planned.changes] == [(f"pipeline/{name}-p", "update")]
        finally:
            destroy(Path(tmp), es_target.url, body)


@seed(SEED)
@settings(SETTINGS, max_examples=EXAMPLES // 2)
@given(
    data=st.data(),
    param=st.sampled_from(
        ["number_of_allocations", "threads_per_allocation", "queue_capacity", "cache_size"]
    ),
)
def test_a_real_deployment_change_is_always_seen(es_target: Target, data: st.DataObject, param: str) -> None:
    name = unique("hyp")
    body = model_stack(name, data)
    with tempfile.TemporaryDirectory() as tmp:
        apply(Path(tmp), es_target.url, body)
        try:
            changed = copy.deepcopy(body)
            dep = changed["models"]["text"]["deployment"]
            if param == "number_of_allocations":
                dep[param] = 3 - dep[param]
            elif param == "threads_per_allocation":
                dep[param] = 3 - dep[param]
            elif param == "queue_capacity":
                dep[param] += 1
            else:
                dep[param] = "20mb" if dep.get(param) != "20mb" else "30mb"
            planned = replan(Path(tmp), es_target.url, changed)
            assert f"deployment/{name}-text" in {c.address for c in planned.changes}, describe(planned)
        finally:
            destroy(Path(tmp), es_target.url, body)


@pytest.mark.parametrize("spelling", ["nested", "dotted"])
def test_dotted_field_names_converge(es_target: Target, tmp_path: Path, spelling: str) -> None:
    """The issue's case: ``exif.date`` written as dotted keys; Elasticsearch stores them expanded."""
    name = unique("dots")
    exif = (
        {"exif.date": {"type": "date"}, "exif.location": {"type": "geo_point"}}
        if spelling == "dotted"
        else {"exif": {"properties": {"date": {"type": "date"}, "location": {"type": "geo_point"}}}}
    )
    body = {
        "name": name,
        "index_templates": {
            f"{name}-images": {
                "index_patterns": [f"{name}-images*"],
                "priority": 321,
                "template": {"mappings": {"properties": {"image_name": {"type": "keyword"}, **exif}}},
            }
        },
        "indices": {f"{name}-images": {}},
    }
    again = apply(tmp_path, es_target.url, body)
    try:
        assert again.changes == [], describe(again)
        assert sorted(again.unchanged) == [f"index/{name}-images", f"index_template/{name}-images"]
    finally:
        destroy(tmp_path, es_target.url, body)
