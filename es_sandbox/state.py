"""Everything the sandbox knows, behind one lock.

Each API area owns its part (``indices``, ``templates``, ``pipelines``, ``ml``); handlers hold ``lock``
while they read or change state so that a request sees and leaves a consistent cluster.
Persistence (``--data DIR``) snapshots every part; see :mod:`es_sandbox.persistence`
for the protocol a part implements to store itself efficiently.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from es_sandbox.config import SandboxConfig
from es_sandbox.versions import Emulation, parse_version


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the sandbox saw it, for tests that count reads and writes."""

    method: str
    path: str
    status: int
    write: bool
    started: float
    duration_ms: float


@dataclass
class RequestLog:
    entries: deque[LoggedRequest] = field(default_factory=lambda: deque(maxlen=100_000))

    def add(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()

    def writes(self) -> list[LoggedRequest]:
        return [e for e in self.entries if e.write]

    def reads(self) -> list[LoggedRequest]:
        return [e for e in self.entries if not e.write]


class SandboxState:
    """The cluster: owned by the API modules, persisted by ``persistence`` when a data dir is set."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.log = RequestLog()
        self.license_type = config.license
        # The Elasticsearch version emulated, with the license it checks (see es_sandbox.versions).
        self.emulation = Emulation(parse_version(config.es_version), lambda: self.license_type)
        # API areas attach their state here (indices, templates, pipelines, ml, ...).
        self.parts: dict[str, Any] = {}
        self._change_listeners: list[Callable[[], None]] = []
        # The seeded fault-injection coin; the server replaces it with its own (see Faults).
        self.chance: Callable[[float], bool] = lambda rate: False
        self.router_routes: list[Any] = []  # the server's routes, for GET /_capabilities

    def part(self, name: str, factory: Any) -> Any:
        """The state of one API area, created on first use."""
        with self.lock:
            if name not in self.parts:
                self.parts[name] = factory()
            return self.parts[name]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Register a callback run after state changes (persistence uses it to schedule a snapshot)."""
        self._change_listeners.append(listener)

    def mark_dirty(self) -> None:
        """Tell persistence something changed outside a write request (e.g. a deployment started)."""
        for listener in self._change_listeners:
            listener()
