"""The typed shape of stack.yaml.

Models are strict (unknown keys are errors) because a misspelt key in a provisioning file is a
setting silently not applied. Elasticsearch request bodies (mappings, settings, processors) stay
free-form dictionaries: the cluster owns their grammar, and cross-reference checks inspect the
parts this tool depends on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from provisioning import names
from provisioning.json_types import SchemaObject
from provisioning.stackfile.ray_schema import Engine, RaySpec

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>d|h|m|s|ms|micros|nanos)$")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}
_BYTES = re.compile(r"^\d+(?:\.\d+)?(?:b|kb|mb|gb|tb|pb)?$", re.I)

# Elasticsearch's limits for kNN search (SearchService / KnnSearchBuilder).
KNN_MAX_K = 10_000
KNN_MAX_NUM_CANDIDATES = 10_000


def duration_seconds(value: str) -> float:
    """Seconds in an Elasticsearch time value such as ``10m`` or ``500ms``."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a time value: {value!r}")
    return float(match.group("n")) * _UNIT_SECONDS[match.group("unit")]


def _duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a time value such as '30s' or '10m'")
    if isinstance(value, int | float):
        return f"{value:g}s"
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return value.strip()
    raise ValueError(
        f"expected a time value such as '30s', '10m' or '1h' (units d, h, m, s, ms), got {value!r}"
    )


Duration = Annotated[str, BeforeValidator(_duration)]


def _check(problem: str | None, what: str, value: str) -> str:
    if problem:
        raise ValueError(f"{what} {value!r} {problem}")
    return value


def _model_id(value: str) -> str:
    return _check(names.model_id_problem(value), "model id", value)


def _model_alias(value: str) -> str:
    return _check(names.model_alias_problem(value), "model alias", value)


def _index_name(value: str) -> str:
    return _check(names.index_name_problem(value), "index name", value)


def _index_pattern(value: str) -> str:
    return _check(names.index_pattern_problem(value), "index pattern", value)


def _template_name(value: str) -> str:
    return _check(names.template_name_problem(value), "template name", value)


def _pipeline_id(value: str) -> str:
    return _check(names.pipeline_id_problem(value), "pipeline id", value)


def _inference_id(value: str) -> str:
    return _check(names.inference_id_problem(value), "inference endpoint id", value)


def _byte_size(value: str) -> str:
    if not _BYTES.match(value):
        raise ValueError(f"expected a byte size such as '512mb', got {value!r}")
    return value


ModelId = Annotated[str, AfterValidator(_model_id)]
ModelAlias = Annotated[str, AfterValidator(_model_alias)]
IndexName = Annotated[str, AfterValidator(_index_name)]
IndexPattern = Annotated[str, AfterValidator(_index_pattern)]
TemplateName = Annotated[str, AfterValidator(_template_name)]
PipelineId = Annotated[str, AfterValidator(_pipeline_id)]
InferenceId = Annotated[str, AfterValidator(_inference_id)]
ByteSize = Annotated[str, AfterValidator(_byte_size)]
Body = SchemaObject


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are not silently coerced to str."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


# An ingest job's tolerance for failed files: a count, or a percentage of the files scanned.
MAX_FAILED_PATTERN = r"^(\d+|(100(\.0+)?|\d{1,2}(\.\d+)?)%)$"


def _max_failed(value: Any) -> Any:
    valid = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and re.match(MAX_FAILED_PATTERN, value.strip()) is not None
    )
    if not valid:
        raise ValueError(
            f"max_failed is a count of files (10) or a percentage of the files scanned from 0% to 100% "
            f"('5%'), not {value!r}"
        )
    return value


MaxFailed = Annotated[
    int | str,
    BeforeValidator(_max_failed),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": MAX_FAILED_PATTERN},
            ]
        }
    ),
]

OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_to_none)]


