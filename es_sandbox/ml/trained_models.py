"""Trained model operations: put config/definition/vocabulary, get, stats, delete, aliases.

Each function checks what the corresponding Elasticsearch transport action checks, in the same
order, and raises the same errors.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import gzip
import json
import re
import time
from typing import Any

from es_sandbox.http import ApiError
from es_sandbox.ml.configs import NLP_TYPES, build_config, inference_config_name
from es_sandbox.ml.deployments import check_ml_license, deployment_stats, estimate_memory
from es_sandbox.ml.references import model_references
from es_sandbox.ml.store import MlState, TrainedModel, ml_state
from es_sandbox.ml.values import (
    expect_type,
    missing_model,
    parse_error,
    reject_unknown,
    status_error,
    validation_error,
)
from es_sandbox.state import SandboxState

MAX_DEFINITION_PARTS = 10_000

# Elasticsearch ships this model in every cluster; it shows in GET and _stats but cannot change.
LANG_IDENT_ID = "lang_ident_model_1"
LANG_IDENT_CONFIG: dict[str, Any] = {
    "model_id": LANG_IDENT_ID,
    "model_type": "lang_ident",
    "created_by": "_xpack",
    "version": "7.6.0",
    "description": "Model used for identifying language from arbitrary input text.",
    "create_time": 1575548914594,
    "model_size_bytes": 1053992,
    "estimated_operations": 39629,
    "license_level": "basic",
    "tags": ["lang_ident", "prepackaged"],
    "input": {"field_names": ["text"]},
    "inference_config": {
        "classification": {
            "num_top_classes": 0,
            "top_classes_results_field": "top_classes",
            "results_field": "predicted_value",
            "num_top_feature_importance_values": 0,
            "prediction_field_type": "string",
        }
    },
}

# Packaged models Elasticsearch downloads from Elastic's model repository (offline here).
PACKAGED: dict[str, dict[str, Any]] = {
    ".elser_model_2": {"task": "text_expansion", "description": "Elastic Learned Sparse EncodeR v2"},
    ".elser_model_2_linux-x86_64": {
        "task": "text_expansion",
        "description": "Elastic Learned Sparse EncodeR v2, optimized for linux-x86_64",
    },
    ".multilingual-e5-small": {"task": "text_embedding", "description": "E5 small multilingual"},
    ".multilingual-e5-small_linux-x86_64": {
        "task": "text_embedding",
        "description": "E5 small multilingual optimized for linux-x86_64",
    },
    ".rerank-v1": {"task": "text_similarity", "description": "Elastic Rerank v1"},
}

_VALID_ALIAS = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z])?$")


# ---------------------------------------------------------------------------------------------
# PUT


def put_model(state: SandboxState, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT _ml/trained_models/<id>``; answers the stored config (without definition)."""
    packaged = PACKAGED.get(model_id)
    if packaged is not None and "inference_config" not in body and "model_type" not in body:
        body = {**_packaged_config(packaged), **body}
    config, definition = build_config(model_id, body)
    check_ml_license(state)
    with state.lock:
        ml = ml_state(state)
        if model_id in ml.aliases:
            raise status_error(
                400,
                f"requested model_id [{model_id}] is the same as an existing model_alias. Model model_aliases and ids "
                "must be unique",
            )
        if model_id in ml.deployments:
            raise status_error(
                400, f"Cannot create model [{model_id}] the id is the same as an current model deployment"
            )
        if model_id in ml.endpoints:
            raise status_error(
                400,
                f"Model IDs must be unique. Requested model ID [{model_id}] matches existing model IDs but must not.",
            )
        if model_id in ml.models or model_id == LANG_IDENT_ID:
            raise ApiError(
                400,
                "resource_already_exists_exception",
                f"Trained machine learning model [{model_id}] already exists",
            )
        tagged = [m.model_id for m in ml.models.values() if model_id in m.config.get("tags", [])]
        if tagged:
            raise status_error(
                400,
                f"The provided model_id {model_id} must not match existing tags.",
            )
        clashing = sorted(set(config["tags"]) & set(ml.models))
        if clashing:
            raise status_error(400, f"The provided tags {clashing} must not match existing model_ids.")
        model = TrainedModel(model_id=model_id, config=config, inline_definition=definition)
        if definition is not None:
            config["model_size_bytes"] = len(json.dumps(definition))
        if model_id.startswith("."):
            model.download_pending = True
            config.setdefault(
                "model_package",
                {"packaged_model_id": model_id[1:], "model_repository": "https://ml-models.elastic.co"},
            )
        ml.models[model_id] = model
        return _public_config(config)


def _packaged_config(packaged: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_type": "pytorch",
        "description": packaged["description"],
        "inference_config": {packaged["task"]: {"tokenization": {"bert": {"do_lower_case": True}}}},
    }


