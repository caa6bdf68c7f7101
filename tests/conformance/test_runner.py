"""Tests of the conformance runner itself, on synthetic YAML tests against a fake Elasticsearch.

Each assertion kind is checked both ways (a case that must pass and one that must fail), so a
runner that passes everything, or fails everything, is caught.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import cli
from tests.conformance.assertions import Stash, evaluate, split_path
from tests.conformance.fake_es import FakeElasticsearch
from tests.conformance.runner import Runner, TestResult
from tests.conformance.spec import ParamError, SpecRegistry, build_from_spec
from tests.conformance.suite import discover, load_yaml_documents, parse_file
from tests.conformance.transport import Transport, parse_warning_headers

# Synthetic REST API specs, shaped like Elastic's (name -> paths, params, body).
SPECS: dict[str, dict[str, Any]] = {
    "info": {"paths": [("/", ["GET"], [])]},
    "indices.create": {"paths": [("/{index}", ["PUT"], ["index"])], "params": ["timeout"], "body": {}},
    "indices.delete": {"paths": [("/{index}", ["DELETE"], ["index"])], "params": ["ignore_unavailable"]},
    "indices.exists": {"paths": [("/{index}", ["HEAD"], ["index"])]},
    "index": {
        "paths": [
            ("/{index}/_doc/{id}", ["PUT", "POST"], ["index", "id"]),
            ("/{index}/_doc", ["POST"], ["index"]),
        ],
        "params": ["refresh", "op_type"],
        "body": {"required": True},
    },
    "get": {"paths": [("/{index}/_doc/{id}", ["GET"], ["index", "id"])], "params": ["realtime"]},
    "search": {
        "paths": [("/_search", ["GET", "POST"], []), ("/{index}/_search", ["GET", "POST"], ["index"])],
        "params": ["size", "rest_total_hits_as_int", "routing"],
        "body": {},
    },
    "count": {
        "paths": [("/_count", ["POST", "GET"], []), ("/{index}/_count", ["POST", "GET"], ["index"])],
        "body": {},
    },
    "bulk": {
        "paths": [("/_bulk", ["POST", "PUT"], []), ("/{index}/_bulk", ["POST", "PUT"], ["index"])],
        "params": ["refresh"],
        "body": {"required": True, "serialize": "bulk"},
        "content_type": ["application/x-ndjson"],
    },
    "cat.aliases": {
        "paths": [("/_cat/aliases", ["GET"], []), ("/_cat/aliases/{name}", ["GET"], ["name"])],
        "params": ["h", "v", "s"],
    },
    "ingest.put_pipeline": {"paths": [("/_ingest/pipeline/{id}", ["PUT"], ["id"])], "body": {}},
    "ingest.get_pipeline": {
        "paths": [("/_ingest/pipeline", ["GET"], []), ("/_ingest/pipeline/{id}", ["GET"], ["id"])],
        "params": ["summary"],
    },
}


def write_specs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    common = {
        "params": {name: {"type": "string"} for name in ("pretty", "human", "error_trace", "filter_path")}
    }
    (folder / "_common.json").write_text(json.dumps(common))
    for name, spec in SPECS.items():
        paths = [
            {
                "path": p,
                "methods": m,
                **({"parts": {part: {"type": "string"} for part in parts}} if parts else {}),
            }
            for p, m, parts in spec["paths"]
        ]
        raw: dict[str, Any] = {
            "url": {"paths": paths},
            "params": {param: {"type": "string"} for param in spec.get("params", [])},
            "headers": {
                "accept": ["application/json"],
                "content_type": spec.get("content_type", ["application/json"]),
            },
        }
        if "body" in spec:
            raw["body"] = spec["body"]
        (folder / f"{name}.json").write_text(json.dumps({name: raw}))
    return folder


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch().start()
    yield server
    server.stop()


@pytest.fixture
def registry(tmp_path: Path) -> SpecRegistry:
    return SpecRegistry([write_specs(tmp_path / "spec")])


def run_yaml(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry, text: str) -> list[TestResult]:
    path = tmp_path / "case.yml"
    path.write_text(text)
    transport = Transport(fake.url)
    try:
        return list(Runner(transport, registry).run([parse_file(path, "case.yml")]))
    finally:
        transport.close()


def only(results: list[TestResult]) -> TestResult:
    assert len(results) == 1, [r.line() for r in results]
    return results[0]


SETUP_DOC = """
setup:
  - do:
      index: {index: docs, id: "1", body: {title: Snow Crash, year: 1992, rating: 4.5, tags: [a, b]}}
