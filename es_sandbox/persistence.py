"""``--data DIR``: the sandbox's state survives restarts, through atomic snapshots.

Layout::

    DIR/CURRENT                 name of the live snapshot, replaced atomically (os.replace)
    DIR/snap-000042/manifest.json
    DIR/snap-000042/<part>/...  a part that stores itself (see below)
    DIR/snap-000042/<part>.json a part that is plain JSON (e.g. ``pipelines``)
    DIR/snap-000042/<part>.pickle   any other part (pickle protocol 5)

A snapshot is written to a temporary directory, fsynced, renamed, and only then named in
``CURRENT``; a crash mid-write leaves the previous snapshot in place. Snapshots are taken by a
background thread shortly after write requests (debounced, and spaced by a multiple of how long
the last one took so bulk ingestion is not slowed down by continuous rewrites), and on shutdown.

How a part stores itself (the protocol the ML part plugs into):

* ``snapshot_writer(self) -> Callable[[Path, Path | None], None]``: called with ``state.lock``
  held; it captures an immutable view and returns a function that writes it, called *without*
  the lock, with the part's new directory and its directory in the previous snapshot (or None),
  so unchanged files can be hard-linked instead of rewritten. Preferred for large parts.
* or ``save_snapshot(self, directory: Path, previous: Path | None) -> None``: called with the lock held.
* and a loader, registered at import time: ``register_loader(name, fn)`` where
  ``fn(state, directory) -> part`` rebuilds the part from its directory.

Parts without these methods are stored as JSON when they are JSON data, else pickled. Parts whose
name starts with ``_`` are never persisted.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from es_sandbox.state import SandboxState

log = logging.getLogger("es_sandbox.persistence")

FORMAT_VERSION = 1
Writer = Callable[[Path, "Path | None"], None]
Loader = Callable[[SandboxState, Path], Any]

_LOADERS: dict[str, Loader] = {}


def register_loader(name: str, loader: Loader) -> None:
    """Register how to rebuild the part ``name`` from the directory its writer filled."""
    _LOADERS[name] = loader


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync one file (snapshots must not point at half-written files)."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def link_or_copy(source: Path, target: Path) -> None:
    """Reuse an unchanged file from the previous snapshot: a hard link, or a copy where links fail."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class Persister:
    """Loads the last snapshot at start, writes new ones after changes and at stop."""

    def __init__(self, state: SandboxState, data_dir: Path, min_interval_s: float = 0.5) -> None:
        self.state = state
        self.data_dir = Path(data_dir)
        self.min_interval_s = min_interval_s
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()
        self._generation = 0
        self._last_duration = 0.0
        state.on_change(self._dirty.set)

    # -- loading ----------------------------------------------------------------------------------
    def current(self) -> Path | None:
        pointer = self.data_dir / "CURRENT"
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        path = self.data_dir / name
        return path if path.is_dir() else None

    def load(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        snapshot = self.current()
        if snapshot is None:
            return
        manifest = json.loads((snapshot / "manifest.json").read_text())
        self._generation = int(manifest.get("generation", 0))
        if "license_type" in manifest:
            self.state.license_type = manifest["license_type"]
        for name, kind in manifest.get("parts", {}).items():
            if kind == "custom":
                loader = _LOADERS.get(name)
                if loader is None:
                    log.warning("no loader registered for sandbox state part %r; starting it empty", name)
                    continue
                self.state.parts[name] = loader(self.state, snapshot / name)
            elif kind == "json":
                self.state.parts[name] = json.loads((snapshot / f"{name}.json").read_text())
            elif kind == "pickle":
                with (snapshot / f"{name}.pickle").open("rb") as handle:
                    self.state.parts[name] = pickle.load(handle)
        log.info("sandbox state loaded from %s", snapshot)

    # -- saving -----------------------------------------------------------------------------------
    def save(self) -> Path:
        """Write a complete snapshot now and make it current."""
        with self._save_lock:
            started = time.perf_counter()
            previous = self.current()
            self._generation += 1
            name = f"snap-{self._generation:06d}"
            tmp = self.data_dir / f".tmp-{name}"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            writers: list[tuple[str, Writer]] = []
            manifest: dict[str, Any] = {
                "format": FORMAT_VERSION,
                "es_version": self.state.emulation.number,
                "generation": self._generation,
                "parts": {},
            }
            with self.state.lock:
                manifest["license_type"] = self.state.license_type
                for part_name, part in list(self.state.parts.items()):
                    if part_name.startswith("_"):
                        continue
                    if hasattr(part, "snapshot_writer"):
                        writers.append((part_name, part.snapshot_writer()))
                        manifest["parts"][part_name] = "custom"
                    elif hasattr(part, "save_snapshot"):
                        directory = tmp / part_name
                        directory.mkdir()
                        prev = (
                            previous / part_name
                            if previous is not None and (previous / part_name).is_dir()
                            else None
                        )
                        part.save_snapshot(directory, prev)
                        manifest["parts"][part_name] = "custom"
                    elif _is_json(part):
                        write_file(tmp / f"{part_name}.json", json.dumps(part).encode())
                        manifest["parts"][part_name] = "json"
                    else:
                        write_file(tmp / f"{part_name}.pickle", pickle.dumps(part, protocol=5))
                        manifest["parts"][part_name] = "pickle"
            for part_name, writer in writers:
                directory = tmp / part_name
                directory.mkdir(exist_ok=True)
                prev = (
                    previous / part_name if previous is not None and (previous / part_name).is_dir() else None
                )
                writer(directory, prev)
            write_file(tmp / "manifest.json", json.dumps(manifest, indent=1).encode())
            fsync_dir(tmp)
            final = self.data_dir / name
            tmp.replace(final)
            pointer_tmp = self.data_dir / "CURRENT.tmp"
            write_file(pointer_tmp, name.encode())
            pointer_tmp.replace(self.data_dir / "CURRENT")
            fsync_dir(self.data_dir)
            for old in self.data_dir.glob("snap-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
            self._last_duration = time.perf_counter() - started
            return final

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._dirty.wait(timeout=0.5):
                continue
            # Debounce: let a burst of writes finish, and keep saving from dominating the CPU.
            time.sleep(max(self.min_interval_s, 4 * self._last_duration))
            self._dirty.clear()
            try:
                self.save()
            except OSError as exc:
                log.error("sandbox snapshot failed: %s", exc)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sandbox-persistence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.save()
