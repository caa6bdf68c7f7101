"""Ingest processors: each type's configuration, validated as ES's ConfigurationUtils does, and its run.

Implemented: ``inference`` (both ``input_output`` and ``field_map``/``target_field`` forms, run
through :func:`es_sandbox.ml.infer`), ``set`` (with ``{{field}}`` templates, ``override``,
``copy_from``, ``ignore_empty_value``), ``remove``, ``rename``, ``append``, ``lowercase``,
``uppercase``, ``trim``, ``convert``, ``drop``, ``fail``, ``split``, ``join``, ``gsub`` and
``html_strip`` (registered by :mod:`es_sandbox.text_processors`) and ``pipeline`` (registered by
:mod:`es_sandbox.pipelines`, which runs pipelines); each with ``tag``, ``description``,
``ignore_failure`` and ``on_failure``. Painless (``script`` processors and ``if`` conditions) and
the other ES processors are out of the sandbox's scope and are refused when the pipeline is stored,
with a message saying so, rather than accepted and ignored.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from es_sandbox import ml
from es_sandbox.http import ApiError
from es_sandbox.ingest_document import Dropped, IngestDocument, java_type
from es_sandbox.state import SandboxState
from es_sandbox.util import es_str

IMPLEMENTED = (
    "inference",
    "set",
    "remove",
    "rename",
    "append",
    "lowercase",
    "uppercase",
    "trim",
    "split",
    "join",
    "gsub",
    "html_strip",
    "convert",
    "drop",
    "fail",
    "pipeline",
)

KNOWN_ES_PROCESSORS = frozenset(
    {
        "attachment",
        "bytes",
        "circle",
        "community_id",
        "csv",
        "date",
        "date_index_name",
        "dissect",
        "dot_expander",
        "enrich",
        "fingerprint",
        "foreach",
        "geo_grid",
        "geoip",
        "grok",
        "gsub",
        "html_strip",
        "ip_location",
        "join",
        "json",
        "kv",
        "network_direction",
        "redact",
        "registered_domain",
        "reroute",
        "script",
        "set_security_user",
        "sort",
        "split",
        "terminate",
        "uri_parts",
        "urldecode",
        "user_agent",
    }
)

COMMON_OPTIONS = ("tag", "description", "if", "ignore_failure", "on_failure")


def config_error(
    processor_type: str | None,
    tag: str | None,
    prop: str | None,
    reason: str,
    type: str = "parse_exception",
) -> ApiError:
    """ES's ConfigurationUtils.newConfigurationException, with its metadata fields."""
    extra: dict[str, Any] = {}
    if prop is not None:
        extra["property_name"] = prop
    if processor_type is not None:
        extra["processor_type"] = processor_type
    if tag is not None:
        extra["processor_tag"] = tag
    message = f"[{prop}] {reason}" if prop is not None else reason
    return ApiError(400, type, message, **extra)


@dataclass
class Processor:
    type: str
    tag: str | None
    config: dict[str, Any]
    ignore_failure: bool = False
    on_failure: list[Processor] = field(default_factory=list)
    run: Callable[[Processor, IngestDocument, SandboxState], None] | None = None


