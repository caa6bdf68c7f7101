"""``python -m provisioning.ingest STACK [NAME...]``: run ingest jobs from a shell.

The same thin shell as ``provision ingest`` (parse, build a client, call :func:`run_ingest`,
render, exit), usable where the console script is not installed, and by tests that need ingest in
a process of its own (to kill it halfway). Exit status: 0 when every embedded image was indexed,
1 otherwise or on any error. With ``--output json``, stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provisioning.cluster import ConnectionOptions, build_client, redact
from provisioning.errors import ProvisionError
from provisioning.ingest.progress import TqdmProgress
from provisioning.ingest.report import render_text
from provisioning.ingest.run import run_ingest
from provisioning.spec import load_stack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("stack", type=Path)
    parser.add_argument("names", nargs="*", help="ingest jobs to run (default: all)")
    parser.add_argument("--full", action="store_true", help="re-embed every file, even those already indexed")
    parser.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="delete documents of deleted files",
    )
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text")
    # Each also comes from ES_URL, ES_API_KEY, ES_USERNAME, ES_PASSWORD, ES_CA_CERTS (provisioning.cluster).
    parser.add_argument("--es-url")
    parser.add_argument("--api-key")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--ca-certs")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        stack = load_stack(args.stack)
        options = ConnectionOptions.resolve(
            stack.spec.cluster,
            url=args.es_url,
            api_key=args.api_key,
            username=args.username,
            password=args.password,
            ca_certs=args.ca_certs,
            insecure=args.insecure or None,
        )
        client = build_client(options)
        progress = TqdmProgress(sys.stderr) if sys.stderr.isatty() else None
        try:
            report = run_ingest(
                stack, client, args.names, full=args.full, prune=args.prune, progress=progress
            )
        finally:
            client.close()
    except ProvisionError as exc:
        secrets = [s for s in (args.api_key, args.password) if s]
        sys.stderr.write(f"error: {redact(str(exc), secrets)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    if args.output == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
