"""The encoder benchmark's child processes; each prints one JSON line on stdout.

    gate    load each stack's encoder as ``provision ingest`` does (converting it and running the
            quality gate on the stack's own images when the cache does not hold them yet)
    tiny    each runtime and precision on the tiny trained CLIP pair: the gate on the quickstart
            samples, then text -> image top-1 per language against torch fp32
    ingest  ``run_ingest`` of a stack whose encoder is already converted and gated: images/s

Nothing is imported before it is needed, so the ingest child's peak RSS is what ``provision ingest``
with that runtime holds (a converted encoder does not keep the torch model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mb


def gate(stack_paths: list[Path]) -> list[dict[str, Any]]:
    """Per stack: accepted, the gate's verdict, load seconds (conversion and gate included)."""
    return [_gate(path) for path in stack_paths]


def _gate(stack_path: Path) -> dict[str, Any]:
    from provisioning.embedding import conversion
    from provisioning.embedding.loading import load_stack_encoder
    from provisioning.embedding.quality_gate import QualityGateError
    from provisioning.stackfile import load_stack

    stack = load_stack(stack_path)
    name = next(iter(stack.spec.encoders))
    started = time.perf_counter()
    try:
        encoder = load_stack_encoder(stack, name)
    except QualityGateError as refused:
        verdict, accepted = refused.verdict, False
    else:
        verdict, accepted = encoder.verdict, True
    return {
        "accepted": accepted,
        "verdict": None if verdict is None else verdict.to_json(),
        "load_s": time.perf_counter() - started,
        "conversions": conversion.counters["conversions"],
    }


def tiny(variants: list[str], work: Path) -> dict[str, dict[str, Any]]:
    """Per variant (``runtime-precision``): accepted, the gate's verdict, top-1 per language."""
    from bench.encoders import quality
    from provisioning.embedding.calibration import CalibrationSet
    from provisioning.embedding.loading import load_encoder
    from provisioning.embedding.quality_gate import QualityGateError
    from provisioning.stackfile.schema import EncoderSpec

    def spec(runtime: str, precision: str) -> EncoderSpec:
        return EncoderSpec.model_validate(
            {"source": {"path": str(quality.TINY / "image")}, "runtime": runtime, "precision": precision}
        )

    samples = CalibrationSet(
        tuple(sorted(quality.QUICKSTART_SAMPLES.glob("*.jpg"))), "images of the quickstart samples", 64
    )
    gallery = quality.held_out(work / "held-out")
    queries = quality.caption_queries()
    theirs = quality.text_to_image_top1(
        load_encoder("tiny-image", spec("torch", "fp32"), Path("/")), gallery, queries
    )
    out: dict[str, dict[str, Any]] = {}
    for variant in variants:
        runtime, precision = variant.split("-", 1)
        try:
            encoder = load_encoder("tiny-image", spec(runtime, precision), Path("/"), calibration=samples)
        except QualityGateError as refused:
            out[variant] = {"accepted": False, "verdict": refused.verdict.to_json()}
            continue
        ours = quality.text_to_image_top1(encoder, gallery, queries)
        delta = max(abs(ours[k] - theirs[k]) for k in ours)
        out[variant] = {
            "accepted": delta <= quality.TOP1_TOLERANCE,
            "verdict": None if encoder.verdict is None else encoder.verdict.to_json(),
            "top1": ours,
            "torch_top1": theirs,
            "max_top1_delta": delta,
        }
    return out


def ingest(stack_path: Path) -> dict[str, Any]:
    from provisioning.cluster import ConnectionOptions, build_client
    from provisioning.embedding.loading import load_stack_encoder
    from provisioning.image_ingest import run_ingest
    from provisioning.stackfile import load_stack

    stack = load_stack(stack_path)
    name = next(iter(stack.spec.encoders))
    started = time.perf_counter()
    encoder = load_stack_encoder(stack, name)
    load_s = time.perf_counter() - started
    client = build_client(ConnectionOptions.resolve(stack.spec.cluster))
    report = run_ingest(stack, client, encoders={name: encoder})
    client.close()
    job = report.jobs[0]
    if not report.ok or job.failed:
        raise SystemExit(f"provision ingest did not index everything: {report.to_dict()}")
    return {"images": job.indexed, "seconds": job.elapsed_s, "model_load_s": load_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("child", choices=["gate", "tiny", "ingest"])
    parser.add_argument("--stack", type=Path, action="append", default=[])
    parser.add_argument("--variant", action="append", default=[], help="runtime-precision, e.g. onnx-int8")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    result: Any
    if args.child == "gate":
        result = gate(args.stack)
    elif args.child == "tiny":
        result = tiny(args.variant, args.work)
    else:
        result = ingest(args.stack[0])
    if isinstance(result, dict):
        result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
