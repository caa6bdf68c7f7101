"""Parsing a document against its index's mapping: indexed values, dynamic mapping updates, errors.

:class:`DocumentParser` walks a ``_source`` as Elasticsearch's DocumentParser does: it converts each
value to its field's indexed form (numbers, dates, keywords, analysed text, geo points, vectors),
applies dynamic templates and dynamic mapping for unmapped fields, and reports the mapping update a
document causes, or the ``document_parsing_exception`` it fails with.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from es_sandbox import analysis, versions
from es_sandbox.dates import DEFAULT_FORMAT, DateFormat, DateFormatError
from es_sandbox.http import ApiError
from es_sandbox.mapper.dense_vector import (
    MIN_DIMS_DYNAMIC_VECTOR,
    check_vector,
    confidence_interval_problem,
    finish_dense_vector,
)
from es_sandbox.mapper.geo import parse_geo_point
from es_sandbox.mapper.lookup import CompiledMapping, LeafField, compile_mapping
from es_sandbox.mapper.merging import count_fields, merge_mappings
from es_sandbox.mapper.parameters import (
    DEFAULT_DYNAMIC_DATE_FORMATS,
    METADATA_FIELDS,
    NUMERIC_TYPES,
    is_object,
)
from es_sandbox.mapper.parsing import MappingContext, parse_field, parse_mapping
from es_sandbox.util import es_str, simple_match
from provisioning.vectors import MAX_DIMS

_INT_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
    "unsigned_long": (0, 2**64 - 1),
}


def doc_error(reason: str, cause: ApiError | None = None) -> ApiError:
    error = ApiError(400, "document_parsing_exception", reason)
    if cause is not None:
        error.with_cause(cause)
    return error


@dataclass
class ParsedDoc:
    """A document as the index stores it: indexed values per field, vectors, a mapping update."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    # dense_vector values inside ``nested`` objects: field path -> [(offsets of the nested objects, vector)]
    nested_vectors: dict[str, list[tuple[tuple[int, ...], np.ndarray]]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    dynamic_update: dict[str, Any] | None = None


class DocumentParser:
    """Parses one document against a compiled mapping, collecting dynamic mapping additions."""

    def __init__(self, compiled: CompiledMapping, settings: Mapping[str, Any], doc_id: str | None) -> None:
        self.compiled = compiled
        self.mapping = compiled.mapping
        self.settings = settings
        self.doc_id = doc_id
        self.description = f"document with id '{doc_id}'" if doc_id is not None else "a document"
        self.doc = ParsedDoc()
        self.new_props: dict[str, Any] = {}  # canonical additions, nested like "properties"
        self.new_leaves: dict[str, LeafField] = {}
        self.limit = int(settings.get("index.mapping.total_fields.limit", 1000))
        self.ignore_malformed_default = str(settings.get("index.mapping.ignore_malformed", "false")) == "true"
        self.coerce_default = str(settings.get("index.mapping.coerce", "true")) == "true"
        self.nested_offsets: list[tuple[str, int]] = []  # (nested path, offset) of the objects we are in

    # -- entry point ----------------------------------------------------------------------------
    def parse(self, source: Mapping[str, Any]) -> ParsedDoc:
        if self.mapping.get("enabled", True) is False:
            return self.doc
        self._parse_object(source, "", self.mapping, self.mapping.get("dynamic", "true"), is_root=True)
        if self.new_props:
            update = parse_mapping({"properties": self.new_props}, MappingContext(self.settings))
            merged = merge_mappings(self.mapping, update)
            added = count_fields(merged) - count_fields(self.mapping)
            if count_fields(merged) > self.limit:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"Limit of total fields [{self.limit}] has been exceeded while adding new fields [{added}]",
                )
            self.doc.dynamic_update = update
        return self.doc

    # -- objects ----------------------------------------------------------------------------------
    def _parse_object(
        self,
        obj: Mapping[str, Any],
        prefix: str,
        definition: Mapping[str, Any],
        dynamic: str,
        is_root: bool = False,
    ) -> None:
        for key, value in obj.items():
            if key == "":
                raise doc_error("failed to parse: Field name cannot be an empty string").with_cause(
                    ApiError(400, "illegal_argument_exception", "Field name cannot be an empty string")
                )
            if is_root and key in METADATA_FIELDS:
                raise doc_error(
                    f"Field [{key}] is a metadata field and cannot be added inside a document. "
                    "Use the index API request parameters."
                )
            if "." in key and key.strip("."):
                # {"a.b": 1} is the field a.b: descend as if it were {"a": {"b": 1}}.
                head, rest = key.split(".", 1)
                self._parse_object({head: {rest: value}}, prefix, definition, dynamic, is_root)
                continue
            path = prefix + key
            self._parse_value(path, key, value, definition, dynamic)

    def _child_definition(self, parent: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any] | None:
        props = parent.get("properties", {})
        if name in props:
            return props[name]  # type: ignore[no-any-return]
        return self._new_definition(path)

    def _new_definition(self, path: str) -> dict[str, Any] | None:
        node: dict[str, Any] = {"properties": self.new_props}
        for part in path.split("."):
            props = node.get("properties", {})
            if part not in props:
                return None
            node = props[part]
        return node

    def _parse_value(self, path: str, name: str, value: Any, parent: Mapping[str, Any], dynamic: str) -> None:
        definition = self._child_definition(parent, name, path)
        if definition is None:
            if value is None or value == []:
                return
            definition = self._dynamic(path, name, value, parent, dynamic)
            if definition is None:
                return
        if is_object(definition):
            if value is None:
                return
            if definition.get("enabled", True) is False:
                return
            child_dynamic = str(definition.get("dynamic", dynamic))
            items = value if isinstance(value, list) else [value]
            nested = definition.get("type") == "nested"
            for offset, item in enumerate(items):
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise doc_error(
                        f"object mapping for [{path}] tried to parse field [{name}] as object, but found a concrete value"
                    )
                if nested:
                    self.nested_offsets.append((path, offset))
                try:
                    self._parse_object(item, path + ".", definition, child_dynamic)
                finally:
                    if nested:
                        self.nested_offsets.pop()
            return
        leaf = self.compiled.fields.get(path) or self.new_leaves.get(path)
        if leaf is None:
            leaf = self._leaf_for(path, definition)
        self._index_leaf(leaf, value)

    def _leaf_for(self, path: str, definition: Mapping[str, Any]) -> LeafField:
        compiled = compile_mapping(_wrap(path, definition), self.settings)
        if self.nested_offsets:
            for leaf in compiled.fields.values():
                leaf.nested_path = self.nested_offsets[-1][0]
        self.new_leaves.update(compiled.fields)
        return compiled.fields[path]

    # -- dynamic mapping ----------------------------------------------------------------------------
    def _dynamic(
        self, path: str, name: str, value: Any, parent: Mapping[str, Any], dynamic: str
    ) -> dict[str, Any] | None:
        if dynamic == "strict":
            within = path.rsplit(".", 1)[0] if "." in path else "_doc"
            raise ApiError(
                400,
                "strict_dynamic_mapping_exception",
                f"mapping set to strict, dynamic introduction of [{name}] within [{within}] is not allowed",
            )
        if dynamic in ("false", "runtime"):
            return None
        definition = self._dynamic_definition(path, name, value)
        if definition is None:
            return None
        self._add_new(path, definition)
        return definition

    def _add_new(self, path: str, definition: dict[str, Any]) -> None:
        parts = path.split(".")
        node = self.new_props
        for depth, part in enumerate(parts[:-1]):
            # Intermediate objects (new or existing) get a properties holder; the merge sorts it out.
            # An existing nested object stays nested (merging a plain object into it is an error).
            existing = self.compiled.objects.get(".".join(parts[: depth + 1]), {})
            holder: dict[str, Any] = (
                {"type": "nested", "properties": {}}
                if existing.get("type") == "nested"
                else {"properties": {}}
            )
            entry = node.setdefault(part, holder)
            node = entry.setdefault("properties", {})
        node[parts[-1]] = definition

    def _dynamic_definition(self, path: str, name: str, value: Any) -> dict[str, Any] | None:
        sample = value
        if isinstance(value, list):
            if MIN_DIMS_DYNAMIC_VECTOR <= len(value) <= MAX_DIMS and all(isinstance(v, float) for v in value):
                template = self._template_for(path, name, "double", value)
                if template is not None:
                    return template
                return finish_dense_vector(
                    path,
                    {"dims": len(value), "index": True, "similarity": "cosine"},
                    versions.current().for_index(self.settings),
                )
            sample = next((v for v in value if v is not None), None)
            while isinstance(sample, list):
                sample = next((v for v in sample if v is not None), None)
            if sample is None:
                return None
        if isinstance(sample, dict):
            mtype = "object"
        elif isinstance(sample, bool):
            mtype = "boolean"
        elif isinstance(sample, int):
            mtype = "long"
        elif isinstance(sample, float):
            mtype = "double"
        elif isinstance(sample, str):
            mtype = "string"
            if self.mapping.get("date_detection", True):
                formats = self.mapping.get("dynamic_date_formats", DEFAULT_DYNAMIC_DATE_FORMATS)
                for fmt in formats:
                    try:
                        DateFormat(fmt).parse(sample)
                    except DateFormatError:
                        continue
                    template = self._template_for(path, name, "date", sample)
                    if template is not None:
                        return template
                    return (
                        {"type": "date"}
                        if fmt == formats[0] and formats == DEFAULT_DYNAMIC_DATE_FORMATS
                        else {"type": "date", "format": fmt}
                    )
            if self.mapping.get("numeric_detection", False):
                try:
                    int(sample)
                    mtype = "long"
                except ValueError:
                    try:
                        float(sample)
                        mtype = "double"
                    except ValueError:
                        pass
        else:
            return None
        template = self._template_for(path, name, mtype, sample)
        if template is not None:
            return template
        if mtype == "object":
            return {"type": "object"}
        if mtype == "string":
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if mtype == "double":
            return {"type": "float"}
        return {"type": mtype}

    def _template_for(self, path: str, name: str, mtype: str, value: Any) -> dict[str, Any] | None:
        for item in self.mapping.get("dynamic_templates", []):
            ((_tname, body),) = item.items()
            if not _template_matches(body, path, name, mtype):
                continue
            mapping = _substitute(body["mapping"], name, mtype)
            if "type" not in mapping and mtype != "object":
                mapping = {"type": _default_type(mtype), **mapping}
            return parse_field(path, mapping, MappingContext(self.settings))
        return None

    # -- leaf values ----------------------------------------------------------------------------------
    def _fail(self, leaf: LeafField, value: Any, cause: ApiError) -> ApiError:
        preview = _preview(value)
        return doc_error(
            f"failed to parse field [{leaf.path}] of type [{leaf.type}] in {self.description}. "
            f"Preview of field's value: '{preview}'",
            cause,
        )

    def _index_leaf(self, leaf: LeafField, value: Any) -> None:
        if leaf.type == "dense_vector":
            self._index_vector(leaf, value)
            return
        if leaf.type in ("flattened", "sparse_vector", "rank_feature", "binary") and isinstance(
            value, (dict, list)
        ):
            if leaf.type == "binary":
                for item in value if isinstance(value, list) else [value]:
                    self._index_scalar(leaf, item)
            return
        if (
            leaf.type == "geo_point"
            and isinstance(value, list)
            and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            items: list[Any] = [value]  # [lon, lat] is one point, not two values
        else:
            items = _flatten_list(value) if isinstance(value, list) else [value]
        for item in items:
            self._index_scalar(leaf, item)
        copy_to = leaf.params.get("copy_to") or []
        for target in copy_to:
            target_leaf = self.compiled.fields.get(target) or self.new_leaves.get(target)
            if target_leaf is None:
                if self.mapping.get("dynamic", "true") == "strict":
                    raise ApiError(
                        400,
                        "strict_dynamic_mapping_exception",
                        f"mapping set to strict, dynamic introduction of [{target}] within [_doc] is not allowed",
                    )
                definition = self._dynamic_definition(target, target.rsplit(".", 1)[-1], value)
                if definition is None or is_object(definition):
                    continue
                self._add_new(target, definition)
                target_leaf = self._leaf_for(target, definition)
            for item in items:
                self._index_scalar(target_leaf, item)

    def _add(self, path: str, value: Any) -> None:
        self.doc.values.setdefault(path, []).append(value)

    def _index_scalar(self, leaf: LeafField, value: Any) -> None:
        if value is None:
            null_value = leaf.params.get("null_value")
            if null_value is None:
                return
            value = null_value
        if isinstance(value, (dict, list)) and leaf.type not in ("geo_point", "flattened"):
            raise self._fail(
                leaf,
                value,
                ApiError(400, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:2"),
            )
        try:
            converted = self._convert(leaf, value)
        except ApiError as cause:
            if leaf.params.get("ignore_malformed", self.ignore_malformed_default) and leaf.type not in (
                "keyword",
                "text",
            ):
                self.doc.ignored.append(leaf.path)
                return
            raise self._fail(leaf, value, cause) from None
        if converted is _SKIP:
            self.doc.ignored.append(leaf.path)
            return
        if converted is None:
            return
        if isinstance(converted, list):
            for item in converted:
                self._add(leaf.path, item)
            if leaf.type in ("text", "match_only_text"):
                self.doc.values.setdefault(f"{leaf.path}\x00len", []).append(len(converted))
        else:
            self._add(leaf.path, converted)
        for sub in leaf.params.get("fields") or {}:
            sub_leaf = self.compiled.fields.get(f"{leaf.path}.{sub}") or self.new_leaves.get(
                f"{leaf.path}.{sub}"
            )
            if sub_leaf is not None:
                self._index_scalar(sub_leaf, value)

    def _convert(self, leaf: LeafField, value: Any) -> Any:
        ftype = leaf.type
        params = leaf.params
        if ftype in ("keyword", "wildcard", "constant_keyword", "flattened"):
            text = es_str(value)
            if len(text) > int(params.get("ignore_above", 2147483647)):
                return _SKIP
            if params.get("normalizer") == "lowercase":
                text = text.lower()
            return text
        if ftype in ("text", "match_only_text"):
            analyzer = leaf.analyzer or analysis.standard
            return analyzer(es_str(value))
        if ftype in NUMERIC_TYPES:
            return _convert_number(ftype, value, bool(params.get("coerce", self.coerce_default)), params)
        if ftype in ("date", "date_nanos"):
            fmt = leaf.date_format or DateFormat(DEFAULT_FORMAT)
            try:
                return fmt.parse(value)
            except DateFormatError as exc:
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"failed to parse date field [{es_str(value)}] with format [{fmt.spec}]",
                ).with_cause(
                    ApiError(400, "date_time_parse_exception", "Failed to parse with all enclosed parsers")
                ) from exc
        if ftype == "boolean":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            if value == "":
                return False
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Failed to parse value [{es_str(value)}] as only [true] or [false] are allowed.",
            )
        if ftype == "geo_point":
            return parse_geo_point(value, leaf.path)
        if ftype == "ip":
            try:
                return str(ipaddress.ip_address(str(value)))
            except ValueError as exc:
                raise ApiError(
                    400, "illegal_argument_exception", f"'{es_str(value)}' is not an IP string literal."
                ) from exc
        if ftype == "binary":
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError(400, "illegal_argument_exception", "Illegal base64 character") from exc
            return _SKIP_VALUE
        return _SKIP_VALUE

    def _index_vector(self, leaf: LeafField, value: Any) -> None:
        if value is None:
            return
        if leaf.nested_path is None and leaf.path in self.doc.vectors:
            raise doc_error(
                f"failed to parse: Field [{leaf.path}] of type [dense_vector] doesn't support indexing multiple values for the same field in the same document"
            )
        element = leaf.element_type
        dims = leaf.dims
        if isinstance(value, str):
            vector = self._decode_vector_string(leaf, value)
        elif isinstance(value, list):
            if not set(map(type, value)) <= _NUMBER_TYPES:  # C-speed check of 512 elements
                bad = next(v for v in value if isinstance(v, (list, dict, str, bool)) or v is None)
                token = (
                    "START_ARRAY"
                    if isinstance(bad, list)
                    else "START_OBJECT"
                    if isinstance(bad, dict)
                    else (
                        "VALUE_STRING"
                        if isinstance(bad, str)
                        else "VALUE_BOOLEAN"
                        if isinstance(bad, bool)
                        else "VALUE_NULL"
                    )
                )
                raise doc_error(
                    f"failed to parse: Failed to parse object: expecting token of type [VALUE_NUMBER] but found [{token}]"
                )
            if element == "bit":
                vector = np.array(value, dtype=np.float64)
            else:
                vector = np.array(value, dtype=np.float64)
        else:
            raise doc_error(
                f"failed to parse field [{leaf.path}] of type [dense_vector] in {self.description}. "
                f"Preview of field's value: '{_preview(value)}'",
                ApiError(
                    400,
                    "parsing_exception",
                    f"Unsupported type [VALUE_NUMBER] for provided value [{es_str(value)}]",
                ),
            )
        count = len(vector) * (8 if element == "bit" and not isinstance(value, str) else 1)
        if isinstance(value, str) and element == "bit":
            count = len(vector) * 8
        if dims is None:
            dims = count
            update = dict(leaf.params)
            update["dims"] = dims
            definition = finish_dense_vector(
                leaf.path,
                {k: v for k, v in update.items() if k != "type"},
                versions.current().for_index(self.settings),
            )
            self._add_new(leaf.path, definition)
            leaf = self._leaf_for(leaf.path, definition)
        if count != dims:
            message = (
                f"The [dense_vector] field [{leaf.path}] in doc [{self.description}] has a different number of "
                f"dimensions [{count}] than defined in the mapping [{dims}]"
                if count < dims
                else f"The [dense_vector] field [{leaf.path}] in doc [{self.description}] has more dimensions than "
                f"defined in the mapping [{dims}]"
            )
            raise doc_error(
                f"failed to parse: {message}", ApiError(400, "illegal_argument_exception", message)
            )
        options = leaf.params.get("index_options")
        problem = confidence_interval_problem(options)
        if problem is not None:
            raise ApiError(400, "illegal_argument_exception", problem)
        if options and options.get("type") == "bbq_disk":
            refusal = versions.current().for_index(self.settings).bbq_disk_write_refusal()
            if refusal is not None:
                raise ApiError(403, "security_exception", refusal, **{"license.expired.feature": "DiskBBQ"})
        checked = check_vector(vector, element, leaf.similarity if leaf.indexed else None)
        if checked is not None:
            raise doc_error(
                f"failed to parse: {checked}", ApiError(400, "illegal_argument_exception", checked)
            )
        stored = vector.astype(np.float32)
        if element == "bfloat16":
            stored = to_bfloat16(stored)
        if leaf.nested_path is not None:
            offsets = tuple(offset for _, offset in self.nested_offsets)
            self.doc.nested_vectors.setdefault(leaf.path, []).append((offsets, stored))
            return
        self.doc.vectors[leaf.path] = stored

    def _decode_vector_string(self, leaf: LeafField, value: str) -> np.ndarray:
        element = leaf.element_type
        if element not in ("byte", "bit") and not versions.current().has("dense_vector.base64_indexing"):
            raise doc_error(
                f"failed to parse field [{leaf.path}] of type [dense_vector] in {self.description}. "
                f"Preview of field's value: '{value[:20]}'",
                ApiError(
                    400,
                    "parsing_exception",
                    "Failed to parse object: expecting token of type [START_ARRAY] but found [VALUE_STRING]",
                ),
            )
        try:
            if element in ("byte", "bit"):
                raw = bytes.fromhex(value)
                return np.frombuffer(raw, dtype=np.int8).astype(np.float64)
            raw = base64.b64decode(value, validate=True)
            dims = leaf.dims
            if element == "bfloat16" and dims is not None and len(raw) == dims * 2:
                halves = np.frombuffer(raw, dtype=">u2").astype(np.uint32) << 16
                return halves.view(np.float32).astype(np.float64)
            return np.frombuffer(raw, dtype=">f4").astype(np.float64)
        except (ValueError, binascii.Error) as exc:
            raise doc_error(
                f"failed to parse field [{leaf.path}] of type [dense_vector] in {self.description}. "
                f"Preview of field's value: '{value[:20]}'",
                ApiError(400, "illegal_argument_exception", f"Failed to decode vector: {exc}"),
            ) from exc


