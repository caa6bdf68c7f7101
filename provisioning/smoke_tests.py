"""Smoke tests: prove the live stack answers text and image queries the way the spec expects.

Each test runs one kNN query and checks its expectations. ``min_recall`` compares the kNN answer
with an exact search (``script_score`` with the field's similarity) over the same index and
filter, counting ties at the k-th score as correct so an exact kNN always scores 1.0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, TransportError

from provisioning.cluster import Cluster
from provisioning.errors import ProvisionError
from provisioning.queries import Hit, Searcher, SearchError, SearchResult, model_ref, source_value
from provisioning.resources.base import RolloverGate
from provisioning.stackfile.schema import SmokeTestSpec
from provisioning.stackfile.stack import Stack

# Painless for exact scoring, per similarity; all non-negative as script_score requires.
EXACT_SCRIPTS = {
    "cosine": "cosineSimilarity(params.query_vector, '{field}') + 1.0",
    "dot_product": "dotProduct(params.query_vector, '{field}') + 1.0",
    "max_inner_product": "dotProduct(params.query_vector, '{field}') + 1.0",
    "l2_norm": "1 / (1 + l2norm(params.query_vector, '{field}'))",
}
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    expected: Any
    actual: Any
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "expected": self.expected,
            "actual": self.actual,
            "message": self.message,
        }


@dataclass
class SmokeResult:
    name: str
    query: str
    index: str
    field: str | None = None
    checks: list[Check] = dataclasses.field(default_factory=list)
    search: SearchResult | None = None
    recall: float | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    @property
    def hits(self) -> list[Hit]:
        return self.search.hits if self.search else []

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "query": self.query,
            "index": self.index,
            "field": self.field,
            "latency_ms": round(self.search.latency_ms, 2) if self.search else None,
            "recall": self.recall,
            "error": self.error,
            "checks": [c.to_json() for c in self.checks],
            "hits": [h.to_json() for h in self.hits],
        }


@dataclass
class VerifyReport:
    results: list[SmokeResult] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": sum(r.passed for r in self.results),
            "failed": sum(not r.passed for r in self.results),
            "results": [r.to_json() for r in self.results],
        }


class VerifyError(ProvisionError):
    """Smoke tests failed where passing was required (e.g. before a rollover goes live)."""


def recall_at_k(knn_ids: list[str], exact: list[tuple[str, float]], k: int) -> float:
    """Share of the exact top-k found by kNN; documents tied with the k-th exact score count too."""
    if not exact:
        return 1.0 if not knn_ids else 0.0
    want = min(k, len(exact))
    threshold = exact[want - 1][1] - TIE_TOLERANCE
    good = {doc for doc, score in exact if score >= threshold}
    found = sum(1 for doc in knn_ids[:k] if doc in good)
    return min(1.0, found / want)


def evaluate(test: SmokeTestSpec, result: SearchResult, recall: float | None) -> list[Check]:
    """The expectations of ``test`` checked against one search result."""
    expect = test.expect
    hits = result.hits
    out: list[Check] = []
    if expect.top_1 is not None:
        actual = source_value(hits[0].source, expect.top_1.field) if hits else None
        ok = bool(hits) and actual == expect.top_1.value
        detail = f"got {actual!r} (score {hits[0].score:.4f})" if hits else "got no hits"
        out.append(
            Check(
                "top_1",
                ok,
                expect.top_1.value,
                actual,
                f"top_1 {expect.top_1.field}: expected {expect.top_1.value!r}, {detail}",
            )
        )
    if expect.top_k_contains is not None:
        spec = expect.top_k_contains
        values = [source_value(h.source, spec.field) for h in hits]
        missing = [v for v in spec.values if v not in values]
        out.append(
            Check(
                "top_k_contains",
                not missing,
                spec.values,
                values,
                f"top {test.k} {spec.field}: missing {missing!r} among {values!r}"
                if missing
                else f"top {test.k} contains {spec.values!r}",
            )
        )
    if expect.min_score is not None:
        top = hits[0].score if hits else None
        ok = top is not None and top >= expect.min_score
        out.append(
            Check(
                "min_score",
                ok,
                expect.min_score,
                top,
                f"top score {top} {'>=' if ok else '<'} {expect.min_score}",
            )
        )
    if expect.min_hits is not None:
        ok = len(hits) >= expect.min_hits
        out.append(
            Check(
                "min_hits",
                ok,
                expect.min_hits,
                len(hits),
                f"{len(hits)} hits, expected at least {expect.min_hits}",
            )
        )
    if expect.max_latency_ms is not None:
        ok = result.latency_ms <= expect.max_latency_ms
        out.append(
            Check(
                "max_latency_ms",
                ok,
                expect.max_latency_ms,
                round(result.latency_ms, 2),
                f"latency {result.latency_ms:.1f} ms, limit {expect.max_latency_ms} ms",
            )
        )
    if expect.min_recall is not None:
        ok = recall is not None and recall >= expect.min_recall
        out.append(
            Check(
                "min_recall",
                ok,
                expect.min_recall,
                recall,
                f"recall@{test.k} {recall}, expected at least {expect.min_recall}",
            )
        )
    return out


class SmokeTester:
    def __init__(self, stack: Stack, cluster: Cluster) -> None:
        self.stack = stack
        self.cluster = cluster
        self.searcher = Searcher(stack, cluster)

    def exact(
        self, test: SmokeTestSpec, index: str, field: str, vector: list[float]
    ) -> list[tuple[str, float]]:
        similarity = self.searcher.similarity(index, field)
        script = EXACT_SCRIPTS.get(similarity, EXACT_SCRIPTS["cosine"]).format(field=field)
        inner: dict[str, Any] = {"match_all": {}}
        if test.filter is not None:
            filters = test.filter if isinstance(test.filter, list) else [test.filter]
            inner = {"bool": {"filter": filters}}
        query = {
            "script_score": {"query": inner, "script": {"source": script, "params": {"query_vector": vector}}}
        }
        try:
            answer = self.cluster.client.search(
                index=index, query=query, size=max(test.k * 2, test.k + 10), source=False
            )
        except (ApiError, TransportError) as exc:
            raise self.cluster.error(exc, f"exact search on {index}") from None
        return [(str(h["_id"]), float(h["_score"])) for h in answer.body["hits"]["hits"]]

    def run_one(
        self, name: str, test: SmokeTestSpec, model_override: dict[str, str] | None = None
    ) -> SmokeResult:
        query = test.text if test.text is not None else str(test.image)
        result = SmokeResult(name, query, test.index)
        try:
            field = self.searcher.vector_field(test.index, test.field)
            result.field = field
            k, candidates = test.k, test.effective_num_candidates
            common: dict[str, Any] = {
                "index": test.index,
                "field": field,
                "k": k,
                "num_candidates": candidates,
                "filter": test.filter,
                "similarity": test.similarity,
                "query": query,
            }
            vector: list[float] | None = None
            if test.text is not None:
                assert test.model is not None
                override = (model_override or {}).get(test.model)
                ref = override or model_ref(self.stack.spec.models[test.model])
                problem = self.searcher.deployment_problem(test.model, override)
                if problem:
                    raise SearchError(f"not run: {problem}")
                if test.embed_via == "infer" or test.expect.min_recall is not None:
                    vector = self.searcher.embed_text(test.text, ref)
                if test.embed_via == "infer":
                    search = self.searcher.knn(query_vector=vector, kind="text", **common)
                else:
                    search = self.searcher.knn(builder_ref=ref, text=test.text, kind="text", **common)
            else:
                assert test.image is not None and test.encoder is not None
                vector = self.searcher.embed_image(self.stack.resolve(test.image), test.encoder)
                search = self.searcher.knn(query_vector=vector, kind="image", **common)
            result.search = search
            if test.expect.min_recall is not None and vector is not None:
                result.recall = recall_at_k(
                    [h.id for h in search.hits], self.exact(test, test.index, field, vector), k
                )
            result.checks = evaluate(test, search, result.recall)
        except ProvisionError as exc:
            result.error = str(exc)
        return result

    def run(
        self, names: Iterable[str] | None = None, model_override: dict[str, str] | None = None
    ) -> VerifyReport:
        tests = self.stack.spec.smoke_tests
        chosen = list(names) if names else list(tests)
        unknown = [n for n in chosen if n not in tests]
        if unknown:
            raise VerifyError(
                f"no smoke test named {', '.join(unknown)} in {self.stack.path.name}; declared: {', '.join(tests) or 'none'}"
            )
        report = VerifyReport()
        for name in chosen:
            report.results.append(self.run_one(name, tests[name], model_override))
        return report


def verify(stack: Stack, cluster: Cluster, names: Iterable[str] | None = None) -> VerifyReport:
    """Run the stack's smoke tests (all, or those named) against ``cluster``; one result per test.

    Each test embeds its query (text inside Elasticsearch through ``query_vector_builder`` or
    ``_infer``; an image on this host with the declared encoder), runs one kNN search (the ``knn``
    section of ``_search``) and checks its expectations; ``min_recall`` also runs an exact
    ``script_score`` search. A failing test is reported, not raised; raises VerifyError for a name
    the stack does not declare.
    """
    cluster.ensure_supported()
    return SmokeTester(stack, cluster).run(names)


def rollover_gate(stack: Stack, cluster: Cluster) -> RolloverGate:
    """A gate for alias moves: the smoke tests of that model, run against the new model id first;
    it raises VerifyError (and the alias stays) when any fails."""
    tester = SmokeTester(stack, cluster)

    def gate(spec_name: str, new_model_id: str) -> None:
        names = [n for n, t in stack.spec.smoke_tests.items() if t.model == spec_name]
        if not names:
            return
        report = tester.run(names, model_override={spec_name: new_model_id})
        if not report.ok:
            failed = "; ".join(
                f"{r.name}: {r.error or ', '.join(c.message for c in r.checks if not c.passed)}"
                for r in report.results
                if not r.passed
            )
            raise VerifyError(
                f"rollover of models.{spec_name} to {new_model_id} stopped: its smoke tests fail against the new model "
                f"({failed}); the alias still points at the previous model"
            )

    return gate
