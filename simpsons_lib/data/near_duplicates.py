"""Near-duplicate frames: which images are near-identical copies of one another, and where they fall.

Frames taken from video come in runs of near-identical images, so a random split puts copies of one frame
on both sides, and validation then partly scores memory, not recognition. This module finds such copies
with a perceptual hash and groups them, for the EDA's audit and for the grouped split
(``layout.split_train_val`` with ``groups``), which keeps each group on one side.

The hash is the DCT hash ("pHash"): the image at 32 × 32 px in grey, its 2-D DCT, and one bit per
coefficient of the lowest 14 × 14 frequencies but the constant one (195 bits): above or below their
median. A small crop, shift, resize or re-encoding moves few bits; two different drawings differ in
about half. The classic pHash keeps 8 × 8 frequencies (63 bits); on the drawn demo data, whose frames
share their style, that many bits do not keep copies apart from different frames (measured on the demo
profile's data: copies up to 10 bits apart, different frames from 4). 14 × 14 does: copies at most 28
bits apart, different frames at least 36 (12 × 12: 22 against 24; 16 × 16: 40 against 52, no wider a
margin for its bits). It is written here (a dozen lines on top of scipy's DCT, which scikit-learn
already brings) rather than taken from ``imagehash``: that package adds PyWavelets, and it hashes PIL
images one by one, where this hashes the decoded array of the whole dataset at once and reuses the
image cache's decoding (``cache.decode_images``: the same resize as every model's input). The hashes of
a set of files are stored once in the image cache's folder, keyed like the cache by the files'
fingerprint.

Two images are near-duplicates when their hashes differ in at most ``max_distance`` bits
(``near_duplicate_bits``, 34 by default: 17% of the bits, between the demo's copies and its different
frames); groups are the connected components of that relation. A copy of an image keeps its class, so a
pair that joins two classes is likely a false match (two different images close in the hash: a shared
background, a plain frame), and the audit says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..config import paths
from ..config.files import atomic_path
from .cache import decode_images, fingerprint

HASH_IMAGE_SIZE = 32  # px: the grey image whose DCT is hashed
HASH_FREQUENCIES = 14  # the lowest 14 x 14 DCT coefficients, less the constant one: 195 bits
HASH_BITS = HASH_FREQUENCIES ** 2 - 1
HASH_WORDS = -(-HASH_BITS // 64)  # uint64 words per hash
HASH_FORMAT = 2  # bump when the hash changes (2: 14 x 14 frequencies)
PAIR_BLOCK = 128  # rows compared at once (a block x N x 4 array of uint64: 90 MB against 22,000 images)
GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as PIL's "L"


def dct_hashes(images: np.ndarray) -> np.ndarray:
    """The DCT hash of each image of a uint8 ``(N, 3, H, W)`` array: ``(N, HASH_WORDS)`` uint64."""
    from scipy.fft import dctn

    if len(images) == 0:
        return np.zeros((0, HASH_WORDS), np.uint64)
    grey = np.tensordot(GREY, np.asarray(images, np.float32), axes=([0], [1]))  # (N, H, W)
    coeffs = dctn(grey, axes=(1, 2), norm="ortho")[:, :HASH_FREQUENCIES, :HASH_FREQUENCIES]
    coeffs = coeffs.reshape(len(images), -1)[:, 1:]  # the constant (mean brightness) coefficient says nothing
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    padded = np.zeros((len(images), HASH_WORDS * 64), bool)
    padded[:, :HASH_BITS] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")  # (N, HASH_WORDS * 8) bytes
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64)


def image_hashes(paths_: Sequence[str], cache: bool | str | os.PathLike = True, progress: bool = True) -> np.ndarray:
    """The DCT hashes of ``paths_``, from the image cache's folder when it holds them (``cache``: True for
    ``outputs/cache``, a folder, or False to compute them in memory only)."""
    paths_ = list(paths_)
    if cache is False:
        return dct_hashes(decode_images(paths_, HASH_IMAGE_SIZE, progress=progress))
    folder = paths.cache_dir() if cache is True else Path(cache)
    key = fingerprint(paths_, HASH_IMAGE_SIZE)
    target = folder / f"dct_hashes_v{HASH_FORMAT}_{len(paths_)}_{key}.npy"
    if not target.exists():
        hashes = dct_hashes(decode_images(paths_, HASH_IMAGE_SIZE, progress=progress))
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, hashes)
    return np.load(target)


_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.int16)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between hashes ``a`` and ``b`` (``(..., HASH_WORDS)``, broadcast over the rest)."""
    differ = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(differ).sum(axis=-1, dtype=np.int16)
    as_bytes = np.ascontiguousarray(differ).view(np.uint8)  # numpy 1.26: a table of each byte's bits
    return _BYTE_BITS[as_bytes].sum(axis=-1, dtype=np.int16)


