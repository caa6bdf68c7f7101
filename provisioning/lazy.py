"""Subcommands that load their code on first use, so that the product never imports it.

``provision sandbox`` runs the sandbox, a separate top-level package of the same distribution
(``es_sandbox``) that the product must not import: :data:`sandbox_command` names it, and imports it
by name only when the command runs, completes or shows its help. ``provision --help`` lists it
from the help text kept here (the sandbox's tests check that it matches the real command's).
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyCommand(click.Command):
    """A command that stands for ``target`` (``"package.module:attribute"``, a click command).

    Only its name and help are known up front; parsing, invoking and help go to the real command,
    imported on first use.
    """

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target
        self._command: click.Command | None = None

    def load(self) -> click.Command:
        if self._command is None:
            module_name, _, attribute = self.target.partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.target} is not a click command")
            self._command = command
        return self._command

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self.load().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.load().invoke(ctx)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        return self.load().main(*args, **kwargs)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.load().get_params(ctx)

    def get_usage(self, ctx: click.Context) -> str:
        return self.load().get_usage(ctx)

    def get_help(self, ctx: click.Context) -> str:
        return self.load().get_help(ctx)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.load().to_info_dict(ctx)


sandbox_command = LazyCommand(
    "sandbox",
    "es_sandbox.cli:command",
    help="Run a local Elasticsearch-compatible server for development and CI (not for production).",
)
