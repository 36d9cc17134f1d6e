"""Finding the Kaggle layout, indexing images, label encoding and the train/val split (no torch here:
the pipeline's command line imports this; the torch datasets are in ``datasets``).

Nothing under the data directory is ever written to: bad files are reported (or skipped and listed
in a report under the outputs), never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import paths
from ..config.files import read_json, write_csv, write_json, write_text
from . import parallel

if TYPE_CHECKING:
    from sklearn.preprocessing import LabelEncoder

# scikit-learn is imported inside the functions that use it: the pipeline's own process only finds the
# data (for every notebook it runs), and loading scikit-learn would add a second or more to each run.

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Layout variants seen in the wild, relative to the data directory (first match wins).
TRAIN_CANDIDATES = ("train/simpsons_dataset", "simpsons_dataset", "train/train", "train")
TEST_CANDIDATES = ("testset/testset", "testset", "test/test", "test")
SAMPLE_SUBMISSION = "sample_submission.csv"
DEMO_MARKER = "DEMO_DATA.txt"
BOXES_FILE = "character_boxes.csv"  # beside the drawn demo data, outside the images: where each character was drawn
COPIES_FILE = "frame_copies.csv"  # beside the drawn demo data: which image is a near-copy of which (path, copy_of)

HOW_TO_GET_DATA = (
    "Get the Kaggle data with `make data` (needs your Kaggle credentials; see README); in a Kaggle Notebook, "
    "add the competition's data (it is found under /kaggle/input, or $SIMPSONS_KAGGLE_INPUT); or generate the "
    "drawn demo data with `make demo-data`. A dataset of your own in the Kaggle layout: set data_dir "
    "(and, if needed, train_dir / test_dir) in your profile's _common.yaml."
)


class DatasetNotFoundError(FileNotFoundError):
    """No Kaggle layout was found; the message lists every path searched."""


class BadImageError(ValueError):
    """An image file is empty, truncated or cannot be decoded; the message names the file."""


@dataclass(frozen=True)
class DatasetLayout:
    """Where the parts of one copy of the dataset live."""

    root: Path
    train_dir: Path
    test_dir: Path | None
    sample_submission: Path | None
    is_demo: bool = False  # the drawn demo data (its folder holds the generator's DEMO_DATA.txt)


@dataclass
class IndexReport:
    """What indexing left out, and why."""

    ignored_files: list[Path] = field(default_factory=list)
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    dropped_classes: list[str] = field(default_factory=list)

    def bad_files_frame(self) -> pd.DataFrame:
        return pd.DataFrame([(str(p), r) for p, r in self.bad_files], columns=["path", "reason"])


def _has_class_folders(path: Path) -> bool:
    return path.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())


def _has_images(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file())


def find_layout(
    data_dir: str | os.PathLike | None = None,
    train_dir: str | os.PathLike | None = None,
    test_dir: str | os.PathLike | None = None,
) -> DatasetLayout:
    """Detect the Kaggle layout under ``data_dir`` (default ``data/kaggle``).

    ``train_dir`` / ``test_dir`` override detection (relative paths are taken from ``data_dir``).
    """
    root = Path(data_dir) if data_dir is not None else paths.kaggle_data_dir()
    roots = [root, root / "journey-springfield"]
    searched: list[Path] = []

    def pick(explicit, candidates, ok) -> Path | None:
        if explicit is not None:
            p = Path(explicit)
            p = p if p.is_absolute() else root / p
            searched.append(p)
            if not ok(p):
                raise DatasetNotFoundError(f"The folder given explicitly does not hold the expected files: {p}")
            return p
        for r in roots:
            for rel in candidates:
                p = r / rel
                searched.append(p)
                if ok(p):
                    return p
        return None

    train = pick(train_dir, TRAIN_CANDIDATES, _has_class_folders)
    if train is None:
        listed = "\n  ".join(str(p) for p in searched)
        raise DatasetNotFoundError(
            f"No training images found under {root}. Searched (in order):\n  {listed}\n{HOW_TO_GET_DATA}"
        )
    test = pick(test_dir, TEST_CANDIDATES, _has_images)
    base = next((r for r in roots if train.is_relative_to(r)), root)
    return DatasetLayout(root=base, train_dir=train, test_dir=test,
                         sample_submission=find_sample_submission(base, train, test),
                         is_demo=(base / DEMO_MARKER).is_file() or (root / DEMO_MARKER).is_file())


def demo_scale_of(root: Path) -> float | None:
    """The scale the drawn demo data in ``root`` was generated at (from its ``DEMO_DATA.txt``), or None."""
    value = _demo_marker_field(root, "scale")
    return float(value) if value else None


def demo_version_of(root: Path) -> int:
    """The version of the generator that drew the demo data in ``root`` (``DEMO_DATA.txt``; 1 before it said)."""
    value = _demo_marker_field(root, "version")
    return int(value) if value else 1


def _demo_marker_field(root: Path, key: str) -> str | None:
    marker = Path(root) / DEMO_MARKER
    match = re.search(rf"\b{key}=([0-9.]+)", marker.read_text(encoding="utf-8")) if marker.is_file() else None
    return match.group(1).rstrip(".") if match else None


def find_sample_submission(root: Path, *folders: Path | None) -> Path | None:
    """``sample_submission.csv`` wherever it lies: in the data folder, else in the test or training folder
    or up to two folders above them (nearest first), as Kaggle zips and hand-made copies place it."""
    candidates = [root]
    for folder in filter(None, folders):
        candidates += [folder, *list(folder.parents)[:2]]
    return next((f / SAMPLE_SUBMISSION for f in dict.fromkeys(candidates) if (f / SAMPLE_SUBMISSION).is_file()), None)


def resolve_data_dir(p) -> Path:
    """The run's data folder: ``data_dir`` (relative to the project), or data/demo, or data/kaggle (else
    the competition where Kaggle Notebooks mount it, ``paths.kaggle_data_source``)."""
    if p.get("data_dir"):
        d = Path(p["data_dir"]).expanduser()
        return d if d.is_absolute() else paths.PROJECT_ROOT / d
    return paths.demo_data_dir() if p["dataset"] == "demo" else paths.kaggle_data_source()


def find_study_layout(p) -> DatasetLayout:
    """The run's dataset layout. Finding has no side effects: missing data is an error saying how to get
    it (``make demo-data`` generates the demo data, ``make data`` downloads the Kaggle data)."""
    return find_layout(resolve_data_dir(p), p.get("train_dir"), p.get("test_dir"))


def answers_file(p, layout: DatasetLayout) -> Path | None:
    """The ``answers`` CSV (true test labels, relative to the data folder), or None when not set."""
    if not p.get("answers"):
        return None
    path = Path(p["answers"]).expanduser()
    path = path if path.is_absolute() else layout.root / path
    if not path.is_file():
        raise FileNotFoundError(f"answers: no such file {path} (the true test labels, Id,Expected)")
    return path


def natural_key(name: str) -> list:
    """Sort key putting ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# The largest image the study decodes: 50 megapixels (e.g. 8660 x 5773). The Kaggle frames are under
