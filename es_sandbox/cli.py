"""The sandbox's command line: ``provision sandbox`` and ``python -m es_sandbox``.

``command`` is a click command; the product's CLI loads it by name only when ``provision sandbox``
runs (or its help is shown), so the product never imports this package.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from es_sandbox.config import Faults, SandboxConfig
from es_sandbox.server import SandboxServer
from es_sandbox.versions import NEWEST, RELEASES, UnsupportedVersion, parse_version
from provisioning.units import parse_bytes


class ListenError(click.ClickException):
    """The server cannot bind its address: ``error: ...`` on stderr and exit 1, as ``provision`` reports errors."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _configure_logging() -> None:
    """The sandbox's logs on stderr, at the verbosity of the enclosing CLI (``provision -v/-q``).

    Without an enclosing CLI (``python -m es_sandbox``) this is ``provision``'s default: info and up,
    message only.
    """
    root_params = click.get_current_context().find_root().params
    verbose = int(root_params.get("verbose") or 0)
    quiet = bool(root_params.get("quiet"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbose else "  %(message)s"))
    logger = logging.getLogger("es_sandbox")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO))
    logger.propagate = False


def _es_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return str(parse_version(value))
    except UnsupportedVersion as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command(name="sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option(
    "--port", default=9200, show_default=True, type=int, help="port to listen on (0: any free port)"
)
@click.option(
    "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), help="persist state here"
)
@click.option(
    "--ml-memory", default="4gb", show_default=True, help="native memory the ML node offers deployments"
)
@click.option(
    "--es-version",
    default=NEWEST.minor_line,
    show_default=True,
    callback=_es_version,
    help="Elasticsearch version to emulate: "
    + ", ".join(f"{major}.{minor}" for major, minor in RELEASES)
    + " (the minor's .0 release) or a release such as 9.2.5",
)
@click.option(
    "--license", "license_type", type=click.Choice(["basic", "trial"]), default="basic", show_default=True
)
@click.option(
    "--deployment-delay", default=0.5, show_default=True, type=float, help="seconds in each deployment state"
)
@click.option("--fault-bulk-429", default=0.0, type=float, help="fraction of bulk items refused with 429")
@click.option("--fault-503", default=0.0, type=float, help="fraction of requests answered 503")
@click.option("--fault-latency-ms", default=0.0, type=float, help="latency added to every request")
@click.option("--fault-seed", default=0, type=int, help="seed of the fault injection")
def command(
    host: str,
    port: int,
    data_dir: Path | None,
    ml_memory: str,
    es_version: str,
    license_type: str,
    deployment_delay: float,
    fault_bulk_429: float,
    fault_503: float,
    fault_latency_ms: float,
    fault_seed: int,
) -> None:
    """Run a local Elasticsearch-compatible server for development and CI (not for production)."""
    _configure_logging()
    config = SandboxConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        ml_memory_bytes=parse_bytes(ml_memory),
        license=license_type,
        es_version=es_version,
        deployment_start_delay_s=deployment_delay,
        allocation_delay_s=deployment_delay,
        faults=Faults(fault_bulk_429, fault_503, fault_latency_ms, fault_seed),
    )
    try:
        server = SandboxServer(config)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(
        f"sandbox listening on {server.url} (Elasticsearch {config.es_version} API subset; "
        "for development and CI only)",
        err=True,
    )
    try:
        server.serve_forever()
    finally:
        server.stop()
