"""kNN latency of the sandbox: k=10 over 100k 512-d vectors, through HTTP and in-process.

    python bench/knn.py [--docs 100000] [--dims 512] [--queries 100] [--k 10]

Setup: the index is created through the HTTP API (mapping: dense_vector, cosine, 512 dims), then
filled directly in the sandbox's state (the same parse-and-store path a bulk request takes, minus
JSON and HTTP) so that building 100k documents takes seconds; a bulk ingest of a smaller slice
through HTTP is timed separately. Then k=10 kNN searches are timed three ways on the same query
vectors: numpy alone (the baseline: one matrix-vector product and a partial sort over the same
float32 matrix), the sandbox in-process (``Sandbox.handle``: routing, parsing, search, fetch,
no socket), and end to end over HTTP with keep-alive. Prints median and p95 in ms and the ratios
to the baseline. Timings depend on the machine; nothing here asserts a threshold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from es_sandbox import SandboxConfig, SandboxServer
from es_sandbox.http import Request
from es_sandbox.mapper.documents import DocumentParser
from es_sandbox.metadata import indices_part

INDEX = "bench-knn"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def fill_in_state(server: SandboxServer, vectors: np.ndarray) -> float:
    """Store the documents through the index's parser and store (no JSON, no HTTP)."""
    state = server.state
    started = time.perf_counter()
    with state.lock:
        index = indices_part(state).indices[INDEX]
        for i, vector in enumerate(vectors):
            source = {"image_name": f"IMG_{i:06d}.jpg", "image_embedding": vector.tolist()}
            parsed = DocumentParser(index.compiled, index.settings, str(i)).parse(source)
            index.store.put(str(i), source, parsed)
        index.store.vector_types["image_embedding"] = "float"
        index.store.refresh()
    return time.perf_counter() - started


def bulk_over_http(http: urllib3.PoolManager, url: str, vectors: np.ndarray) -> float:
    lines = []
    for i, vector in enumerate(vectors):
        lines.append(json.dumps({"index": {"_index": INDEX + "-http", "_id": str(i)}}))
        lines.append(
            json.dumps({"image_name": f"h{i}.jpg", "image_embedding": [round(float(x), 6) for x in vector]})
        )
    body = ("\n".join(lines) + "\n").encode()
    started = time.perf_counter()
    response = http.request(
        "POST", f"{url}/_bulk", body=body, headers={"Content-Type": "application/x-ndjson"}
    )
    elapsed = time.perf_counter() - started
    assert response.status == 200 and not json.loads(response.data)["errors"], response.data[:500]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--bulk-docs", type=int, default=2_000, help="documents for the HTTP bulk timing")
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    vectors = rng.normal(size=(args.docs, args.dims)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dims)).astype(np.float32)

    server = SandboxServer(SandboxConfig(port=0)).start()
    http = urllib3.PoolManager(maxsize=1)
    try:
        mapping = {
            "settings": {"number_of_replicas": 0, "refresh_interval": "-1"},
            "mappings": {
                "properties": {
                    "image_name": {"type": "keyword"},
                    "image_embedding": {"type": "dense_vector", "dims": args.dims, "similarity": "cosine"},
                }
            },
        }
        for name in (INDEX, INDEX + "-http"):
            response = http.request(
                "PUT",
                f"{server.url}/{name}",
                body=json.dumps(mapping).encode(),
                headers={"Content-Type": "application/json"},
            )
            assert response.status == 200, response.data
        fill_s = fill_in_state(server, vectors)
        bulk_s = bulk_over_http(http, server.url, vectors[: args.bulk_docs])

        # Baseline: numpy alone over the same normalised matrix.
        matrix = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        baseline: list[float] = []
        for query in queries:
            started = time.perf_counter()
            scores = matrix @ (query / np.linalg.norm(query))
            top = np.argpartition(-scores, args.k)[: args.k]
            top[np.argsort(-scores[top])]
            baseline.append((time.perf_counter() - started) * 1000)

        bodies = [
            json.dumps(
                {
                    "knn": {
                        "field": "image_embedding",
                        "query_vector": [float(x) for x in q],
                        "k": args.k,
                        "num_candidates": 100,
                    }
                }
            ).encode()
            for q in queries
        ]
        in_process: list[float] = []
        first_ids: list[list[str]] = []
        for body in bodies:
            request = Request(
                "POST",
                f"/{INDEX}/_search",
                {},
                {"content-type": "application/json", "accept": "application/json"},
                body,
            )
            started = time.perf_counter()
            response = server.sandbox.handle(request)
            in_process.append((time.perf_counter() - started) * 1000)
            first_ids.append([h["_id"] for h in response.body["hits"]["hits"]])

        over_http: list[float] = []
        for body, expected in zip(bodies, first_ids, strict=True):
            started = time.perf_counter()
            response = http.request(
                "POST",
                f"{server.url}/{INDEX}/_search",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            payload = json.loads(response.data)
            over_http.append((time.perf_counter() - started) * 1000)
            assert [h["_id"] for h in payload["hits"]["hits"]] == expected

        # The exact answer, to show the sandbox's kNN is exact.
        query = queries[0] / np.linalg.norm(queries[0])
        truth = [str(i) for i in np.argsort(-(matrix @ query))[: args.k]]
        exact = truth == first_ids[0]
    finally:
        server.stop()

    base_med, _base_p95 = percentiles(baseline)
    print(f"kNN benchmark: {args.docs} docs x {args.dims} dims (cosine), k={args.k}, {args.queries} queries")
    print(
        f"setup: {args.docs} docs stored in-process in {fill_s:.1f} s; HTTP _bulk of {args.bulk_docs} docs in {bulk_s:.2f} s "
        f"({args.bulk_docs / bulk_s:.0f} docs/s)"
    )
    print(f"{'path':<24}{'median ms':>10}{'p95 ms':>10}{'x numpy':>10}")
    for label, samples in (
        ("numpy baseline", baseline),
        ("sandbox in-process", in_process),
        ("sandbox over HTTP", over_http),
    ):
        med, p95 = percentiles(samples)
        print(f"{label:<24}{med:>10.2f}{p95:>10.2f}{med / base_med:>10.2f}")
    print(f"top-{args.k} identical to brute-force numpy: {exact}")


if __name__ == "__main__":
    main()
