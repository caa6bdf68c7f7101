"""Machine learning in the sandbox: trained models, deployments, inference (TorchScript via torch.jit).

Other sandbox areas call :func:`infer` (the ``inference`` ingest processor, ``knn.query_vector_builder``)
and may call :func:`ml_node_attributes` / :func:`node_id` to describe the node in ``_nodes``.
Everything else is internal to ``es_sandbox.ml`` and the ``api.ml`` / ``api.inference`` routes.
"""

from __future__ import annotations

from typing import Any

from es_sandbox.ml.deployments import infer_texts
from es_sandbox.ml.node import ml_node_attributes, node_id
from es_sandbox.ml.store import MlState, ml_state
from es_sandbox.state import SandboxState

__all__ = ["MlState", "infer", "ml_node_attributes", "ml_state", "node_id"]


def infer(
    state: SandboxState, model_ref: str, texts: list[str], *, prefix_type: str | None = None
) -> list[dict[str, Any]]:
    """Run the deployed model named by id, alias or deployment id on ``texts``.

    Returns one inference result per text as Elasticsearch's ``_infer`` does (for text_embedding:
    ``{"predicted_value": [...]}``). Raises ApiError as Elasticsearch would when the model does
    not exist (404) or is not deployed (409). ``prefix_type`` ("ingest" or "search") prepends the
    model's ``prefix_strings`` entry, as the inference processor and query vector builder do.
    Safe to call with ``state.lock`` held (it is re-entrant; the model runs under a per-deployment lock).
    """
    return infer_texts(state, model_ref, texts, prefix_type=prefix_type)