---
"""


# --- assertions: each must pass on the right value and fail on a wrong one -----------------------
PASSING = [
    "- match: {_source.title: Snow Crash}",
    "- match: {_source.year: 1992.0}",  # numbers compare as doubles
    "- match: {_source: {title: Snow Crash, year: 1992, rating: 4.5, tags: [a, b]}}",
    "- match: {_source.title: /^snow \\s crash$/i}".replace("/i", "/"),  # placeholder replaced below
    "- match: {_source.tags.1: b}",
    "- length: {_source.tags: 2}",
    "- length: {_source: 4}",
    "- is_true: found",
    "- is_false: missing_field",
    "- gt: {_source.year: 1990}",
    "- gte: {_source.year: 1992}",
    "- lt: {_source.rating: 5}",
    "- lte: {_source.rating: 4.5}",
    "- contains: {_source.tags: a}",
    "- contains: {_source.title: Crash}",
    "- close_to: {_source.rating: {value: 4.4, error: 0.2}}",
    "- exists: _source.title",
    "- not_exists: _source.nothing",
]
PASSING[3] = "- match: {_source.title: '/^Snow \\s+ Crash$/'}"  # x flag: the blanks are ignored

FAILING = [
    (
        "- match: {_source.title: Snow Crush}",
        "match [_source.title]: expected 'Snow Crush' but was 'Snow Crash'",
    ),
    ("- match: {_source.year: 1993}", "expected 1993 but was 1992"),
    ("- match: {_source: {title: Snow Crash}}", "unexpected key"),
    ("- match: {_source.tags: [a]}", "expected 1 element(s) but was 2"),
    ("- match: {_source.title: '/^Crash/'}", "does not match"),
    ("- match: {_source.nothing: x}", "field is missing"),
    ("- match: {_source.year: '1992'}", "(str) but was 1992 (int)"),
    ("- length: {_source.tags: 3}", "expected 3 but was 2"),
    ("- is_true: missing_field", "is_true [missing_field]"),
    ("- is_false: found", "is_false [found]"),
    ("- gt: {_source.year: 1992}", "[_source.year] > 1992"),
    ("- lt: {_source.year: 1000}", "[_source.year] < 1000"),
    ("- contains: {_source.tags: z}", "does not contain"),
    ("- close_to: {_source.rating: {value: 4.0, error: 0.1}}", "expected 4.0 ± 0.1 but was 4.5"),
    ("- exists: _source.nothing", "exists [_source.nothing]"),
    ("- not_exists: _source.title", "not_exists [_source.title]"),
]


@pytest.mark.parametrize("assertion", PASSING)
def test_assertion_that_holds_passes(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry, assertion: str
) -> None:
    text = SETUP_DOC + f'"t":\n  - do: {{get: {{index: docs, id: "1"}}}}\n  {assertion}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "pass", result.line()


@pytest.mark.parametrize(("assertion", "message"), FAILING)
def test_assertion_that_does_not_hold_fails(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry, assertion: str, message: str
) -> None:
    text = SETUP_DOC + f'"t":\n  - do: {{get: {{index: docs, id: "1"}}}}\n  {assertion}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "fail"
    assert message in result.message, result.message


# --- catch ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("catch", "outcome"),
    [
        ("missing", "pass"),  # 404 index_not_found_exception
        ("bad_request", "fail"),
        ("request", "fail"),  # request excludes the named client errors, 404 among them
        ("/index_not_found_exception/", "pass"),  # regex on the error
        ("/no \\s such/", "fail"),  # not verbose: the blank counts, so this does not match
        ("/no such index \\[nope\\]/", "pass"),
        ("/resource_already_exists/", "fail"),
    ],
)
def test_catch_on_error_response(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry, catch: str, outcome: str
) -> None:
    text = f'"t":\n  - do:\n      catch: {json.dumps(catch)}\n      get: {{index: nope, id: "1"}}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == outcome, result.line()


def test_catch_request_takes_server_errors(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    fake.respond(
        "GET", "/boom/_doc/1", 500, {"error": {"type": "exception", "reason": "kaput"}, "status": 500}
    )
    text = '"t":\n  - do:\n      catch: request\n      get: {index: boom, id: "1"}\n  - match: {error.reason: kaput}\n'
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"


def test_catch_without_error_fails(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    text = SETUP_DOC + '"t":\n  - do:\n      catch: missing\n      get: {index: docs, id: "1"}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "fail"
    assert "expected catch [missing] (404) but got 200" in result.message


def test_unexpected_error_fails_with_the_reason(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    result = only(run_yaml(tmp_path, fake, registry, '"t":\n  - do: {get: {index: nope, id: "1"}}\n'))
    assert result.outcome == "fail"
    assert "returned 404: index_not_found_exception: no such index [nope]" in result.message


def test_ignore_turns_an_error_status_into_a_response(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = '"t":\n  - do: {get: {index: nope, id: "1", ignore: 404}}\n  - match: {status: 404}\n'
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    assert "ignore" not in fake.requests[-1].query


def test_catch_param_is_a_client_side_error(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = '"t":\n  - do:\n      catch: param\n      get: {index: docs, id: "1", no_such_param: 1}\n'
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    assert "GET /docs/_doc/1" not in fake.calls()
    text = '"t":\n  - do: {get: {index: docs, id: "1", no_such_param: 1}}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "fail"
    assert "param [no_such_param] not supported by [get]" in result.message


# --- stash ----------------------------------------------------------------------------------------
def test_stash_set_and_substitution(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    text = (
        SETUP_DOC
        + """"t":
  - do: {get: {index: docs, id: "1"}}
  - set: {_id: doc_id, _source.title: title}
  - do: {index: {index: docs, id: "${doc_id}-copy", body: {copy_of: $doc_id, title: "copy of ${title}"}}}
  - do: {get: {index: docs, id: "1-copy"}}
  - match: {_source.copy_of: $doc_id}
  - match: {_source.title: "copy of Snow Crash"}
  - match: {_id: "${doc_id}-copy"}
  - match: {$body: {_index: docs, _id: "1-copy", found: true, _source: {copy_of: "1", title: "copy of Snow Crash"}}}