def _public_config(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config))  # type: ignore[no-any-return]


def put_definition_part(state: SandboxState, model_id: str, part_text: str, body: dict[str, Any]) -> None:
    """``PUT _ml/trained_models/<id>/definition/<part>``."""
    try:
        part = int(part_text)
    except ValueError:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Failed to parse int parameter [part] with value [{part_text}]",
        ) from None
    parser = "put_trained_model_part_action"
    reject_unknown(parser, body, {"definition", "total_definition_length", "total_parts"})
    raw = body.get("definition")
    total_length = expect_type(
        parser, "total_definition_length", body.get("total_definition_length", 0), int, "a number"
    )
    total_parts = expect_type(parser, "total_parts", body.get("total_parts", 0), int, "a number")
    if raw is None:
        raise ApiError(400, "illegal_argument_exception", "[definition] must not be null.")
    if not isinstance(raw, str):
        raise parse_error(parser, "failed to parse field [definition]")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise parse_error(parser, f"failed to parse field [definition]: {exc}") from exc
    errors = []
    if part < 0:
        errors.append("[part] must be greater or equal to 0")
    if total_parts <= 0:
        errors.append("[total_parts] must be greater than 0")
    if total_parts > MAX_DEFINITION_PARTS:
        errors.append(f"[total_parts] must be less than or equal to {MAX_DEFINITION_PARTS}")
    if total_length <= 0:
        errors.append("[total_definition_length] must be greater than 0")
    if part >= total_parts:
        errors.append("[part] must be less than total_parts")
    if errors:
        raise validation_error(*errors)
    check_ml_license(state)
    with state.lock:
        ml = ml_state(state)
        model = ml.models.get(model_id)
        if model is None:
            raise missing_model(model_id)
        if "location" not in model.config:
            raise status_error(400, f"cannot put definition for model [{model_id}] as location is null")
        if part in model.parts:
            raise ApiError(
                400,
                "resource_already_exists_exception",
                f"Trained machine learning model [{model_id}] already exists",
            )
        if model.total_definition_length is not None and model.total_definition_length != total_length:
            raise status_error(
                400,
                f"[{model_id}] [total_definition_length] must be the same in all model definition parts. The value "
                f"[{total_length}] in model definition part [{part}] does not match the value "
                f"[{model.total_definition_length}] in part [{min(model.parts)}]. Unable to deploy model, please "
                "delete and recreate the model definition",
            )
        model.add_part(part, data)
        model.total_definition_length = total_length
        model.total_parts = total_parts
        if model.model_type == "pytorch" and not model.config.get("model_size_bytes"):
            model.config["model_size_bytes"] = total_length


def put_vocabulary(state: SandboxState, model_id: str, body: dict[str, Any]) -> None:
    """``PUT _ml/trained_models/<id>/vocabulary``."""
    parser = "put_trained_model_vocabulary"
    reject_unknown(parser, body, {"vocabulary", "merges", "scores"})
    vocab = body.get("vocabulary")
    if vocab is None:
        raise validation_error("[vocabulary] must not be null")
    if not isinstance(vocab, list) or not all(isinstance(v, str) for v in vocab):
        raise parse_error(parser, "[vocabulary] failed to parse field [vocabulary]")
    if not vocab:
        raise validation_error("[vocabulary] must not be empty")
    merges = body.get("merges")
    scores = body.get("scores")
    check_ml_license(state)
    with state.lock:
        model = ml_state(state).models.get(model_id)
        if model is None:
            raise missing_model(model_id)
        if inference_config_name(model.config) not in NLP_TYPES:
            raise status_error(400, f"cannot put vocabulary for model [{model_id}] as it is not an NLP model")
        kind = next(iter(next(iter(model.config["inference_config"].values()))["tokenization"]))
        if kind == "roberta" and not merges:
            raise validation_error("[merges] must not be empty for roberta tokenization")
        if kind in ("xlm_roberta", "deberta_v2") and not scores:
            raise validation_error(f"[scores] must not be empty for {kind} tokenization")
        stored: dict[str, Any] = {"vocabulary": list(vocab)}
        if merges is not None:
            stored["merges"] = list(merges)
        if scores is not None:
            stored["scores"] = list(scores)
        model.vocabulary = stored
        ml_state(state).runtime.tokenizers.clear()


# ---------------------------------------------------------------------------------------------
# GET / _stats


