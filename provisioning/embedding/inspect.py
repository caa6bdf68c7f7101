"""Facts about a local model directory, read from its config files without importing torch.

``provision validate`` must be fast and must not need model weights, so output size and
normalisation are read from the JSON that sentence-transformers and transformers write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning.errors import ProvisionError


class ModelDirError(ProvisionError):
    """A model directory that is missing or not in a format this tool can read."""


@dataclass(frozen=True)
class ModelInfo:
    dims: int
    normalized: bool
    kind: str  # "sentence-transformers" or "hf-clip"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelDirError(f"{path} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} does not hold a JSON object")
    return data


def _hidden_size(config: dict[str, Any]) -> int | None:
    if config.get("model_type") == "clip":
        value = config.get("projection_dim", 512)
    else:
        value = config.get("hidden_size", config.get("dim", config.get("d_model")))
    return int(value) if isinstance(value, int) else None


def inspect_model_dir(path: Path) -> ModelInfo:
    """Output dimensions and normalisation of a sentence-transformers or Hugging Face CLIP directory."""
    if not path.exists():
        raise ModelDirError(f"model directory not found: {path}")
    if not path.is_dir():
        raise ModelDirError(f"{path} is not a directory")
    modules_file = path / "modules.json"
    if modules_file.exists():
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelDirError(f"cannot read {modules_file}: {exc}") from exc
        if not isinstance(modules, list):
            raise ModelDirError(f"{modules_file} does not hold a list of modules")
        dims: int | None = None
        normalized = False
        for module in modules:
            kind = str(module.get("type", ""))
            mod_dir = path / str(module.get("path", ""))
            if kind.endswith(("Transformer", "CLIPModel")):
                dims = _hidden_size(_json(mod_dir / "config.json"))
            elif kind.endswith("Dense"):
                dims = int(_json(mod_dir / "config.json")["out_features"])
            elif kind.endswith("Pooling"):
                pass
            elif kind.endswith("Normalize"):
                normalized = True
        if dims is None:
            raise ModelDirError(f"cannot tell the output size of {path} from {modules_file}")
        return ModelInfo(dims=dims, normalized=normalized, kind="sentence-transformers")
    config = _json(path / "config.json")
    if config.get("model_type") != "clip":
        raise ModelDirError(
            f"{path} is neither a sentence-transformers model (no modules.json) nor a CLIP model "
            f"(config.json model_type is {config.get('model_type')!r})"
        )
    size = _hidden_size(config)
    if size is None:
        raise ModelDirError(f"{path / 'config.json'} has no projection_dim")
    return ModelInfo(dims=size, normalized=False, kind="hf-clip")