# 0.5 MP; anything far larger is a mistake or a decompression bomb (a small file that decodes to GBs),
# and is a bad image like any other: named, skipped or refused per ``on_bad_image``. PIL's own limit
# (``Image.MAX_IMAGE_PIXELS``, 89 MP, an error from twice that) is left as it is.
MAX_PIXELS = 50_000_000


def _too_large(img: Image.Image) -> str | None:
    pixels = img.width * img.height
    if pixels > MAX_PIXELS:
        return (f"too large: {img.width} x {img.height} pixels, more than the study's limit of "
                f"{MAX_PIXELS:,} (layout.MAX_PIXELS)")
    return None


def _open_image(path: str | os.PathLike) -> Image.Image:
    """``Image.open`` with PIL's decompression-bomb warning silenced (the size is checked right after)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def check_image(path: Path) -> str | None:
    """Return why ``path`` is not a usable image, or None when it decodes completely: an empty or
    unreadable file (a dangling or looping symlink included), one PIL cannot decode, or one larger
    than ``MAX_PIXELS``."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    try:
        with _open_image(path) as img:
            too_large = _too_large(img)
            if too_large:
                return too_large
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))  # fast full scan
            img.load()
    except UnidentifiedImageError:
        return "not a decodable image"
    except Image.DecompressionBombError as exc:
        return f"too large: {exc}"
    except (OSError, SyntaxError, ValueError) as exc:  # truncated, corrupt
        return f"cannot decode: {exc}"
    return None


def check_images(paths_: Sequence[Path]) -> list[str | None]:
    """``check_image`` of each path (one block of work for ``parallel.map_chunks``)."""
    return [check_image(Path(p)) for p in paths_]


