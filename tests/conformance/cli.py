"""Command line: ``python -m tests.conformance --es-url URL [options] PATH...``.

One line per test (``PASS file::test``, ``FAIL file::test: why``, ``SKIP file::test: why``), then
exactly ``N passed, N failed, N skipped`` as the last line. Exit status 0 when nothing failed, 1 when
a test failed or the target cannot be reached, 2 for bad usage. With ``--json`` one JSON document goes
to stdout and the per-test lines and the summary line to stderr (the summary still last).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from tests.conformance.runner import Runner, TestResult
from tests.conformance.spec import SpecRegistry
from tests.conformance.suite import discover
from tests.conformance.transport import Transport, TransportError
from tests.shared_data import conformance_dir

REPO = Path(__file__).resolve().parents[2]


def default_conformance_dir() -> Path:
    """``$PROVISION_CONFORMANCE_DIR``, ``<repo>/../shared/conformance``, or beside the clone's origin."""
    return conformance_dir()


def summary_line(results: Iterable[TestResult]) -> str:
    counts = Counter(result.outcome for result in results)
    return f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"


def pass_rate(results: Sequence[TestResult]) -> str:
    """The share of tests that passed (skips count as not passed), e.g. ``91.4%``."""
    if not results:
        return "n/a"
    return f"{100.0 * sum(r.outcome == 'pass' for r in results) / len(results):.1f}%"


def by_file(results: Iterable[TestResult]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = {}
    for result in results:
        table.setdefault(result.file, Counter())[result.outcome] += 1
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance",
        description="Run Elastic's YAML REST tests against an Elasticsearch cluster. "
        "DESTRUCTIVE: between tests it deletes indices, templates, pipelines, trained models and "
        "inference endpoints on the target, as Elasticsearch's own test framework does.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="test files or folders")
    parser.add_argument("--es-url", default=os.environ.get("ES_URL"), help="cluster URL (default: $ES_URL)")
    parser.add_argument(
        "--api-key", default=os.environ.get("ES_API_KEY"), help="API key (default: $ES_API_KEY)"
    )
    parser.add_argument(
        "--username", default=os.environ.get("ES_USERNAME"), help="basic auth user ($ES_USERNAME)"
    )
    parser.add_argument(
        "--password", default=os.environ.get("ES_PASSWORD"), help="basic auth password ($ES_PASSWORD)"
    )
    parser.add_argument(
        "--ca-certs", default=os.environ.get("ES_CA_CERTS"), help="CA bundle for https ($ES_CA_CERTS)"
    )
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument(
        "--spec-dir",
        action="append",
        type=Path,
        help="REST API spec folder (repeatable; default: the conformance folder's rest-api-spec/)",
    )
    parser.add_argument(
        "--no-client-fallback",
        action="store_true",
        help="fail APIs missing from the spec folder instead of taking their endpoint from the Python client",
    )
    parser.add_argument(
        "--compat-version",
        type=int,
        help="compatible-with version in the media types (default: the target's major version)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="read timeout per request, seconds (default 120)"
    )
    parser.add_argument("--no-wipe", action="store_true", help="do not wipe the cluster between tests")
    parser.add_argument(
        "-k", dest="keyword", metavar="SUBSTRING", help="only tests whose 'file::test' contains it"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print requests and responses of failures"
    )
    parser.add_argument("--json", action="store_true", help="a JSON document on stdout; lines go to stderr")
    parser.add_argument(
        "--by-file", action="store_true", help="per-file pass/fail/skip counts before the summary"
    )
    return parser


def main(
    argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.es_url:
        parser.error("--es-url (or $ES_URL) is required")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")

    spec_dirs = args.spec_dir or [default_conformance_dir() / "rest-api-spec"]
    absent = [str(d) for d in spec_dirs if not d.is_dir()]
    if absent:
        if args.spec_dir:
            parser.error(f"no such spec folder: {', '.join(absent)}")
        print(
            f"note: no REST API spec folder at {absent[0]}; API names come from the Python client", file=err
        )
        spec_dirs = [d for d in spec_dirs if d.is_dir()]
    registry = SpecRegistry(spec_dirs, client_fallback=not args.no_client_fallback)

    try:
        transport = Transport(
            args.es_url,
            api_key=args.api_key,
            basic_auth=(args.username, args.password) if args.username else None,
            ca_certs=args.ca_certs,
            verify_certs=not args.insecure,
            timeout=args.timeout,
        )
    except ValueError as exc:
        parser.error(str(exc))
    runner = Runner(transport, registry, wipe=not args.no_wipe, compat=args.compat_version)
    try:
        runner.cluster.info()
    except TransportError as exc:
        print(f"error: cannot reach the target: {exc}", file=err)
        return 1

    lines = err if args.json else out
    keyword = args.keyword
    results: list[TestResult] = []
    per_path: list[tuple[Path, list[TestResult]]] = []
    try:
        for path in args.paths:
            found: list[TestResult] = []
            per_path.append((path, found))
            for result in runner.run(discover([path]), lambda test_id: keyword is None or keyword in test_id):
                results.append(result)
                found.append(result)
                print(result.line(), file=lines, flush=True)
                if args.verbose and result.outcome == "fail":
                    for exchange in result.exchanges:
                        print(_indent(exchange.render()), file=lines)
                if args.verbose and result.wipe_problems:
                    print(_indent("wipe problems: " + "; ".join(result.wipe_problems)), file=lines)
    finally:
        transport.close()

    if args.verbose and runner.wipe_missing_apis:
        print(
            f"note: the target lacks, so the wipe skipped: GET {', GET '.join(runner.wipe_missing_apis)}",
            file=lines,
        )
    if args.by_file:
        for name, counts in by_file(results).items():
            print(
                f"  {name}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
                file=lines,
            )
    if len(per_path) > 1:
        for path, found in per_path:
            print(f"  {path}: {summary_line(found)} ({pass_rate(found)} passed)", file=lines)
        print(f"  all: {summary_line(results)} ({pass_rate(results)} passed)", file=lines)
    if args.json:
        document: dict[str, Any] = {
            "target": {"url": args.es_url, "version": runner.cluster.version_text},
            "summary": dict(Counter(r.outcome for r in results)),
            "results": [r.as_dict() for r in results],
        }
        document["summary"] = {
            "passed": document["summary"].get("pass", 0),
            "failed": document["summary"].get("fail", 0),
            "skipped": document["summary"].get("skip", 0),
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        out.flush()
    print(summary_line(results), file=lines, flush=True)
    return 1 if any(r.outcome == "fail" for r in results) else 0


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