"""
    )
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    put = next(r for r in fake.requests if r.method == "PUT" and r.path == "/docs/_doc/1-copy")
    assert json.loads(put.body) == {"copy_of": "1", "title": "copy of Snow Crash"}


def test_stash_in_keys_and_paths(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    text = (
        SETUP_DOC
        + """"t":
  - do: {get: {index: docs, id: "1"}}
  - set: {_source._arbitrary_key_: first_key}
  - match: {_source.$first_key: Snow Crash}
  - match: {_source: {$first_key: Snow Crash, year: 1992, rating: 4.5, tags: [a, b]}}
"""
    )
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"


def test_unknown_stash_key_fails(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    result = only(run_yaml(tmp_path, fake, registry, '"t":\n  - do: {get: {index: docs, id: $nothing}}\n'))
    assert result.outcome == "fail"
    assert "stashed value not found for key [nothing]" in result.message


# --- requests: mapping by the spec --------------------------------------------------------------
def test_bulk_body_goes_as_ndjson_with_vendor_types(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = """"t":
  - do:
      bulk:
        refresh: true
        body:
          - index: {_index: books, _id: "1"}
          - {title: one}
          - '{"index": {"_index": "books", "_id": "2"}}'
          - '{"title": "two"}'
  - match: {errors: false}
  - do: {search: {index: books, body: {query: {match_all: {}}}}}
  - match: {hits.total.value: 2}
  - match: {hits.hits.1._source.title: two}