def files_fingerprint(paths_: Sequence[str | os.PathLike], salt: str = "") -> str:
    """Hash of a file list with each file's size and modification time (and ``salt``): it changes
    whenever a file is added, removed, replaced or edited."""
    h = hashlib.sha1(salt.encode())
    for p in paths_:
        try:
            st = os.stat(p)
            h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError as exc:  # a dangling or looping symlink: the image check names it
            h.update(f"{os.path.abspath(p)}|unreadable {exc.errno}\n".encode())
    return h.hexdigest()[:16]


def data_fingerprint(folders: Iterable[Path | None]) -> dict:
    """File names, sizes and contents (SHA-1) of the data folders: an image edited in place, even to the same
    size, changes it. Each file's SHA-1 is remembered in ``outputs/cache`` under its size, modification and
    change times and inode (``content_hashes``), so a later plan of the same data only reads the files' status."""
    h = hashlib.sha1()
    n = 0
    for folder in filter(None, folders):
        files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file()]
        for name, size, digest in content_hashes(Path(folder), files):
            h.update(f"{name}|{size}|{digest}\n".encode())
            n += 1
    return {"files": n, "sha1": h.hexdigest()}


def content_hashes(folder: Path, files: Sequence[Path]) -> list[tuple[str, int, str]]:
    """The name (in ``folder``), size and SHA-1 of each of ``files`` (in ``folder``), the bytes read again only
    for a file whose size, times or inode changed since it was remembered (``outputs/cache/content_hashes/<folder digest>.json``; not remembered where the
    outputs folder cannot be written)."""
    record = paths.cache_dir() / "content_hashes" / f"{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]}.json"
    try:
        known = read_json(record)
    except (OSError, ValueError):
        known = {}
    fresh, out, prefix = {}, [], os.path.join(str(folder), "")
    for p in files:
        st, text = p.stat(), str(p)
        name = text[len(prefix):] if text.startswith(prefix) else str(p.relative_to(folder))  # slicing: 20x faster
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = known.get(name) if isinstance(known, dict) else None
        if not (isinstance(entry, list) and entry[:4] == stamp and len(entry) == 5):
            try:
                with open(p, "rb") as f:
                    entry = [*stamp, hashlib.file_digest(f, "sha1").hexdigest()]
            except OSError as exc:  # unreadable: the image check names it; its state is part of the fingerprint
                out.append((name, st.st_size, f"unreadable {exc.errno}"))
                continue
        fresh[name] = entry
        out.append((name, st.st_size, entry[4]))
    if fresh != known:
        with contextlib.suppress(OSError):
            write_text(record, json.dumps(fresh, separators=(",", ":")) + "\n")
    return out


def _scan_files(paths_: Sequence[Path], workers: int | None = None) -> list[str | None]:
    """``check_image`` for every file, on every core; remembered in ``outputs/cache`` under the files'
    fingerprint, so the notebooks of one study decode each file once for this check, not once each."""
    cached = paths.cache_dir() / f"scan_{len(paths_)}_{files_fingerprint(paths_, 'scan-v1')}.json"
    if cached.is_file():
        return read_json(cached)
    reasons = [r for block in parallel.map_chunks(check_images, paths_, workers=workers) for r in block]
    write_json(cached, reasons)
    return reasons


def _handle_bad(report: IndexReport, bad: list[tuple[Path, str]], on_bad_image: str) -> None:
    if not bad:
        return
    if on_bad_image == "raise":
        first, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise BadImageError(
            f"Bad image file {first}: {reason}{more}. Fix or remove it, or set on_bad_image: skip "
            "to leave such files out and list them in a report."
        )
    for p, reason in bad:
        log.warning("Skipping bad image %s: %s", p, reason)
    report.bad_files.extend(bad)


def _list_images(folder: Path, report: IndexReport) -> list[Path]:
    images = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if p.is_dir():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            images.append(p)
        else:
            log.warning("Ignoring non-image file %s", p)
            report.ignored_files.append(p)
    return images