def close_pairs(hashes: np.ndarray, max_distance: int, others: np.ndarray | None = None) -> pd.DataFrame:
    """Every pair within ``max_distance`` bits: among ``hashes`` (``a < b``), or between ``hashes`` (``a``)
    and ``others`` (``b``); columns ``a``, ``b``, ``distance``, closest first."""
    found = []
    for start in range(0, len(hashes), PAIR_BLOCK):
        block = hashes[start:start + PAIR_BLOCK]
        offset = 0 if others is not None else start  # among ``hashes``: only the pairs to the right
        against = others if others is not None else hashes[start:]
        d = hamming(block[:, None, :], against[None, :, :])
        if others is None:  # each pair once, never an image with itself
            d[np.tril_indices(len(block), m=len(against))] = HASH_BITS + 1
        a, b = np.nonzero(d <= max_distance)
        found.append(pd.DataFrame({"a": a + start, "b": b + offset, "distance": d[a, b]}))
    pairs = pd.concat(found, ignore_index=True) if found else pd.DataFrame({"a": [], "b": [], "distance": []})
    pairs = pairs.astype({"a": int, "b": int, "distance": int})
    return pairs.sort_values(["distance", "a", "b"], ignore_index=True)


def cached_pairs(hashes: np.ndarray, max_distance: int, others: np.ndarray | None = None,
                 cache: bool | str | os.PathLike = True) -> pd.DataFrame:
    """``close_pairs``, kept in the image cache's folder under a key of the hashes and ``max_distance``
    (comparing 20,000 images with one another takes seconds, and every run of a study needs them)."""
    if cache is False:
        return close_pairs(hashes, max_distance, others)
    import hashlib

    digest = hashlib.sha1(np.ascontiguousarray(hashes).tobytes())
    if others is not None:
        digest.update(b"|" + np.ascontiguousarray(others).tobytes())
    folder = paths.cache_dir() if cache is True else Path(cache)
    target = folder / f"near_duplicate_pairs_v{HASH_FORMAT}_{max_distance}_{digest.hexdigest()[:16]}.npy"
    if target.exists():
        a, b, d = np.load(target)
        return pd.DataFrame({"a": a, "b": b, "distance": d}).astype(int)
    pairs = close_pairs(hashes, max_distance, others)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, pairs[["a", "b", "distance"]].to_numpy(np.int64).T)
    return pairs