"""
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    bulk = next(r for r in fake.requests if r.path == "/_bulk")
    assert bulk.method == "POST"
    assert bulk.query == {"refresh": "true"}
    assert bulk.headers["content-type"] == "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    assert bulk.headers["accept"] == "application/vnd.elasticsearch+json; compatible-with=9"
    assert bulk.body.decode().endswith("\n")
    assert [json.loads(line) for line in bulk.body.decode().splitlines()][2] == {
        "index": {"_index": "books", "_id": "2"}
    }
    search = next(r for r in fake.requests if r.path == "/books/_search")
    assert search.method == "POST"  # GET is listed first, but a body goes out as POST


def test_headers_per_step_and_test_superuser(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = """"t":
  - do:
      headers:
        Accept: "application/vnd.elasticsearch+json;compatible-with=8"
        X-Opaque-Id: my-id
        Authorization: "Basic eF9wYWNrX3Jlc3RfdXNlcjp4LXBhY2stdGVzdC1wYXNzd29yZA=="
      info: {}
"""
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    sent = next(r.headers for r in fake.requests if "x-opaque-id" in r.headers)
    assert sent["accept"] == "application/vnd.elasticsearch+json;compatible-with=8"
    assert sent["x-opaque-id"] == "my-id"
    assert "authorization" not in sent  # the tests' superuser is the runner's own (here: none)


def test_build_from_spec_picks_path_method_and_encodes(registry: SpecRegistry) -> None:
    index = registry.get("index")
    assert index is not None
    request = build_from_spec(
        index, {"index": "a b", "id": "x/1", "refresh": True, "body": {"f": 1}}, frozenset()
    )
    assert (request.method, request.path) == ("PUT", "/a%20b/_doc/x%2F1")
    assert request.query == [("refresh", "true")]
    request = build_from_spec(index, {"index": "i", "body": {"f": 1}}, frozenset())
    assert (request.method, request.path) == ("POST", "/i/_doc")
    search = registry.get("search")
    assert search is not None
    request = build_from_spec(search, {"index": ["a", "b*"], "routing": ["r1", "r2"]}, frozenset())
    assert (request.method, request.path, request.query) == ("GET", "/a,b*/_search", [("routing", "r1,r2")])
    count = registry.get("count")
    assert count is not None
    assert build_from_spec(count, {}, frozenset()).method == "POST"  # the first listed
    with pytest.raises(ParamError, match="needs path part"):
        build_from_spec(index, {"id": "1", "body": {}}, frozenset())
    get = registry.get("get")
    assert get is not None
    with pytest.raises(ParamError, match="body is not supported"):
        build_from_spec(get, {"index": "i", "id": "1", "body": {}}, frozenset())
    assert build_from_spec(get, {"index": "i", "id": "1", "pretty": True}, frozenset({"pretty"})).query == [
        ("pretty", "true")
    ]


def test_api_missing_from_the_spec_comes_from_the_client(registry: SpecRegistry) -> None:
    request = registry.build("license.post_start_basic", {"acknowledge": True})
    assert (request.method, request.path, request.query, request.source) == (
        "POST",
        "/_license/start_basic",
        [("acknowledge", "true")],
        "client",
    )
    request = registry.build("cluster.exists_component_template", {"name": "t1"})
    assert (request.method, request.path) == ("HEAD", "/_component_template/t1")
    request = registry.build("license.post", {"acknowledge": True, "body": '{"licenses": []}'})
    assert (request.method, request.path, json.loads(request.body or b"")) == (
        "PUT",
        "/_license",
        {"licenses": []},
    )


def test_unknown_api_fails(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    result = only(run_yaml(tmp_path, fake, registry, '"t":\n  - do: {no_such.api: {}}\n'))
    assert result.outcome == "fail"
    assert "unknown API [no_such.api]" in result.message


def test_exists_api_head_response(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    text = (
        SETUP_DOC
        + """"t":
  - do: {indices.exists: {index: docs}}
  - is_true: ''
  - do: {indices.exists: {index: nope}}
  - is_false: ''