def build_train_index(
    train_dir: str | os.PathLike,
    on_bad_image: str = "raise",
    report: IndexReport | None = None,
) -> tuple[pd.DataFrame, IndexReport]:
    """Index ``train_dir/<class>/<image>``: a frame with ``path``, ``class_name``, ``label``.

    Classes come from the folders (sorted; the label is the scikit-learn ``LabelEncoder`` code).
    Every image is fully decoded once to find empty, truncated or undecodable files.
    """
    if on_bad_image not in ("raise", "skip"):
        raise ValueError(f"on_bad_image must be 'raise' or 'skip', not {on_bad_image!r}")
    report = report or IndexReport()
    train_dir = Path(train_dir)
    rows: list[tuple[Path, str]] = []
    for class_dir in sorted(p for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for img in _list_images(class_dir, report):
            rows.append((img, class_dir.name))
    for p in train_dir.iterdir():
        if p.is_file():
            log.warning("Ignoring file outside class folders %s", p)
            report.ignored_files.append(p)

    reasons = _scan_files([p for p, _ in rows])
    bad = [(p, r) for (p, _), r in zip(rows, reasons) if r is not None]
    _handle_bad(report, bad, on_bad_image)
    rows = [row for row, r in zip(rows, reasons) if r is None]

    present = {c for _, c in rows}
    for class_dir in sorted(p for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if class_dir.name not in present:
            log.warning("Dropping class folder with no usable images: %s", class_dir)
            report.dropped_classes.append(class_dir.name)
    if not rows:
        raise DatasetNotFoundError(f"No usable training images in {train_dir}. {HOW_TO_GET_DATA}")

    frame = pd.DataFrame({"path": [str(p) for p, _ in rows], "class_name": [c for _, c in rows]})
    encoder = fit_label_encoder(frame["class_name"])
    frame["label"] = encoder.transform(frame["class_name"]).astype(np.int64)
    return frame, report  # already sorted: class folders by name, files in natural order


def build_test_index(
    test_dir: str | os.PathLike,
    on_bad_image: str = "raise",
    report: IndexReport | None = None,
) -> tuple[pd.DataFrame, IndexReport]:
    """Index the unlabeled test images: a frame with ``path`` and ``Id`` (the file name)."""
    report = report or IndexReport()
    images = _list_images(Path(test_dir), report)
    reasons = _scan_files(images)
    _handle_bad(report, [(p, r) for p, r in zip(images, reasons) if r is not None], on_bad_image)
    images = [p for p, r in zip(images, reasons) if r is None]
    return pd.DataFrame({"path": [str(p) for p in images], "Id": [p.name for p in images]}), report


def write_index_report(report: IndexReport, path: str | os.PathLike) -> Path:
    """List skipped bad files (path, reason) in a CSV; written even when empty, so a run shows it checked."""
    return write_csv(path, report.bad_files_frame())


def fit_label_encoder(class_names: Sequence[str]) -> LabelEncoder:
    from sklearn.preprocessing import LabelEncoder

    return LabelEncoder().fit(sorted(set(class_names)))


def label_encoder_from_classes(classes: Sequence[str]) -> LabelEncoder:
    """Rebuild the encoder saved (as its ``classes_`` list) in a checkpoint or metrics file."""
    from sklearn.preprocessing import LabelEncoder

    enc = LabelEncoder()
    enc.classes_ = np.asarray(list(classes), dtype=object)
    return enc


def _one_of_each_class(source: pd.DataFrame, target: pd.DataFrame, index: pd.DataFrame,
                       rng: np.random.Generator, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move one random image of every class of ``index`` that ``target`` lacks from ``source`` to it;
    returns the new ``(target, source)``."""
    missing = sorted(set(index["class_name"]) - set(target["class_name"]))
    if not missing:
        return target, source
    moved = [rng.choice(source.index[source["class_name"] == c]) for c in missing]
    log.info("One %s image for each of these small classes: %s", what, ", ".join(missing))
    return pd.concat([target, source.loc[moved]]), source.drop(index=moved)


def split_train_val(
    index: pd.DataFrame, val_fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded split in which every class with at least 2 images has a validation image.

    scikit-learn's stratified ``train_test_split`` first splits the classes with at least 2 images;
    its rounding can leave a small class (one validation image or fewer on average,
    ``count * val_fraction <= 1``) without any validation image, and such a class then gets one, drawn
    with the same seed, from its training images. Likewise a class left without a training image (a
    large ``val_fraction``) gets one back, so both sides hold every such class. Where the share holds fewer
    images than there are classes (300 classes of 3 images at 0.25, or 0.05 on 42 classes), which
    scikit-learn refuses, it is raised to one image per class (and lowered where train would hold fewer).
    A class with a single image stays whole in train, with a warning: it cannot be validated.

    With ``groups`` (a group number per row of ``index``, e.g. ``near_duplicates.group_ids``), the split
    is grouped instead (``split_grouped``): every group lies on one side.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    if groups is not None:
        return split_grouped(index, val_fraction, seed, groups)
    counts = index["class_name"].value_counts()
    single = sorted(counts[counts < 2].index)
    if single:
        log.warning("Only one image, kept in train without validation: %s", ", ".join(single))
    from sklearn.model_selection import train_test_split

    single_mask = index["class_name"].isin(single)
    splittable = index[~single_mask]
    # scikit-learn's stratified split needs at least one image per class on each side (many small classes
    # or a small val_fraction fall short): then the share is raised to one per class, or lowered to leave
    # one per class in train, which every class here (2+ images) allows.
    n, n_classes = len(splittable), splittable["label"].nunique()
    test_size: float | int = val_fraction
    if not n_classes <= math.ceil(val_fraction * n) <= n - n_classes:
        test_size = min(max(math.ceil(val_fraction * n), n_classes), n - n_classes)
    train, val = train_test_split(
        splittable, test_size=test_size, stratify=splittable["label"], random_state=seed, shuffle=True
    )
    rng = np.random.default_rng(seed)
    train, val = _one_of_each_class(val, train, splittable, rng, "training")  # a large val_fraction
    val, train = _one_of_each_class(train, val, splittable, rng, "validation")  # rounding, small classes
    # The frames keep ``index``'s row numbers, so decoded arrays of the whole index can be shared.
    return pd.concat([train, index[single_mask]]).sort_index(), val.sort_index()


def split_grouped(index: pd.DataFrame, val_fraction: float, seed: int,
                  groups: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A split that keeps each group whole on one side, stratified by class as far as groups allow.

    Each group belongs to the class most of its images have (the first by name on a tie). For each
    class, its groups are shuffled (seeded) and taken into validation in that order while they fit in
    the class's share, ``round(count * val_fraction)`` images and at least one: a group too large to fit
    is skipped, and the smallest group is taken when none fits, so every class with two or more groups
    has images on both sides. A class all of whose images form one group stays in train, with a
    warning: it cannot be validated without copies of its training images.
    """
    groups = np.asarray(groups)
    if len(groups) != len(index):
        raise ValueError(f"groups has {len(groups)} entries for {len(index)} images")
    frame = pd.DataFrame({"group": groups, "class_name": index["class_name"].to_numpy()}, index=index.index)
    per_class = frame.groupby(["group", "class_name"]).size().reset_index(name="n")
    owner = (per_class.sort_values(["group", "n", "class_name"], ascending=[True, False, True])
             .drop_duplicates("group").set_index("group")["class_name"])  # the majority class, first by name
    sizes = frame["group"].value_counts()
    counts = sizes.reindex(owner.index).groupby(owner).sum()  # images per class, counted by the groups it owns
    rng = np.random.default_rng(seed)
    val_groups, unsplittable = [], []
    for name in sorted(counts.index):
        own = np.sort(owner.index[owner == name].to_numpy())
        if len(own) < 2:
            unsplittable.append(name)
            continue
        rng.shuffle(own)
        target, taken = max(1, round(counts[name] * val_fraction)), 0
        for g in own:
            if taken + sizes[g] <= target and sizes[g] < counts[name]:
                val_groups.append(g)
                taken += sizes[g]
        if taken == 0:
            smallest = min(own, key=lambda g: (sizes[g], g))
            val_groups.append(smallest)
    if unsplittable:
        log.warning("All images of these classes are in one near-duplicate group (or there is only one image), "
                    "kept in train without validation: %s", ", ".join(unsplittable))
    in_val = frame["group"].isin(val_groups)
    return index[~in_val.to_numpy()].sort_index(), index[in_val.to_numpy()].sort_index()


EXIF_ORIENTATION = 0x0112


def load_rgb(path: str | os.PathLike, draft_size: int | None = None) -> Image.Image:
    """Open any image as 3-channel RGB (grayscale, palette, RGBA, CMYK, 16-bit all convert;
    transparency over white, 16-bit stretched to 8 bits), upright as its EXIF orientation says. With ``draft_size``, a JPEG is decoded at the
    smallest reduced scale (1/2, 1/4, 1/8) that is still at least ``draft_size`` on each side."""
    try:
        with _open_image(path) as img:
            too_large = _too_large(img)
            if too_large:
                raise BadImageError(f"Cannot read image {path}: {too_large}")
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
            if img.getexif().get(EXIF_ORIENTATION, 1) != 1:  # a phone photo stored sideways: turned upright
                img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, img).convert("RGB")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                arr = (255 * (arr - arr.min()) / max(1.0, arr.max() - arr.min())).astype(np.uint8)
                return Image.fromarray(arr).convert("RGB")
            return img.convert("RGB")
    except BadImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImageError(f"Cannot read image {path}: too large: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"Cannot read image {path}: {exc}") from exc