def group_ids(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """A group number for each of ``n`` images: the connected components of ``pairs`` (an image with no
    near-duplicate is a group of its own), numbered by each group's first image."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs["a"].to_numpy(), pairs["b"].to_numpy())), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))  # component -> its rank by first image
    return order[labels]


@dataclass
class NearDuplicates:
    """The near-duplicates of a study's training images (``index`` rows) and of its test images."""

    max_distance: int
    index: pd.DataFrame        # path, class_name, ... of every training image (as ``StudyData.index``)
    groups: np.ndarray         # group number of each ``index`` row
    pairs: pd.DataFrame        # a, b (``index`` rows), distance: near-duplicate training pairs
    test: pd.DataFrame | None = None        # path, Id of the test images
    test_pairs: pd.DataFrame | None = None  # a (test row), b (``index`` row), distance

    @property
    def group_sizes(self) -> pd.Series:
        return pd.Series(self.groups).value_counts()

    def duplicate_groups(self) -> pd.DataFrame:
        """One row per group of two or more images: size, classes (sorted, ';'-joined), first path."""
        out = self.group_table().groupby("group").agg(size=("path", "size"),
                                                      classes=("class_name", lambda c: ";".join(sorted(set(c)))),
                                                      first=("path", "first"))
        return out.sort_values(["size", "first"], ascending=[False, True])

    def crossing(self, train: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
        """The groups that a split puts on both sides: group, size, images in train and in validation."""
        side = pd.Series("", index=self.index.index)
        side[train.index] = "train"
        side[val.index] = "val"
        frame = pd.DataFrame({"group": self.groups, "side": side.to_numpy()})
        counts = pd.crosstab(frame["group"], frame["side"]).reindex(columns=["train", "val"], fill_value=0)
        both = counts[(counts["train"] > 0) & (counts["val"] > 0)]
        return both.assign(size=both.sum(axis=1)).reset_index()

    def has_twin_in(self, rows: pd.Index, others: pd.Index) -> np.ndarray:
        """For each of ``rows`` (``index`` rows): whether a near-duplicate of it lies among ``others``."""
        pos = self.index.index.get_indexer
        return np.isin(self.groups[pos(rows)], self.groups[pos(others)])

    def summary(self, train: pd.DataFrame, val: pd.DataFrame) -> dict:
        """The audit in numbers, for the metrics record and the pages."""
        groups = self.duplicate_groups()
        crossing = self.crossing(train, val)
        twins = self.has_twin_in(val.index, train.index)
        classes = self.index["class_name"].to_numpy()
        across = classes[self.pairs["a"].to_numpy()] != classes[self.pairs["b"].to_numpy()]  # likely false matches
        out = {
            "hash": f"DCT hash, {HASH_BITS} bits of {HASH_IMAGE_SIZE} px grey images",
            "max_distance_bits": self.max_distance,
            "training_images": len(self.index),
            "near_duplicate_pairs": len(self.pairs),
            "pairs_joining_classes": int(across.sum()),
            "groups": len(groups),
            "images_in_groups": int(groups["size"].sum()) if len(groups) else 0,
            "largest_group": int(groups["size"].max()) if len(groups) else 1,
            "groups_with_several_classes": int(groups["classes"].str.contains(";").sum()) if len(groups) else 0,
            "groups_across_split": len(crossing),
            "val_images": len(val),
            "val_images_with_near_duplicate_in_train": int(twins.sum()),
        }
        if self.test is not None and self.test_pairs is not None:
            out["test_images"] = len(self.test)
            out["test_images_with_near_duplicate_in_train"] = int(self.test_pairs["a"].nunique())
        return out

    def closest_pairs(self, n: int | None = None, test: bool = False) -> pd.DataFrame:
        """The ``n`` closest pairs (all with None), training pairs or (``test``) test-training pairs: path_a,
        path_b, class_a (a test image: its Id), class_b, distance."""
        pairs = self.test_pairs if test else self.pairs
        if pairs is None:
            return pd.DataFrame(columns=["path_a", "path_b", "class_a", "class_b", "distance"])
        top = pairs if n is None else pairs.head(n)
        first = self.test if test else self.index
        a, b = first.iloc[top["a"].to_numpy()], self.index.iloc[top["b"].to_numpy()]
        return pd.DataFrame({"path_a": a["path"].to_numpy(), "path_b": b["path"].to_numpy(),
                             "class_a": (a["Id"] if test else a["class_name"]).to_numpy(),
                             "class_b": b["class_name"].to_numpy(), "distance": top["distance"].to_numpy()})

    def least_alike_pairs(self, n: int) -> pd.DataFrame:
        """The ``n`` training pairs that count as near-duplicates with the most bits apart, the farthest
        first (as ``closest_pairs``): the pairs nearest the threshold, to judge ``near_duplicate_bits`` by."""
        return self.closest_pairs().iloc[::-1].head(n).reset_index(drop=True)

    def group_table(self) -> pd.DataFrame:
        """Every training image in a group of two or more: group, group_size, class_name, path."""
        frame = pd.DataFrame({"group": self.groups, "class_name": self.index["class_name"].to_numpy(),
                              "path": self.index["path"].to_numpy()})
        frame["group_size"] = frame["group"].map(frame["group"].value_counts())
        frame = frame[frame["group_size"] > 1]
        return frame[["group", "group_size", "class_name", "path"]].sort_values(["group", "path"], ignore_index=True)

    def score_planted(self, copies_csv: str | os.PathLike) -> dict:
        """On data with known copies (the demo's ``frame_copies.csv``: path, copy_of, relative to its folder):
        how many planted copies the audit put in their frame's group, and how many of the pairs it found
        join images of different frames (false pairs)."""
        root = Path(copies_csv).parent
        planted = pd.read_csv(copies_csv)
        planted = planted[planted["path"].str.startswith("train/")]
        row = {Path(p).resolve(): i for i, p in enumerate(self.index["path"])}
        frame_of = np.arange(len(self.index))  # each image's drawn frame (a copy: the frame it copies)
        known = [(row.get((root / a).resolve()), row.get((root / b).resolve())) for a, b in
                 zip(planted["path"], planted["copy_of"])]
        known = [(a, b) for a, b in known if a is not None and b is not None]
        for a, b in known:
            frame_of[a] = b
        found = sum(self.groups[a] == self.groups[b] for a, b in known)
        false = int((frame_of[self.pairs["a"]] != frame_of[self.pairs["b"]]).sum())
        return {"planted_copies": len(known), "found_with_their_frame": int(found),
                "pairs_found": len(self.pairs), "false_pairs": false}


def audit_table(record: dict) -> pd.DataFrame:
    """The audit under each split side by side (``record``: ``study.near_duplicate_audit``'s), with the hash,
    the threshold and, on the demo data, the score against the planted copies (the same under both splits)."""
    rows = {"hash": "hash", "near-duplicates: at most this many bits apart": "max_distance_bits",
            "training images": "training_images", "near-duplicate pairs": "near_duplicate_pairs",
            "pairs joining two classes (likely false matches)": "pairs_joining_classes",
            "near-duplicate groups (2 or more images)": "groups", "images in those groups": "images_in_groups",
            "largest group": "largest_group",
            "groups with more than one class (holding a likely false match)": "groups_with_several_classes",
            "groups on both sides of the split": "groups_across_split", "validation images": "val_images",
            "validation images with a near-duplicate in training": "val_images_with_near_duplicate_in_train",
            "test images": "test_images",
            "test images with a near-duplicate in training": "test_images_with_near_duplicate_in_train"}
    planted = {"planted copies (demo data)": "planted_copies",
               "planted copies found in their frame's group": "found_with_their_frame",
               "pairs found between different frames (false pairs)": "false_pairs"}
    columns = {}
    for split in ("random", "grouped"):
        values = {**record[split], **record.get("planted", {})}
        columns[f"{split} split"] = [values.get(key) for key in [*rows.values(), *planted.values()]]
    table = pd.DataFrame(columns, index=[*rows, *planted])
    return table.dropna(how="all")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 group``, ``2 groups``: a count with its noun."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def describe(summary: dict, split: str) -> str:
    """The audit in a few lines of words, for the notebooks: a pair that joins two classes is said to be
    likely a false match (a copy keeps its class)."""
    s = summary
    lines = [f"{s['hash']}; near-duplicates: at most {s['max_distance_bits']} bits apart.",
             f"training images: {s['training_images']:,}; {plural(s['groups'], 'group')} of near-duplicates "
             f"{'holds' if s['groups'] == 1 else 'hold'} {s['images_in_groups']:,} of them (largest "
             f"{s['largest_group']}; {s['groups_with_several_classes']} with more than one class)."]
    across = s.get("pairs_joining_classes", 0)
    if across:
        lines.append(f"{plural(across, 'pair')} of {s['near_duplicate_pairs']:,} "
                     f"{'joins' if across == 1 else 'join'} two different classes: likely "
                     f"{'a false match' if across == 1 else 'false matches'} (a copy of an image keeps its "
                     "class; two different images can come this close through a shared background).")
    twins = s["val_images_with_near_duplicate_in_train"]
    lines.append(f"the {split} split puts {plural(s['groups_across_split'], 'group')} on both sides: "
                 f"{twins:,} of {s['val_images']:,} validation images {'has' if twins == 1 else 'have'} a "
                 "near-duplicate in training.")
    if "test_images" in s:
        lines.append(f"test images with a near-duplicate in training: {s['test_images_with_near_duplicate_in_train']} "
                     f"of {s['test_images']}.")
    return "\n".join(lines)


def find_near_duplicates(index: pd.DataFrame, max_distance: int, test: pd.DataFrame | None = None,
                         cache: bool | str | os.PathLike = True, progress: bool = True) -> NearDuplicates:
    """Hash (or read the cached hashes of) every training image and, with ``test``, every test image;
    pair and group them (``cache`` as in ``image_hashes``)."""
    hashes = image_hashes(list(index["path"]), cache=cache, progress=progress)
    pairs = cached_pairs(hashes, max_distance, cache=cache)
    groups = group_ids(len(index), pairs)
    test_pairs = None
    if test is not None:
        test_hashes = image_hashes(list(test["path"]), cache=cache, progress=progress)
        test_pairs = cached_pairs(test_hashes, max_distance, others=hashes, cache=cache)
    return NearDuplicates(max_distance, index, groups, pairs, test, test_pairs)