"""
    )
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"


# --- warnings -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "step", "outcome"),
    [
        (["[x] is deprecated"], 'warnings: ["[x] is deprecated"]', "pass"),
        ([], 'warnings: ["[x] is deprecated"]', "fail"),
        (["[x] is deprecated"], "", "fail"),  # an unexpected warning fails the test
        (["[x] is deprecated"], 'allowed_warnings: ["[x] is deprecated"]', "pass"),
        ([], 'allowed_warnings: ["[x] is deprecated"]', "pass"),
        (['say "hi"'], "warnings: ['say \"hi\"']", "pass"),  # escaped quotes in the header
        (["[x] is deprecated"], 'allowed_warnings_regex: ["\\\\[x\\\\] is .*"]', "pass"),
        (["[x] is deprecated"], 'warnings_regex: ["\\\\[y\\\\] .*"]', "fail"),
    ],
)
def test_warnings(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry, sent: list[str], step: str, outcome: str
) -> None:
    fake.warn("GET", "/", *sent)
    text = '"t":\n  - do:\n      info: {}\n' + (f"      {step}\n" if step else "")
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == outcome, result.line()


def test_parse_warning_headers() -> None:
    messages, unparsed = parse_warning_headers(
        ['299 Elasticsearch-9.2.0-abc "a \\"quoted\\" 100%25" "Mon, 01 Jan 2024 00:00:00 GMT"', "garbage"]
    )
    assert messages == ['a "quoted" 100%']
    assert unparsed == ["garbage"]


# --- requires / skip ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prerequisite", "outcome", "reason"),
    [
        ("skip: {version: ' - 8.99.99', reason: old}", "pass", ""),
        (
            "skip: {version: '9.0.0 - 9.3.0', reason: broken here}",
            "skip",
            "covers the target's 9.2.0: broken here",
        ),
        ("skip: {version: all, reason: muted}", "skip", "muted upstream (skip version: all): muted"),
        ("skip: {awaits_fix: 'https://x/1', reason: flaky}", "skip", "awaits fix [https://x/1]"),
        ("skip: {features: [headers, close_to]}", "pass", ""),
        (
            "skip: {features: teleport}",
            "skip",
            "runner feature [teleport], which this runner does not support",
        ),
        ("requires: {test_runner_features: [contains]}", "pass", ""),
        ("requires: {cluster_features: [gte_v8.15.0], reason: new}", "pass", ""),
        (
            "requires: {cluster_features: gte_v9.5.0, reason: newer}",
            "skip",
            "[gte_v9.5.0], which the target lacks",
        ),
        ("requires: {cluster_features: [bulk_auto_id], reason: old feature}", "pass", ""),
        ("requires: {cluster_features: [some_feature], reason: r}", "skip", "cannot be verified"),
        (
            "requires: {test_runner_features: capabilities, capabilities: [{method: GET, path: /, capabilities: [x]}]}",
            "skip",
            "capability GET / [x]",
        ),
    ],
)
def test_prerequisites(
    tmp_path: Path,
    fake: FakeElasticsearch,
    registry: SpecRegistry,
    prerequisite: str,
    outcome: str,
    reason: str,
) -> None:
    text = (
        f'"t":\n  - {prerequisite}\n  - do: {{info: {{}}}}\n  - match: {{tagline: "You Know, for Search"}}\n'
    )
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == outcome, result.line()
    assert reason in result.message


def test_cluster_features_from_cluster_state(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    fake.state.features = ["feature_a"]
    text = """"has":
  - requires: {cluster_features: [feature_a], reason: r}
  - do: {info: {}}
