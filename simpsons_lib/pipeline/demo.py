"""The embedded demo dataset: procedurally drawn "characters" in the exact Kaggle layout.

A drawn stand-in for the real images, which cannot be shipped: scores on it say nothing about the show.
Each of the 42 real class names gets its own consistent look (skin, head shape, hair style and
colour, shirt, trousers or dress, accessory, eyes), drawn with varying pose, scale, position, rotation,
muted background scenery, a second smaller character behind it in some frames, a small occluder,
blur, noise and JPEG quality, on non-square canvases. The looks are spread apart over the trait pools
(``class_looks``): classes share single traits, but every pair differs in several, so a model can learn
each character from its look. Only the look depends on the class: canvas size, scenery, noise and JPEG
quality are drawn the same way for every class (``leakage.metadata_cue_check`` tests the file side of
this). Class counts follow the real ones at ``scale`` (at least 3 each).

Like the show's frames, which come in runs of near-identical images, some images are near-copies of an
earlier image of the same class (``FRAME_COPY_SHARE``): the same drawing, slightly cropped and shifted,
resized back to its size and re-encoded at a JPEG quality of its own (drawn like every image's); a few
test images are such copies of a training image (``TEST_COPY_SHARE``). Which images are copies is drawn
for every class alike, from a random stream of its own: the other images are the same as without copies.

It lives in the pipeline wing, which shapes no weights: an edit here changes no run's training key. The
demo profile's runs still retrain when the data it draws changes, through the data's own fingerprint.

    python -m simpsons_lib.pipeline.demo --out data/demo --scale 0.05
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..config import paths
from ..data import parallel
from ..data.layout import BOXES_FILE, COPIES_FILE, DEMO_MARKER

# The 42 classes of journey-springfield and their training-image counts (../shared/simpsons-dataset.md).
KAGGLE_CLASS_COUNTS: dict[str, int] = {
    "homer_simpson": 2246, "ned_flanders": 1454, "moe_szyslak": 1452, "lisa_simpson": 1354,
    "bart_simpson": 1342, "marge_simpson": 1291, "krusty_the_clown": 1206, "principal_skinner": 1194,
    "charles_montgomery_burns": 1193, "milhouse_van_houten": 1079, "chief_wiggum": 986,
    "abraham_grampa_simpson": 913, "sideshow_bob": 877, "apu_nahasapeemapetilon": 623,
    "kent_brockman": 498, "comic_book_guy": 469, "edna_krabappel": 457, "nelson_muntz": 358,
    "lenny_leonard": 310, "mayor_quimby": 246, "waylon_smithers": 181, "maggie_simpson": 128,
    "groundskeeper_willie": 121, "barney_gumble": 106, "selma_bouvier": 103, "carl_carlson": 98,
    "ralph_wiggum": 89, "patty_bouvier": 72, "martin_prince": 71, "professor_john_frink": 65,
    "snake_jailbird": 55, "cletus_spuckler": 47, "rainier_wolfcastle": 45, "agnes_skinner": 42,
    "sideshow_mel": 40, "otto_mann": 32, "fat_tony": 27, "gil": 27, "miss_hoover": 17,
    "disco_stu": 8, "troy_mcclure": 8, "lionel_hutz": 3,
}
KAGGLE_TEST_SIZE = 991
MIN_PER_CLASS = 3
FRAME_COPY_SHARE = 0.12  # training images that are near-copies of an earlier frame of their class
TEST_COPY_SHARE = 0.1  # test images that are near-copies of a training image
MAX_COPY_SHIFT = 0.02  # a copy's crop: up to this share of each side, on each edge
DISTRACTOR_SHARE = 0.15  # frames with a second, smaller character (of any class) behind

SKINS = [(255, 217, 15), (250, 235, 215), (160, 110, 60)]
SKIN_SHARES = [0.7, 0.15, 0.15]  # most characters are yellow
HAIR = [(30, 30, 30), (40, 60, 200), (120, 70, 20), (240, 240, 240), (220, 120, 20), (150, 30, 30),
        (90, 90, 90)]
CLOTHES = [(230, 60, 40), (40, 120, 220), (60, 170, 70), (250, 250, 250), (120, 60, 160),
           (250, 150, 30), (40, 40, 40), (200, 200, 120)]
TROUSERS = [(40, 70, 160), (110, 80, 50), (35, 35, 35), (235, 235, 235)]  # a dress has none
HEADS = ["round", "tall", "wide"]
HAIRSTYLES = ["bald", "spikes", "beehive", "flat", "tufts", "curls"]
ACCESSORIES = ["none", "glasses", "hat", "beard", "tie", "collar"]

# How much each trait counts when looks are spread apart (clothes cover the most pixels).
TRAIT_WEIGHTS = {"skin": 1.0, "head": 1.0, "hairstyle": 1.0, "hair": 1.0, "clothes": 2.0, "trousers": 1.0,
                 "accessory": 1.0, "big_eyes": 0.5}


@dataclass(frozen=True)
class Look:
    skin: tuple
    head: str
    hairstyle: str
    hair: tuple
    clothes: tuple
    dress: bool
    accessory: str
    big_eyes: bool
    trousers: tuple | None = None  # None: a dress


def _trait_table() -> np.ndarray:
    """Every combination of traits as integer codes, one column per ``TRAIT_WEIGHTS`` key.

    A bald character has no hair colour (code ``len(HAIR)``, unless a beard shows it), and a dress
    no trousers (code ``len(TROUSERS)``), so that looks differing only in an invisible trait count as equal.
    """
    grids = np.meshgrid(np.arange(len(SKINS)), np.arange(len(HEADS)), np.arange(len(HAIRSTYLES)),
                        np.arange(len(HAIR)), np.arange(len(CLOTHES)), np.arange(len(TROUSERS) + 1),
                        np.arange(len(ACCESSORIES)), np.arange(2), indexing="ij")
    table = np.stack([g.ravel() for g in grids], axis=1)
    hidden_hair = (table[:, 2] == HAIRSTYLES.index("bald")) & (table[:, 6] != ACCESSORIES.index("beard"))
    table = table[~hidden_hair | (table[:, 3] == 0)]  # one code per visible look
    table[(table[:, 2] == HAIRSTYLES.index("bald")) & (table[:, 6] != ACCESSORIES.index("beard")), 3] = len(HAIR)
    return table


def class_looks(classes: list[str], seed: int = 0) -> dict[str, Look]:
    """One look per class, spread as far apart as the trait pools allow.

    The skin is drawn first (yellow for most, as in the show: ``SKIN_SHARES``); then farthest-point
    selection over every trait combination with that skin: each class takes a look whose weighted count
    of differing traits (``TRAIT_WEIGHTS``) to the looks already chosen is as large as possible (ties
    broken by the seed). Classes still share single traits (many are yellow, many wear white), but no
    two differ in one or two traits only, so every class can be told apart by its look alone.
    """
    rng = np.random.default_rng([seed, 4242])
    table = _trait_table().astype(np.int8)
    table = table[rng.permutation(len(table))]  # seeded tie-breaking: argmax takes the first maximum
    weights = list(TRAIT_WEIGHTS.values())
    columns = [np.ascontiguousarray(column) for column in table.T]
    skins = rng.choice(len(SKINS), size=len(classes), p=SKIN_SHARES)
    nearest = np.full(len(table), np.inf)
    looks: dict[str, Look] = {}
    for name, skin_code in zip(classes, skins):
        code = table[int(np.argmax(np.where(columns[0] == skin_code, nearest, -1)))]
        skin, head, style, hair, clothes, trousers, accessory, big_eyes = (int(v) for v in code)
        looks[name] = Look(
            skin=SKINS[skin], head=HEADS[head], hairstyle=HAIRSTYLES[style], hair=HAIR[hair % len(HAIR)],
            clothes=CLOTHES[clothes], dress=trousers == len(TROUSERS), accessory=ACCESSORIES[accessory],
            big_eyes=bool(big_eyes), trousers=None if trousers == len(TROUSERS) else TROUSERS[trousers],
        )
        nearest = np.minimum(nearest, sum(w * (column != c) for w, column, c in zip(weights, columns, code)))
    return looks


def look_distance(a: Look, b: Look) -> float:
    """The weighted number of visible traits in which two looks differ (``TRAIT_WEIGHTS``)."""
    def visible(look: Look) -> tuple:
        hair = look.hair if look.hairstyle != "bald" or look.accessory == "beard" else None
        return (look.skin, look.head, look.hairstyle, hair, look.clothes, look.trousers, look.accessory,
                look.big_eyes)
    return float(sum(w for w, x, y in zip(TRAIT_WEIGHTS.values(), visible(a), visible(b)) if x != y))


def _jitter(color: tuple, rng: np.random.Generator, amount: int = 18) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def _muted(rng: np.random.Generator, base: tuple) -> tuple:
    """A random colour pulled halfway to ``base``: scenery, never as loud as a character's clothes."""
    return tuple(int((int(v) + b) // 2) for v, b in zip(rng.integers(0, 256, 3), base))


def draw_character(look: Look, rng: np.random.Generator) -> Image.Image:
    """The character on a transparent 120x200 layer, with per-image colour and shape variation."""
    w, h = 120, 200
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    ink = (20, 20, 20, 255)
    skin, hair, clothes = (_jitter(c, rng) + (255,) for c in (look.skin, look.hair, look.clothes))
    hw, hh = {"round": (60, 62), "tall": (50, 76), "wide": (72, 56)}[look.head]
    hw += int(rng.integers(-4, 5))
    hh += int(rng.integers(-4, 5))
    cx, top = w // 2, 28
    # body
    if look.dress:
        d.polygon([(cx, top + hh - 4), (cx - 42, h - 4), (cx + 42, h - 4)], fill=clothes, outline=ink)
    else:
        waist = top + hh + (h - top - hh) // 2
        trousers = _jitter(look.trousers or (40, 70, 160), rng) + (255,)
        d.rectangle([cx - 30, waist, cx + 30, h - 4], fill=trousers, outline=ink, width=2)
        d.line([cx, waist + 6, cx, h - 4], fill=ink, width=2)
        d.rectangle([cx - 32, top + hh - 2, cx + 32, waist], fill=clothes, outline=ink, width=2)
    # head
    box = [cx - hw // 2, top, cx + hw // 2, top + hh]
    d.ellipse(box, fill=skin, outline=ink, width=2)
    # hair
    if look.hairstyle == "spikes":
        for k in range(7):
            x = box[0] + 4 + k * (hw - 8) / 6
            d.polygon([(x - 6, top + 8), (x, top - 14 - rng.integers(0, 6)), (x + 6, top + 8)], fill=hair)
    elif look.hairstyle == "beehive":
        d.ellipse([cx - hw // 2 + 2, top - 28, cx + hw // 2 - 2, top + 16], fill=hair, outline=ink)
    elif look.hairstyle == "flat":
        d.rectangle([box[0] + 2, top - 6, box[2] - 2, top + 10], fill=hair)
    elif look.hairstyle == "tufts":
        d.ellipse([box[0] - 8, top + hh // 4, box[0] + 12, top + hh // 2 + 6], fill=hair)
        d.ellipse([box[2] - 12, top + hh // 4, box[2] + 8, top + hh // 2 + 6], fill=hair)
    elif look.hairstyle == "curls":
        for k in range(6):
            x = box[0] + k * hw / 5
            d.ellipse([x - 8, top - 8, x + 8, top + 8], fill=hair)
    # eyes
    r = 11 if look.big_eyes else 7
    ey = top + hh // 3 + int(rng.integers(-2, 3))
    for ex in (cx - 11, cx + 11):
        d.ellipse([ex - r, ey - r, ex + r, ey + r], fill=(255, 255, 255, 255), outline=ink, width=2)
        px = ex + int(rng.integers(-3, 4))
        d.ellipse([px - 2, ey - 2, px + 2, ey + 2], fill=ink)
    # mouth
    my = top + int(hh * 0.75)
    d.arc([cx - 14, my - 8, cx + 14, my + 8], 10, 170, fill=ink, width=2)
    # accessory
    if look.accessory == "glasses":
        d.line([cx - 11 - r, ey, cx + 11 + r, ey], fill=ink, width=3)
        for ex in (cx - 11, cx + 11):
            d.ellipse([ex - r - 2, ey - r - 2, ex + r + 2, ey + r + 2], outline=ink, width=3)
    elif look.accessory == "hat":
        d.rectangle([box[0] - 6, top - 4, box[2] + 6, top + 4], fill=(30, 30, 30, 255))
        d.rectangle([cx - hw // 3, top - 30, cx + hw // 3, top - 2], fill=(30, 30, 30, 255))
    elif look.accessory == "beard":
        d.chord([cx - hw // 2 + 4, top + hh // 2, cx + hw // 2 - 4, top + hh + 10], 0, 180, fill=hair)
    elif look.accessory == "tie":
        d.polygon([(cx - 5, top + hh), (cx + 5, top + hh), (cx + 7, top + hh + 50), (cx, top + hh + 58),
                   (cx - 7, top + hh + 50)], fill=(200, 20, 20, 255), outline=ink)
    elif look.accessory == "collar":
        d.polygon([(cx - 30, top + hh - 2), (cx, top + hh + 16), (cx + 30, top + hh - 2)],
                  fill=(250, 250, 250, 255), outline=ink)
    return layer


def _background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Scenery: a plain colour with a few muted shapes (the same for every class)."""
    base = tuple(int(v) for v in rng.integers(60, 230, 3))
    img = Image.new("RGB", size, base)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 10))):
        color = _muted(rng, base)
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        x1, y1 = x0 + int(rng.integers(10, size[0] // 2)), y0 + int(rng.integers(10, size[1] // 2))
        kind = rng.integers(3)
        if kind == 0:
            d.rectangle([x0, y0, x1, y1], fill=color)
        elif kind == 1:
            d.ellipse([x0, y0, x1, y1], fill=color)
        else:
            d.line([x0, y0, x1, y1], fill=color, width=int(rng.integers(2, 6)))
    return img


def _place(canvas: Image.Image, layer: Image.Image, height: float, rng: np.random.Generator,
           max_angle: float = 10.0, inside: float = 0.85) -> tuple[int, int, int, int] | None:
    """Paste ``layer`` scaled to ``height``, maybe mirrored, rotated, with at least ``inside`` of its
    width in the frame (and its head: only the feet may leave the bottom edge). Returns the box of its
    drawn pixels inside the canvas ``(x0, y0, x1, y1)`` (None if none is inside)."""
    scale = height / layer.height
    layer = layer.resize((max(4, int(layer.width * scale)), max(4, int(layer.height * scale))),
                         Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    layer = layer.rotate(float(rng.uniform(-max_angle, max_angle)), resample=Image.Resampling.BILINEAR, expand=True)
    out_w = int(layer.width * (1 - inside))
    x = int(rng.integers(-out_w, max(-out_w + 1, canvas.width - layer.width + out_w)))
    y = int(rng.integers(-layer.height // 12, max(1, canvas.height - layer.height * 4 // 5)))
    canvas.paste(layer, (x, y), layer)
    drawn = layer.getchannel("A").getbbox()
    if drawn is None:
        return None
    box = (max(0, x + drawn[0]), max(0, y + drawn[1]), min(canvas.width, x + drawn[2]), min(canvas.height, y + drawn[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def render_image(look: Look, rng: np.random.Generator, distractor: Look | None = None,
                 boxes: list | None = None) -> Image.Image:
    """One frame: muted scenery, maybe a smaller second character behind, the character, maybe a small
    occluder, blur and noise. Nothing but the character's look depends on its class. ``boxes``, when
    given, receives the character's box ``(x0, y0, x1, y1)`` in the frame (no random draw depends on it)."""
    size = (int(rng.integers(200, 361)), int(rng.integers(180, 301)))
    img = _background(size, rng)
    if distractor is not None:
        _place(img, draw_character(distractor, rng), size[1] * rng.uniform(0.3, 0.4), rng)
    box = _place(img, draw_character(look, rng), size[1] * rng.uniform(0.75, 1.05), rng)
    if boxes is not None:
        boxes.append(box)
    if rng.random() < 0.15:  # occluder: a small muted block, rarely hiding more than a trait
        d = ImageDraw.Draw(img)
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        d.rectangle([x0, y0, x0 + int(rng.integers(15, size[0] // 6)), y0 + int(rng.integers(15, size[1] // 6))],
                    fill=_muted(rng, (128, 128, 128)))
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    arr = np.asarray(img, dtype=np.int16)
    sigma = float(rng.uniform(0, 6))
    if sigma > 1:
        arr = arr + rng.normal(0, sigma, arr.shape).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def scaled_counts(scale: float) -> dict[str, int]:
    return {c: max(MIN_PER_CLASS, round(n * scale)) for c, n in KAGGLE_CLASS_COUNTS.items()}


GENERATOR_VERSION = 2  # in DEMO_DATA.txt: data drawn by an older generator is drawn again (2: frame copies)


def _render_job(job: tuple) -> tuple | None:
    """Draw and save one image; returns the character's box and the image size (None: no box). A copy
    (``copy_of``: the index of the frame it copies) draws that frame again, then crops and re-encodes it."""
    out_path, seed, name, idx, distractor_name, looks, copy_of = job
    rng = np.random.default_rng([seed, _stable(name), idx if copy_of is None else copy_of])
    distractor = looks[distractor_name] if distractor_name else None
    boxes: list = []
    img = render_image(looks[name], rng, distractor, boxes)
    quality = int(rng.integers(60, 96))
    box = boxes[0] if boxes else None
    if copy_of is not None:
        own = np.random.default_rng([seed, _stable(name), idx, 1])
        img, box = near_copy(img, box, own)
        quality = int(own.integers(60, 96))
    img.save(out_path, "JPEG", quality=quality)
    return (*box, img.width, img.height) if box else None


def near_copy(img: Image.Image, box: tuple | None, rng: np.random.Generator) -> tuple[Image.Image, tuple | None]:
    """A near-identical frame: ``img`` cropped by up to ``MAX_COPY_SHIFT`` of each side on each edge (a small
    crop and shift at once) and resized back to its size; ``box`` moved and scaled with it."""
    w, h = img.size
    x0, x1 = rng.uniform(0, MAX_COPY_SHIFT, 2) * w
    y0, y1 = rng.uniform(0, MAX_COPY_SHIFT, 2) * h
    crop = (x0, y0, w - x1, h - y1)
    out = img.resize((w, h), Image.Resampling.BILINEAR, box=crop)
    if box is None:
        return out, None
    sx, sy = w / (crop[2] - crop[0]), h / (crop[3] - crop[1])
    moved = (max(0, round((box[0] - x0) * sx)), max(0, round((box[1] - y0) * sy)),
             min(w, round((box[2] - x0) * sx)), min(h, round((box[3] - y0) * sy)))
    return out, moved if moved[0] < moved[2] and moved[1] < moved[3] else None


def _stable(name: str) -> int:
    """A per-class seed that does not depend on Python's randomised ``hash``."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)


def generate(out: str | os.PathLike | None = None, scale: float = 0.05, seed: int = 0,
             workers: int | None = None, test_size: int | None = None) -> Path:
    """Write the demo dataset under ``out`` in the Kaggle layout and return ``out``.

    Deterministic for a seed, whatever the number of workers. An existing ``out`` is replaced only if
    it is a demo dataset this module wrote (it holds ``DEMO_DATA.txt``).
    """
    out = Path(out) if out is not None else paths.demo_data_dir()
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale}")
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).is_file():
            raise FileExistsError(f"{out} exists and is not a demo dataset; refusing to overwrite it")
        shutil.rmtree(out)
    counts = scaled_counts(scale)
    classes = sorted(counts)
    looks = class_looks(classes, seed)
    n_test = test_size if test_size is not None else max(len(classes), round(KAGGLE_TEST_SIZE * scale))
    rng = np.random.default_rng([seed, 7])
    copies = np.random.default_rng([seed, 11])  # which frames are near-copies: a stream of its own

    train_root = out / "train" / "simpsons_dataset"
    test_root = out / "testset" / "testset"
    jobs = []
    originals: dict[str, list[tuple[int, str | None]]] = {}  # per class: (index, distractor) of drawn frames
    for name in classes:
        (train_root / name).mkdir(parents=True, exist_ok=True)
        originals[name] = []
        for i in range(counts[name]):
            other = classes[rng.integers(len(classes))] if rng.random() < DISTRACTOR_SHARE else None
            copy = copies.random() < FRAME_COPY_SHARE and i > 0
            source = int(copies.integers(len(originals[name]))) if copy else None
            if source is None:
                originals[name].append((i, other))
                jobs.append((train_root / name / f"pic_{i:04d}.jpg", seed, name, i, other, looks, None))
            else:
                frame, other = originals[name][source]
                jobs.append((train_root / name / f"pic_{i:04d}.jpg", seed, name, i, other, looks, frame))
    test_root.mkdir(parents=True, exist_ok=True)
    weights = np.array([counts[c] for c in classes], dtype=float)
    test_labels = rng.choice(classes, size=n_test, p=weights / weights.sum())
    for i, name in enumerate(test_labels):
        other = classes[rng.integers(len(classes))] if rng.random() < DISTRACTOR_SHARE else None
        if copies.random() < TEST_COPY_SHARE:
            frame, other = originals[str(name)][int(copies.integers(len(originals[str(name)])))]
            jobs.append((test_root / f"img{i}.jpg", seed, str(name), 100_000 + i, other, looks, frame))
        else:
            jobs.append((test_root / f"img{i}.jpg", seed, str(name), 100_000 + i, other, looks, None))

    workers = workers or parallel.available_cpus()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            drawn = list(pool.map(_render_job, jobs, chunksize=64))
    else:
        drawn = [_render_job(job) for job in jobs]
    with open(out / BOXES_FILE, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "x0", "y0", "x1", "y1", "width", "height"])
        w.writerows([job[0].relative_to(out).as_posix(), *box] for job, box in zip(jobs, drawn) if box)

    drawn_at = {(job[2], job[3]): job[0] for job in jobs if job[6] is None and job[3] < 100_000}
    with open(out / COPIES_FILE, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "copy_of"])
        w.writerows([job[0].relative_to(out).as_posix(), drawn_at[job[2], job[6]].relative_to(out).as_posix()]
                    for job in jobs if job[6] is not None)

    with open(out / "sample_submission.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Expected"])
        w.writerows([f"img{i}.jpg", classes[0]] for i in range(n_test))
    with open(out / "test_answers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Expected"])
        w.writerows([f"img{i}.jpg", name] for i, name in enumerate(test_labels))
    (out / DEMO_MARKER).write_text(
        "Drawn demo data generated by simpsons_lib.pipeline.demo "
        f"(scale={scale}, seed={seed}, version={GENERATOR_VERSION}). A procedural stand-in for the Kaggle images: "
        "scores on it say nothing about The Simpsons.\n"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(paths.demo_data_dir()), help="output folder (default data/demo)")
    parser.add_argument("--scale", type=float, default=0.05, help="fraction of the real counts (1.0 = 20,933 + 991)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: the CPUs this process may use)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = generate(args.out, args.scale, args.seed, args.workers)
    n = sum(1 for _ in out.rglob("*.jpg"))
    secs = time.perf_counter() - start
    print(f"wrote {n} images to {out} in {secs:.1f} s ({n / secs:.0f} images/s)")


if __name__ == "__main__":
    main()
