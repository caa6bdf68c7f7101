"""Cross-reference checks: what a cluster would only reveal later, found from the spec alone."""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.embedding.inspect import ModelDirError, inspect_model_dir
from provisioning.errors import SpecIssue
from provisioning.mappings import dense_vector_fields, find_field, patterns_overlap
from provisioning.stackfile.schema import EncoderSpec, ModelSpec, SourceSpec, TemplateBody
from provisioning.stackfile.source import PathKey
from provisioning.stackfile.stack import Stack
from provisioning.vectors import FLOAT_ELEMENT_TYPES, dense_vector_problems, knn_problem

# Python modules each converted runtime needs at run time (installed by the onnx / openvino extras).
RUNTIME_MODULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("onnx", "fp32"): ("onnxruntime", "onnxscript", "onnx"),
    ("onnx", "int8"): ("onnxruntime", "onnxscript", "onnx"),
    ("openvino", "fp32"): ("openvino", "onnxscript", "onnx"),
    ("openvino", "int8"): ("openvino", "nncf", "onnxscript", "onnx"),
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Embedder:
    """What fills or queries a vector field: a model or an encoder, with its output facts."""

    kind: str  # "model" or "encoder"
    name: str
    dims: int | None
    normalized: bool


def _hint(name: str, choices: Mapping[str, Any] | list[str]) -> str:
    options = list(choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if options:
        return f"; declared: {', '.join(sorted(options))}"
    return "; none are declared"


class Checker:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.spec = stack.spec
        self.issues: list[SpecIssue] = []
        self.embedders: dict[tuple[str, str], Embedder] = {}

    def add(self, path: PathKey, message: str) -> None:
        self.issues.append(self.stack.located.issue(path, message))

    # -- models and encoders -----------------------------------------------------------------
    def _source_facts(
        self, source: SourceSpec, declared_dims: int | None, at: PathKey
    ) -> tuple[int | None, bool]:
        if source.path is None:
            if declared_dims is None:
                self.add(
                    at + ("dims",),
                    "declare 'dims' for a hub source (its config cannot be read without downloading it)",
                )
            return declared_dims, False
        directory = self.stack.resolve(source.path)
        try:
            info = inspect_model_dir(directory)
        except ModelDirError as exc:
            self.add(at + ("source", "path"), str(exc))
            return declared_dims, False
        if declared_dims is not None and declared_dims != info.dims:
            self.add(
                at + ("dims",), f"dims is {declared_dims} but the model at {source.path} outputs {info.dims}"
            )
        return info.dims, info.normalized

    def check_models(self) -> None:
        seen_ids: dict[str, str] = {}
        for name, model in self.spec.models.items():
            at: PathKey = ("models", name)
            dims, normalized = self._source_facts(model.source, model.dims, at)
            if model.normalized is not None:
                normalized = model.normalized
            self.embedders[("model", name)] = Embedder("model", name, dims, normalized)
            ids = [("model_id", model.model_id)]
            if model.alias:
                ids.append(("alias", model.alias))
            if model.deployment and model.deployment.deployment_id:
                ids.append(("deployment.deployment_id", model.deployment.deployment_id))
            for key, value in ids:
                if value in seen_ids and seen_ids[value] != f"{name}.{key}":
                    self.add(
                        at + tuple(key.split(".")), f"'{value}' is also used by models.{seen_ids[value]}"
                    )
                seen_ids.setdefault(value, f"{name}.{key}")
            if model.task_type != "text_embedding" and model.dims is not None:
                self.add(at + ("dims",), "dims applies only to task_type text_embedding")

    def check_encoders(self) -> None:
        for name, encoder in self.spec.encoders.items():
            dims, normalized = self._source_facts(encoder.source, encoder.dims, ("encoders", name))
            self.embedders[("encoder", name)] = Embedder(
                "encoder", name, dims, normalized or encoder.normalize
            )
            missing = [
                m for m in RUNTIME_MODULES.get((encoder.runtime, encoder.precision), ()) if not _installed(m)
            ]
            if missing:
                extra = "onnx" if encoder.runtime == "onnx" else "openvino"
                self.add(
                    ("encoders", name, "runtime"),
                    f"runtime {encoder.runtime} {encoder.precision} needs {', '.join(missing)}, which "
                    f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'provisioning[{extra}]'",
                )

    def check_endpoints(self) -> None:
        for name, endpoint in self.spec.inference_endpoints.items():
            at: PathKey = ("inference_endpoints", name, "model")
            model = self.spec.models.get(endpoint.model)
            if model is None:
                self.add(
                    at,
                    f"model '{endpoint.model}' is not declared under models{_hint(endpoint.model, self.spec.models)}",
                )
            elif model.deployment is None:
                self.add(at, f"model '{endpoint.model}' has no deployment to serve this endpoint")
            elif endpoint.task_type != model.task_type:
                self.add(
                    ("inference_endpoints", name, "task_type"),
                    f"task_type {endpoint.task_type} differs from model '{endpoint.model}' ({model.task_type})",
                )

    # -- templates and mappings --------------------------------------------------------------
    def _check_body_vectors(self, body: TemplateBody | Mapping[str, Any] | None, at: PathKey) -> None:
        mappings = body.mappings if isinstance(body, TemplateBody) else (body or {}).get("mappings")
        if not isinstance(mappings, Mapping):
            return
        for field, mapping in dense_vector_fields(mappings).items():
            where = at + ("mappings", "properties", *field.replace(".", ".properties.").split("."))
            self._check_dense_vector(field, mapping, where)

    def _check_dense_vector(self, field: str, mapping: Mapping[str, Any], at: PathKey) -> None:
        """Every rule of Elasticsearch's dense_vector mapper (:func:`dense_vector_problems`), each
        reported at the parameter that breaks it, in Elasticsearch's words."""
        for param, message in dense_vector_problems(field, mapping):
            where = at + tuple(param.split("."))
            self.add(where if self.stack.locate(where) else at, f"field '{field}': {message}")

    def check_templates(self) -> None:
        for name, ct in self.spec.component_templates.items():
            self._check_body_vectors(ct.template, ("component_templates", name, "template"))
        items = list(self.spec.index_templates.items())
        for i, (name, tpl) in enumerate(items):
            at: PathKey = ("index_templates", name)
            for j, component in enumerate(tpl.composed_of):
                if component not in self.spec.component_templates:
                    self.add(
                        at + ("composed_of", j),
                        f"component template '{component}' is not declared{_hint(component, self.spec.component_templates)}",
                    )
            self._check_body_vectors(tpl.template, at + ("template",))
            for other_name, other in items[:i]:
                if (other.priority or 0) != (tpl.priority or 0):
                    continue
                overlap = patterns_overlap(tpl.index_patterns, other.index_patterns)
                if overlap:
                    a, b = overlap[0]
                    self.add(
                        at + ("priority",),
                        f"pattern '{a}' overlaps '{b}' of index template '{other_name}' at the same priority "
                        f"{tpl.priority or 0}; Elasticsearch refuses this: give them different priorities",
                    )
        for name, index in self.spec.indices.items():
            self._check_body_vectors(index.model_dump(), ("indices", name))

    # -- pipelines ---------------------------------------------------------------------------
    def _processors(
        self, processors: list[dict[str, Any]], at: PathKey
    ) -> Iterator[tuple[str, dict[str, Any], PathKey]]:
        for i, processor in enumerate(processors):
            if not isinstance(processor, dict) or len(processor) != 1:
                self.add(
                    at + (i,),
                    "each processor must be a mapping with exactly one key, its type (e.g. inference:)",
                )
                continue
            ((kind, body),) = processor.items()
            if not isinstance(body, dict):
                self.add(at + (i, kind), f"the body of processor '{kind}' must be a mapping")
                continue
            yield kind, body, at + (i, kind)
            if isinstance(body.get("on_failure"), list):
                yield from self._processors(body["on_failure"], at + (i, kind, "on_failure"))

    def check_pipelines(self) -> None:
        for name, pipeline in self.spec.pipelines.items():
            at: PathKey = ("pipelines", name)
            found = list(self._processors(pipeline.processors, at + ("processors",)))
            found += list(self._processors(pipeline.on_failure or [], at + ("on_failure",)))
            for kind, body, where in found:
                if kind == "script":
                    self.add(
                        where,
                        "script processors are not supported by provision (the sandbox cannot run them)",
                    )
                if kind == "inference":
                    ref = body.get("model_id")
                    self._check_inference_processor(body, where)
                    if not isinstance(ref, str):
                        self.add(where + ("model_id",), "an inference processor needs model_id")
                    elif self.stack.model_by_reference(ref) is None:
                        known = [m.model_id for m in self.spec.models.values()] + list(
                            self.spec.inference_endpoints
                        )
                        self.add(where + ("model_id",), f"model '{ref}' is not declared{_hint(ref, known)}")

    def _check_inference_processor(self, body: Mapping[str, Any], at: PathKey) -> None:
        """The ``inference`` processor's options as InferenceProcessor.Factory reads them, and what an
        ``_inference`` endpoint accepts at ingest time (TransportCoordinatedInferenceAction): an
        endpoint takes text through ``input_output`` only; ``field_map`` sends it whole documents,
        which it refuses one by one."""
        ref = body.get("model_id")
        io = body.get("input_output")
        if io is not None:
            if "field_map" in body:
                self.add(
                    at + ("field_map",),
                    "[field_map] option is incompatible with [input_output]. Use one or the other to specify "
                    "where to read the input from",
                )
            if "target_field" in body:
                self.add(
                    at + ("target_field",),
                    "[target_field] option is incompatible with [input_output]. Use the [output_field] option "
                    "to specify where to write the inference results to.",
                )
            if isinstance(io, list) and not io:
                self.add(
                    at + ("input_output",), "[input_output] property cannot be empty at least one is required"
                )
        elif isinstance(ref, str) and ref in self.spec.inference_endpoints:
            self.add(
                at + ("model_id",),
                f"[{ref}] is configured for the _inference API and does not accept documents as input. If using an "
                "inference ingest processor configure it with the [input_output] option instead of [field_map] "
                "(Elasticsearch refuses every document otherwise)",
            )

    # -- ingest jobs and smoke tests ----------------------------------------------------------
    def _vector_field(
        self, index: str, field: str, embedder: Embedder | None, at: PathKey, usage: str
    ) -> dict[str, Any] | None:
        if not self.stack.index_is_declared_or_templated(index):
            self.add(
                at + ("index",),
                f"index '{index}' is neither declared under indices nor matched by an index template",
            )
            return None
        mapping = find_field(self.stack.effective_mappings(index), field)
        if mapping is None or mapping.get("type") != "dense_vector":
            mapped = "is not mapped" if mapping is None else f"is mapped as {mapping.get('type')!r}"
            vectors = list(dense_vector_fields(self.stack.effective_mappings(index)))
            self.add(
                at,
                f"{usage} field '{field}' {mapped} in index '{index}'; it must be a dense_vector{_hint(field, vectors)}",
            )
            return None
        if usage == "query":
            refused = knn_problem(field, mapping)
            if refused:
                self.add(at, f"index '{index}': Elasticsearch refuses this kNN search: {refused}")
        element_type = mapping.get("element_type", "float")
        if embedder and element_type not in FLOAT_ELEMENT_TYPES:
            self.add(
                at,
                f"field '{field}' of index '{index}' has element_type {element_type}, but {embedder.kind} "
                f"'{embedder.name}' outputs float vectors; use element_type float (quantise with index_options "
                "instead, e.g. int8_hnsw or bbq_hnsw)",
            )
        dims = mapping.get("dims")
        if embedder and embedder.dims is not None and isinstance(dims, int) and dims != embedder.dims:
            self.add(
                at,
                f"field '{field}' of index '{index}' has dims {dims} but {embedder.kind} '{embedder.name}' "
                f"outputs {embedder.dims}",
            )
        if embedder and mapping.get("similarity") == "dot_product" and not embedder.normalized:
            fix = (
                "set normalize: true on the encoder"
                if embedder.kind == "encoder"
                else "use a model with a Normalize layer (or declare normalized: true)"
            )
            self.add(
                at,
                f"field '{field}' uses similarity dot_product, which requires unit-length vectors, but "
                f"{embedder.kind} '{embedder.name}' does not normalize them: {fix}, or use cosine",
            )
        return mapping

    def _ray_gpus(self, name: str, at: PathKey) -> None:
        """GPU actors need an encoder that can use a GPU."""
        job = self.spec.ingest[name]
        encoder = self.spec.encoders.get(job.encoder)
        if job.ray.gpus_per_actor <= 0 or encoder is None:
            return
        if encoder.device == "cpu" or encoder.runtime == "openvino":
            runs = "device: cpu" if encoder.device == "cpu" else "runtime: openvino (CPU only)"
            self.add(
                at + ("ray", "gpus_per_actor"),
                f"ray.gpus_per_actor is {job.ray.gpus_per_actor:g} but encoder '{job.encoder}' has {runs}; "
                "set the encoder's device to auto or cuda, or gpus_per_actor to 0",
            )

    def check_ingest(self) -> None:
        writers: dict[tuple[str, str], tuple[str, str]] = {}  # (index, field) -> (job, encoder)
        for name, job in self.spec.ingest.items():
            at: PathKey = ("ingest", name)
            embedder = self.embedders.get(("encoder", job.encoder))
            if job.encoder not in self.spec.encoders:
                self.add(
                    at + ("encoder",),
                    f"encoder '{job.encoder}' is not declared{_hint(job.encoder, self.spec.encoders)}",
                )
            if job.pipeline is not None and job.pipeline not in self.spec.pipelines:
                self.add(
                    at + ("pipeline",),
                    f"pipeline '{job.pipeline}' is not declared{_hint(job.pipeline, self.spec.pipelines)}",
                )
            source = self.stack.resolve(job.source.path)
            if not source.is_dir():
                self.add(
                    at + ("source", "path"),
                    f"source folder not found: {job.source.path} (looked in {source})",
                )
            if self.stack.index_is_declared_or_templated(job.index):
                self._vector_field(job.index, job.vector_field, embedder, at + ("vector_field",), "vector")
            else:
                self._vector_field(job.index, job.vector_field, embedder, at, "vector")
            self._ray_gpus(name, at)
            if job.engine == "ray" and not (_installed("ray") and _installed("pyarrow")):
                self.add(
                    at + ("engine",),
                    "engine ray needs Ray Data, which is not installed: pip install 'provisioning[ray]'",
                )
            other = writers.setdefault((job.index, job.vector_field), (name, job.encoder))
            if other[1] != job.encoder:
                self.add(
                    at + ("encoder",),
                    f"ingest job '{other[0]}' fills {job.index}.{job.vector_field} with encoder '{other[1]}'; "
                    f"vectors of two encoders must not share a field: use '{other[1]}' here or another "
                    "vector_field or index",
                )

    def check_smoke_tests(self) -> None:
        for name, test in self.spec.smoke_tests.items():
            at: PathKey = ("smoke_tests", name)
            embedder: Embedder | None = None
            if test.model is not None:
                model = self.spec.models.get(test.model)
                if model is None:
                    self.add(
                        at + ("model",),
                        f"model '{test.model}' is not declared{_hint(test.model, self.spec.models)}",
                    )
                else:
                    embedder = self.embedders.get(("model", test.model))
                    if model.deployment is None:
                        self.add(
                            at + ("model",),
                            f"model '{test.model}' has no deployment, so it cannot embed the query",
                        )
                    if model.task_type != "text_embedding":
                        self.add(
                            at + ("model",),
                            f"model '{test.model}' has task_type {model.task_type}, not text_embedding",
                        )
            if test.encoder is not None:
                if test.encoder not in self.spec.encoders:
                    self.add(
                        at + ("encoder",),
                        f"encoder '{test.encoder}' is not declared{_hint(test.encoder, self.spec.encoders)}",
                    )
                else:
                    embedder = self.embedders.get(("encoder", test.encoder))
            if test.image is not None and not self.stack.resolve(test.image).is_file():
                self.add(
                    at + ("image",),
                    f"image not found: {test.image} (looked for {self.stack.resolve(test.image)})",
                )
            if not self.stack.index_is_declared_or_templated(test.index):
                self.add(
                    at + ("index",),
                    f"index '{test.index}' is neither declared under indices nor matched by an index template",
                )
                continue
            field = test.field
            if field is None:
                vectors = list(dense_vector_fields(self.stack.effective_mappings(test.index)))
                if len(vectors) != 1:
                    which = ", ".join(vectors) if vectors else "none"
                    self.add(
                        at,
                        f"index '{test.index}' has {len(vectors)} dense_vector fields ({which}); name one with 'field'",
                    )
                    continue
                field = vectors[0]
            self._vector_field(test.index, field, embedder, at + ("field",) if test.field else at, "query")

    def run(self) -> list[SpecIssue]:
        self.check_models()
        self.check_encoders()
        self.check_endpoints()
        self.check_templates()
        self.check_pipelines()
        self.check_ingest()
        self.check_smoke_tests()
        return self.issues


def embedder_dims(model: ModelSpec | EncoderSpec, stack: Stack) -> int | None:
    """Output size of a model or encoder: declared, or read from its local directory."""
    if model.dims is not None:
        return model.dims
    if model.source.path is None:
        return None
    return inspect_model_dir(stack.resolve(model.source.path)).dims


def cross_check(stack: Stack) -> list[SpecIssue]:
    return Checker(stack).run()
