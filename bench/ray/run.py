"""``bench/ray``: the Ray engine against the local engine on the same cores, and Parquet loading.

Run ``python -m bench.ray`` from the repository root on an idle machine; ``--quick`` is a smoke run
(a few small images, a tiny model) for the test suite. On the inputs of ``bench.ingest`` (200
photo-like 6 MP JPEGs generated once into a cache, CLIP ViT-B/32 with random weights: the cost of
``clip-ViT-B-32``) and the sandbox as the sink, each in a child process of its own:

  (a) local    ``provision ingest`` with the local engine (threads): images/s of the job
  (b) ray      the same job with ``--engine ray`` on a local Ray instance with one CPU per core
               (one encoder actor, ``cpus_per_actor: 1``, forward-pass threads = cores, as (a))
  (c) export   ``--export`` on Ray: Parquet shards of the same embeddings
  (d) load     ``--from`` those shards into a new index on this host: documents/s, no model

The job is the 200 photos read ``--passes`` times (default 3: 600 files; each extra pass is a copy
of every photo with bytes appended after the JPEG's end, so another id and the same decoding cost):
Ray's start-up (worker processes, the actor's model load inside the job) is a fixed cost that 200
images alone would mostly measure, and while the actor loads its model Ray's decode tasks run
ahead, so a window that starts at the first indexed document credits Ray with decoding it did
before.

The floor compares the whole command, model load included for both: the local engine's load + job
against the Ray engine's job (its actor loads the model inside it; ``ray.init`` is not counted, as a
cluster is up before a job). The steady rates (from the first indexed document to the end) are
printed beside it; the Ray engine's is the encoder actor's rate with decoding on other CPUs, the
per-actor rate ``R`` of the projection.

Floors: ray_vs_local (whole command) >= 0.8, and (d) / the better steady rate of (a) and (b) >= 5.
The projection lines give the encoder actors and hosts that 10 M and 100 M images need in 24 hours
at the measured per-actor rate (a projection: it assumes the cluster's sink, the decode CPUs and the
storage keep up). The last line is ``ratios: ray_vs_local=<x> load_vs_embed=<y>``; exit 1 when a
floor is missed (not in --quick).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/ray/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.ingest.run import (
    Result,
    cores,
    corpus_arguments,
    parse_corpus_arguments,
    prepare_inputs,
    run_child,
)
from bench.ingest.stacks import create_index, write_stack

FLOOR_RAY_VS_LOCAL = 0.8
FLOOR_LOAD_VS_EMBED = 5.0
DAY_S = 86_400


def projection(rate: float, per_host: int) -> list[str]:
    """Encoder actors and hosts for 10 M and 100 M images in a day at ``rate`` images/s per actor."""
    lines = []
    for images in (10_000_000, 100_000_000):
        actors = math.ceil(images / (rate * DAY_S)) if rate > 0 else 0
        hosts = math.ceil(actors / per_host) if per_host else actors
        lines.append(
            f"  {images // 1_000_000} M images in 24 h: {actors} actors at {rate:.2f} images/s each "
            f"= {hosts} hosts of {per_host} actor(s)"
        )
    return lines


def repeated_corpus(photos: Path, passes: int) -> Path:
    """A folder that holds every photo ``passes`` times: ``pass-0`` links the originals, ``pass-k``
    copies them with ``k`` bytes appended after the end of the JPEG (decoders stop at its end marker:
    the same picture and decoding cost under another id). Kept beside ``photos`` for the next run."""
    if passes == 1:
        return photos
    folder = photos.with_name(f"{photos.name}-x{passes}")
    for k in range(passes):
        target = folder / f"pass-{k}"
        target.mkdir(parents=True, exist_ok=True)
        for photo in sorted(photos.glob("*.jpg")):
            copy = target / photo.name
            if copy.exists():
                continue
            if k == 0:
                os.link(photo, copy)
            else:
                partial = copy.with_suffix(".part")
                partial.write_bytes(photo.read_bytes() + b"\0" * k)
                partial.replace(copy)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray", description=__doc__.splitlines()[0])
    corpus_arguments(parser)
    parser.add_argument("--passes", type=int, default=3, help="times the job reads the photos (copies)")
    args = parse_corpus_arguments(parser, argv)
    photos, model = prepare_inputs(args)
    passes = 1 if args.quick else max(1, args.passes)
    photos = repeated_corpus(photos, passes)
    print(f"  the job reads them {passes} time(s): {photos}", file=sys.stderr)
    from elasticsearch import Elasticsearch

    from es_sandbox import SandboxConfig, SandboxServer

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away local instance per variant
    dims = 16 if args.model == "tiny" else 512
    n = cores()
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    print(f"{n} cores; logs in {work}", file=sys.stderr)
    with SandboxServer(SandboxConfig(port=0)) as sink:
        client = Elasticsearch(sink.url, request_timeout=60)
        stacks = {}
        for index in ("bench-local", "bench-ray", "bench-loaded"):
            create_index(client, index, dims)
            stacks[index] = write_stack(
                work / f"{index}.yaml",
                photos=photos,
                model=model,
                index=index,
                dims=dims,
                batch_size=args.batch_size,
                url=sink.url,
                encoder={"threads": n},
                ray={"actors": 1, "cpus_per_actor": 1},
            )
        variant = ["-m", "bench.ray.variants"]
        print("(a) local engine ...", file=sys.stderr)
        local = run_child(
            "local", [*variant, "local", "--stack", str(stacks["bench-local"])], None, work / "local.log"
        )
        print("(b) ray engine ...", file=sys.stderr)
        ray = run_child("ray", [*variant, "ray", "--stack", str(stacks["bench-ray"])], None, work / "ray.log")
        shards = work / "shards"
        print("(c) export on ray ...", file=sys.stderr)
        exported = run_child(
            "export",
            [*variant, "export", "--stack", str(stacks["bench-loaded"]), "--shards", str(shards)],
            None,
            work / "export.log",
        )
        print("(d) load from Parquet ...", file=sys.stderr)
        loaded = run_child(
            "load",
            [*variant, "load", "--stack", str(stacks["bench-loaded"]), "--shards", str(shards)],
            None,
            work / "load.log",
        )
        counts = {}
        for index in ("bench-local", "bench-ray", "bench-loaded"):
            client.indices.refresh(index=index)
            counts[index] = int(client.count(index=index)["count"])
        client.close()

    whole = {
        name: Result(
            name,
            r.images,
            r.model_load_s + r.seconds if name == "local" else r.seconds,
            r.model_load_s,
            r.peak_rss_mb,
            r.wall_s,
        )
        for name, r in (("local", local), ("ray", ray))
    }
    steady = {
        name: Result(
            name,
            int(r.extra["steady_images"]),
            r.extra["steady_seconds"],
            r.model_load_s,
            r.peak_rss_mb,
            r.wall_s,
        )
        for name, r in (("local", local), ("ray", ray))
    }
    print(f"{'variant':<26}{'images':>8}{'per s':>10}{'model load s':>14}{'peak RSS MB':>13}")
    rows = [
        ("local engine, job", local),
        ("local engine, steady", steady["local"]),
        ("local engine, command", whole["local"]),
        ("ray engine, job", ray),
        ("ray engine, steady", steady["ray"]),
        ("ray engine, command", whole["ray"]),
        ("export on ray, job", exported),
        ("load from Parquet", loaded),
    ]
    for name, result in rows:
        print(
            f"{name:<26}{result.images:>8}{result.images_per_s:>10.2f}{result.model_load_s:>14.1f}"
            f"{result.peak_rss_mb:>13.0f}"
        )
    print(f"documents in the sink: {counts}")
    rate = steady["ray"].images_per_s
    print(
        f"projection (1 CPU actor on {n} cores measured here, decoding beside it; not a measurement of "
        "a cluster):"
    )
    for line in projection(rate, 1):
        print(line)
    embed_rate = max(steady["local"].images_per_s, steady["ray"].images_per_s)
    ray_vs_local = whole["ray"].images_per_s / whole["local"].images_per_s
    load_vs_embed = loaded.images_per_s / embed_rate
    ok = ray_vs_local >= FLOOR_RAY_VS_LOCAL and load_vs_embed >= FLOOR_LOAD_VS_EMBED
    print(
        f"floors: ray_vs_local >= {FLOOR_RAY_VS_LOCAL} {'ok' if ray_vs_local >= FLOOR_RAY_VS_LOCAL else 'MISSED'}, "
        f"load_vs_embed >= {FLOOR_LOAD_VS_EMBED} {'ok' if load_vs_embed >= FLOOR_LOAD_VS_EMBED else 'MISSED'}"
        + (" (quick run: not meaningful)" if args.quick else "")
    )
    print(
        f"beside it: steady ray_vs_local={steady['ray'].images_per_s / steady['local'].images_per_s:.2f}, "
        f"jobs alone ray_vs_local={ray.images_per_s / local.images_per_s:.2f}"
    )
    print(f"ratios: ray_vs_local={ray_vs_local:.2f} load_vs_embed={load_vs_embed:.2f}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
