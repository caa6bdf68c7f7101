"""A synthetic, captioned image set of coloured shapes: the data behind the tiny CLIP fixtures.

No model or data set can be downloaded where this project is built and tested, so the tiny CLIP pair
in ``models/tiny-clip/`` is trained on images made here, and the quickstart, ingest tests and smoke
tests use images made here too. It is a package of its own, beside the product (which never
imports it): the training script, the tests and the quickstart's sample generator all draw from one
definition of what "a red circle" looks like and how it is said in English, German and Spanish.

Everything is deterministic: an image depends only on ``(seed, class, index, size)``, never on how
many images were made before it, so any subset can be regenerated on its own.
"""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

Language = Literal["en", "de", "es"]
LANGUAGES: tuple[Language, ...] = ("en", "de", "es")

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond", "heart")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "orange", "purple")

# Saturated, well separated base colours (RGB). Hue jitter stays well inside the gaps between them.
_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "green": (35, 165, 50),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 25),
    "orange": (245, 125, 20),
    "purple": (135, 40, 175),
}

# --- captions ------------------------------------------------------------------------------------
# Templates are aligned by index across languages (template i in German says what template i in
# English says): the training script distils the multilingual text student towards the English
# caption with the same index, the way the real multilingual CLIP student was trained on translations.
# A template is a function of the shape and colour words, so each language can inflect properly.

_EN_NOUN: dict[str, str] = {
    "circle": "circle",
    "square": "square",
    "triangle": "triangle",
    "star": "star",
    "cross": "cross",
    "diamond": "diamond",
    "heart": "heart",
}
_EN_ADJ: dict[str, tuple[str, ...]] = {
    "red": ("red",),
    "green": ("green",),
    "blue": ("blue",),
    "yellow": ("yellow",),
    "orange": ("orange",),
    "purple": ("purple", "violet"),
}

# German: noun and grammatical gender (m, f, n); adjective stems with a flag for indeclinable ones.
# Nouns whose dative singular differs from the nominative ("von einem roten Herzen").
_DE_DATIVE: dict[str, str] = {"Herz": "Herzen"}
_DE_NOUN: dict[str, tuple[str, str]] = {
    "circle": ("Kreis", "m"),
    "square": ("Quadrat", "n"),
    "triangle": ("Dreieck", "n"),
    "star": ("Stern", "m"),
    "cross": ("Kreuz", "n"),
    "diamond": ("Raute", "f"),
    "heart": ("Herz", "n"),
}
_DE_ADJ: dict[str, tuple[tuple[str, bool], ...]] = {
    "red": (("rot", True),),
    "green": (("grün", True),),
    "blue": (("blau", True),),
    "yellow": (("gelb", True),),
    "orange": (("orange", True), ("orangefarben", True)),
    "purple": (("lila", False), ("violett", True)),
}

# Spanish: noun and gender (m, f); adjectives as (masculine, feminine) forms.
_ES_NOUN: dict[str, tuple[str, str]] = {
    "circle": ("círculo", "m"),
    "square": ("cuadrado", "m"),
    "triangle": ("triángulo", "m"),
    "star": ("estrella", "f"),
    "cross": ("cruz", "f"),
    "diamond": ("rombo", "m"),
    "heart": ("corazón", "m"),
}
_ES_ADJ: dict[str, tuple[tuple[str, str], ...]] = {
    "red": (("rojo", "roja"),),
    "green": (("verde", "verde"),),
    "blue": (("azul", "azul"),),
    "yellow": (("amarillo", "amarilla"),),
    "orange": (("naranja", "naranja"), ("anaranjado", "anaranjada")),
    "purple": (("morado", "morada"), ("violeta", "violeta")),
}