def match_models(state: SandboxState, expression: str | None, allow_no_match: bool) -> list[str]:
    """Model ids matching ``a,b*,_all`` (aliases resolve to their model), sorted, as ExpandedIdsMatcher."""
    ml = ml_state(state)
    known = sorted([*ml.models, LANG_IDENT_ID])
    exprs = [e.strip() for e in (expression or "_all").split(",") if e.strip()] or ["_all"]
    matched: set[str] = set()
    unmatched: list[str] = []
    for expr in exprs:
        if expr in ("_all", "*"):
            matched.update(known)
            continue
        if "*" in expr:
            hits = [m for m in known if fnmatch.fnmatchcase(m, expr)]
            hits += [ml.aliases[a] for a in ml.aliases if fnmatch.fnmatchcase(a, expr)]
            if hits:
                matched.update(hits)
            elif not allow_no_match:
                unmatched.append(expr)
            continue
        concrete = ml.aliases.get(expr, expr)
        if concrete in known:
            matched.add(concrete)
        else:
            unmatched.append(expr)
    if unmatched:
        raise missing_model(",".join(unmatched))
    return sorted(matched)


def model_config(state: SandboxState, model_id: str) -> dict[str, Any]:
    ml = ml_state(state)
    if model_id == LANG_IDENT_ID:
        return _public_config(LANG_IDENT_CONFIG)
    config = _public_config(ml.models[model_id].config)
    aliases = ml.aliases_of(model_id)
    if aliases:
        config.setdefault("metadata", {})["model_aliases"] = aliases
    return config


def get_models(
    state: SandboxState,
    expression: str | None,
    *,
    allow_no_match: bool,
    includes: set[str],
    decompress: bool,
    start: int,
    size: int,
    tags: list[str],
) -> dict[str, Any]:
    with state.lock:
        ml = ml_state(state)
        ids = match_models(state, expression, allow_no_match)
        if tags:
            ids = [i for i in ids if set(tags) <= set(model_config(state, i).get("tags", []))]
        if "definition" in includes and len(ids) > 1:
            raise status_error(
                400, "Getting model definition is not supported when getting more than one model"
            )
        page = ids[start : start + size]
        configs = []
        for model_id in page:
            config = model_config(state, model_id)
            model = ml.models.get(model_id)
            if model is not None:
                if "definition_status" in includes and model.model_type == "pytorch":
                    config["fully_defined"] = model.fully_defined()
                if "definition" in includes and model.inline_definition is not None:
                    if decompress:
                        config["definition"] = model.inline_definition
                    else:
                        packed = gzip.compress(json.dumps(model.inline_definition).encode())
                        config["compressed_definition"] = base64.b64encode(packed).decode("ascii")
            configs.append(config)
        return {"count": len(ids), "trained_model_configs": configs}


def get_stats(
    state: SandboxState, expression: str | None, *, allow_no_match: bool, start: int, size: int
) -> dict[str, Any]:
    with state.lock:
        ml = ml_state(state)
        ids = match_models(state, expression, allow_no_match)
        refs = model_references(state)
        now = time.time()
        out: list[dict[str, Any]] = []
        for model_id in ids[start : start + size]:
            names = {
                model_id,
                *ml.aliases_of(model_id),
                *(d.deployment_id for d in ml.deployments_of(model_id)),
            }
            pipelines = set().union(*(refs.get(n, set()) for n in names))
            base: dict[str, Any] = {"model_id": model_id, "model_size_stats": _size_stats(ml, model_id)}
            base["pipeline_count"] = len(pipelines)
            deployments = sorted(ml.deployments_of(model_id), key=lambda d: d.deployment_id)
            if not deployments:
                base["inference_stats"] = _inference_stats(0, 0, now)
                out.append(base)
                continue
            for d in deployments:
                entry = dict(base)
                entry["inference_stats"] = _inference_stats(
                    d.inference_count, d.error_count + d.timeout_count, now
                )
                entry["deployment_stats"] = deployment_stats(state, d, now)
                out.append(entry)
        return {"count": len(ids), "trained_model_stats": out}


def _size_stats(ml: MlState, model_id: str) -> dict[str, int]:
    model = ml.models.get(model_id)
    if model is None:
        return {
            "model_size_bytes": int(LANG_IDENT_CONFIG["model_size_bytes"]),
            "required_native_memory_bytes": 0,
        }
    if model.model_type != "pytorch":
        return {
            "model_size_bytes": int(model.config.get("model_size_bytes", 0)),
            "required_native_memory_bytes": 0,
        }
    size = model.total_definition_length or 0
    allocations = sum(d.number_of_allocations for d in ml.deployments_of(model_id)) or 1
    required = (
        estimate_memory(
            model_id,
            size,
            int((model.config.get("metadata") or {}).get("per_deployment_memory_bytes", 0) or 0),
            int((model.config.get("metadata") or {}).get("per_allocation_memory_bytes", 0) or 0),
            allocations,
        )
        if size
        else 0
    )
    return {"model_size_bytes": size, "required_native_memory_bytes": required}


