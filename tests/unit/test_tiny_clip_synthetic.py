"""The synthetic coloured-shapes set behind the tiny CLIP fixtures, the quickstart and ingest tests.

Training, the quality test and the quickstart's smoke tests all regenerate images from seeds, so the
generator must be reproducible image by image; and the captions are what users type in three
languages, so their grammar is pinned here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic_shapes as synthetic


def test_images_are_reproducible_one_by_one() -> None:
    """An image depends on (seed, class, index) only, not on what was generated before it."""
    red_star = synthetic.ShapeClass("star", "red")
    everything = {(s.shape_class, s.index): s.image for s in synthetic.generate(5, 3, size=64)}
    alone = next(iter(synthetic.generate(5, 1, size=64, shape_classes=[red_star], start=2)))
    assert np.array_equal(np.asarray(alone.image), np.asarray(everything[(red_star, 2)]))
    other_seed = next(iter(synthetic.generate(6, 1, size=64, shape_classes=[red_star], start=2)))
    assert not np.array_equal(np.asarray(other_seed.image), np.asarray(alone.image))


def test_every_class_is_rendered_with_its_colour() -> None:
    """The shape's pixels carry the class colour: the most saturated pixels have the right hue."""
    hues = {"red": 0.0, "orange": 28 / 360, "yellow": 50 / 360, "green": 127 / 360, "blue": 227 / 360}
    for sample in synthetic.generate(11, 1, size=96):
        assert sample.image.size == (96, 96)
        assert sample.image.mode == "RGB"
        hsv = np.asarray(sample.image.convert("HSV"), dtype=np.float64) / 255.0
        saturated = hsv[..., 1] > 0.6
        assert saturated.sum() > 50, sample.file_name
        if sample.shape_class.colour in hues:
            median = float(np.median(hsv[..., 0][saturated]))
            expected = hues[sample.shape_class.colour]
            distance = min(abs(median - expected), 1 - abs(median - expected))
            assert distance < 0.05, (sample.file_name, median)


def test_class_list_is_stable() -> None:
    """Class indices are stored in metrics and used by tests: their order must not drift."""
    classes = synthetic.classes()
    assert len(classes) == len(synthetic.SHAPES) * len(synthetic.COLOURS) == 42
    assert classes[0] == synthetic.ShapeClass("circle", "red")
    assert classes[0].name == "red-circle"


@pytest.mark.parametrize(
    ("shape", "colour", "language", "expected"),
    [
        ("circle", "red", "en", "a red circle"),
        ("star", "orange", "en", "an orange star"),
        ("circle", "red", "de", "ein roter Kreis"),
        ("diamond", "red", "de", "eine rote Raute"),
        ("square", "blue", "de", "ein blaues Quadrat"),
        ("circle", "red", "es", "un círculo rojo"),
        ("star", "red", "es", "una estrella roja"),
        ("cross", "yellow", "es", "una cruz amarilla"),
        ("heart", "green", "es", "un corazón verde"),
    ],
)
def test_first_template_is_the_plain_phrase(
    shape: str, colour: str, language: synthetic.Language, expected: str
) -> None:
    assert synthetic.caption(shape, colour, language) == expected


def test_german_and_spanish_inflection_across_templates() -> None:
    """German adjectives follow case and gender; Spanish adjectives agree with the noun's gender."""
    assert synthetic.captions("circle", "red", "de") == [
        "ein roter Kreis",
        "der rote Kreis",
        "ein Foto von einem roten Kreis",
        "ein Bild mit einem roten Kreis",
        "eine Zeichnung von einem roten Kreis",
        "roter Kreis",
    ]
    assert "ein Foto von einer grünen Raute" in synthetic.captions("diamond", "green", "de")
    assert "ein Bild mit einem gelben Herzen" in synthetic.captions("heart", "yellow", "de")
    assert "das rote Herz" in synthetic.captions("heart", "red", "de")
    assert synthetic.captions("star", "orange", "de")[:2] == ["ein oranger Stern", "ein orangefarbener Stern"]
    assert "ein lila Quadrat" in synthetic.captions("square", "purple", "de")
    assert "ein violettes Quadrat" in synthetic.captions("square", "purple", "de")
    assert "la estrella morada" in synthetic.captions("star", "purple", "es")
    assert "una foto de una estrella anaranjada" in synthetic.captions("star", "orange", "es")
    assert "el cuadrado violeta" in synthetic.captions("square", "purple", "es")


def test_templates_are_parallel_across_languages() -> None:
    """Template i means the same in every language: distillation pairs captions by index."""
    for language in synthetic.LANGUAGES:
        assert len(synthetic.captions("circle", "red", language)) == synthetic.TEMPLATE_COUNT
    assert (
        synthetic.caption("circle", "red", "en", synthetic.HELD_OUT_TEMPLATE) == "a drawing of a red circle"
    )
    assert (
        synthetic.caption("circle", "red", "es", synthetic.HELD_OUT_TEMPLATE)
        == "un dibujo de un círculo rojo"
    )


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown class"):
        synthetic.caption("hexagon", "red", "en")
    with pytest.raises(ValueError, match="template"):
        synthetic.caption("circle", "red", "en", template=synthetic.TEMPLATE_COUNT)


def test_write_sample_set(tmp_path: Path) -> None:
    """A quickstart-style sample set: named by class, readable JPEGs of the requested size."""
    chosen = [synthetic.ShapeClass("circle", "red"), synthetic.ShapeClass("star", "blue")]
    paths = synthetic.write_sample_set(
        tmp_path / "photos", seed=3, per_class=2, size=96, shape_classes=chosen
    )
    assert [p.name for p in paths] == [
        "red-circle-000.jpg",
        "red-circle-001.jpg",
        "blue-star-000.jpg",
        "blue-star-001.jpg",
    ]
    with Image.open(paths[0]) as image:
        assert image.format == "JPEG"
        assert image.size == (96, 96)
    again = synthetic.write_sample_set(tmp_path / "again", seed=3, per_class=2, size=96, shape_classes=chosen)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    png = synthetic.write_sample_set(
        tmp_path / "png", per_class=1, shape_classes=chosen[:1], image_format="png"
    )
    assert png[0].suffix == ".png"