class ProcessorConfig:
    """Reads one processor's config, remembering which keys were consumed (ES refuses the rest)."""

    def __init__(self, ptype: str, tag: str | None, raw: Mapping[str, Any]) -> None:
        self.ptype = ptype
        self.tag = tag
        self.raw = dict(raw)
        self.used: set[str] = set()

    def error(self, prop: str | None, reason: str) -> ApiError:
        return config_error(self.ptype, self.tag, prop, reason)

    def string(self, name: str, required: bool = True, default: str | None = None) -> str | None:
        self.used.add(name)
        if name not in self.raw or self.raw[name] is None:
            if required:
                raise self.error(name, "required property is missing")
            return default
        value = self.raw[name]
        if isinstance(value, (dict, list)):
            raise self.error(name, "property isn't a string, but of type [" + java_type(value) + "]")
        return es_str(value)

    def boolean(self, name: str, default: bool) -> bool:
        self.used.add(name)
        if name not in self.raw:
            return default
        value = self.raw[name]
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise self.error(name, f"property isn't a boolean, but of type [{java_type(value)}]")

    def any(self, name: str, required: bool = True) -> Any:
        self.used.add(name)
        if name not in self.raw:
            if required:
                raise self.error(name, "required property is missing")
            return None
        return self.raw[name]

    def strings(self, name: str, required: bool = True) -> list[str] | None:
        self.used.add(name)
        if name not in self.raw:
            if required:
                raise self.error(name, "required property is missing")
            return None
        value = self.raw[name]
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self.error(name, f"property isn't a list, but of type [{java_type(value)}]")

    def finish(self) -> None:
        unused = [k for k in self.raw if k not in self.used and k not in COMMON_OPTIONS]
        if unused:
            raise config_error(
                self.ptype,
                self.tag,
                None,
                f"processor [{self.ptype}] doesn't support one or more provided configuration parameters [{', '.join(unused)}]",
            )


def compile_processors(raw: Any, where: str = "processors") -> list[Processor]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise config_error(None, None, where, "property isn't a list, but of type [" + java_type(raw) + "]")
    out: list[Processor] = []
    for item in raw:
        if not isinstance(item, dict):
            raise config_error(None, None, where, "property isn't a list of objects")
        if len(item) > 1:
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"[{where}] contains nested objects but should be a list of single-entry objects",
            )
    for item in raw:
        for ptype, config in item.items():
            out.append(compile_processor(ptype, config))
    return out


def compile_processor(ptype: str, config: Any) -> Processor:
    if not isinstance(config, dict):
        if ptype in IMPLEMENTED and isinstance(config, str) and ptype == "pipeline":
            config = {"name": config}
        else:
            raise config_error(ptype, None, None, f"processor [{ptype}] config must be an object")
    tag = config.get("tag")
    tag = es_str(tag) if tag is not None else None
    if ptype == "script":
        raise config_error(
            ptype,
            tag,
            None,
            "the [script] processor runs painless, which is out of the provision sandbox's scope; "
            "use set/rename/remove/convert/inference processors, or test this pipeline against a real cluster",
        )
    if ptype not in IMPLEMENTED:
        if ptype in KNOWN_ES_PROCESSORS:
            raise config_error(
                ptype,
                tag,
                None,
                f"the [{ptype}] processor is out of the provision sandbox's scope (implemented: {', '.join(IMPLEMENTED)})",
            )
        raise config_error(ptype, tag, None, f"No processor type exists with name [{ptype}]")
    if config.get("if") is not None:
        raise config_error(
            ptype,
            tag,
            "if",
            "conditions are painless scripts, which are out of the provision sandbox's scope",
        )
    cfg = ProcessorConfig(ptype, tag, config)
    ignore_failure = cfg.boolean("ignore_failure", False)
    cfg.used.add("description")
    on_failure_raw = config.get("on_failure")
    if on_failure_raw is not None and (not isinstance(on_failure_raw, list) or not on_failure_raw):
        raise config_error(
            ptype,
            tag,
            "on_failure",
            "on_failure must contain at least one processor"
            if isinstance(on_failure_raw, list)
            else "property isn't a list",
        )
    on_failure = compile_processors(on_failure_raw, "on_failure")
    processor = Processor(ptype, tag, config, ignore_failure, on_failure)
    _BUILDERS[ptype](processor, cfg)
    cfg.finish()
    return processor


# -- builders: read config at PUT time, attach the run function --------------------------------------


