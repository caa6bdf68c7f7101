"""Generate the quickstart's sample images (samples/) and query image (queries/).

The images come from the same synthetic generator the tiny CLIP models were trained on
(``synthetic_shapes``): 7 shapes x 6 colours, two images each, 128 px JPEGs,
deterministic. The committed files were written by ``python examples/quickstart/make_samples.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from synthetic_shapes import classes, render, sample_rng, write_sample_set

HERE = Path(__file__).resolve().parent
SEED = 7
QUERY_SEED = 11  # a different drawing than any sample: the image query must find the class, not the file


def main() -> int:
    samples = write_sample_set(HERE / "samples", seed=SEED, per_class=2, size=128)
    queries = HERE / "queries"
    queries.mkdir(exist_ok=True)
    shape_classes = classes()
    for index, shape_class in enumerate(shape_classes):
        if (shape_class.colour, shape_class.shape) in {("red", "circle"), ("blue", "star")}:
            image = render(shape_class, sample_rng(QUERY_SEED, index, 0), size=160)
            image.save(queries / f"{shape_class.colour}-{shape_class.shape}.jpg", format="JPEG", quality=90)
    print(f"{len(samples)} samples in {HERE / 'samples'}, queries in {queries}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
