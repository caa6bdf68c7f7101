"""``bench/ingest``: provision's ingest against the seed's script and against the model's own speed.

Run ``python -m bench.ingest`` (or ``python bench/ingest/run.py``) from the repository root;
``--quick`` is a smoke run (a few small images, a tiny model) for the test suite.

In one run, on the same inputs (photo-like JPEGs of at least 6 megapixels, generated once into a
cache outside the repository), with the same model (the CLIP ViT-B/32 architecture with random
weights: the cost of ``clip-ViT-B-32``) and the sandbox as the sink:

  (a) seed      the Elastic blog's create-image-embeddings.py (bench/ingest/seed.py)
  (b) provision ``run_ingest``, the library path of ``provision ingest``
  (c) bound     the two costs (b) overlaps, each measured alone on the same images: the model's CPU
                milliseconds per image on prepared tensors (batched forward passes, process CPU
                clock) and decode + prepare's (one thread, its CPU clock)

The honest bound for (b) is the pipeline bound: with every core busy all the time and nothing else
to do, ``cores * 1000 / (model + decode core-ms)`` images per second. The model-only bound,
``cores * 1000 / model core-ms``, is what the model alone could do; (b) can approach it only when
decoding is free, so its ratio is printed for information above the last line.

Each runs in a child process of its own, so that its peak RSS (from ``wait4``) is its own.
Throughput excludes model loading (reported beside it). Time to the first searchable document is
measured from the child's start by polling the index's ``_count`` (after a refresh), for (a) and (b).
Floors: (b)/(a) >= 2.0 and (b)/pipeline bound >= 0.90. The last line printed is
``ratios: vs_seed=<x> vs_bound=<y>``. The exit status is 1 when a floor is missed (not in --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python bench/ingest/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.ingest.corpus import write_photo_corpus
from bench.ingest.models import save_full_size_clip, save_tiny_clip
from bench.ingest.stacks import create_index, image_index_body, write_stack

REPO = Path(__file__).resolve().parents[2]
FLOOR_VS_SEED = 2.0
FLOOR_VS_BOUND = 0.90


@dataclass
class Result:
    name: str
    images: int
    seconds: float
    model_load_s: float
    peak_rss_mb: float
    wall_s: float
    first_searchable_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)  # e.g. the bound's core-ms per stage

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class FirstDocument:
    """Polls an index until it holds a searchable document; the time from ``start`` to then."""

    def __init__(self, url: str, index: str) -> None:
        from elasticsearch import Elasticsearch

        self._client = Elasticsearch(url, request_timeout=10)
        self._index = index
        self._stop = threading.Event()
        self.started = 0.0
        self.seen_at: float | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self.started = time.perf_counter()
        self._thread.start()

    def _poll(self) -> None:
        from elasticsearch import ApiError, TransportError

        while not self._stop.is_set():
            try:
                self._client.indices.refresh(index=self._index)
                if int(self._client.count(index=self._index)["count"]) > 0:
                    self.seen_at = time.perf_counter()
                    return
            except (ApiError, TransportError):
                pass  # the seed deletes and recreates its index: absent for a moment
            time.sleep(0.1)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()
        return None if self.seen_at is None else self.seen_at - self.started


def run_child(name: str, argv: list[str], first_doc: FirstDocument | None, log: Path) -> Result:
    """Run one variant in its own process; its JSON line, wall time and peak RSS."""
    with log.open("wb") as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, env=child_env(), cwd=REPO)
        if first_doc is not None:
            first_doc.start()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        first = first_doc.stop() if first_doc is not None else None
        out.seek(0)
        lines = out.read().decode().strip().splitlines()
    if child.returncode != 0 or not lines:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} failed (exit {child.returncode}); its log {log} ends with:\n{tail}")
    data: dict[str, Any] = json.loads(lines[-1])
    # The child's own VmHWM when it reports one (wait4's ru_maxrss includes the parent's, see bench.memory).
    reported = data.get("peak_rss_mb")
    if isinstance(reported, int | float):
        peak_mb = float(reported)
    else:
        peak_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 1024 / 1024
    known = {"images", "seconds", "model_load_s", "peak_rss_mb"}
    extra = {k: float(v) for k, v in data.items() if k not in known and isinstance(v, int | float)}
    return Result(
        name,
        int(data["images"]),
        float(data["seconds"]),
        float(data["model_load_s"]),
        peak_mb,
        wall,
        first,
        extra,
    )


def cores() -> int:
    """CPU cores this process may run on (the machine's, unless an affinity mask says fewer)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def prepare_inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    cache = Path(args.cache).expanduser()
    photos = cache / f"photos-{args.images}-{args.width}x{args.height}"
    print(
        f"inputs: {args.images} photo-like JPEGs of {args.width}x{args.height} in {photos}", file=sys.stderr
    )
    started = time.perf_counter()
    paths = write_photo_corpus(photos, args.images, args.width, args.height)
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"  ready in {time.perf_counter() - started:.0f}s, {size_mb / len(paths):.2f} MB each",
        file=sys.stderr,
    )
    model = cache / f"clip-{args.model}-random"
    if not (model / "modules.json").exists():
        print(f"model: writing a randomly initialised CLIP ({args.model}) to {model}", file=sys.stderr)
        (save_tiny_clip if args.model == "tiny" else save_full_size_clip)(model)
    return photos, model


