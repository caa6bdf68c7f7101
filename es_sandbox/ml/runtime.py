"""Running an uploaded TorchScript model the way Elasticsearch's native process does.

The definition is loaded with ``torch.jit.load`` on first use and kept per deployment; inputs are
built as Elasticsearch builds them (token ids, attention mask, token type ids, position ids for the
BERT family; ids and mask for MPNet/RoBERTa) with a batch of one per document, and the output tensor
is read back per task type as Elasticsearch's result processors read it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from es_sandbox.http import ApiError
from es_sandbox.ml.tokenizers import FORWARD_ARITY, Tokenized, WordPieceTokenizer

if TYPE_CHECKING:
    import torch

SUPPORTED_TASKS = ("text_embedding", "pass_through", "text_expansion", "text_classification")


def load_module(definition: bytes, deployment_id: str) -> Any:
    """``torch.jit.load`` of an uploaded definition; a broken upload fails the way a node would."""
    import torch

    try:
        module = torch.jit.load(io.BytesIO(definition), map_location="cpu")  # type: ignore[no-untyped-call]
    except (RuntimeError, ValueError) as exc:
        raise ApiError(
            500,
            "status_exception",
            f"Could not start trained model deployment, the following nodes failed with errors "
            f"[{{sandbox=[{deployment_id}] error loading the model: {exc}}}]",
        ) from exc
    module.eval()
    return module


def run_one(
    module: Any,
    tokenizer: WordPieceTokenizer,
    kind: str,
    task: str,
    task_config: dict[str, Any],
    text: str,
    vocabulary: list[str],
) -> dict[str, Any]:
    """Infer one text; returns the result object Elasticsearch puts in ``inference_results``."""
    import torch

    if task not in SUPPORTED_TASKS:
        raise ApiError(
            400,
            "status_exception",
            f"The sandbox does not run [{task}] models; supported task types: {list(SUPPORTED_TASKS)}",
        )
    tokens = tokenizer.tokenize(text)
    with torch.inference_mode():
        output = module(*_inputs(tokens, FORWARD_ARITY.get(kind, 4)))
    if isinstance(output, tuple | list):
        output = output[0]
    results_field = str(task_config.get("results_field") or "predicted_value")
    result: dict[str, Any] = {results_field: _read_output(task, task_config, output, vocabulary)}
    if task == "text_classification":
        result = _classification(task_config, output, results_field)
    if tokens.truncated:
        result["is_truncated"] = True
    return result


def _inputs(tokens: Tokenized, arity: int) -> tuple[torch.Tensor, ...]:
    import torch

    ids = torch.tensor([tokens.ids], dtype=torch.long)
    n = ids.shape[1]
    tensors = (
        ids,
        torch.ones_like(ids),
        torch.zeros_like(ids),
        torch.arange(n, dtype=torch.long).unsqueeze(0),
    )
    return tensors[:arity]


def _first_vector(output: torch.Tensor) -> torch.Tensor:
    """``inferenceResult[0][0]``: a [1, d] output gives its row, a [1, s, d] output its first token."""
    if output.dim() == 1:
        return output
    if output.dim() == 2:
        return output[0]
    return output[0][0]


def _read_output(task: str, task_config: dict[str, Any], output: torch.Tensor, vocabulary: list[str]) -> Any:
    if task == "text_embedding":
        return [float(v) for v in _first_vector(output).tolist()]
    if task == "pass_through":
        # PyTorchPassThroughResults: inferenceResult[0], a 2-d array.
        if output.dim() >= 3:
            return output[0].tolist()
        if output.dim() == 2:
            return output.tolist()
        return [output.tolist()]
    if task == "text_expansion":
        weights = _first_vector(output).tolist()
        return {vocabulary[i]: float(w) for i, w in enumerate(weights) if w > 0 and i < len(vocabulary)}
    return None


def _classification(task_config: dict[str, Any], output: torch.Tensor, results_field: str) -> dict[str, Any]:
    import torch

    logits = _first_vector(output)
    probs = torch.softmax(logits.double(), dim=0).tolist()
    labels = list(task_config.get("classification_labels") or [str(i) for i in range(len(probs))])
    if len(labels) != len(probs):
        raise ApiError(
            400,
            "status_exception",
            f"model returned [{len(probs)}] classes but has [{len(labels)}] classification labels",
        )
    best = max(range(len(probs)), key=lambda i: probs[i])
    top = sorted(range(len(probs)), key=lambda i: -probs[i])
    limit = int(task_config.get("num_top_classes") or 0)
    out: dict[str, Any] = {results_field: labels[best], "prediction_probability": probs[best]}
    if limit:
        n = len(probs) if limit < 0 else limit
        out["top_classes"] = [
            {"class_name": labels[i], "class_probability": probs[i], "class_score": probs[i]} for i in top[:n]
        ]
    return out
