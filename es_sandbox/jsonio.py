"""JSON in and out of the sandbox: orjson where possible, the standard library as a fallback.

Bulk bodies carry thousands of 512-float vectors; the standard library parses them at ~350 us per
document, orjson several times faster. The fallback keeps what orjson refuses but JSON allows in
Python (integers beyond 64 bits), and gives the standard library's error messages.
"""

from __future__ import annotations

import json
from typing import Any

try:  # orjson is a declared dependency; the fallback keeps the sandbox usable without it.
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is missing
    orjson = None  # type: ignore[assignment]

JSONDecodeError = json.JSONDecodeError


def loads(data: bytes | str) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # re-parse with json: its error message, or a value orjson does not take
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (non-ASCII kept as UTF-8, as ES writes it)."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass  # e.g. integers beyond 64 bits
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