class ClusterSpec(Strict):
    """How to reach the cluster; every field can also come from the command line or ES_* variables."""

    url: str = "http://localhost:9200"
    api_key: OptionalSecret = None
    username: OptionalStr = None
    password: OptionalSecret = None
    ca_certs: OptionalStr = None
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    license: Literal["trial"] | None = Field(
        None,
        description="'trial' opts in to starting a trial license when the cluster has basic (ML needs it)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class SourceSpec(Strict):
    """Where model weights come from: a Hugging Face hub id, or a local directory."""

    hub: str | None = Field(None, description="Hugging Face hub id, e.g. sentence-transformers/clip-ViT-B-32")
    revision: str | None = Field(
        None, description="hub revision (commit, branch or tag); pins what is traced"
    )
    path: str | None = Field(None, description="local directory, relative to the stack file")

    @model_validator(mode="after")
    def _one_of(self) -> SourceSpec:
        if (self.hub is None) == (self.path is None):
            raise ValueError("give exactly one of 'hub' or 'path'")
        if self.revision is not None and self.hub is None:
            raise ValueError("'revision' applies only to a 'hub' source")
        return self


class AdaptiveAllocationsSpec(Strict):
    enabled: bool = True
    min_number_of_allocations: int | None = Field(None, ge=0)
    max_number_of_allocations: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _range(self) -> AdaptiveAllocationsSpec:
        lo, hi = self.min_number_of_allocations, self.max_number_of_allocations
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_number_of_allocations must not exceed max_number_of_allocations")
        return self


def _power_of_two(value: int) -> int:
    if value < 1 or value > 32 or value & (value - 1):
        raise ValueError("threads_per_allocation must be a power of 2 between 1 and 32")
    return value


class DeploymentSpec(Strict):
    """A trained model deployment (``_ml/trained_models/<id>/deployment/_start``)."""

    deployment_id: ModelId | None = Field(None, description="defaults to the model id")
    number_of_allocations: int | None = Field(None, ge=1)
    threads_per_allocation: Annotated[int, AfterValidator(_power_of_two)] = 1
    priority: Literal["normal", "low"] = "normal"
    queue_capacity: int = Field(1024, ge=1, lt=1_000_000)
    cache_size: ByteSize | None = None
    adaptive_allocations: AdaptiveAllocationsSpec | None = None
    wait_for: Literal["started", "fully_allocated"] = "started"
    timeout: Duration = "10m"

    @model_validator(mode="after")
    def _allocations(self) -> DeploymentSpec:
        adaptive = self.adaptive_allocations is not None and self.adaptive_allocations.enabled
        if adaptive and self.number_of_allocations is not None:
            raise ValueError("number_of_allocations cannot be set when adaptive_allocations is enabled")
        if self.priority == "low" and (self.number_of_allocations or 1) != 1:
            raise ValueError("[number_of_allocations] must be 1 when [priority] is low")
        if self.priority == "low" and self.threads_per_allocation != 1:
            raise ValueError("[threads_per_allocation] must be 1 when [priority] is low")
        if (
            self.priority == "low"
            and adaptive
            and self.adaptive_allocations is not None
            and (self.adaptive_allocations.max_number_of_allocations or 1) > 1
        ):
            raise ValueError("[max_number_of_allocations] must be 1 when [priority] is low")
        return self


TaskType = Literal[
    "text_embedding",
    "text_expansion",
    "text_similarity",
    "text_classification",
    "zero_shot_classification",
    "fill_mask",
    "ner",
    "question_answering",
    "pass_through",
]


class ModelSpec(Strict):
    """A text model traced by eland and uploaded to the cluster's ML nodes."""

    model_id: ModelId = Field(description="the Elasticsearch trained model id")
    source: SourceSpec
    task_type: TaskType
    max_model_input_length: int = Field(
        ge=1, le=8192, description="tokens; eland reads the tokenizer's value otherwise, which can be wrong"
    )
    dims: int | None = Field(None, ge=1, le=4096, description="embedding size; required for hub sources")
    normalized: bool | None = Field(None, description="whether the model's embeddings are unit length")
    quantize: bool = False
    description: str | None = None
    ingest_prefix: str | None = None
    search_prefix: str | None = None
    alias: ModelAlias | None = Field(
        None,
        description="a trained model alias pointed at this model; pipelines and queries that use it follow rollovers",
    )
    deployment: DeploymentSpec | None = None


Runtime = Literal["torch", "onnx", "openvino"]
Precision = Literal["fp32", "int8"]


class CalibrationSpec(Strict):
    """The images the quality gate compares a converted encoder with torch fp32 on."""

    path: str | None = Field(
        None,
        description="folder of images, relative to the stack file; default: the images of the ingest jobs "
        "that use this encoder, or generated images when they have none",
    )
    images: int = Field(64, ge=16, le=2048, description="how many images the gate embeds (evenly sampled)")


class EncoderSpec(Strict):
    """A CLIP model run on the ingest host: by torch (sentence-transformers), or converted from the same
    source for ONNX Runtime or OpenVINO, in fp32 or int8 behind a quality gate."""

    source: SourceSpec
    dims: int | None = Field(None, ge=1, le=4096)
    batch_size: int = Field(32, ge=1, le=4096)
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="auto: a CUDA GPU when one is usable (torch; ONNX Runtime's CUDA execution provider), "
        "else the CPU. OpenVINO runs on the CPU",
    )
    normalize: bool = Field(False, description="scale embeddings to unit length (needed for dot_product)")
    runtime: Runtime = Field(
        "torch",
        description="torch (sentence-transformers, as trained), onnx (ONNX Runtime) or openvino; onnx and "
        "openvino models are exported from the same source and cached",
    )
    precision: Precision = Field(
        "fp32",
        description="int8 quantises the converted model (onnx: dynamic int8; openvino: NNCF post-training "
        "int8); it is used only if it passes the quality gate against torch fp32",
    )
    threads: int | None = Field(
        None, ge=1, le=256, description="threads of the forward pass; default: the runtime's (all cores)"
    )
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)

    @model_validator(mode="after")
    def _runtime(self) -> EncoderSpec:
        if self.runtime == "torch" and self.precision != "fp32":
            raise ValueError(
                f"precision {self.precision} needs a converted model: set runtime: onnx or runtime: openvino"
            )
        if self.runtime == "openvino" and self.device == "cuda":
            raise ValueError(
                "runtime openvino runs on the CPU here: use device: auto or cpu, or runtime: onnx"
            )
        return self