---
"lacks":
  - requires: {cluster_features: [feature_b], reason: r}
  - do: {info: {}}
---
"skip when present":
  - skip: {cluster_features: [feature_a], reason: r}
  - do: {info: {}}
"""
    outcomes = {r.test: r.outcome for r in run_yaml(tmp_path, fake, registry, text)}
    assert outcomes == {"has": "pass", "lacks": "skip", "skip when present": "skip"}


def test_setup_skip_applies_to_every_test_and_nothing_runs(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = """setup:
  - skip: {version: ' - 99.0.0', reason: everything}
  - do: {indices.create: {index: never}}
---
"a":
  - do: {info: {}}
---
"b":
  - do: {info: {}}
"""
    results = run_yaml(tmp_path, fake, registry, text)
    assert [r.outcome for r in results] == ["skip", "skip"]
    assert "PUT /never" not in fake.calls()


def test_clients_file_requires(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    text = '---\nrequires:\n  serverless: true\n  stack: false\n---\n"t":\n  - do: {info: {}}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert (result.outcome, result.message) == ("skip", "file requires stack: false (a serverless-only test)")


# --- sections, teardown and wipe ---------------------------------------------------------------
def test_setup_teardown_order_and_wipe(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = """setup:
  - do: {indices.create: {index: from_setup}}
---
teardown:
  - do: {ingest.put_pipeline: {id: from_teardown, body: {processors: []}}}
---
"first":
  - do: {indices.create: {index: from_test}}
  - match: {index: something_else}
---
"second":
  - do: {indices.exists: {index: from_test}}
  - is_false: ''