# German adjective endings by case/declension and gender.
_DE_ENDINGS: dict[str, dict[str, str]] = {
    "strong": {"m": "er", "f": "e", "n": "es"},  # ein roter Kreis / eine rote Raute / ein rotes Herz
    "weak": {"m": "e", "f": "e", "n": "e"},  # der rote Kreis / die rote Raute / das rote Herz
    "dative": {"m": "en", "f": "en", "n": "en"},  # von einem roten Kreis / einer roten Raute
}
_DE_INDEF = {"m": "ein", "f": "eine", "n": "ein"}
_DE_DEF = {"m": "der", "f": "die", "n": "das"}
_DE_INDEF_DAT = {"m": "einem", "f": "einer", "n": "einem"}
_ES_INDEF = {"m": "un", "f": "una"}
_ES_DEF = {"m": "el", "f": "la"}

TEMPLATE_COUNT = 6
#: The template index the training script never trains on, so the quality test also covers
#: phrasings the models have not seen ("a drawing of a red circle", "un dibujo de ...").
HELD_OUT_TEMPLATE = 4


def _de_adjective(stem: str, declinable: bool, declension: str, gender: str) -> str:
    if not declinable:
        return stem
    ending = _DE_ENDINGS[declension][gender]
    # "orange" + "er" -> "oranger": a stem ending in e absorbs the ending's e.
    if stem.endswith("e") and ending.startswith("e"):
        ending = ending[1:]
    return stem + ending


def _en(shape: str, adj: str, template: int) -> str:
    noun = _EN_NOUN[shape]
    article = "an" if adj[0] in "aeiou" else "a"
    return (
        f"{article} {adj} {noun}",
        f"the {adj} {noun}",
        f"a photo of {article} {adj} {noun}",
        f"a picture of {article} {adj} {noun}",
        f"a drawing of {article} {adj} {noun}",
        f"{adj} {noun}",
    )[template]


def _de(shape: str, adj: tuple[str, bool], template: int) -> str:
    noun, g = _DE_NOUN[shape]
    stem, declinable = adj
    strong = _de_adjective(stem, declinable, "strong", g)
    weak = _de_adjective(stem, declinable, "weak", g)
    dative = _de_adjective(stem, declinable, "dative", g)
    noun_dat = _DE_DATIVE.get(noun, noun)
    return (
        f"{_DE_INDEF[g]} {strong} {noun}",
        f"{_DE_DEF[g]} {weak} {noun}",
        f"ein Foto von {_DE_INDEF_DAT[g]} {dative} {noun_dat}",
        f"ein Bild mit {_DE_INDEF_DAT[g]} {dative} {noun_dat}",
        f"eine Zeichnung von {_DE_INDEF_DAT[g]} {dative} {noun_dat}",
        f"{strong} {noun}",
    )[template]


def _es(shape: str, adj: tuple[str, str], template: int) -> str:
    noun, g = _ES_NOUN[shape]
    form = adj[0] if g == "m" else adj[1]
    return (
        f"{_ES_INDEF[g]} {noun} {form}",
        f"{_ES_DEF[g]} {noun} {form}",
        f"una foto de {_ES_INDEF[g]} {noun} {form}",
        f"una imagen de {_ES_INDEF[g]} {noun} {form}",
        f"un dibujo de {_ES_INDEF[g]} {noun} {form}",
        f"{noun} {form}",
    )[template]


def colour_variants(colour: str, language: Language) -> int:
    """How many ways ``language`` names ``colour`` (e.g. German "lila" and "violett")."""
    if language == "en":
        return len(_EN_ADJ[colour])
    if language == "de":
        return len(_DE_ADJ[colour])
    return len(_ES_ADJ[colour])


def caption(shape: str, colour: str, language: Language, template: int = 0, variant: int = 0) -> str:
    """One caption: template ``template`` (0..TEMPLATE_COUNT-1) with colour word number ``variant``."""
    if shape not in SHAPES or colour not in COLOURS:
        raise ValueError(f"unknown class {colour} {shape}")
    if not 0 <= template < TEMPLATE_COUNT:
        raise ValueError(f"template must be in 0..{TEMPLATE_COUNT - 1}, got {template}")
    if language == "en":
        return _en(shape, _EN_ADJ[colour][variant], template)
    if language == "de":
        return _de(shape, _DE_ADJ[colour][variant], template)
    if language == "es":
        return _es(shape, _ES_ADJ[colour][variant], template)
    raise ValueError(f"unknown language {language!r}")


