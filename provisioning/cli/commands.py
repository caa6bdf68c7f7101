"""The ``provision`` command line: parse, call one library function, render, exit.

This is the only module that prints or exits. Each command mirrors one call of the library
(:mod:`provisioning`), as sqlite-utils' commands mirror its functions; the options they share
(the stack argument, the connection, ``--output``) are declared once, as decorators. Output goes to
stdout (one JSON document with ``--output json``), logs and progress to stderr. Exit codes: 0
success, 1 any failure, 2 changes pending (``plan --detailed-exitcode``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import click

from provisioning.cli.options import (
    EXIT_CHANGES,
    EXIT_FAILURE,
    EXIT_OK,
    SECRETS,
    Connection,
    Failed,
    adopt_option,
    confirmer,
    connection_options,
    emit_json,
    engine_options,
    max_failed_option,
    open_stack,
    output_option,
    plan_printer,
    print_result,
    progress_bar,
    result_printer,
    stack_argument,
)
from provisioning.errors import ProvisionError, SpecError
from provisioning.lazy import sandbox_command

if TYPE_CHECKING:
    from provisioning.changes import Plan
    from provisioning.image_ingest.tolerance import FailureTolerance
    from provisioning.stackfile.ray_schema import Engine


# -- commands ------------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="provisioning", prog_name="provision")
@click.option("-v", "--verbose", count=True, help="more detail on stderr (-vv: debug)")
@click.option("-q", "--quiet", is_flag=True, help="only warnings and errors on stderr")
def cli(verbose: int, quiet: bool) -> None:
    """Declarative provisioning of image similarity search on Elasticsearch."""
    _configure_logging(verbose, quiet)


def _configure_logging(verbose: int, quiet: bool) -> None:
    """Progress and warnings go to stderr, so stdout stays one JSON document with --output json."""
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
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@cli.command()
@stack_argument
@output_option
def validate(stack: Path, output: str) -> None:
    """Check STACK without contacting a cluster; exit 0 when valid, 1 when not."""
    from provisioning.render import issue_json, render_validation
    from provisioning.stackfile import load_stack

    try:
        loaded = load_stack(stack)
    except SpecError as exc:
        if output == "json":
            emit_json({"valid": False, "stack": str(stack), "issues": [issue_json(i) for i in exc.issues]})
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        count = len(exc.issues)
        click.echo(f"{stack}: invalid ({count} problem{'s' if count != 1 else ''})", err=True)
        sys.exit(EXIT_FAILURE)
    document, text = render_validation(stack, loaded)
    print_result(output, lambda: document, lambda: text)


@cli.command()
@stack_argument
@output_option
@click.option(
    "--detailed-exitcode", is_flag=True, help="exit 0 when nothing would change, 2 when something would"
)
@adopt_option
@click.option("--include-data", is_flag=True, help="plan deleting indices that hold documents")
@connection_options
def plan(
    stack: Path,
    output: str,
    detailed_exitcode: bool,
    adopt: tuple[str, ...],
    include_data: bool,
    connection: Connection,
) -> None:
    """Show what apply would change, without changing anything."""
    from provisioning.planning import plan as make_plan
    from provisioning.render import render_plan

    loaded = open_stack(stack)
    the_plan = make_plan(loaded, connection.open(loaded), adopt=adopt, include_data=include_data)
    print_result(output, the_plan.to_json, lambda: render_plan(the_plan))
    if not the_plan.applicable:
        sys.exit(EXIT_FAILURE)
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(EXIT_CHANGES)


@cli.command(name="show")
@click.argument("plan_file", type=click.File("r", encoding="utf-8"), metavar="PLAN_JSON")
def show(plan_file: TextIO) -> None:
    """Render a saved plan (plan --output json; - for stdin) as Markdown, for a pull-request comment."""
    from provisioning.render import render_plan_markdown

    try:
        document = json.load(plan_file)
    except json.JSONDecodeError as exc:
        raise Failed(
            f"{plan_file.name} is not JSON ({exc}); save it with provision plan --output json"
        ) from None
    if not isinstance(document, dict):
        raise Failed(f"{plan_file.name} is not a provision plan document")
    click.echo(render_plan_markdown(document), nl=False)


@cli.command()
@stack_argument
@output_option
@click.option("--auto-approve", is_flag=True, help="apply without asking for confirmation")
@click.option("--skip-ingest", is_flag=True, help="converge resources only; do not run ingest jobs")
@click.option("--skip-verify", is_flag=True, help="do not run the smoke tests")
@adopt_option
@click.option("--include-data", is_flag=True, help="allow deleting indices that hold documents")
@max_failed_option
@engine_options
@connection_options
def apply(
    stack: Path,
    output: str,
    auto_approve: bool,
    skip_ingest: bool,
    skip_verify: bool,
    adopt: tuple[str, ...],
    include_data: bool,
    max_failed: FailureTolerance | None,
    engine: Engine | None,
    ray_address: str | None,
    connection: Connection,
) -> None:
    """Converge the cluster to STACK, then run its ingest jobs and smoke tests.

    Exit 1 when any stage fails, including an ingest job with more failed files than it tolerates
    (--max-failed, or the job's max_failed; by default none).
    """
    from provisioning.render import render_converge
    from provisioning.workflow import ConvergeOptions, converge

    loaded = open_stack(stack)
    text = output == "text"
    options = ConvergeOptions(
        adopt=adopt,
        include_data=include_data,
        skip_ingest=skip_ingest,
        skip_verify=skip_verify,
        approve=confirmer(lambda _: "Apply these changes?", auto_approve, "--auto-approve"),
        on_plan=plan_printer(text),
        on_change=result_printer,
        progress=progress_bar(),
        max_failed=max_failed,
        engine=engine,
        ray_address=ray_address,
    )
    report = converge(loaded, connection.open(loaded), options)
    shown_error = report.error if report.stopped_at in ("plan", "ingest") else None
    print_result(output, report.to_json, lambda: render_converge(report), shown_error)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURE)


@cli.command()
@stack_argument
@output_option
@click.option("--yes", is_flag=True, help="destroy without asking for confirmation")
@click.option("--include-data", is_flag=True, help="also delete indices that hold documents")
@connection_options
def destroy(stack: Path, output: str, yes: bool, include_data: bool, connection: Connection) -> None:
    """Delete everything STACK manages, in reverse dependency order; nothing else."""
    from provisioning.render import render_apply
    from provisioning.workflow import DestroyOptions
    from provisioning.workflow import destroy as destroy_stack

    loaded = open_stack(stack)
    text = output == "text"

    def question(plan: Plan) -> str:
        return f"Destroy {len(plan.changes)} resource(s) of stack '{loaded.spec.name}'?"

    options = DestroyOptions(
        include_data=include_data,
        approve=confirmer(question, yes, "--yes"),
        on_plan=plan_printer(text),
        on_change=result_printer,
    )
    report = destroy_stack(loaded, connection.open(loaded), options)
    print_result(
        output, report.to_json, lambda: render_apply(report.apply) if report.apply else "", report.error
    )
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURE)


@cli.command()
@stack_argument
@output_option
@connection_options
def status(stack: Path, output: str, connection: Connection) -> None:
    """Per resource: present, managed, drifted; deployments and document counts."""
    from provisioning.render import render_status
    from provisioning.stack_status import status as stack_status

    loaded = open_stack(stack)
    report = stack_status(loaded, connection.open(loaded))
    print_result(output, report.to_json, lambda: render_status(report))


@cli.command()
@stack_argument
@click.argument("names", nargs=-1)
@click.option("--full", is_flag=True, help="re-embed every file, also those already indexed")
@click.option(
    "--prune/--no-prune",
    default=None,
    help="delete documents whose file is gone (default: each job's prune setting)",
)
@max_failed_option
@engine_options
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="write the embeddings as Parquet shards under DIR/<job>/ instead of indexing (no cluster needed)",
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
    help="bulk-load Parquet shards written by --export into the jobs' indices (no model loaded)",
)
@output_option
@connection_options
def ingest(
    stack: Path,
    names: tuple[str, ...],
    full: bool,
    prune: bool | None,
    max_failed: FailureTolerance | None,
    engine: Engine | None,
    ray_address: str | None,
    export_dir: Path | None,
    from_dir: Path | None,
    output: str,
    connection: Connection,
) -> None:
    """Run the ingest jobs (all, or NAMES): embed the images not yet indexed and index them.

    Every job runs to its end and lists each file that failed, with the reason. Exit 1 when an
    embedded image could not be indexed, or when a job had more failed files than it tolerates
    (--max-failed, or the job's max_failed; by default none). --export DIR embeds into Parquet shards
    instead (embed once); --from DIR loads such shards (load many times).
    """
    from provisioning.render import render_ingest

    if export_dir is not None and from_dir is not None:
        raise click.UsageError("--export and --from exclude each other: embed to shards, or load them")
    if prune and (export_dir is not None or from_dir is not None):
        raise click.UsageError("--prune works on a plain ingest, not with --export or --from")
    loaded = open_stack(stack)
    jobs = list(names) or None
    progress = progress_bar()
    if export_dir is not None:
        from provisioning.image_ingest.exporting import export_embeddings

        report = export_embeddings(
            loaded,
            export_dir,
            jobs,
            full=full,
            progress=progress,
            max_failed=max_failed,
            engine=engine,
            ray_address=ray_address,
        )
    else:
        cluster = connection.open(loaded)
        try:
            if from_dir is not None:
                from provisioning.image_ingest.loading import load_embeddings

                report = load_embeddings(
                    loaded,
                    cluster,
                    from_dir,
                    jobs,
                    full=full,
                    progress=progress,
                    max_failed=max_failed,
                    engine=engine,
                    ray_address=ray_address,
                )
            else:
                from provisioning.image_ingest import ingest as run_jobs

                report = run_jobs(
                    loaded,
                    cluster,
                    jobs,
                    full=full,
                    prune=prune,
                    progress=progress,
                    max_failed=max_failed,
                    engine=engine,
                    ray_address=ray_address,
                )
        finally:
            cluster.close()
    print_result(output, report.to_dict, lambda: render_ingest(report))
    if not report.ok:
        raise Failed(report.problem or "ingest failed")


@cli.command()
@stack_argument
@click.argument("names", nargs=-1)
@output_option
@connection_options
def verify(stack: Path, names: tuple[str, ...], output: str, connection: Connection) -> None:
    """Run the smoke tests (all, or NAMES); exit 1 if any fails."""
    from provisioning.render import render_verify
    from provisioning.smoke_tests import verify as run_smoke_tests

    loaded = open_stack(stack)
    report = run_smoke_tests(loaded, connection.open(loaded), names or None)
    print_result(output, report.to_json, lambda: render_verify(report))
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@cli.command()
@stack_argument
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
    via: Literal["query_vector_builder", "infer"],
    output: str,
    connection: Connection,
) -> None:
    """Find images by a text description (--text) or an example image (--image)."""
    from provisioning.queries import search as run_search
    from provisioning.render import render_search

    if (text is None) == (image is None):
        raise click.UsageError("give exactly one of --text or --image")
    loaded = open_stack(stack)
    result = run_search(
        loaded, connection.open(loaded), text=text, image=image, k=k, index=index, model=model, via=via
    )
    print_result(output, result.to_json, lambda: render_search(result))


@cli.command()
@stack_argument
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: every one)"
)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="port to listen on"
)
@click.option("--index", help="index to search (default: the first ingest job's)")
@connection_options
def serve(stack: Path, host: str, port: int, index: str | None, connection: Connection) -> None:
    """Serve the search web page and its JSON API for STACK (read-only towards the cluster)."""
    from provisioning.app import serve as run_server

    loaded = open_stack(stack)
    run_server(loaded, connection.open(loaded), host=host, port=port, index=index)


@cli.command()
@click.option("--plan", "plan_", is_flag=True, help="print the schema of `plan --output json` instead")
def schema(plan_: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of stack.yaml (or of the JSON plan)."""
    if plan_:
        from provisioning.plan_document import plan_schema

        click.echo(json.dumps(plan_schema(), indent=2, sort_keys=True))
        return
    from provisioning.stackfile.json_schema import stack_schema_json

    click.echo(stack_schema_json(), nl=False)


cli.add_command(sandbox_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps click's usage errors (exit 2 by default) to 1, keeping 2 for 'changes pending'."""
    try:
        cli.main(args=argv, prog_name="provision", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except Failed as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_FAILURE)
    except ProvisionError as exc:
        from provisioning.cluster import redact

        click.echo(f"error: {redact(str(exc), SECRETS)}", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
