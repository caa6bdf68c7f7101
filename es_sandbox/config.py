"""Settings of one sandbox instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from es_sandbox.versions import NEWEST


@dataclass(frozen=True)
class Faults:
    """Seeded, deterministic fault injection for reliability tests."""

    bulk_item_429_rate: float = 0.0  # fraction of bulk items refused with es_rejected_execution_exception
    request_503_rate: float = 0.0  # fraction of requests answered 503 before doing anything
    latency_ms: float = 0.0  # added to every request
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(self.bulk_item_429_rate or self.request_503_rate or self.latency_ms)


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path | None = None
    cluster_name: str = "provision-sandbox"
    node_name: str = "sandbox-0"
    ml_memory_bytes: int = 4 * 1024**3  # what the ML node can give deployments (native memory)
    deployment_start_delay_s: float = 0.5  # time spent in 'starting' before 'started'
    allocation_delay_s: float = 0.5  # time from 'started' to 'fully_allocated'
    license: str = "basic"  # initial license type; 'trial' to skip start_trial
    es_version: str = str(NEWEST)  # the Elasticsearch version emulated (es_sandbox.versions), e.g. "9.2.5"
    faults: Faults = field(default_factory=Faults)
