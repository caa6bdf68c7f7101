"""What the ``provision`` commands share: the stack argument, the connection and output options
(declared once, as decorators, the way sqlite-utils' commands share theirs), JSON output, and the
hooks that let a workflow ask for confirmation and show progress on the terminal."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from provisioning.errors import SpecError
from provisioning.json_types import JsonValue

if TYPE_CHECKING:
    from provisioning.changes import Plan
    from provisioning.cluster import Cluster
    from provisioning.executor import ChangeResult
    from provisioning.image_ingest.progress import Progress
    from provisioning.image_ingest.tolerance import FailureTolerance
    from provisioning.stackfile import Stack

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CHANGES = 2

# Secrets of the connection in use, so that any error printed by main() is redacted.
SECRETS: list[str] = []


class Failed(click.ClickException):
    """Ends a command with exit 1 after what it printed; main() prints ``error: <message>``."""

    exit_code = EXIT_FAILURE


# -- output ------------------------------------------------------------------------------------
def emit_json(document: JsonValue) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def print_result(
    output: str, document: Callable[[], JsonValue], render: Callable[[], str], error: str | None = None
) -> None:
    """A command's result: with ``--output json`` the one JSON document on stdout; otherwise the text
    rendering (when there is one) on stdout and ``error: <error>`` on stderr."""
    if output == "json":
        emit_json(document())
        return
    rendered = render()
    if rendered:
        click.echo(rendered)
    if error:
        click.echo(f"error: {error}", err=True)


def output_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people, json for programs (one document on stdout)",
    )(func)


def stack_argument(func: Callable[P, R]) -> Callable[P, R]:
    return click.argument("stack", type=click.Path(path_type=Path))(func)


def open_stack(path: Path) -> Stack:
    """The loaded stack, or every problem on stderr and exit 1."""
    from provisioning.stackfile import load_stack

    try:
        return load_stack(path)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise Failed(f"{path} is invalid; run provision validate {path}") from None


# -- connection --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Connection:
    """The connection options as given on the command line (each None when not given)."""

    es_url: str | None
    api_key: str | None
    username: str | None
    password: str | None
    ca_certs: str | None
    insecure: bool

    def open(self, stack: Stack) -> Cluster:
        """The cluster for ``stack``: these options over ES_* variables over the stack's ``cluster:``."""
        from provisioning.cluster import connect

        cluster = connect(
            stack,
            url=self.es_url,
            api_key=self.api_key,
            username=self.username,
            password=self.password,
            ca_certs=self.ca_certs,
            insecure=self.insecure or None,
        )
        SECRETS.extend(cluster.options.secrets)
        return cluster


_CONNECTION_OPTIONS = [
    click.option("--es-url", help="Elasticsearch URL (env ES_URL; default: the stack's cluster.url)"),
    click.option("--api-key", help="API key (env ES_API_KEY)"),
    click.option("--username", help="basic auth user (env ES_USERNAME)"),
    click.option("--password", help="basic auth password (env ES_PASSWORD)"),
    click.option("--ca-certs", type=click.Path(dir_okay=False), help="CA bundle (env ES_CA_CERTS)"),
    click.option("--insecure", is_flag=True, help="do not verify TLS certificates (test clusters only)"),
]


def connection_options(func: Callable[..., R]) -> Callable[..., R]:
    """Adds --es-url, --api-key, --username, --password, --ca-certs and --insecure; the command
    receives them as one ``connection: Connection``."""

    @functools.wraps(func)
    def wrapper(
        *args: object,
        es_url: str | None,
        api_key: str | None,
        username: str | None,
        password: str | None,
        ca_certs: str | None,
        insecure: bool,
        **kwargs: object,
    ) -> R:
        connection = Connection(es_url, api_key, username, password, ca_certs, insecure)
        return func(*args, connection=connection, **kwargs)

    command: Callable[..., R] = wrapper
    for option in reversed(_CONNECTION_OPTIONS):
        command = option(command)
    return command


def adopt_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--adopt", multiple=True, metavar="KIND/NAME", help="take over an unmanaged resource of that name"
    )(func)


def _tolerance(ctx: click.Context, param: click.Parameter, value: str | None) -> FailureTolerance | None:
    """``--max-failed 10`` or ``--max-failed 5%`` as a FailureTolerance (None when not given)."""
    from provisioning.image_ingest.tolerance import FailureTolerance

    if value is None:
        return None
    try:
        return FailureTolerance.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("max_failed", "--max-failed"), ctx, param) from None


def max_failed_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--max-failed",
        metavar="N|P%",
        callback=_tolerance,
        help="failed files (unreadable, not images) each ingest job tolerates before exit 1: a count "
        "(10) or a percentage of the files scanned (5%); overrides the jobs' max_failed (default 0)",
    )(func)


def engine_options(func: Callable[..., R]) -> Callable[..., R]:
    """``--engine local|ray`` and ``--ray-address`` (env RAY_ADDRESS): which engine runs ingest jobs."""
    func = click.option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        metavar="ADDRESS",
        help="Ray cluster to run --engine ray on (host:port, ray://host:10001, auto; env RAY_ADDRESS); "
        "default: a local Ray instance",
    )(func)
    return click.option(
        "--engine",
        type=click.Choice(["local", "ray"]),
        help="run ingest jobs with threads on this host (local) or on Ray Data (ray); "
        "overrides the jobs' engine (default: each job's, local unless set)",
    )(func)


# -- interaction ---------------------------------------------------------------------------------
def confirmer(question: Callable[[Plan], str], auto: bool, flag: str) -> Callable[[Plan], bool] | None:
    """The ``approve`` hook of a workflow: None with ``auto``; otherwise a yes/no prompt on a
    terminal, and a refusal (with the flag to pass) when stdin is not one."""
    if auto:
        return None

    def approve(plan: Plan) -> bool:
        if not sys.stdin.isatty():
            click.echo(
                f"error: refusing to continue without confirmation: stdin is not a terminal; pass {flag}",
                err=True,
            )
            return False
        if not click.confirm(question(plan), default=False, err=True):
            click.echo("cancelled; nothing was changed", err=True)
            return False
        return True

    return approve


def plan_printer(text: bool) -> Callable[[Plan], None] | None:
    if not text:
        return None
    from provisioning.render import render_plan

    return lambda plan: click.echo(render_plan(plan))


def result_printer(result: ChangeResult) -> None:
    from provisioning.render import render_result

    click.echo(render_result(result), err=True)


def progress_bar() -> Progress | None:
    from provisioning.image_ingest.progress import TqdmProgress

    return TqdmProgress(sys.stderr) if sys.stderr.isatty() else None
