"""The tiny trained CLIP text model as a stack, for model and deployment tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO

TEXT_MODEL = REPO / "models" / "tiny-clip" / "text"
IMAGE_MODEL = REPO / "models" / "tiny-clip" / "image"
MAX_LEN = 64


def model_stack(name: str, model_id: str, *, path: Path = TEXT_MODEL, **deployment: Any) -> dict[str, Any]:
    dep = {"number_of_allocations": 1, "wait_for": "fully_allocated", "timeout": "1m"}
    dep.update(deployment)
    return {
        "name": name,
        "cluster": {"license": "trial"},
        "models": {
            "clip-text": {
                "model_id": model_id,
                "source": {"path": str(path)},
                "task_type": "text_embedding",
                "max_model_input_length": MAX_LEN,
                "deployment": dep,
            }
        },
    }


def untrained_text_model(directory: Path) -> Path:
    """Same-shape models with random weights, written by the training script."""
    out = directory / "untrained"
    if not (out / "text" / "modules.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "models" / "train_tiny_clip.py"), "--untrained", "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return out / "text"
