"""Typed errors raised by the library.

The CLI is the only place that turns these into messages and exit codes, so every error carries
enough context (what, where, and how to fix it) to be printed as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ProvisionError(Exception):
    """Base of every error the library raises on purpose."""


@dataclass(frozen=True)
class Location:
    """A place in a source file, 1-based like editors and compilers show it."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SpecIssue:
    """One problem found in a stack file, pointing at the node that causes it."""

    location: Location | None
    path: str
    message: str
    file: Path | None = None

    def __str__(self) -> str:
        where = str(self.location) if self.location else str(self.file or "<stack>")
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class SpecError(ProvisionError):
    """A stack file that cannot be used; holds every problem found in one pass."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = list(issues)
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the stack"
        super().__init__(head + ":\n" + "\n".join(f"  {issue}" for issue in self.issues))
