"""The ``provision`` command line: parse, call the library, render, exit.

This is the only module that prints or exits. Every command is a thin shell over a typed library
function; its output goes to stdout (one JSON document with ``--output json``), logs and progress
to stderr. Exit codes: 0 success, 1 any failure, 2 changes pending (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from provisioning.errors import ProvisionError, SpecError
from provisioning.lazy import sandbox_command

if TYPE_CHECKING:
    from provisioning.cluster import Cluster
    from provisioning.ingest.report import IngestReport
    from provisioning.plan import Plan
    from provisioning.spec import Stack

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CHANGES = 2


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILURE)


def output_option(func: F) -> F:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people, json for programs (one document on stdout)",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="provisioning", prog_name="provision")
@click.option("-v", "--verbose", count=True, help="more detail on stderr (-vv: debug)")
@click.option("-q", "--quiet", is_flag=True, help="only warnings and errors on stderr")
def cli(verbose: int, quiet: bool) -> None:
    """Declarative provisioning of image similarity search on Elasticsearch."""
    _configure_logging(verbose, quiet)


def _configure_logging(verbose: int, quiet: bool) -> None:
    """Progress and warnings go to stderr, so stdout stays one JSON document with --output json."""
    import logging

    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbose else "  %(message)s"))
    root = logging.getLogger("provisioning")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if not verbose:
        for noisy in (
            "elasticsearch",
            "elastic_transport",
            "transformers",
            "sentence_transformers",
            "urllib3",
        ):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        import os

        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@output_option
def validate(stack: Path, output: str) -> None:
    """Check STACK without contacting a cluster; exit 0 when valid, 1 when not."""
    from provisioning.spec import load_stack

    try:
        loaded = load_stack(stack)
    except SpecError as exc:
        if output == "json":
            _emit_json({"valid": False, "stack": str(stack), "issues": [_issue_json(i) for i in exc.issues]})
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        count = len(exc.issues)
        click.echo(f"{stack}: invalid ({count} problem{'s' if count != 1 else ''})", err=True)
        sys.exit(EXIT_FAILURE)
    spec = loaded.spec
    counts = {
        "models": len(spec.models),
        "encoders": len(spec.encoders),
        "inference_endpoints": len(spec.inference_endpoints),
        "component_templates": len(spec.component_templates),
        "index_templates": len(spec.index_templates),
        "pipelines": len(spec.pipelines),
        "indices": len(spec.indices),
        "ingest": len(spec.ingest),
        "smoke_tests": len(spec.smoke_tests),
    }
    if output == "json":
        _emit_json({"valid": True, "stack": str(stack), "name": spec.name, "counts": counts})
        return
    singular = {"indices": "index", "ingest": "ingest job", "smoke_tests": "smoke test"}
    plural = {"ingest": "ingest jobs"}

    def label(key: str, n: int) -> str:
        if n == 1:
            return singular.get(key, key.rstrip("s")).replace("_", " ")
        return plural.get(key, key).replace("_", " ")

    parts = ", ".join(f"{n} {label(k, n)}" for k, n in counts.items() if n)
    click.echo(f"{stack}: valid stack '{spec.name}' ({parts or 'empty'})")


def _issue_json(issue: Any) -> dict[str, Any]:
    loc = issue.location
    return {
        "file": str(loc.file if loc else issue.file),
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "path": issue.path,
        "message": issue.message,
    }


def connection_options(func: F) -> F:
    """The common options; each also comes from ES_URL, ES_API_KEY, ES_USERNAME, ES_PASSWORD, ES_CA_CERTS."""
    options = [
        click.option("--es-url", help="Elasticsearch URL (env ES_URL; default: the stack's cluster.url)"),
        click.option("--api-key", help="API key (env ES_API_KEY)"),
        click.option("--username", help="basic auth user (env ES_USERNAME)"),
        click.option("--password", help="basic auth password (env ES_PASSWORD)"),
        click.option("--ca-certs", type=click.Path(dir_okay=False), help="CA bundle (env ES_CA_CERTS)"),
        click.option("--insecure", is_flag=True, help="do not verify TLS certificates (test clusters only)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(stack_path: Path) -> Stack:
    from provisioning.spec import load_stack

    try:
        return load_stack(stack_path)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        _fail(f"{stack_path} is invalid; run provision validate {stack_path}")


def _connect(stack: Stack, conn: dict[str, Any]) -> Cluster:
    from provisioning.cluster import Cluster, ConnectionOptions

    options = ConnectionOptions.resolve(
        stack.spec.cluster,
        url=conn.get("es_url"),
        api_key=conn.get("api_key"),
        username=conn.get("username"),
        password=conn.get("password"),
        ca_certs=conn.get("ca_certs"),
        insecure=conn.get("insecure"),
    )
    _SECRETS.extend(options.secrets)
    return Cluster.connect(options)


# Secrets of the connection in use, kept so that any error printed by main() is redacted.
_SECRETS: list[str] = []


def _conn(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("es_url", "api_key", "username", "password", "ca_certs", "insecure")
    return {k: kwargs.pop(k) for k in keys if k in kwargs}


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@output_option
@click.option(
    "--detailed-exitcode", is_flag=True, help="exit 0 when nothing would change, 2 when something would"
)
@click.option(
    "--adopt", multiple=True, metavar="KIND/NAME", help="take over an unmanaged resource of that name"
)
@click.option("--include-data", is_flag=True, help="plan deleting indices that hold documents")
@connection_options
def plan(
    stack: Path,
    output: str,
    detailed_exitcode: bool,
    adopt: tuple[str, ...],
    include_data: bool,
    **kwargs: Any,
) -> None:
    """Show what apply would change, without changing anything."""
    from provisioning.plan import make_plan
    from provisioning.render import render_plan

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    the_plan = make_plan(loaded, cluster, adopt=adopt, include_data=include_data)
    if output == "json":
        _emit_json(the_plan.to_json())
    else:
        click.echo(render_plan(the_plan))
    if not the_plan.applicable:
        sys.exit(EXIT_FAILURE)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(EXIT_CHANGES)


def _execute(
    the_plan: Plan,
    cluster: Cluster,
    document: dict[str, Any],
    text: bool,
    question: str,
    auto: bool,
    flag: str,
) -> bool:
    """Show the plan, refuse it when it is not applicable, confirm, apply; fills ``document``.

    True when everything planned was applied (or nothing was to be done).
    """
    from provisioning.apply import PlanNotApplicable, apply_plan, check_applicable
    from provisioning.render import render_apply, render_plan, render_result

    document["plan"] = the_plan.to_json()
    if text:
        click.echo(render_plan(the_plan))
    try:
        check_applicable(the_plan)
    except PlanNotApplicable as exc:
        document["error"] = str(exc)
        click.echo(f"error: {exc}", err=True)
        return False
    if not the_plan.changes:
        return True
    _confirm(question, auto, flag)
    report = apply_plan(the_plan, cluster, on_result=lambda r: click.echo(render_result(r), err=True))
    document["apply"] = report.to_json()
    if text:
        click.echo(render_apply(report))
    return report.ok


def _confirm(question: str, auto: bool, flag: str) -> None:
    if auto:
        return
    if not sys.stdin.isatty():
        _fail(f"refusing to continue without confirmation: stdin is not a terminal; pass {flag}")
    if not click.confirm(question, default=False, err=True):
        _fail("cancelled; nothing was changed")


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@output_option
@click.option("--auto-approve", is_flag=True, help="apply without asking for confirmation")
@click.option("--skip-ingest", is_flag=True, help="converge resources only; do not run ingest jobs")
@click.option("--skip-verify", is_flag=True, help="do not run the smoke tests")
@click.option(
    "--adopt", multiple=True, metavar="KIND/NAME", help="take over an unmanaged resource of that name"
)
@click.option("--include-data", is_flag=True, help="allow deleting indices that hold documents")
@connection_options
def apply(
    stack: Path,
    output: str,
    auto_approve: bool,
    skip_ingest: bool,
    skip_verify: bool,
    adopt: tuple[str, ...],
    include_data: bool,
    **kwargs: Any,
) -> None:
    """Converge the cluster to STACK, then run its ingest jobs and smoke tests."""
    from provisioning.plan import make_plan
    from provisioning.render import render_verify
    from provisioning.verify import rollover_gate, run_smoke_tests

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    the_plan = make_plan(loaded, cluster, adopt=adopt, include_data=include_data)
    the_plan.context.gate = rollover_gate(loaded, cluster)
    document: dict[str, Any] = {}
    text = output == "text"

    def finish(code: int) -> NoReturn:
        if not text:
            _emit_json(document)
        sys.exit(code)

    if not _execute(
        the_plan, cluster, document, text, "Apply these changes?", auto_approve, "--auto-approve"
    ):
        finish(EXIT_FAILURE)
    if loaded.spec.ingest and not skip_ingest:
        ingest_report = _run_ingest(loaded, cluster, None, full=False, prune=None)
        document["ingest"] = ingest_report.to_dict()
        if text:
            from provisioning.ingest.report import render_text

            click.echo(render_text(ingest_report))
        if not ingest_report.ok:
            finish(EXIT_FAILURE)
    if loaded.spec.smoke_tests and not skip_verify:
        verified = run_smoke_tests(loaded, cluster)
        document["verify"] = verified.to_json()
        if text:
            click.echo(render_verify(verified))
        if not verified.ok:
            finish(EXIT_FAILURE)
    finish(EXIT_OK)


def _run_ingest(
    stack: Stack, cluster: Cluster, jobs: list[str] | None, *, full: bool, prune: bool | None
) -> IngestReport:
    """Run ingest jobs with a progress bar on stderr when it is a terminal."""
    from provisioning.ingest.progress import TqdmProgress
    from provisioning.ingest.run import run_ingest

    progress = TqdmProgress(sys.stderr) if sys.stderr.isatty() else None
    return run_ingest(stack, cluster.client, jobs, full=full, prune=prune, progress=progress)


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@output_option
@click.option("--yes", is_flag=True, help="destroy without asking for confirmation")
@click.option("--include-data", is_flag=True, help="also delete indices that hold documents")
@connection_options
def destroy(stack: Path, output: str, yes: bool, include_data: bool, **kwargs: Any) -> None:
    """Delete everything STACK manages, in reverse dependency order; nothing else."""
    from provisioning.plan import make_destroy_plan

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    the_plan = make_destroy_plan(loaded, cluster, include_data=include_data)
    document: dict[str, Any] = {}
    question = f"Destroy {len(the_plan.changes)} resource(s) of stack '{loaded.spec.name}'?"
    ok = _execute(the_plan, cluster, document, output == "text", question, yes, "--yes")
    if output == "json":
        _emit_json(document)
    sys.exit(EXIT_OK if ok else EXIT_FAILURE)


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@output_option
@connection_options
def status(stack: Path, output: str, **kwargs: Any) -> None:
    """Per resource: present, managed, drifted; deployments and document counts."""
    from provisioning.render import render_status
    from provisioning.status import stack_status

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    report = stack_status(loaded, cluster)
    if output == "json":
        _emit_json(report.to_json())
    else:
        click.echo(render_status(report))


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@click.argument("names", nargs=-1)
@click.option("--full", is_flag=True, help="re-embed every file, also those already indexed")
@click.option(
    "--prune/--no-prune",
    default=None,
    help="delete documents whose file is gone (default: each job's prune setting)",
)
@output_option
@connection_options
def ingest(
    stack: Path, names: tuple[str, ...], full: bool, prune: bool | None, output: str, **kwargs: Any
) -> None:
    """Run the ingest jobs (all, or NAMES): embed the images not yet indexed and index them.

    Exit 1 when an embedded image could not be indexed; files that are not usable images are
    listed in the report without failing the run.
    """
    from provisioning.ingest import render_text

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    try:
        report = _run_ingest(loaded, cluster, list(names) or None, full=full, prune=prune)
    finally:
        cluster.close()
    if output == "json":
        _emit_json(report.to_dict())
    else:
        click.echo(render_text(report))
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@click.argument("names", nargs=-1)
@output_option
@connection_options
def verify(stack: Path, names: tuple[str, ...], output: str, **kwargs: Any) -> None:
    """Run the smoke tests (all, or NAMES); exit 1 if any fails."""
    from provisioning.render import render_verify
    from provisioning.verify import run_smoke_tests

    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    report = run_smoke_tests(loaded, cluster, names or None)
    if output == "json":
        _emit_json(report.to_json())
    else:
        click.echo(render_verify(report))
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.argument("stack", type=click.Path(path_type=Path))
@click.option("--text", help="a description of the images to find")
@click.option("--image", type=click.Path(path_type=Path), help="an example image to find similar ones")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 10000), help="number of hits")
@click.option("--index", help="index to search (default: the first ingest job's)")
@click.option("--model", help="declared model that embeds --text (default: the first deployed one)")
@click.option(
    "--via",
    type=click.Choice(["query_vector_builder", "infer"]),
    default="query_vector_builder",
    show_default=True,
)
@output_option
@connection_options
def search(
    stack: Path,
    text: str | None,
    image: Path | None,
    k: int,
    index: str | None,
    model: str | None,
    via: str,
    output: str,
    **kwargs: Any,
) -> None:
    """Find images by a text description (--text) or an example image (--image)."""
    from provisioning.render import render_search
    from provisioning.search import Searcher

    if (text is None) == (image is None):
        raise click.UsageError("give exactly one of --text or --image")
    loaded = _load(stack)
    cluster = _connect(loaded, _conn(kwargs))
    searcher = Searcher(loaded, cluster)
    if text is not None:
        result = searcher.search_text(text, k=k, index=index, model=model, via=via)
    else:
        assert image is not None
        result = searcher.search_image(image, k=k, index=index)
    if output == "json":
        _emit_json(result.to_json())
    else:
        click.echo(render_search(result))


@cli.command()
@click.option("--plan", "plan_", is_flag=True, help="print the schema of `plan --output json` instead")
def schema(plan_: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of stack.yaml (or of the JSON plan)."""
    if plan_:
        from provisioning.plan import plan_schema

        click.echo(json.dumps(plan_schema(), indent=2, sort_keys=True))
        return
    from provisioning.spec.schema import stack_schema_json

    click.echo(stack_schema_json(), nl=False)


cli.add_command(sandbox_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps click's usage errors (exit 2 by default) to 1, keeping 2 for 'changes pending'."""
    try:
        cli.main(args=argv, prog_name="provision", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_FAILURE)
    except ProvisionError as exc:
        from provisioning.cluster import redact

        _fail(redact(str(exc), _SECRETS))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