def captions(
    shape: str, colour: str, language: Language, templates: Sequence[int] | None = None
) -> list[str]:
    """Every caption of a class in a language: each template with each colour word."""
    chosen = range(TEMPLATE_COUNT) if templates is None else templates
    return [
        caption(shape, colour, language, t, v)
        for t in chosen
        for v in range(colour_variants(colour, language))
    ]


# --- images --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeClass:
    """One (shape, colour) class: the unit of relevance for retrieval ("a red circle")."""

    shape: str
    colour: str

    @property
    def name(self) -> str:
        """File-name friendly label, e.g. ``red-circle``."""
        return f"{self.colour}-{self.shape}"

    def caption(self, language: Language = "en", template: int = 0, variant: int = 0) -> str:
        return caption(self.shape, self.colour, language, template, variant)


def classes() -> list[ShapeClass]:
    """All classes in a fixed order (colour-major), the order class indices refer to."""
    return [ShapeClass(shape, colour) for colour in COLOURS for shape in SHAPES]


@dataclass(frozen=True)
class Sample:
    """A rendered image with its class and the index it was generated from."""

    shape_class: ShapeClass
    index: int
    image: Image.Image

    @property
    def file_name(self) -> str:
        return f"{self.shape_class.name}-{self.index:03d}"


def _jitter_colour(rgb: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    h = (h + rng.uniform(-0.015, 0.015)) % 1.0
    s = min(1.0, s * rng.uniform(0.8, 1.05))
    v = min(1.0, v * rng.uniform(0.8, 1.05))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _neutral(rng: np.random.Generator) -> np.ndarray:
    """A background colour: grey or a faint tint, light or dark, never a saturated hue."""
    h = rng.uniform(0.0, 1.0)
    s = rng.uniform(0.0, 0.18)
    v = rng.choice([rng.uniform(0.72, 1.0), rng.uniform(0.08, 0.4)], p=[0.7, 0.3])
    return np.array(colorsys.hsv_to_rgb(h, s, float(v)), dtype=np.float32) * 255.0


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["plain", "gradient", "gradient"])
    first = _neutral(rng)
    if kind == "plain":
        bg = np.broadcast_to(first, (size, size, 3)).copy()
    else:
        second = _neutral(rng)
        angle = rng.uniform(0.0, 2.0 * math.pi)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
        t = (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        bg = first[None, None, :] * (1.0 - t[..., None]) + second[None, None, :] * t[..., None]
    if rng.random() < 0.5:
        bg = bg + rng.normal(0.0, rng.uniform(2.0, 10.0), size=bg.shape)
    return bg.astype(np.float32)


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=np.float64)
    return points @ rot.T


