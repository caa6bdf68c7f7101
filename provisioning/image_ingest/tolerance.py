"""How many files of an ingest job may fail before the run counts as failed.

A job always finishes: every file that can be indexed is, and every file that cannot is listed
with its reason. Whether the run then succeeds is a separate decision, made per job by its
tolerance: ``max_failed`` in the stack (``IngestSpec``) or ``--max-failed`` on the command line,
as a count of files (``10``) or a percentage of the files the job scanned (``5%``). The default is
0: any failed file fails the run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from provisioning.stackfile.schema import MAX_FAILED_PATTERN

_FORM = re.compile(MAX_FAILED_PATTERN)


@dataclass(frozen=True)
class FailureTolerance:
    """At most ``count`` failed files, or at most ``percent`` % of the files scanned (rounded down)."""

    count: int = 0
    percent: Fraction | None = None

    @classmethod
    def parse(cls, value: int | str) -> FailureTolerance:
        """``10`` or ``"10"``: ten files; ``"5%"`` or ``"2.5%"``: that share of the files scanned.

        Raises ValueError for anything else (negative counts, percentages above 100).
        """
        if isinstance(value, bool):
            raise ValueError(f"max_failed must be a count or a percentage, not {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"max_failed must be 0 or more, not {value}")
            return cls(count=value)
        text = value.strip()
        if _FORM.match(text):
            return cls(percent=Fraction(text[:-1])) if text.endswith("%") else cls(count=int(text))
        raise ValueError(
            f"max_failed must be a count (10) or a percentage from 0% to 100% (5%), not {value!r}"
        )

    def allowed(self, scanned: int) -> int:
        """The most failed files tolerated in a job that scanned ``scanned`` files."""
        if self.percent is None:
            return self.count
        return math.floor(self.percent * scanned / 100)

    def exceeded_by(self, failed: int, scanned: int) -> bool:
        """True when ``failed`` files out of ``scanned`` are more than this tolerates."""
        return failed > self.allowed(scanned)

    def to_json(self) -> int | str:
        """As written in a stack file: an integer count or a ``"5%"`` string."""
        return self.count if self.percent is None else str(self)

    def __str__(self) -> str:
        if self.percent is None:
            return str(self.count)
        whole = self.percent.numerator / self.percent.denominator
        return f"{whole:g}%"