def to_bfloat16(vector: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (round half to even), back as float32 (what ES stores)."""
    bits = np.ascontiguousarray(vector, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return (rounded & 0xFFFFFFFF).astype(np.uint32).view(np.float32)


class _Skip:
    pass


_NUMBER_TYPES = {int, float}
_SKIP = _Skip()  # value not indexed (ignore_above), field listed in _ignored
_SKIP_VALUE = None


def _flatten_list(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        if isinstance(item, list):
            out.extend(_flatten_list(item))
        else:
            out.append(item)
    return out


def _wrap(path: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    parts = path.split(".")
    node: dict[str, Any] = {parts[-1]: definition}
    for part in reversed(parts[:-1]):
        node = {part: {"properties": node}}
    return {"properties": node}


def _preview(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_preview(v) for v in value) + "]"
    return es_str(value)


def _default_type(mtype: str) -> str:
    return {"string": "text", "double": "float"}.get(mtype, mtype)


def _template_matches(body: Mapping[str, Any], path: str, name: str, mtype: str) -> bool:
    regex = body.get("match_pattern") == "regex"

    def test(patterns: Any, value: str) -> bool:
        items = patterns if isinstance(patterns, list) else [patterns]
        if regex:
            return any(re.fullmatch(str(p), value) for p in items)
        return any(simple_match(str(p), value) for p in items)

    if "match_mapping_type" in body:
        types = body["match_mapping_type"]
        types = types if isinstance(types, list) else [types]
        if "*" not in types and mtype not in types:
            return False
    if "unmatch_mapping_type" in body:
        types = body["unmatch_mapping_type"]
        types = types if isinstance(types, list) else [types]
        if mtype in types:
            return False
    if "match" in body and not test(body["match"], name):
        return False
    if "unmatch" in body and test(body["unmatch"], name):
        return False
    if "path_match" in body and not test(body["path_match"], path):
        return False
    return not ("path_unmatch" in body and test(body["path_unmatch"], path))


def _substitute(value: Any, name: str, mtype: str) -> Any:
    if isinstance(value, str):
        return value.replace("{name}", name).replace("{dynamic_type}", mtype).replace("{dynamicType}", mtype)
    if isinstance(value, dict):
        return {_substitute(k, name, mtype): _substitute(v, name, mtype) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, name, mtype) for v in value]
    return value


def _convert_number(ftype: str, value: Any, coerce: bool, params: Mapping[str, Any]) -> Any:
    if isinstance(value, bool):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"Current token (VALUE_{str(value).upper()}) not numeric, can not use numeric value accessors",
        )
    if isinstance(value, str):
        if not coerce:
            raise ApiError(
                400, "illegal_argument_exception", f"[{ftype}] is not allowed to be coerced from a string"
            )
        text = value.strip()
        try:
            number: float | int = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError as exc:
            raise ApiError(400, "number_format_exception", f'For input string: "{value}"') from exc
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise ApiError(400, "illegal_argument_exception", f"Can't parse number from {es_str(value)}")
    if ftype in _INT_RANGES:
        if isinstance(number, float):
            if math.isnan(number) or math.isinf(number):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"Value [{es_str(number)}] is out of range for a {ftype}",
                )
            if not number.is_integer() and not coerce:
                raise ApiError(
                    400, "illegal_argument_exception", f"Value [{es_str(number)}] has a decimal part"
                )
            number = int(number)
        lo, hi = _INT_RANGES[ftype]
        if not lo <= number <= hi:
            kind = {
                "long": "long",
                "integer": "an integer",
                "short": "a short",
                "byte": "a byte",
                "unsigned_long": "an unsigned long",
            }[ftype]
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Value [{number}] is out of range for {kind}"
                if ftype != "long"
                else f"Value [{number}] is out of range for a long",
            )
        return number
    result = float(number)
    if math.isnan(result) or math.isinf(result):
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"[{ftype}] supports only finite values, but got [{es_str(result)}]",
        )
    if ftype == "float":
        result = float(np.float32(result))
        if math.isinf(result):
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"[float] supports only finite values, but got [{es_str(number)}]",
            )
    elif ftype == "half_float":
        result = float(np.float16(result))
    elif ftype == "scaled_float":
        factor = float(params["scaling_factor"])
        result = round(result * factor) / factor
    return result