def _build_set(p: Processor, cfg: ProcessorConfig) -> None:
    target = cfg.string("field")
    has_value = "value" in cfg.raw
    copy_from = cfg.string("copy_from", required=False)
    if copy_from is not None and has_value:
        raise cfg.error("copy_from", "cannot set both [copy_from] and [value]")
    value = cfg.any("value", required=copy_from is None)
    override = cfg.boolean("override", True)
    ignore_empty = cfg.boolean("ignore_empty_value", False)
    cfg.string("media_type", required=False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        path = doc.render(target)
        if copy_from is not None:
            new_value = copy.deepcopy(doc.get(copy_from)) if doc.has(copy_from) else None
        else:
            new_value = _render_value(doc, value)
        if ignore_empty and (new_value is None or new_value == ""):
            return
        if not override and doc.has(path) and doc.get(path) is not None:
            return
        doc.set(path, new_value)

    p.run = run


def _render_value(doc: IngestDocument, value: Any) -> Any:
    if isinstance(value, str):
        return doc.render(value)
    if isinstance(value, list):
        return [_render_value(doc, v) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(doc, v) for k, v in value.items()}
    return value


def _build_remove(p: Processor, cfg: ProcessorConfig) -> None:
    fields = cfg.strings("field", required="keep" not in cfg.raw)
    keep = cfg.strings("keep", required=False)
    if fields is not None and keep is not None:
        raise cfg.error("keep", "[field] and [keep] cannot be used together")
    ignore_missing = cfg.boolean("ignore_missing", False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        if keep is not None:
            for key in list(doc.source):
                if not any(k == key or k.startswith(key + ".") for k in keep):
                    del doc.source[key]
            return
        for name in fields or []:
            path = doc.render(name)
            if not doc.has(path):
                if ignore_missing:
                    continue
                doc.get(path)  # raises ES's "not present" error
            doc.remove(path)

    p.run = run


def _build_rename(p: Processor, cfg: ProcessorConfig) -> None:
    source = cfg.string("field")
    target = cfg.string("target_field")
    ignore_missing = cfg.boolean("ignore_missing", False)
    override = cfg.boolean("override", False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        src, dst = doc.render(source), doc.render(target)
        if not doc.has(src):
            if ignore_missing:
                return
            raise ApiError(400, "illegal_argument_exception", f"field [{src}] doesn't exist")
        if doc.has(dst) and not override:
            raise ApiError(400, "illegal_argument_exception", f"field [{dst}] already exists")
        value = doc.get(src)
        doc.remove(src)
        doc.set(dst, value)

    p.run = run


def _build_append(p: Processor, cfg: ProcessorConfig) -> None:
    target = cfg.string("field")
    value = cfg.any("value")
    allow_duplicates = cfg.boolean("allow_duplicates", True)
    cfg.string("media_type", required=False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        path = doc.render(target)
        values = _render_value(doc, value)
        values = values if isinstance(values, list) else [values]
        current = doc.get(path) if doc.has(path) else None
        items = [] if current is None else (list(current) if isinstance(current, list) else [current])
        for item in values:
            if allow_duplicates or item not in items:
                items.append(item)
        doc.set(path, items)

    p.run = run


def _build_string(transform: Callable[[str], str]) -> Callable[[Processor, ProcessorConfig], None]:
    def build(p: Processor, cfg: ProcessorConfig) -> None:
        source = cfg.string("field")
        target = cfg.string("target_field", required=False, default=source)
        ignore_missing = cfg.boolean("ignore_missing", False)

        def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
            src = doc.render(source)
            if not doc.has(src) or doc.get(src) is None:
                if ignore_missing:
                    return
                if not doc.has(src):
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"field [{src}] not present as part of path [{src}]",
                    )
                raise ApiError(
                    400, "illegal_argument_exception", f"field [{src}] is null, cannot process it."
                )
            value = doc.get(src)
            if isinstance(value, list):
                if not all(isinstance(v, str) for v in value):
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"field [{src}] of type [java.util.ArrayList] cannot be cast to [java.lang.String]",
                    )
                result: Any = [transform(v) for v in value]
            elif isinstance(value, str):
                result = transform(value)
            else:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"field [{src}] of type [{java_type(value)}] cannot be cast to [java.lang.String]",
                )
            doc.set(doc.render(target or src), result)

        p.run = run

    return build


def _convert_value(value: Any, ctype: str, path: str) -> Any:
    def fail() -> ApiError:
        return ApiError(
            400,
            "illegal_argument_exception",
            f"unable to convert [{es_str(value)}] to {ctype}",
        )

    if ctype in ("integer", "long"):
        try:
            text = es_str(value)
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError as exc:
            raise fail() from exc
    if ctype in ("float", "double"):
        try:
            return float(es_str(value))
        except ValueError as exc:
            raise fail() from exc
    if ctype == "boolean":
        text = es_str(value).lower()
        if text in ("true", "false"):
            return text == "true"
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[{es_str(value)}] is not a boolean value, cannot convert to boolean",
        )
    if ctype == "string":
        return es_str(value)
    if ctype == "ip":
        try:
            return str(ipaddress.ip_address(es_str(value)))
        except ValueError as exc:
            raise ApiError(
                400, "illegal_argument_exception", f"'{es_str(value)}' is not a valid ip address"
            ) from exc
    # auto
    if isinstance(value, str):
        for candidate in ("integer", "float", "boolean"):
            try:
                return _convert_value(value, candidate, path)
            except ApiError:
                continue
    return value


