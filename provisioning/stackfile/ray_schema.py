"""The stack file's settings of the Ray engine (``ingest.<job>.engine`` and ``ingest.<job>.ray``).

Kept beside :mod:`.schema` (which imports them into ``IngestSpec``); the same strict rules apply:
unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


Engine = Literal["local", "ray"]


class RaySpec(_Strict):
    """How a job runs on Ray Data (``engine: ray``): the encoder actor pool and the bulk writers.

    Each encoder actor loads the model once and embeds batches of ``batch_size`` images; decoding runs
    as Ray tasks of one CPU each beside it, bulk indexing in ``writers`` actors with clients of their
    own. Logical resources: an actor reserves ``cpus_per_actor`` CPUs and ``gpus_per_actor`` GPUs.
    """

    actors: int = Field(1, ge=1, le=10_000, description="encoder actors (each loads the model once)")
    max_actors: int | None = Field(
        None, ge=1, le=10_000, description="grow the pool up to this many actors while there is work"
    )
    gpus_per_actor: float = Field(
        0, ge=0, le=16, description="GPUs each encoder actor reserves (0: CPU actors; 0.5: two per GPU)"
    )
    cpus_per_actor: float = Field(
        1, gt=0, le=1024, description="CPUs each encoder actor reserves (its forward-pass threads by default)"
    )
    writers: int = Field(1, ge=1, le=1024, description="bulk writer actors, each with its own client")

    @model_validator(mode="after")
    def _pool(self) -> RaySpec:
        if self.max_actors is not None and self.max_actors < self.actors:
            raise ValueError(f"max_actors ({self.max_actors}) must be at least actors ({self.actors})")
        return self
