"""Machine learning in the sandbox: trained models, deployments, inference (TorchScript via torch.jit).

The public function other sandbox areas call is :func:`infer`; everything else is internal.
"""

from __future__ import annotations

from typing import Any

from provisioning.sandbox.http import ApiError
from provisioning.sandbox.state import SandboxState


def infer(state: SandboxState, model_ref: str, texts: list[str]) -> list[dict[str, Any]]:
    """Run the deployed model named by id, alias or deployment id on ``texts``.

    Returns one inference result per text as Elasticsearch's ``_infer`` does (for text_embedding:
    ``{"predicted_value": [...]}``). Raises ApiError as Elasticsearch would when the model does
    not exist or is not deployed.
    """
    raise ApiError(404, "resource_not_found_exception", f"Could not find trained model [{model_ref}]")
