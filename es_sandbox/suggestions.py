"""Did-you-mean suggestions for unknown names, scored as Elasticsearch scores them.

Unknown query parameters, body fields and settings are answered with the closest known names, by
Lucene's Levenshtein similarity; every area that rejects a name uses this one implementation.
"""

from __future__ import annotations

from collections.abc import Iterable


def levenshtein_similarity(a: str, b: str) -> float:
    """Lucene's LevenshteinDistance.getDistance: 1 - edits / max(len), used for did-you-mean."""
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def did_you_mean(invalid: str, candidates: Iterable[str]) -> str:
    """ES's "[x] -> did you mean [y]?" suffix (BaseRestHandler.unrecognized)."""
    scored = [(levenshtein_similarity(invalid, c), c) for c in candidates]
    keys = [c for s, c in sorted((t for t in scored if t[0] > 0.5), key=lambda t: (-t[0], t[1]))]
    if not keys:
        return f"[{invalid}]"
    if len(keys) == 1:
        return f"[{invalid}] -> did you mean [{keys[0]}]?"
    return f"[{invalid}] -> did you mean any of [{', '.join(keys)}]?"