def _build_convert(p: Processor, cfg: ProcessorConfig) -> None:
    source = cfg.string("field")
    ctype = cfg.string("type")
    if ctype not in ("integer", "long", "float", "double", "string", "boolean", "ip", "auto"):
        raise cfg.error("type", f"type [{ctype}] not supported, cannot convert field.")
    target = cfg.string("target_field", required=False, default=source)
    ignore_missing = cfg.boolean("ignore_missing", False)

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        src = doc.render(source)
        if not doc.has(src) or doc.get(src) is None:
            if ignore_missing:
                return
            if not doc.has(src):
                raise ApiError(
                    400, "illegal_argument_exception", f"field [{src}] not present as part of path [{src}]"
                )
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Field [{src}] is null, cannot be converted to type [{ctype}]",
            )
        value = doc.get(src)
        converted = (
            [_convert_value(v, str(ctype), src) for v in value]
            if isinstance(value, list)
            else _convert_value(value, str(ctype), src)
        )
        doc.set(doc.render(target or src), converted)

    p.run = run


def _build_drop(p: Processor, cfg: ProcessorConfig) -> None:
    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        raise Dropped()

    p.run = run


def _build_fail(p: Processor, cfg: ProcessorConfig) -> None:
    message = cfg.string("message")

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        raise ApiError(500, "fail_processor_exception", str(doc.render(message)))

    p.run = run


