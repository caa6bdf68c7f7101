"""Reading the runbooks (docs/runbooks/*.md) as the test runs them.

Two kinds of fenced blocks are run, in document order, in one bash session per runbook:

- ```` ```bash runnable ````: shell commands, run as written (``set -euo pipefail``);
- ```` ```yaml stack-patch ````: a change to ``stack.yaml``, for people to make by hand; the test
  applies it to ``$STACK`` as a JSON merge patch (RFC 7386: mappings merge, ``null`` removes a key,
  anything else replaces).

Other blocks (plain ``bash``, output samples, YAML excerpts) are documentation only. ``python -m
tests.ops.runbooks patch STACK PATCH`` applies one patch (the script calls it for patch blocks).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class Block:
    kind: str  # "bash" or "patch"
    body: str
    line: int


def runnable_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        info = match["info"].split()
        line = text.count("\n", 0, match.start()) + 1
        indent = len(match["indent"])
        body = "\n".join(row[indent:] for row in match["body"].splitlines())
        if info[:2] == ["bash", "runnable"]:
            blocks.append(Block("bash", body, line))
        elif info[:2] == ["yaml", "stack-patch"]:
            blocks.append(Block("patch", body, line))
    return blocks


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(stack: Path, patch: Path) -> None:
    body = yaml.safe_load(stack.read_text())
    changes = yaml.safe_load(patch.read_text())
    assert isinstance(changes, dict), f"{patch}: a stack patch is a mapping"
    stack.write_text(yaml.safe_dump(merge_patch(body, changes), sort_keys=False, allow_unicode=True))


def script(runbook: Path, scratch: Path) -> str:
    """The bash script that runs ``runbook``'s blocks in order; patches are written under ``scratch``."""
    lines = ["set -euo pipefail"]
    for number, block in enumerate(runnable_blocks(runbook)):
        where = f"{runbook.name}:{block.line}"
        lines.append(f"printf '\\n### %s\\n' {shlex.quote(where)}")
        if block.kind == "bash":
            lines.append(block.body)
        else:
            patch = scratch / f"patch-{number}.yaml"
            patch.write_text(block.body)
            lines.append(
                f'{shlex.quote(sys.executable)} -m tests.ops.runbooks patch "$STACK" {shlex.quote(str(patch))}'
            )
            lines.append(f'echo "stack.yaml changed as {where} says"')
    lines.append("printf '\\n### done\\n'")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - called by the scripts above
    if len(sys.argv) != 4 or sys.argv[1] != "patch":
        sys.exit("usage: python -m tests.ops.runbooks patch STACK PATCH")
    apply_patch(Path(sys.argv[2]), Path(sys.argv[3]))