def _outline(shape: str, rng: np.random.Generator) -> np.ndarray:
    """The shape as a polygon in unit coordinates (about [-1, 1]), y pointing down, rotated a little.

    Rotation is kept small where a large one would turn one class into another (a square turned
    45 degrees is a diamond, a cross turned 45 degrees is an x).
    """
    if shape == "circle":
        t = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if shape == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * 0.85
        return _rotate(pts, rng.uniform(-12, 12))
    if shape == "triangle":
        t = np.array([-90.0, 30.0, 150.0]) * math.pi / 180.0
        pts = np.stack([np.cos(t), np.sin(t)], axis=1)
        pts[:, 1] += 0.2
        return _rotate(pts, rng.uniform(-15, 15))
    if shape == "star":
        inner = rng.uniform(0.38, 0.5)
        angles = np.arange(10) * math.pi / 5.0 - math.pi / 2.0
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        pts = np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)
        return _rotate(pts, rng.uniform(-36, 36))
    if shape == "cross":
        w = rng.uniform(0.28, 0.4)
        pts = np.array(
            [
                [-w, -1],
                [w, -1],
                [w, -w],
                [1, -w],
                [1, w],
                [w, w],
                [w, 1],
                [-w, 1],
                [-w, w],
                [-1, w],
                [-1, -w],
                [-w, -w],
            ],
            dtype=np.float64,
        )
        return _rotate(pts, rng.uniform(-10, 10))
    if shape == "diamond":
        width = rng.uniform(0.55, 0.75)
        pts = np.array([[0, -1], [width, 0], [0, 1], [-width, 0]], dtype=np.float64)
        return _rotate(pts, rng.uniform(-10, 10))
    if shape == "heart":
        t = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = np.stack([x, y + 2.5], axis=1) / 16.5
        return _rotate(pts, rng.uniform(-15, 15))
    raise ValueError(f"unknown shape {shape!r}")


def render(shape_class: ShapeClass, rng: np.random.Generator, size: int = 128) -> Image.Image:
    """Draw one RGB image of ``shape_class``: random size, position, colour shade and background.

    The shape is drawn at twice the size and scaled down so its edges are anti-aliased like a photo's,
    not hard pixel steps that a tiny model could latch on to.
    """
    background = _background(size, rng)
    scale = 2
    big = size * scale
    radius = rng.uniform(0.2, 0.4) * size
    margin = radius * 1.05
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    points = _outline(shape_class.shape, rng) * radius
    points = (points + np.array([cx, cy])) * scale
    mask_big = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask_big).polygon([(float(x), float(y)) for x, y in points], fill=255)
    mask = np.asarray(mask_big.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    colour = np.array(_jitter_colour(_RGB[shape_class.colour], rng), dtype=np.float32)
    shaded = colour[None, None, :] * (1.0 + rng.normal(0.0, 0.03, size=(size, size, 1)))
    out = background * (1.0 - mask[..., None]) + shaded * mask[..., None]
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def sample_rng(seed: int, class_index: int, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image's."""
    return np.random.default_rng([seed, class_index, index])


def generate(
    seed: int,
    per_class: int,
    size: int = 128,
    shape_classes: Sequence[ShapeClass] | None = None,
    start: int = 0,
) -> Iterator[Sample]:
    """``per_class`` images of each class (indices ``start``..), class by class, reproducibly."""
    every = classes()
    chosen = every if shape_classes is None else list(shape_classes)
    for shape_class in chosen:
        class_index = every.index(shape_class)
        for index in range(start, start + per_class):
            image = render(shape_class, sample_rng(seed, class_index, index), size)
            yield Sample(shape_class, index, image)


def jpeg_round_trip(image: Image.Image, quality: int = 90) -> Image.Image:
    """The image as a JPEG decoder would return it, to train and test on what ingest will read."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def write_sample_set(
    directory: Path,
    *,
    seed: int = 7,
    per_class: int = 2,
    size: int = 128,
    shape_classes: Sequence[ShapeClass] | None = None,
    image_format: Literal["jpeg", "png"] = "jpeg",
) -> list[Path]:
    """Write a sample set (e.g. for the quickstart or ingest tests) as ``<colour>-<shape>-<i>.jpg``.

    Returns the written paths in generation order. ``size`` should stay at or above 64 pixels, the
    tiny image model's input size, so no detail is lost before the model sees the image.
    """
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".jpg" if image_format == "jpeg" else ".png"
    written: list[Path] = []
    for sample in generate(seed, per_class, size, shape_classes):
        path = directory / f"{sample.file_name}{suffix}"
        if image_format == "jpeg":
            sample.image.save(path, format="JPEG", quality=90)
        else:
            sample.image.save(path, format="PNG")
        written.append(path)
    return written
