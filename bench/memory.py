"""A process's own peak resident memory, for benchmarks that run each variant in a child process.

``wait4``'s ``ru_maxrss`` is not it: Linux carries the high-water mark across ``execve``, so a child
forked from a large benchmark process reports at least the parent's size. ``VmHWM`` in
``/proc/self/status`` belongs to the address space, which ``execve`` replaces: it is the child's own.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB since it started its program (``VmHWM``; ru_maxrss elsewhere)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
