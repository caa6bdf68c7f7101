"""Trained model configs: strict parsing of a PUT body and the defaults Elasticsearch fills in.

What GET returns is what Elasticsearch would return for the same PUT: every tokenization setting
spelled out with its default, the native definition store as vocabulary location, and the fields the
server sets itself (``created_by``, ``version``, ``create_time``, ``license_level``, ``location``).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.ml.tokenizers import MASK_TOKENS
from es_sandbox.ml.values import (
    ID_LENGTH_LIMIT,
    expect_type,
    invalid_id_message,
    is_valid_id,
    parse_error,
    reject_unknown,
    too_long_message,
    validation_error,
)

NATIVE_DEFINITION_INDEX = ".ml-inference-native-000002"
ML_CONFIG_VERSION = "12.0.0"

NLP_TYPES = frozenset(
    {
        "text_embedding",
        "pass_through",
        "text_expansion",
        "fill_mask",
        "ner",
        "text_classification",
        "zero_shot_classification",
        "question_answering",
        "text_similarity",
    }
)
CLASSIC_TYPES = frozenset({"regression", "classification", "learning_to_rank"})
MODEL_TYPES = ("tree_ensemble", "lang_ident", "pytorch")
TOKENIZATIONS = ("bert", "bert_ja", "mpnet", "roberta", "xlm_roberta", "deberta_v2")
TRUNCATE = ("first", "second", "none", "balanced")

_COMMON_NLP = frozenset({"vocabulary", "tokenization", "results_field"})
_NLP_FIELDS: dict[str, frozenset[str]] = {
    "text_embedding": _COMMON_NLP | {"embedding_size"},
    "pass_through": _COMMON_NLP,
    "text_expansion": _COMMON_NLP,
    "fill_mask": _COMMON_NLP | {"num_top_classes", "mask_token"},
    "ner": _COMMON_NLP | {"classification_labels"},
    "text_classification": _COMMON_NLP | {"classification_labels", "num_top_classes"},
    "zero_shot_classification": _COMMON_NLP
    | {"classification_labels", "hypothesis_template", "multi_label", "labels"},
    "question_answering": _COMMON_NLP | {"num_top_classes", "max_answer_length"},
    "text_similarity": _COMMON_NLP | {"span_score_combination_function"},
}
_CLASSIC_FIELDS: dict[str, frozenset[str]] = {
    "regression": frozenset({"results_field", "num_top_feature_importance_values"}),
    "classification": frozenset(
        {
            "results_field",
            "num_top_classes",
            "top_classes_results_field",
            "num_top_feature_importance_values",
            "prediction_field_type",
        }
    ),
    "learning_to_rank": frozenset(
        {"num_top_feature_importance_values", "feature_extractors", "default_params"}
    ),
}
_TOKENIZATION_FIELDS = frozenset(
    {"do_lower_case", "with_special_tokens", "max_sequence_length", "truncate", "span"}
)
_NER_LABELS = ["O", "B_MISC", "I_MISC", "B_PER", "I_PER", "B_ORG", "I_ORG", "B_LOC", "I_LOC"]

PUT_FIELDS = frozenset(
    {
        "model_id",
        "model_type",
        "created_by",
        "version",
        "description",
        "create_time",
        "tags",
        "metadata",
        "input",
        "model_size_bytes",
        "estimated_heap_memory_usage_bytes",
        "estimated_operations",
        "definition",
        "compressed_definition",
        "license_level",
        "default_field_map",
        "inference_config",
        "location",
        "model_package",
        "platform_architecture",
        "prefix_strings",
    }
)
_SERVER_SET = ("version", "created_by", "create_time", "license_level", "location", "model_package")


def parse_tokenization(raw: Any, *, config_name: str) -> dict[str, Any]:
    """``{"bert": {...}}`` -> the same with every default filled, validated like Elasticsearch."""
    if raw is None:
        return {"bert": _tokenization_defaults("bert", {})}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise parse_error(config_name, "[tokenization] failed to parse field [tokenization]")
    kind, settings = next(iter(raw.items()))
    if kind not in TOKENIZATIONS:
        raise ApiError(
            400,
            "named_object_not_found_exception",
            f"[1:2] unknown field [{kind}]",
        )
    if not isinstance(settings, dict):
        raise parse_error(kind, f"[{kind}] failed to parse field [{kind}]")
    return {kind: _tokenization_defaults(kind, settings)}


def _tokenization_defaults(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    known = _TOKENIZATION_FIELDS | ({"add_prefix_space"} if kind == "roberta" else set())
    reject_unknown(f"{kind}_tokenization", settings, known)
    out: dict[str, Any] = {
        "do_lower_case": False,
        "with_special_tokens": True,
        "max_sequence_length": 512,
        "truncate": "first",
        "span": -1,
    }
    for key in ("do_lower_case", "with_special_tokens", "add_prefix_space"):
        if key in settings:
            out[key] = expect_type(kind, key, settings[key], bool, "a boolean")
    for key in ("max_sequence_length", "span"):
        if key in settings:
            out[key] = expect_type(kind, key, settings[key], int, "an integer")
    if "truncate" in settings:
        value = str(settings["truncate"])
        if value.lower() not in TRUNCATE:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "No enum constant org.elasticsearch.xpack.core.ml.inference.trainedmodel.Tokenization.Truncate."
                + value.upper(),
            )
        out["truncate"] = value.lower()
    if kind == "roberta":
        out.setdefault("add_prefix_space", False)
    if out["max_sequence_length"] <= 0:
        raise ApiError(400, "illegal_argument_exception", "[max_sequence_length] must be positive")
    span = out["span"]
    if span < 0 and span != -1:
        raise ApiError(
            400,
            "illegal_argument_exception",
            "[span] must be non-negative to indicate span length or [-1] to indicate no windowing should occur",
        )
    if span > out["max_sequence_length"]:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[span] provided [{span}] must not be greater than [max_sequence_length] provided "
            f"[{out['max_sequence_length']}]",
        )
    if span != -1 and out["truncate"] != "none":
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[span] must not be provided when [truncate] is [{out['truncate']}]",
        )
    return out


def parse_inference_config(raw: Any) -> dict[str, Any]:
    """``{"text_embedding": {...}}`` normalised as Elasticsearch stores and returns it."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise parse_error(
            "trained_model_config", "[inference_config] failed to parse field [inference_config]"
        )
    name, body = next(iter(raw.items()))
    if name not in NLP_TYPES and name not in CLASSIC_TYPES:
        raise ApiError(
            400,
            "named_object_not_found_exception",
            f"[1:2] unknown field [{name}]",
        )
    if not isinstance(body, dict):
        raise parse_error(name, f"[{name}] failed to parse field [{name}]")
    if name in CLASSIC_TYPES:
        reject_unknown(name, body, _CLASSIC_FIELDS[name])
        return {name: _classic_defaults(name, body)}
    reject_unknown(name, body, _NLP_FIELDS[name])
    if "vocabulary" in body:
        raise ApiError(400, "status_exception", "illegal setting [vocabulary] on inference model creation")
    tokenization = parse_tokenization(body.get("tokenization"), config_name=name)
    out: dict[str, Any] = {"vocabulary": {"index": NATIVE_DEFINITION_INDEX}, "tokenization": tokenization}
    kind = next(iter(tokenization))
    if name == "text_embedding":
        if tokenization[kind]["span"] != -1:
            raise ApiError(
                400,
                "status_exception",
                f"[text_embedding] does not support windowing long text sequences; configured span "
                f"[{tokenization[kind]['span']}]",
            )
        if "embedding_size" in body:
            size = expect_type(name, "embedding_size", body["embedding_size"], int, "an integer")
            if size <= 0:
                raise ApiError(
                    400,
                    "status_exception",
                    f"[embedding_size] must be a number greater than 0; configured size [{size}]",
                )
            out["embedding_size"] = size
    elif name == "fill_mask":
        expected = MASK_TOKENS[kind]
        requested = body.get("mask_token")
        if requested is not None and requested != expected:
            # FillMaskConfig.Builder.build() throws inside the ObjectParser, which wraps it.
            message = f"Mask token requested was [{requested}] but must be [{expected}] for this model"
            raise ApiError(
                400,
                "x_content_parse_exception",
                "[trained_model_config] failed to parse field [inference_config]",
                stack_trace=f"java.lang.IllegalArgumentException: {message}",
            ).with_cause(ApiError(400, "illegal_argument_exception", message))
        out["num_top_classes"] = body.get("num_top_classes", 5)
        out["mask_token"] = expected
    elif name == "ner":
        out["classification_labels"] = body.get("classification_labels", _NER_LABELS)
    elif name == "text_classification":
        out["classification_labels"] = body.get("classification_labels", [])
        out["num_top_classes"] = body.get("num_top_classes", 0)
    elif name == "zero_shot_classification":
        out["classification_labels"] = body.get(
            "classification_labels", ["entailment", "neutral", "contradiction"]
        )
        out["hypothesis_template"] = body.get("hypothesis_template", "This example is {}.")
        out["multi_label"] = body.get("multi_label", False)
        if "labels" in body:
            out["labels"] = body["labels"]
    elif name == "question_answering":
        out["num_top_classes"] = body.get("num_top_classes", 0)
        out["max_answer_length"] = body.get("max_answer_length", 15)
    elif name == "text_similarity" and "span_score_combination_function" in body:
        out["span_score_combination_function"] = body["span_score_combination_function"]
    if "results_field" in body:
        out["results_field"] = expect_type(name, "results_field", body["results_field"], str, "a string")
    return {name: out}


