# ruff: noqa: PTH119, PTH122, PTH123, PTH207 - os.path, glob and open() as the original script has them
"""(a) The seed's ingest script, re-implemented faithfully: the baseline of ``bench/ingest``.

This is ``image_embeddings/create-image-embeddings.py`` from the Elastic blog post "How to implement
image similarity search in Elasticsearch" (radoondas/flask-elastic-image-search), step by step:
load the model, glob the images, then for each file ``Image.open`` it and ``model.encode(image)``
it alone (the processor decodes the full-resolution image and resizes it), appending every document
to a list; only when all are embedded, delete and recreate the index and send the list with
``parallel_bulk`` (4 threads, chunks of 100).

Changes, none of which touches the cost: the model is loaded from a path (no hub here) instead of
the hub name ``clip-ViT-B-32``; paths, host and credentials come from the command line; the mapping
file is passed in; ``ignore=[400, 404]``, which this client version no longer takes as an argument,
becomes ``options(ignore_status=...)``; the GPS extraction (off by default in the original) is left out.
The original's ``es.options(request_timeout=...)`` whose result is discarded is kept as it is. Its
progress messages go to stderr, and one JSON line with its timings to stdout, for the benchmark.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk
from PIL import Image
from sentence_transformers import SentenceTransformer
from tqdm import tqdm

from bench.memory import peak_rss_mb

DEST_INDEX = "my-image-embeddings"
CHUNK_SIZE = 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es_host", required=True)
    parser.add_argument("--model", required=True, help="the model directory (the original: 'clip-ViT-B-32')")
    parser.add_argument(
        "--images", required=True, help="folder of images (the original: ../app/static/images/)"
    )
    parser.add_argument("--mappings", required=True, help="image-embeddings-mappings.json")
    parser.add_argument("--index", default=DEST_INDEX)
    parser.add_argument("--chunk_size", type=int, default=CHUNK_SIZE)
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--delete_existing", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    prefix = args.images.rstrip("/") + "/"
    path_to_images = prefix + "**/*.jp*g"

    lst = []

    start_time = time.perf_counter()
    img_model = SentenceTransformer(args.model)
    duration = time.perf_counter() - start_time
    print(f"Duration load model = {duration}", file=sys.stderr)
    load_seconds = duration

    filenames = glob.glob(path_to_images, recursive=True)
    start_time = time.perf_counter()
    for filename in tqdm(filenames, desc="Processing files", total=len(filenames)):
        image = Image.open(filename)

        doc = {}
        embedding = image_embedding(image, img_model)
        doc["image_id"] = create_image_id(filename)
        doc["image_name"] = os.path.basename(filename)
        doc["image_embedding"] = embedding.tolist()
        doc["relative_path"] = os.path.relpath(filename).split(os.path.relpath(prefix) + "/")[-1]
        lst.append(doc)

    duration = time.perf_counter() - start_time
    print(f"Duration creating image embeddings = {duration}", file=sys.stderr)

    es = Elasticsearch(hosts=[args.es_host])
    es.options(request_timeout=args.timeout)

    index = args.index
    with open(args.mappings) as config_file:
        config = json.loads(config_file.read())
        if args.delete_existing and es.indices.exists(index=index):
            print(f"Deleting existing {index}", file=sys.stderr)
            es.options(ignore_status=[400, 404]).indices.delete(index=index)

        print(f"Creating index {index}", file=sys.stderr)
        es.options(ignore_status=[400, 404], request_timeout=args.timeout).indices.create(
            index=index, mappings=config["mappings"], settings=config["settings"]
        )

    count = 0
    for success, info in parallel_bulk(
        client=es, actions=lst, thread_count=4, chunk_size=args.chunk_size, timeout="120s", index=index
    ):
        if success:
            count += 1
            if count % args.chunk_size == 0:
                print(f"Indexed {count} documents", file=sys.stderr, flush=True)
        else:
            print("Doc failed", info, file=sys.stderr)

    print(f"Indexed {count} documents", file=sys.stderr, flush=True)
    duration = time.perf_counter() - start_time
    print(f"Total duration = {duration}", file=sys.stderr)
    # For the benchmark: what was done, in how long (model loading excluded, as for the others).
    print(
        json.dumps(
            {"images": count, "seconds": duration, "model_load_s": load_seconds, "peak_rss_mb": peak_rss_mb()}
        )
    )


def image_embedding(image: Image.Image, model: Any) -> Any:
    return model.encode(image)


def create_image_id(filename: str) -> str:
    return os.path.splitext(os.path.basename(filename))[0]


if __name__ == "__main__":
    main()