def corpus_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every ingest benchmark shares: the photos, the model, the cache, ``--quick``."""
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 small images, tiny model")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--width", type=int, default=3072)
    parser.add_argument("--height", type=int, default=2048)
    parser.add_argument("--model", choices=["vit-b-32", "tiny"], default="vit-b-32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--cache", default=os.environ.get("PROVISION_BENCH_CACHE", "/tmp/provision-bench-cache")
    )
    return parser


def parse_corpus_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parsed options; ``--quick`` shrinks the inputs to a smoke run."""
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.width, args.height, args.model, args.batch_size = 12, 1024, 768, "tiny", 4
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    args = parse_corpus_arguments(corpus_arguments(parser), argv)
    if not args.quick and (args.width * args.height < 6_000_000 or args.images < 200):
        print("note: below the issue's floor of inputs (>= 200 images of >= 6 MP)", file=sys.stderr)

    photos, model = prepare_inputs(args)
    from elasticsearch import Elasticsearch

    from es_sandbox import SandboxConfig, SandboxServer

    dims = 16 if args.model == "tiny" else 512
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    body = image_index_body(dims)
    mappings = work / "image-embeddings-mappings.json"
    mappings.write_text(json.dumps(body), encoding="utf-8")
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; logs in {work}",
        file=sys.stderr,
    )
    with SandboxServer(SandboxConfig(port=0)) as sink:
        client = Elasticsearch(sink.url, request_timeout=60)
        create_index(client, "bench-provision", dims)
        stack = write_stack(
            work / "stack.yaml",
            photos=photos,
            model=model,
            index="bench-provision",
            dims=dims,
            batch_size=args.batch_size,
            url=sink.url,
        )
        seed_argv = ["-m", "bench.ingest.seed", "--es_host", sink.url, "--model", str(model)]
        seed_argv += ["--images", str(photos), "--mappings", str(mappings), "--index", "bench-seed"]
        print("(a) seed script ...", file=sys.stderr)
        seed = run_child("seed", seed_argv, FirstDocument(sink.url, "bench-seed"), work / "seed.log")
        print("(b) provision ingest ...", file=sys.stderr)
        ours = run_child(
            "provision",
            ["-m", "bench.ingest.variants", "provision", "--stack", str(stack)],
            FirstDocument(sink.url, "bench-provision"),
            work / "provision.log",
        )
        print("(c) model bound ...", file=sys.stderr)
        bound_argv = ["-m", "bench.ingest.variants", "bound", "--model", str(model), "--images", str(photos)]
        bound = run_child(
            "bound", [*bound_argv, "--batch-size", str(args.batch_size)], None, work / "bound.log"
        )
        counts = {}
        for index in ("bench-seed", "bench-provision"):
            client.indices.refresh(index=index)
            counts[index] = int(client.count(index=index)["count"])
        client.close()

    model_ms, decode_ms = bound.extra["model_core_ms"], bound.extra["decode_core_ms"]
    n = cores()
    model_bound = n * 1000 / model_ms
    pipeline_bound = n * 1000 / (model_ms + decode_ms)
    print(
        f"{'variant':<12}{'images':>8}{'images/s':>11}{'peak RSS MB':>13}{'model load s':>14}{'first doc s':>13}"
    )
    for result in (seed, ours):
        first = "-" if result.first_searchable_s is None else f"{result.first_searchable_s:.1f}"
        print(
            f"{result.name:<12}{result.images:>8}{result.images_per_s:>11.2f}{result.peak_rss_mb:>13.0f}"
            f"{result.model_load_s:>14.1f}{first:>13}"
        )
    print(
        f"bound: model {model_ms:.1f} core-ms/image (batched forward passes on prepared tensors), "
        f"decode+prepare {decode_ms:.1f} core-ms/image (one thread), {n} cores"
    )
    print(f"  model-only bound {model_bound:.2f} images/s = {n} x 1000 / {model_ms:.1f}")
    print(
        f"  pipeline bound   {pipeline_bound:.2f} images/s = {n} x 1000 / ({model_ms:.1f} + {decode_ms:.1f})"
    )
    print(f"documents in the sink: {counts}")
    vs_seed = ours.images_per_s / seed.images_per_s
    vs_bound = ours.images_per_s / pipeline_bound
    vs_model = ours.images_per_s / model_bound
    ok = vs_seed >= FLOOR_VS_SEED and vs_bound >= FLOOR_VS_BOUND
    print(
        f"floors: vs_seed >= {FLOOR_VS_SEED} {'ok' if vs_seed >= FLOOR_VS_SEED else 'MISSED'}, "
        f"vs_bound >= {FLOOR_VS_BOUND} {'ok' if vs_bound >= FLOOR_VS_BOUND else 'MISSED'}"
        + (" (quick run: not meaningful)" if args.quick else "")
    )
    print(f"model-only: vs_model_bound={vs_model:.2f}")
    print(f"ratios: vs_seed={vs_seed:.2f} vs_bound={vs_bound:.2f}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