def _classic_defaults(name: str, body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if name == "regression":
        out.setdefault("results_field", "predicted_value")
        out.setdefault("num_top_feature_importance_values", 0)
    elif name == "classification":
        out.setdefault("num_top_classes", 0)
        out.setdefault("top_classes_results_field", "top_classes")
        out.setdefault("results_field", "predicted_value")
        out.setdefault("num_top_feature_importance_values", 0)
    return out


def inference_config_name(config: dict[str, Any]) -> str | None:
    ic = config.get("inference_config")
    return next(iter(ic)) if isinstance(ic, dict) and ic else None


def tokenization_of(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, settings) of an NLP model's tokenization."""
    ic = config.get("inference_config") or {}
    body = next(iter(ic.values())) if ic else {}
    tok = body.get("tokenization") or {"bert": _tokenization_defaults("bert", {})}
    kind, settings = next(iter(tok.items()))
    return str(kind), dict(settings)


def build_config(model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Validate a PUT body; return (stored config, inline definition or None).

    Raises the errors Elasticsearch raises for the same body: unknown fields, server-set fields,
    an invalid id, a missing inference config or model type.
    """
    reject_unknown("trained_model_config", body, PUT_FIELDS)
    body_id = body.get("model_id")
    if body_id is not None and body_id != model_id:
        raise validation_error(
            f"Inconsistent model_id; '{body_id}' specified in the body differs from '{model_id}' specified as a URL argument"
        )
    errors: list[str] = []
    packaged = model_id.startswith(".")
    definition = body.get("definition")
    if definition is not None and "compressed_definition" in body:
        raise ApiError(
            400, "illegal_argument_exception", "both [compressed_definition] and [definition] cannot be set."
        )
    model_type = body.get("model_type")
    if model_type is not None:
        expect_type("trained_model_config", "model_type", model_type, str, "a string")
        if model_type.strip().lower() not in MODEL_TYPES:
            raise ApiError(
                400,
                "illegal_argument_exception",
                "No enum constant org.elasticsearch.xpack.core.ml.inference.TrainedModelType."
                + model_type.strip().upper(),
            )
        model_type = model_type.strip().lower()
    inference_config = body.get("inference_config")
    parsed_ic = parse_inference_config(inference_config) if inference_config is not None else None
    if not packaged:
        if definition is None and model_type is None:
            errors.append("[model_type] must be set if [definition] is not defined.")
        if parsed_ic is None:
            errors.append("[inference_config] must not be null.")
    id_ok = is_valid_id(model_id[1:] if packaged else model_id)
    if not id_ok:
        errors.append(invalid_id_message("model_id", model_id))
    if len(model_id) > ID_LENGTH_LIMIT:
        errors.append(too_long_message("model_id", model_id))
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise parse_error("trained_model_config", "[tags] failed to parse field [tags]")
    bad_tags = [t for t in tags if not (is_valid_id(t) and len(t) <= ID_LENGTH_LIMIT)]
    if bad_tags:
        errors.append(
            f"Invalid tags {bad_tags}; must only contain lowercase alphanumeric (a-z and 0-9), hyphens or "
            f"underscores, must start and end with alphanumeric, and must be less than {ID_LENGTH_LIMIT} characters."
        )
    if model_id in tags:
        errors.append("none of the tags must equal the model_id")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise parse_error("trained_model_config", "[metadata] failed to parse field [metadata]")
    raw_input = body.get("input")
    input_cfg: dict[str, Any] | None = None
    if raw_input is not None:
        if not isinstance(raw_input, dict):
            raise parse_error("trained_model_config", "[input] failed to parse field [input]")
        reject_unknown("trained_model_config_input", raw_input, {"field_names"})
        names = raw_input.get("field_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise parse_error(
                "trained_model_config_input", "[field_names] failed to parse field [field_names]"
            )
        if not names:
            errors.append("[input.field_names] must not be empty")
        input_cfg = {"field_names": list(names)}
    for field in _SERVER_SET:
        if field in body:
            errors.append(f"illegal to set [{field}] at inference model creation")
    if isinstance(metadata, dict):
        for field in ("total_feature_importance", "model_aliases"):
            if field in metadata:
                errors.append(f"illegal to set [metadata.{field}] at inference model creation")
    if errors:
        raise validation_error(*errors)
    if definition is not None:
        if not isinstance(definition, dict):
            raise parse_error("trained_model_config", "[definition] failed to parse field [definition]")
        model_type = model_type or "tree_ensemble"
    if input_cfg is None:
        if model_type == "pytorch" or (model_type is None and parsed_ic is not None and _is_nlp(parsed_ic)):
            input_cfg = {"field_names": ["input"]}
        else:
            raise validation_error("[input] must not be null.")

    now_ms = int(time.time() * 1000)
    config: dict[str, Any] = {"model_id": model_id}
    if model_type is not None:
        config["model_type"] = model_type
    if body.get("platform_architecture") is not None:
        config["platform_architecture"] = body["platform_architecture"]
    config.update(
        {
            "created_by": "api_user",
            "version": ML_CONFIG_VERSION,
            "create_time": now_ms,
            "model_size_bytes": int(
                body.get("model_size_bytes", body.get("estimated_heap_memory_usage_bytes", 0))
            ),
            "estimated_operations": int(body.get("estimated_operations", 0)),
            "license_level": "platinum",
        }
    )
    if body.get("description") is not None:
        config["description"] = body["description"]
    config["tags"] = list(tags)
    if metadata is not None:
        config["metadata"] = copy.deepcopy(metadata)
    config["input"] = input_cfg
    if body.get("default_field_map"):
        config["default_field_map"] = body["default_field_map"]
    if parsed_ic is not None:
        config["inference_config"] = parsed_ic
    if definition is None:
        config["location"] = {
            "index": {"name": NATIVE_DEFINITION_INDEX if model_type == "pytorch" else ".ml-inference-000005"}
        }
    prefix = body.get("prefix_strings")
    if prefix is not None:
        if not isinstance(prefix, dict):
            raise parse_error(
                "trained_model_config", "[prefix_strings] failed to parse field [prefix_strings]"
            )
        reject_unknown("trained_model_config_prefix_strings", prefix, {"search", "ingest"})
        config["prefix_strings"] = {k: prefix[k] for k in ("search", "ingest") if prefix.get(k) is not None}
    return config, (copy.deepcopy(definition) if definition is not None else None)


def _is_nlp(parsed_ic: dict[str, Any]) -> bool:
    return next(iter(parsed_ic)) in NLP_TYPES


def per_deployment_memory(config: dict[str, Any]) -> int:
    """``TrainedModelConfig.getPerDeploymentMemoryBytes``: from metadata, as eland writes it."""
    return _metadata_number(config, "per_deployment_memory_bytes")


def per_allocation_memory(config: dict[str, Any]) -> int:
    return _metadata_number(config, "per_allocation_memory_bytes")


def _metadata_number(config: dict[str, Any], key: str) -> int:
    value = (config.get("metadata") or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