def _inference_stats(count: int, failures: int, now: float) -> dict[str, int]:
    return {
        "failure_count": failures,
        "inference_count": count,
        "cache_miss_count": 0,
        "missing_all_fields_count": 0,
        "timestamp": int(now * 1000),
    }


# ---------------------------------------------------------------------------------------------
# DELETE


def delete_model(state: SandboxState, model_id: str, *, force: bool) -> None:
    """``TransportDeleteTrainedModelAction``: refused while referenced or deployed unless forced."""
    with state.lock:
        ml = ml_state(state)
        if model_id == LANG_IDENT_ID:
            raise status_error(400, f"Unable to delete model [{model_id}]")
        if model_id not in ml.models:
            raise missing_model(model_id)
        refs = model_references(state)
        if not force and model_id in refs:
            raise status_error(
                409,
                f"Cannot delete model [{model_id}] as it is still referenced by ingest processors; use force to "
                "delete the model",
            )
        aliases = ml.aliases_of(model_id)
        if not force:
            for alias in aliases:
                if alias in refs:
                    raise status_error(
                        409,
                        f"Cannot delete model [{model_id}] as it has a model_alias [{alias}] that is still referenced by "
                        "ingest processors; use force to delete the model",
                    )
        deployments = ml.deployments_of(model_id)
        if deployments and not force:
            raise status_error(
                409,
                f"Cannot delete model [{model_id}] as it is currently deployed; use force to delete the model",
            )
        for d in deployments:
            del ml.deployments[d.deployment_id]
            ml.runtime.forget(d.deployment_id)
        for alias in aliases:
            del ml.aliases[alias]
        del ml.models[model_id]


# ---------------------------------------------------------------------------------------------
# Aliases


def put_alias(state: SandboxState, model_id: str, alias: str, *, reassign: bool) -> None:
    """``TransportPutTrainedModelAliasAction``."""
    errors = []
    if alias == model_id:
        errors.append(f"model_alias [{alias}] cannot equal model_id [{model_id}]")
    if not _VALID_ALIAS.match(alias):
        errors.append(
            f"Invalid model_alias; '{alias}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
            "underscores; must start with alphanumeric and cannot end with numbers"
        )
    if errors:
        raise validation_error(*errors)
    with state.lock:
        ml = ml_state(state)
        old_id = ml.aliases.get(alias)
        if old_id is not None and not reassign:
            raise status_error(
                400,
                f"cannot assign model_alias [{alias}] to model_id [{model_id}] as model_alias already refers to "
                f"[{old_id}]. Set parameter [reassign] to [true] if model_alias should be reassigned.",
            )
        if alias in ml.models or alias == LANG_IDENT_ID:
            raise status_error(400, "model_alias cannot be the same as an existing trained model_id")
        new = ml.models.get(model_id)
        if new is None:
            raise missing_model(model_id)
        if new.config.get("license_level") != "basic":
            check_ml_license(state)
        old = ml.models.get(old_id) if old_id is not None else None
        if old is not None:
            _check_reassign(ml, alias, new, old)
        ml.aliases[alias] = model_id


def _check_reassign(ml: MlState, alias: str, new: TrainedModel, old: TrainedModel) -> None:
    new_ic, old_ic = inference_config_name(new.config), inference_config_name(old.config)
    if new_ic is not None and old_ic is not None and new_ic != old_ic:
        raise status_error(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] with inference config type [{new_ic}] "
            f"from model [{old.model_id}] with type [{old_ic}]",
        )
    if new.model_type != old.model_type:
        raise status_error(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] with type "
            f"[{new.model_type or 'tree_ensemble'}] from model [{old.model_id}] with type [{old.model_type or 'tree_ensemble'}]",
        )
    if new.model_type != "pytorch":
        return
    old_deps, new_deps = ml.deployments_of(old.model_id), ml.deployments_of(new.model_id)
    if not old_deps:
        return
    if not new_deps:
        raise status_error(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] from model [{old.model_id}] as it is "
            "not yet deployed",
        )
    now = time.time()
    if any(d.allocation_state(now) != "starting" for d in old_deps) and any(
        d.allocation_state(now) == "starting" for d in new_deps
    ):
        raise status_error(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}]  from model [{old.model_id}] as it is "
            "not yet allocated to any nodes",
        )


def delete_alias(state: SandboxState, model_id: str, alias: str) -> None:
    with state.lock:
        ml = ml_state(state)
        current = ml.aliases.get(alias)
        if current is None:
            raise ApiError(
                404, "resource_not_found_exception", f"trained model alias [{alias}] could not be found"
            )
        if current != model_id:
            raise status_error(
                400, f"trained model alias [{alias}] does not refer to provided model [{model_id}]"
            )
        if alias in model_references(state):
            raise status_error(
                409, f"Cannot delete model_alias [{alias}] as it is still referenced by ingest processors"
            )
        del ml.aliases[alias]