class InferenceEndpointSpec(Strict):
    """An ``_inference`` endpoint of service ``elasticsearch`` backed by a declared model's deployment."""

    task_type: Literal["text_embedding", "sparse_embedding", "rerank"] = "text_embedding"
    model: str = Field(description="name of a declared model whose deployment serves this endpoint")


class TemplateBody(Strict):
    settings: Body | None = None
    mappings: Body | None = None
    aliases: Body | None = None


class ComponentTemplateSpec(Strict):
    template: TemplateBody
    version: int | None = Field(None, ge=0)
    meta: Body | None = Field(None, alias="_meta")


class IndexTemplateSpec(Strict):
    index_patterns: list[IndexPattern] = Field(min_length=1)
    priority: int | None = Field(None, ge=0)
    composed_of: list[str] = Field(default_factory=list)
    template: TemplateBody | None = None
    version: int | None = Field(None, ge=0)
    meta: Body | None = Field(None, alias="_meta")


class PipelineSpec(Strict):
    description: str | None = None
    processors: list[Body] = Field(min_length=1)
    on_failure: list[Body] | None = None
    version: int | None = Field(None, ge=0)
    meta: Body | None = Field(None, alias="_meta")


class IndexSpec(Strict):
    settings: Body | None = None
    mappings: Body | None = None
    aliases: Body | None = None


class IngestSourceSpec(Strict):
    path: str
    include: list[str] = Field(default_factory=lambda: ["**/*.jpg", "**/*.jpeg", "**/*.png"], min_length=1)
    exclude: list[str] = Field(default_factory=list)
    follow_symlinks: bool = False


class BulkSpec(Strict):
    chunk_size: int = Field(500, ge=1, le=100_000)
    max_chunk_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_retries: int = Field(8, ge=0, le=100)
    initial_backoff: float = Field(0.5, gt=0)
    max_backoff: float = Field(30.0, gt=0)