"""
    results = run_yaml(tmp_path, fake, registry, text)
    assert [r.outcome for r in results] == ["fail", "pass"]  # the wipe removed from_test
    calls = fake.calls()
    first = calls.index("PUT /from_setup")
    assert calls.index("PUT /from_test") > first
    assert calls.index("PUT /_ingest/pipeline/from_teardown") > calls.index(
        "PUT /from_test"
    )  # teardown after a failure
    assert "DELETE /_ingest/pipeline/from_teardown" in calls
    assert fake.state.indices == {}
    assert fake.state.pipelines == {}


def test_teardown_failure_fails_a_passing_test(
    tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry
) -> None:
    text = 'teardown:\n  - do: {indices.delete: {index: nope}}\n---\n"t":\n  - do: {info: {}}\n'
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "fail"
    assert result.message.startswith("teardown: [indices.delete]")


def test_wipe_keeps_builtin_resources(fake: FakeElasticsearch) -> None:
    state = fake.state
    state.indices = {"user": {"docs": {}, "hidden": False}, "hidden-user": {"docs": {}, "hidden": True}}
    state.indices[".system-ish"] = {"docs": {}, "hidden": True}
    state.index_templates = {"mine": {}, "logs": {}, "managed-one": {"_meta": {"managed": True}}}
    state.pipelines = {"p1": {}, "logs@json-pipeline": {}, "xpack_monitoring_7": {}}
    state.models = {"m1": {}, "lang_ident_model_1": {"tags": ["prepackaged"]}}
    transport = Transport(fake.url)
    problems = Runner(transport, SpecRegistry([])).wipe()
    transport.close()
    assert problems == []
    assert set(state.indices) == {".system-ish"}
    assert set(state.index_templates) == {"logs", "managed-one"}
    assert set(state.pipelines) == {"logs@json-pipeline", "xpack_monitoring_7"}
    assert set(state.models) == {"lang_ident_model_1"}


# --- parsing --------------------------------------------------------------------------------------
def test_yaml_core_schema_keeps_strings() -> None:
    (document,) = load_yaml_documents(
        "a: no\nb: 12:30\nc: 2023-05-25T12:30:00.000Z\nd: true\ne: 0x1f\nf: 1.5e3\ng: ~\n"
    )
    assert document == {
        "a": "no",
        "b": "12:30",
        "c": "2023-05-25T12:30:00.000Z",
        "d": True,
        "e": 31,
        "f": 1500.0,
        "g": None,
    }


def test_paths_and_evaluation() -> None:
    assert split_path("a.b\\.c.0") == ["a", "b.c", "0"]
    body = {"nodes": {"n1": {"x.y": [10, 20]}}}
    stash = Stash()
    stash["node"] = "n1"
    assert evaluate(body, "nodes.$node.x\\.y.1", stash) == 20
    assert evaluate(body, "nodes._arbitrary_key_", stash) == "n1"
    assert evaluate(body, "nodes.n2.x", stash) is None
    assert evaluate(body, "nodes.${node}.x\\.y.5", stash) is None


def test_malformed_file_is_a_failure(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    result = only(run_yaml(tmp_path, fake, registry, '"t": [unclosed\n'))
    assert (result.outcome, result.test) == ("fail", "(file)")
    assert "cannot read test file" in result.message


def test_discover_names_files_relative_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "suite" / "sub").mkdir(parents=True)
    (tmp_path / "suite" / "sub" / "b.yml").write_text('"t":\n  - do: {info: {}}\n')
    (tmp_path / "suite" / "a.yaml").write_text('"t":\n  - do: {info: {}}\n')
    (tmp_path / "suite" / "README.md").write_text("not a test")
    assert [f.display for f in discover([tmp_path / "suite"])] == ["a.yaml", "sub/b.yml"]


# --- command line ---------------------------------------------------------------------------------
def test_cli_lines_summary_and_exit_status(tmp_path: Path, fake: FakeElasticsearch) -> None:
    spec = write_specs(tmp_path / "spec")
    suite = tmp_path / "suite.yml"
    suite.write_text(
        '"good":\n  - do: {info: {}}\n  - match: {tagline: "You Know, for Search"}\n---\n'
        '"bad":\n  - do: {info: {}}\n  - match: {tagline: nope}\n---\n'
        '"skipped":\n  - skip: {version: all, reason: muted}\n  - do: {info: {}}\n'
    )
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(
        ["--es-url", fake.url, "--spec-dir", str(spec), "-v", str(suite)], stdout=out, stderr=err
    )
    lines = out.getvalue().splitlines()
    assert status == 1
    assert lines[0] == "PASS suite.yml::good"
    assert lines[1].startswith(
        "FAIL suite.yml::bad: match [tagline]: expected 'nope' but was 'You Know, for Search'"
    )
    assert any(line.strip().startswith("> GET http://127.0.0.1") for line in lines)  # --verbose exchange
    assert "SKIP suite.yml::skipped: muted upstream (skip version: all): muted" in lines
    assert lines[-1] == "1 passed, 1 failed, 1 skipped"

    out, err = io.StringIO(), io.StringIO()
    status = cli.main(
        ["--es-url", fake.url, "--spec-dir", str(spec), "-k", "good", str(suite)], stdout=out, stderr=err
    )
    assert status == 0
    assert out.getvalue().splitlines() == ["PASS suite.yml::good", "1 passed, 0 failed, 0 skipped"]


def test_cli_json(tmp_path: Path, fake: FakeElasticsearch) -> None:
    spec = write_specs(tmp_path / "spec")
    suite = tmp_path / "suite.yml"
    suite.write_text('"good":\n  - do: {info: {}}\n---\n"bad":\n  - do: {info: {}}\n  - is_false: tagline\n')
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(
        ["--es-url", fake.url, "--spec-dir", str(spec), "--json", str(suite)], stdout=out, stderr=err
    )
    document = json.loads(out.getvalue())
    assert status == 1
    assert document["summary"] == {"passed": 1, "failed": 1, "skipped": 0}
    assert document["target"]["version"] == "9.2.0"
    assert [(r["test"], r["outcome"]) for r in document["results"]] == [("good", "pass"), ("bad", "fail")]
    assert err.getvalue().splitlines()[-1] == "1 passed, 1 failed, 0 skipped"


def test_cli_unreachable_target(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yml"
    suite.write_text('"t":\n  - do: {info: {}}\n')
    err = io.StringIO()
    assert cli.main(["--es-url", "http://127.0.0.1:9", str(suite)], stdout=io.StringIO(), stderr=err) == 1
    assert "cannot reach the target" in err.getvalue()


# --- the real sandbox -----------------------------------------------------------------------------
def test_runner_against_the_sandbox(tmp_path: Path, fresh_sandbox: Any) -> None:
    """The sandbox answers GET / like Elasticsearch: a right assertion passes, a wrong one fails."""
    path = tmp_path / "info.yml"
    path.write_text(
        '"right":\n  - do: {info: {}}\n  - match: {tagline: "You Know, for Search"}\n'
        "  - match: {version.number: '/^9\\.\\d+\\.\\d+/'}\n---\n"
        '"wrong":\n  - do: {info: {}}\n  - match: {tagline: "You Know, for Nothing"}\n'
    )
    transport = Transport(fresh_sandbox.url)
    try:
        results = list(Runner(transport, SpecRegistry([])).run([parse_file(path, "info.yml")]))
    finally:
        transport.close()
    assert [(r.test, r.outcome) for r in results] == [("right", "pass"), ("wrong", "fail")]


@pytest.mark.parametrize(
    ("step_headers", "accept", "content_type"),
    [
        (
            {},
            "application/vnd.elasticsearch+json; compatible-with=9",
            "application/vnd.elasticsearch+json; compatible-with=9",
        ),
        ({"Content-Type": "application/json"}, "application/json", "application/json"),
        (
            {"accept": "application/vnd.elasticsearch+json;compatible-with=8"},
            "application/vnd.elasticsearch+json;compatible-with=8",
            "application/vnd.elasticsearch+json; compatible-with=8",
        ),
    ],
)
def test_media_types_stay_consistent(
    tmp_path: Path,
    fake: FakeElasticsearch,
    registry: SpecRegistry,
    step_headers: dict[str, str],
    accept: str,
    content_type: str,
) -> None:
    """Elasticsearch wants both media types compatible-with the same version, or neither."""
    headers = "".join(f"\n        {k}: {json.dumps(v)}" for k, v in step_headers.items())
    text = f'"t":\n  - do:\n      headers: {{}}{headers}\n      indices.create: {{index: i, body: {{}}}}\n'
    text = text.replace("headers: {}", "headers:") if step_headers else text
    assert only(run_yaml(tmp_path, fake, registry, text)).outcome == "pass"
    sent = next(r.headers for r in fake.requests if r.method == "PUT")
    assert (sent["accept"], sent["content-type"]) == (accept, content_type)


def test_text_body_and_verbose_regex(tmp_path: Path, fake: FakeElasticsearch, registry: SpecRegistry) -> None:
    fake.respond("GET", "/_cat/aliases", 200, "alias index\nfoo   test\nbar   test2\n")
    text = """"t":
  - do: {cat.aliases: {v: true, h: [alias, index]}}
  - match:
      $body: |
               /^  alias \\s+ index \\n
                   foo   \\s+ test  \\n
                   bar   \\s+ test2 \\n
               $/
  - match: {$body: '/^foo/'}
"""
    result = only(run_yaml(tmp_path, fake, registry, text))
    assert result.outcome == "fail"  # the second match: ^ is the start of the whole body
    assert "match [$body]" in result.message and "/^foo/" in result.message
    cat = next(r for r in fake.requests if r.path == "/_cat/aliases")
    assert cat.query == {"v": "true", "h": "alias,index"}
    result = only(run_yaml(tmp_path, fake, registry, text.replace("'/^foo/'", "'/foo \\s+ test\\n/'")))
    assert result.outcome == "pass", result.line()
