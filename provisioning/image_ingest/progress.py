"""Progress of an ingest job, reported to whoever shows it (the CLI, on stderr, when it is a TTY).

The library never decides whether to draw a bar: it calls a :class:`Progress` it was given, from
several threads (the identify, encode and index stages each finish files). :class:`TqdmProgress`
draws one bar per job on a stream the caller chooses.
"""

from __future__ import annotations

import threading
from typing import IO, Any, Protocol


class Progress(Protocol):
    def start(self, job: str, total: int | None) -> None:
        """A job begins; ``total`` is the number of files it will go through, when known."""

    def advance(self, done: int, *, indexed: int, skipped: int, failed: int) -> None:
        """``done`` more files are finished; the other arguments are the job's running totals."""

    def finish(self) -> None:
        """The job ended (successfully or not)."""


class TqdmProgress:
    """A tqdm bar per job, written to ``stream`` (the CLI passes stderr when it is a terminal)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._bar: Any = None
        self._lock = threading.Lock()

    def start(self, job: str, total: int | None) -> None:
        from tqdm import tqdm

        with self._lock:
            self._bar = tqdm(total=total, desc=job, unit="file", file=self._stream, dynamic_ncols=True)

    def advance(self, done: int, *, indexed: int, skipped: int, failed: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(done)
                self._bar.set_postfix(indexed=indexed, skipped=skipped, failed=failed, refresh=False)

    def finish(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
