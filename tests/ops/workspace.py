"""What the CI examples and the runbooks run in: a copy of the quickstart that commands may edit,
and the environment a user's shell would have (``provision`` on the PATH, ES_URL set)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.integration.stacks import QUICKSTART

BIN = Path(sys.executable).parent
_CONNECTION_VARIABLES = ("ES_URL", "ES_API_KEY", "ES_USERNAME", "ES_PASSWORD", "ES_CA_CERTS")


def quickstart_workspace(directory: Path) -> Path:
    """A copy of ``examples/quickstart`` at ``directory/examples/quickstart``, verbatim, beside a link
    ``directory/models`` to the repository's models (the stack's ``../../models/...`` paths), so
    commands can edit the stack and write files beside it. Returns the stack file; commands run
    from its folder."""
    target = directory / "examples" / "quickstart"
    target.mkdir(parents=True, exist_ok=True)
    (directory / "models").symlink_to(REPO / "models", target_is_directory=True)
    for part in ("mappings", "pipelines", "queries", "samples"):
        shutil.copytree(QUICKSTART / part, target / part)
    shutil.copy2(QUICKSTART / "stack.yaml", target / "stack.yaml")
    return target / "stack.yaml"


def shell_env(**variables: str) -> dict[str, str]:
    """The environment of a shell where provision is installed (this checkout's), with nothing of
    the test runner's cluster settings, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if k not in _CONNECTION_VARIABLES}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
    env.update(variables)
    return env