def _build_inference(p: Processor, cfg: ProcessorConfig) -> None:
    model_id = cfg.string("model_id")
    input_output = cfg.any("input_output", required=False)
    field_map = cfg.any("field_map", required=False)
    target_field = cfg.string("target_field", required=False)
    inference_config = cfg.any("inference_config", required=False)
    ignore_missing = cfg.boolean("ignore_missing", False)
    if input_output is not None:
        if field_map is not None:
            raise cfg.error(
                "field_map",
                "option is incompatible with [input_output]. Use one or the other to specify where to read the input from",
            )
        if target_field is not None:
            raise cfg.error(
                "target_field",
                "option is incompatible with [input_output]. Use the [output_field] option to specify where to write the inference results to.",
            )
        items = input_output if isinstance(input_output, list) else [input_output]
        if not items:
            raise cfg.error("input_output", "property is empty")
        pairs: list[tuple[str, str]] = []
        for item in items:
            if not isinstance(item, dict):
                raise cfg.error("input_output", "property must be a list of objects")
            if "input_field" not in item:
                raise cfg.error("input_field", "required property is missing")
            if "output_field" not in item:
                raise cfg.error("output_field", "required property is missing")
            extra = [k for k in item if k not in ("input_field", "output_field")]
            if extra:
                raise cfg.error("input_output", f"unexpected fields {extra}")
            pairs.append((str(item["input_field"]), str(item["output_field"])))
    else:
        pairs = []
        if field_map is not None and not isinstance(field_map, dict):
            raise cfg.error("field_map", "property isn't a map")
    results_field = "predicted_value"
    if inference_config is not None:
        if not isinstance(inference_config, dict) or len(inference_config) != 1:
            raise cfg.error(
                "inference_config", "must be an object with one inference type mapped to an object."
            )
        ((_, settings),) = inference_config.items()
        if isinstance(settings, dict) and settings.get("results_field"):
            results_field = str(settings["results_field"])
    default_target = "ml.inference" if p.tag is None else f"ml.inference.{p.tag}"
    target = target_field or default_target

    def run(p: Processor, doc: IngestDocument, state: SandboxState) -> None:
        if pairs:
            texts: list[str] = []
            outputs: list[str] = []
            for input_field, output_field in pairs:
                if not doc.has(input_field) or doc.get(input_field) is None:
                    if ignore_missing:
                        continue
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"Input field [{input_field}] does not exist in the source document",
                    )
                value = doc.get(input_field)
                if not isinstance(value, str):
                    raise ApiError(
                        400,
                        "illegal_argument_exception",
                        f"Input value [{es_str(value)}] for field [{input_field}] must be a string",
                    )
                texts.append(value)
                outputs.append(output_field)
            if not texts:
                return
            results = ml.infer(state, model_id or "", texts, prefix_type="ingest")
            for output_field, result in zip(outputs, results, strict=False):
                doc.set(output_field, result.get("predicted_value", result))
            return
        input_name = _model_input_field(state, model_id or "")
        mapping = dict(field_map or {})
        text = None
        for doc_field, model_field in mapping.items():
            if model_field == input_name and doc.has(doc_field):
                text = doc.get(doc_field)
        if text is None and doc.has(input_name):
            text = doc.get(input_name)
        if text is None:
            if ignore_missing:
                return
            raise ApiError(
                400,
                "status_exception",
                f"Input field [{input_name}] does not exist in the source document",
            )
        result = dict(ml.infer(state, model_id or "", [es_str(text)], prefix_type="ingest")[0])
        if results_field != "predicted_value" and "predicted_value" in result:
            result[results_field] = result.pop("predicted_value")
        result["model_id"] = model_id
        doc.set(target, result)

    p.run = run


def _model_input_field(state: SandboxState, model_ref: str) -> str:
    """The model's first input field name (``input.field_names``), ES's default ``text_field``."""
    with state.lock:
        store = ml.ml_state(state)
        model_id = store.resolve_model_id(model_ref)
        deployment = store.deployments.get(model_ref)
        if model_id not in store.models and deployment is not None:
            model_id = deployment.model_id
        model = store.models.get(model_id)
        names = (model.config.get("input") or {}).get("field_names") if model is not None else None
    if isinstance(names, list) and names:
        return str(names[0])
    return "text_field"


Builder = Callable[[Processor, ProcessorConfig], None]

# ``pipeline`` is registered by es_sandbox.pipelines: running it needs the stored pipelines;
# ``split``, ``join``, ``gsub`` and ``html_strip`` by es_sandbox.text_processors.
_BUILDERS: dict[str, Builder] = {
    "set": _build_set,
    "remove": _build_remove,
    "rename": _build_rename,
    "append": _build_append,
    "lowercase": _build_string(str.lower),
    "uppercase": _build_string(str.upper),
    "trim": _build_string(str.strip),
    "convert": _build_convert,
    "drop": _build_drop,
    "fail": _build_fail,
    "inference": _build_inference,
}


def register_processor(processor_type: str, builder: Builder) -> None:
    """Add the builder of an implemented processor type that needs more than a document to run.

    As Elasticsearch's ``PipelineProcessor.Factory`` is given the IngestService, the ``pipeline``
    processor is built by :mod:`es_sandbox.pipelines`, which registers it here.
    """
    if processor_type not in IMPLEMENTED:
        raise ValueError(f"not an implemented processor type: {processor_type}")
    _BUILDERS[processor_type] = builder
