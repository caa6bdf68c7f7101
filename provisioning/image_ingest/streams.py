"""Streaming helpers of the ingest pipeline: ordered bounded parallel map, growing groups, and the
bounded set of ids seen in a run. Each keeps memory independent of the corpus."""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Done:
    """End-of-stream marker put on the pipeline's queues."""


DONE = Done()


def default_workers() -> int:
    """Decode threads when the job does not say: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(
    executor: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """``map(fn, items)`` on the executor, in order, with at most ``window`` tasks in flight.

    The next task is submitted before a result is handed out, so workers keep going while the
    consumer works on it.
    """
    pending: deque[Future[R]] = deque()
    source = iter(items)
    exhausted = False
    for item in source:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            break
    else:
        exhausted = True
    while pending:
        result = pending.popleft().result()
        if not exhausted:
            nxt = next(source, DONE)
            if isinstance(nxt, Done):
                exhausted = True
            else:
                pending.append(executor.submit(fn, nxt))
        yield result


class SeenIds:
    """Ids met so far in a run, as 32-byte digests; bounded to the most recent ``limit`` if given."""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, doc_id: str) -> bool:
        return bytes.fromhex(doc_id) in self._ids

    def add(self, doc_id: str) -> None:
        self._ids[bytes.fromhex(doc_id)] = None
        if self._limit is not None and len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


def growing_groups(items: Iterator[T], *, first: int, largest: int) -> Iterator[list[T]]:
    """Consecutive groups of ``items``: ``first`` long, doubling up to ``largest``.

    Small first groups get the first documents embedded (and searchable) quickly; large later ones
    keep the number of existence checks low.
    """
    size = max(1, first)
    while True:
        group: list[T] = []
        for item in items:
            group.append(item)
            if len(group) >= size:
                break
        if not group:
            return
        yield group
        if len(group) < size:
            return
        size = min(largest, size * 2)
