"""Elasticsearch's byte-size strings (``512mb``) as numbers."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b?)\s*$", re.I)


def parse_bytes(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a byte size: {text!r} (e.g. 512mb, 4gb)")
    unit = match.group(2).lower()
    if unit and not unit.endswith("b"):
        unit += "b"
    return int(float(match.group(1)) * _UNITS[unit])
