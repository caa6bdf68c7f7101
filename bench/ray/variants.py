"""The variants of ``bench.ray``, each run alone in a child process: embed with the local engine, embed
with the Ray engine (a local Ray instance with one CPU per core), export to Parquet on Ray, and load
the shards into an index with no model. Each prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mb
from provisioning.image_ingest.job import FIRST_BATCH


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_ray() -> tuple[float, str]:
    """A local Ray instance (one CPU per core, private temp dir); seconds it took, and the dir."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="bench-ray-")
    started = time.perf_counter()
    ray.init(num_cpus=_cores(), include_dashboard=False, _temp_dir=temp_dir, logging_level=logging.WARNING)
    return time.perf_counter() - started, temp_dir


def _stop_ray(temp_dir: str) -> None:
    import ray

    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def embed(stack_path: Path, engine: str) -> dict[str, Any]:
    """``provision ingest`` of the stack's job with ``engine``: images/s of the job (model loading
    excluded for local; for Ray, the actors load the model inside the job: both figures are given)."""
    from provisioning.cluster import ConnectionOptions, build_client
    from provisioning.embedding.loading import load_stack_encoder
    from provisioning.image_ingest import run_ingest
    from provisioning.stackfile import load_stack

    stack = load_stack(stack_path)
    options = ConnectionOptions.resolve(stack.spec.cluster)
    client = build_client(options)
    result: dict[str, Any] = {}
    if engine == "local":
        name = next(iter(stack.spec.encoders))
        started = time.perf_counter()
        encoder = load_stack_encoder(stack, name)
        result["model_load_s"] = time.perf_counter() - started
        report = run_ingest(stack, client, encoders={name: encoder})
    else:
        result["ray_init_s"], temp_dir = _start_ray()
        try:
            report = run_ingest(stack, client, engine="ray", connection=options)
        finally:
            _stop_ray(temp_dir)
        result["model_load_s"] = report.encoders[0].load_s if report.encoders else 0.0
    client.close()
    job = report.jobs[0]
    if not report.ok or job.failed:
        raise SystemExit(f"{engine} ingest did not index everything: {report.to_dict()}")
    result |= {"images": job.indexed, "seconds": job.elapsed_s, "first_indexed_s": job.first_indexed_s or 0.0}
    # Steady state, the same way for both engines: from the first indexed document (the first batch:
    # FIRST_BATCH images locally, a whole encoder batch on Ray) to the end of the job.
    first = min(
        job.indexed - 1, FIRST_BATCH if engine == "local" else stack.spec.encoders[name_of(stack)].batch_size
    )
    result["steady_images"] = job.indexed - first
    result["steady_seconds"] = max(1e-9, job.elapsed_s - (job.first_indexed_s or 0.0))
    return result


def name_of(stack: Any) -> str:
    return str(next(iter(stack.spec.encoders)))


def export(stack_path: Path, shards: Path) -> dict[str, Any]:
    """``provision ingest --export`` on Ray: the shards the load variant reads."""
    from provisioning.image_ingest.exporting import export_embeddings
    from provisioning.stackfile import load_stack

    init_s, temp_dir = _start_ray()
    try:
        report = export_embeddings(load_stack(stack_path), shards, engine="ray")
    finally:
        _stop_ray(temp_dir)
    job = report.jobs[0]
    if not report.ok or job.failed:
        raise SystemExit(f"export did not write everything: {report.to_dict()}")
    return {
        "images": job.indexed,
        "seconds": job.elapsed_s,
        "model_load_s": report.encoders[0].load_s,
        "ray_init_s": init_s,
    }


def load(stack_path: Path, shards: Path) -> dict[str, Any]:
    """``provision ingest --from`` on this host: documents/s, no model loaded."""
    from provisioning.cluster import ConnectionOptions, build_client
    from provisioning.image_ingest.loading import run_load
    from provisioning.stackfile import load_stack

    stack = load_stack(stack_path)
    client = build_client(ConnectionOptions.resolve(stack.spec.cluster))
    report = run_load(stack, client, shards)
    client.close()
    job = report.jobs[0]
    if not report.ok or job.failed:
        raise SystemExit(f"load did not index everything: {report.to_dict()}")
    return {"images": job.indexed, "seconds": job.elapsed_s, "model_load_s": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=["local", "ray", "export", "load"])
    parser.add_argument("--stack", type=Path, required=True)
    parser.add_argument("--shards", type=Path)
    args = parser.parse_args()
    if args.variant in ("local", "ray"):
        result = embed(args.stack, args.variant)
    elif args.variant == "export":
        result = export(args.stack, args.shards)
    else:
        result = load(args.stack, args.shards)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
