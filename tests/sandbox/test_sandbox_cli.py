"""``provision sandbox`` and ``python -m es_sandbox``: one command, loaded by the product only on use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from es_sandbox import versions
from es_sandbox.cli import command
from provisioning.cli import cli
from provisioning.lazy import LazyCommand, sandbox_command

REPO = Path(__file__).resolve().parents[2]
PYTHON_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
NEWEST = versions.NEWEST
ENTRY_POINTS = {
    "provision sandbox": [sys.executable, "-m", "provisioning", "sandbox"],
    "python -m es_sandbox": [sys.executable, "-m", "es_sandbox"],
}


def test_the_product_registers_the_sandbox_lazily_with_the_commands_own_help() -> None:
    assert cli.commands["sandbox"] is sandbox_command
    assert isinstance(sandbox_command, LazyCommand)
    assert sandbox_command.help == command.help
    assert sandbox_command.load() is command


def test_provision_help_lists_the_sandbox_without_importing_it() -> None:
    script = (
        "import sys\n"
        "from provisioning.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('imported' if any(m.split('.')[0] == 'es_sandbox' for m in sys.modules) else 'not imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=PYTHON_ENV, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "  sandbox   Run a local Elasticsearch-compatible server" in result.stdout
    assert result.stdout.strip().endswith("not imported")


def test_provision_sandbox_help_is_the_commands_help() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"], prog_name="provision")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: provision sandbox [OPTIONS]")
    for option in command.params:
        assert option.opts[0] in result.output
    assert "-h, --help" in result.output  # the group's context settings reach the loaded command


@contextmanager
def _running(argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        argv, stderr=subprocess.PIPE, text=True, env=PYTHON_ENV, cwd=REPO, stdout=subprocess.DEVNULL
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        yield process, line
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_the_sandbox_starts_on_a_free_port(entry: str) -> None:
    with _running([*ENTRY_POINTS[entry], "--port", "0", "--deployment-delay", "0"]) as (_process, line):
        assert line.startswith("sandbox listening on http://127.0.0.1:"), line
        url = line.split()[3]
        assert line.endswith(f"(Elasticsearch {NEWEST} API subset; for development and CI only)\n")
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
    assert body["version"]["build_type"] == "sandbox"
    assert body["version"]["number"] == str(NEWEST)


@pytest.mark.parametrize(("option", "number"), [("9.0.x", "9.0.0"), ("9.2", "9.2.0"), ("9.2.5", "9.2.5")])
def test_es_version_picks_the_emulated_release(option: str, number: str) -> None:
    argv = [*ENTRY_POINTS["provision sandbox"], "--port", "0", "--es-version", option]
    with _running(argv) as (_process, line):
        assert f"(Elasticsearch {number} API subset;" in line, line
        with urllib.request.urlopen(line.split()[3], timeout=30) as response:
            body = json.loads(response.read())
    assert body["version"]["number"] == number
    assert (
        body["version"]["lucene_version"] == versions.Emulation(versions.parse_version(number)).release.lucene
    )


def test_an_unsupported_es_version_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--es-version", "8.19"], prog_name="provision")
    assert result.exit_code == 2, result.output
    assert "9.0.x" in result.output and "9.4.x" in result.output


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_busy_port_is_an_error_not_a_traceback(entry: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*ENTRY_POINTS[entry], "--port", str(port)],
            capture_output=True,
            text=True,
            env=PYTHON_ENV,
            cwd=REPO,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