class IngestSpec(Strict):
    """An image ingest job: files under a folder, embedded by an encoder, bulk-indexed."""

    index: IndexName
    source: IngestSourceSpec
    encoder: str
    vector_field: str = "image_embedding"
    pipeline: str | None = None
    fields: Body = Field(default_factory=dict, description="static fields added to every document")
    batch_size: int | None = Field(None, ge=1, le=4096, description="overrides the encoder's batch_size")
    workers: int | None = Field(None, ge=1, le=64, description="decode threads; default: CPU count")
    prune: bool = Field(False, description="delete documents whose file is gone")
    bulk: BulkSpec = Field(default_factory=BulkSpec)
    max_failed: MaxFailed = Field(
        0,
        description="failed files (unreadable, not images, truncated) the job tolerates before the run "
        "fails (exit 1): a count (10) or a percentage of the files scanned ('5%'); default 0",
    )
    engine: Engine = Field("local", description="local: threads on this host; ray: Ray Data (scale-out.md)")
    ray: RaySpec = Field(default_factory=RaySpec, description="the Ray engine's actors (engine: ray)")


class FieldValue(Strict):
    field: str
    value: Any


class FieldValues(Strict):
    field: str
    values: list[Any] = Field(min_length=1)


class ExpectSpec(Strict):
    top_1: FieldValue | None = None
    top_k_contains: FieldValues | None = None
    min_score: float | None = None
    min_hits: int | None = Field(None, ge=0)
    max_latency_ms: float | None = Field(None, gt=0)
    min_recall: float | None = Field(None, ge=0, le=1)


class SmokeTestSpec(Strict):
    """A kNN query with expectations, run against the live stack."""

    index: IndexName
    field: str | None = Field(None, description="the dense_vector field; defaults to the index's only one")
    text: str | None = None
    image: str | None = None
    model: str | None = Field(None, description="declared model that embeds 'text' inside Elasticsearch")
    encoder: str | None = Field(None, description="declared encoder that embeds 'image' on this host")
    embed_via: Literal["query_vector_builder", "infer"] = "query_vector_builder"
    k: int = Field(10, ge=1, le=KNN_MAX_K)
    num_candidates: int | None = Field(None, ge=1, le=KNN_MAX_NUM_CANDIDATES)
    filter: Body | list[Body] | None = None
    similarity: float | None = None
    expect: ExpectSpec = Field(default_factory=ExpectSpec)

    @model_validator(mode="after")
    def _query(self) -> SmokeTestSpec:
        if (self.text is None) == (self.image is None):
            raise ValueError("give exactly one of 'text' or 'image'")
        if self.text is not None and self.model is None:
            raise ValueError("a 'text' query needs 'model' (a declared model that embeds it)")
        if self.image is not None and self.encoder is None:
            raise ValueError("an 'image' query needs 'encoder' (a declared encoder that embeds it)")
        if self.num_candidates is not None and self.num_candidates < self.k:
            raise ValueError(f"num_candidates ({self.num_candidates}) must be at least k ({self.k})")
        return self

    @property
    def effective_num_candidates(self) -> int:
        """Elasticsearch's default: 1.5 * k, capped at its limit."""
        if self.num_candidates is not None:
            return self.num_candidates
        return min(max(int(self.k * 1.5), self.k), KNN_MAX_NUM_CANDIDATES)


_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class StackSpec(Strict):
    """A whole image-search stack: what ``provision apply`` converges a cluster to."""

    name: str = Field(description="tags everything this stack manages (_meta.stack)")
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict)
    inference_endpoints: dict[InferenceId, InferenceEndpointSpec] = Field(default_factory=dict)
    component_templates: dict[TemplateName, ComponentTemplateSpec] = Field(default_factory=dict)
    index_templates: dict[TemplateName, IndexTemplateSpec] = Field(default_factory=dict)
    pipelines: dict[PipelineId, PipelineSpec] = Field(default_factory=dict)
    indices: dict[IndexName, IndexSpec] = Field(default_factory=dict)
    ingest: dict[str, IngestSpec] = Field(default_factory=dict)
    smoke_tests: dict[str, SmokeTestSpec] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or len(value) > 64:
            raise ValueError(
                f"stack name {value!r} must be lowercase letters, digits, '-' or '_', starting with a letter "
                "or digit, at most 64 characters"
            )
        return value
