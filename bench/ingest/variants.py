"""(b) provision's ingest and (c) the model bound, each run alone in a child process of the benchmark.

Both load the encoder through the same code (``provisioning.embedding.loading.load_encoder``) with
the same batch size and torch settings, so the only difference between them is what (b) does
around the forward passes: scanning, hashing, existence checks, decoding, preparing, bulk indexing.

Each prints one JSON line on stdout: images, seconds (model loading excluded), model_load_s; the bound
adds model_core_ms and decode_core_ms (CPU milliseconds per image of each stage).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import sentence_transformers  # noqa: F401 - imported before the clock starts, as the seed script does

from bench.memory import peak_rss_mb


def run_provision(stack_path: Path) -> dict[str, float]:
    from provisioning.cluster import ConnectionOptions, build_client
    from provisioning.embedding.loading import load_stack_encoder
    from provisioning.image_ingest import run_ingest
    from provisioning.stackfile import load_stack

    stack = load_stack(stack_path)
    name = next(iter(stack.spec.encoders))
    started = time.perf_counter()
    encoder = load_stack_encoder(stack, name)  # as `provision ingest` loads it (gated on the stack's images)
    load_s = time.perf_counter() - started
    client = build_client(ConnectionOptions.resolve(stack.spec.cluster))
    report = run_ingest(stack, client, encoders={name: encoder})
    client.close()
    job = report.jobs[0]
    if not report.ok or job.failed:
        raise SystemExit(f"provision ingest did not index everything: {report.to_dict()}")
    return {
        "images": job.indexed,
        "seconds": job.elapsed_s,
        "model_load_s": load_s,
        "first_indexed_s": job.first_indexed_s or 0.0,
    }


def run_bound(model: Path, images: Path, batch_size: int) -> dict[str, float]:
    """The two costs the pipeline overlaps, measured on the same corpus in one process.

    decode: each image decoded (draft mode, as ingest does) and prepared (224x224 tensor) on one
    thread, timed with that thread's CPU clock: core-ms per image.
    model: batched forward passes over the prepared tensors (after one untimed warm-up batch), timed
    with the process's CPU clock (every thread the runtime uses) and the wall clock.
    """
    from provisioning.embedding.loading import load_encoder
    from provisioning.image_ingest.decode import decode_image
    from provisioning.stackfile.schema import EncoderSpec, SourceSpec

    started = time.perf_counter()
    encoder = load_encoder(
        "clip",
        EncoderSpec(source=SourceSpec(path=str(model)), batch_size=batch_size, device="cpu"),
        Path("/"),
    )
    load_s = time.perf_counter() - started
    paths = sorted(images.glob("*.jpg"))
    prepared = []
    decode_started = time.thread_time()
    for path in paths:
        prepared.append(encoder.prepare(decode_image(path.read_bytes(), min_size=encoder.input_size).image))
    decode_core_s = time.thread_time() - decode_started
    pixels = np.stack(prepared)
    encoder.encode_pixels(pixels[:batch_size])  # warm-up, untimed: the bound is the model's steady speed
    started = time.perf_counter()
    cpu_started = time.process_time()
    for start in range(0, len(pixels), batch_size):
        encoder.encode_pixels(pixels[start : start + batch_size])
    model_core_s = time.process_time() - cpu_started
    seconds = time.perf_counter() - started
    return {
        "images": len(pixels),
        "seconds": seconds,
        "model_load_s": load_s,
        "model_core_ms": 1000 * model_core_s / len(pixels),
        "decode_core_ms": 1000 * decode_core_s / len(paths),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=["provision", "bound"])
    parser.add_argument("--stack", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.variant == "provision":
        result = run_provision(args.stack)
    else:
        result = run_bound(args.model, args.images, args.batch_size)
    if isinstance(result, dict):
        result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
