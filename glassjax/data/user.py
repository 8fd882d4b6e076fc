"""A user's own data, opened by path and read in batches: ``open_path`` -> train and test sources.

  a folder of class folders    ImageFolder convention: ``root/<class>/*.png|jpg|jpeg|bmp``, or
                               ``root/train/<class>/...`` and ``root/test/<class>/...``
  an .npz                      x_train, y_train, x_test, y_test (or x, y); optional class_names
  a Hugging Face dataset       a folder written by ``save_to_disk`` (needs ``pip install glassjax[hf]``)
  parquet                      a .parquet file or a folder of them, with image and label columns

A set without its own test split gets the seeded stratified split of ``loader.stratified_split``
(TEST_FRACTION of each class to test). Pixels are never all read at once: ``open_path`` reads
labels and image headers only (so a wrong layout, a file that is no image, mixed sizes or an
unknown class fail at once, in one line), and the sources decode one batch at a time. The
image rules (channels, sizes, ``image_size``) are ``glassjax.data.images``'.

Each source is an ``IndexedSource``: ``source.shard(process_index, process_count)`` is one
process's share. Listing, the stratified split and the shares depend only on the files and the
seed, so every process computes the same ones.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from glassjax.core.progress import progress
import glassjax.data.images as images
import glassjax.data.readers as readers
import glassjax.data.tables as tables
from glassjax.data.loader import Dataset, stratified_split
from glassjax.data.sources import IndexedSource

__all__ = ["KINDS", "TEST_FRACTION", "UserData", "is_user_path", "kind_of", "open_path", "load_path", "find"]

KINDS = {"folder": "image folder", "npz": ".npz arrays", "hf": "Hugging Face dataset (save_to_disk)",
         "parquet": "parquet"}
TEST_FRACTION = 0.3
SUFFIXES = (".npz", ".parquet")


class UserData(NamedTuple):
    """An opened user data set: train and test sources of one reader's rules, and how it was split
    ("given": by the files; "seeded": the seeded stratified split)."""

    name: str
    kind: str
    train: IndexedSource
    test: IndexedSource
    class_names: tuple[str, ...]
    split: str


def is_user_path(name: str) -> bool:
    """Whether the data-set name ``name`` names a path (an existing one, or one that looks like a
    path: a separator or an .npz / .parquet suffix) rather than a bundled or TFDS set."""
    return isinstance(name, str) and (os.path.exists(name) or os.sep in name or name.lower().endswith(SUFFIXES))


def kind_of(path: str, where: str) -> str:
    """"folder", "npz", "hf" or "parquet" by what ``path`` is; ValueError when it is none of them."""
    if not os.path.exists(path):
        raise ValueError(f"{where}: expected an image folder, an .npz, a parquet file or a Hugging Face dataset folder, "
                         f"got {path} (no such file or folder)")
    if os.path.isfile(path):
        lowered = path.lower()
        if lowered.endswith(".npz"):
            return "npz"
        if lowered.endswith(".parquet"):
            return "parquet"
        raise ValueError(f"{where}: expected a folder, an .npz or a .parquet file, got the file {path}")
    if tables.is_hf_folder(path):
        return "hf"
    return _first_file_kind(path)


def _first_file_kind(path: str) -> str:
    """"parquet" when the first data file found walking ``path`` (sorted) is a .parquet, else "folder"
    (stops at the first image or parquet file: cheap in a folder of a million images)."""
    for parent, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".parquet") and not name.startswith("."):
                return "parquet"
            if images.is_image_file(name):
                return "folder"
    return "folder"


def _split_indices(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return stratified_split(labels, max(1, round(TEST_FRACTION * labels.size)), seed=seed)


def _scan(items, total: int, where: str) -> tuple[list[tuple[int, int]], set[str]]:
    sizes, modes = [], set()
    for size, mode in progress(items, total=total, desc="reading image headers", unit="img"):
        sizes.append(size)
        modes.add(mode)
    return sizes, modes


def _open_folder(path: str, where: str, size: tuple[int, int] | None, seed: int, batch_size: int):
    splits = readers.image_folder(path, where)
    files = [f for split in splits.values() for f in split[0]]
    class_names = tuple(sorted(set(splits["train" if "train" in splits else "all"][1])))
    lookup = {name: i for i, name in enumerate(class_names)}
    labels = np.asarray([lookup[c] for split in splits.values() for c in split[1]], np.int32)
    sizes, modes = _scan((images.scan(f, f, where) for f in files), len(files), where)
    shape = images.check_sizes(sizes, lambda i: files[i], where, size)
    reader = readers.FolderReader(path, files, labels, class_names, images.channels_for(modes), shape)
    if "all" in splits:
        train, test = _split_indices(labels, seed)
        split = "seeded"
    else:
        n_train = len(splits["train"][0])
        train, test, split = np.arange(n_train), np.arange(n_train, labels.size), "given"
    return IndexedSource(reader, train, batch_size=batch_size), IndexedSource(reader, test, batch_size=batch_size), class_names, split


def _split_sources(split_readers: dict, class_names, seed: int, batch_size: int):
    """(train, test, class_names, how): the readers' given train/test splits, or one reader ("all")
    split by the seeded stratified rule."""
    if "all" in split_readers:
        reader = split_readers["all"]
        train, test = _split_indices(reader.labels, seed)
        return (IndexedSource(reader, train, batch_size=batch_size), IndexedSource(reader, test, batch_size=batch_size),
                class_names, "seeded")
    return (IndexedSource(split_readers["train"], batch_size=batch_size),
            IndexedSource(split_readers["test"], batch_size=batch_size), class_names, "given")


def _open_npz(path: str, where: str, size: tuple[int, int] | None, seed: int, batch_size: int):
    members = readers.npz_members(path, where)
    if {"x_train", "y_train", "x_test", "y_test"} <= set(members):
        pairs = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    elif {"x", "y"} <= set(members):
        pairs = {"all": ("x", "y")}
    else:
        raise ValueError(f"{where}: expected arrays x_train, y_train, x_test, y_test (or x, y) in {path}, got {sorted(members)}")
    raw, shapes = {}, {}
    for split, (xk, yk) in pairs.items():
        x, y = members[xk], members[yk]
        if len(x.shape) not in (3, 4) or not (x.dtype == np.uint8 or x.dtype.kind == "f"):
            raise ValueError(f"{where}: expected {xk} images (N, H, W) or (N, H, W, C), uint8 or float in [0, 1], "
                             f"in {path}, got shape {x.shape} and dtype {x.dtype}")
        if len(y.shape) != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "iuf":
            raise ValueError(f"{where}: expected {yk} int labels ({x.shape[0]},) for {xk} in {path}, got shape {y.shape} "
                             f"and dtype {y.dtype}")
        raw[split] = y.whole()
        shapes[xk] = tuple(x.shape[1:3]) + ((x.shape[3] if len(x.shape) == 4 else 1),)
    (k0, s0), *rest = shapes.items()
    for k, s in rest:
        if s[2] != s0[2] or (size is None and s != s0):
            raise ValueError(f"{where}: images differ in shape: {path}:{k0} is {s0}, {path}:{k} is {s} (H, W, C)"
                             + ("; resize them with --image-size H[,W] (image_size=)" if s[2] == s0[2] else ""))
    names = None
    if "class_names" in members:
        names = tuple(str(n) for n in members["class_names"].whole().ravel())
    labels, class_names = tables.encode_labels(raw, names, where, path)
    split_readers = {split: readers.NpzReader(path, members[xk], labels[split], class_names, size)
                     for split, (xk, _) in pairs.items()}
    return _split_sources(split_readers, class_names, seed, batch_size)


def _open_table(path: str, kind: str, where: str, size: tuple[int, int] | None, seed: int, batch_size: int):
    splits = tables.hf_splits(path, where) if kind == "hf" else tables.parquet_splits(path, where)
    if "all" not in splits:
        if "train" not in splits:
            raise ValueError(f"{where}: expected a train split in {path}, got splits {sorted(splits)}")
        splits = {s: splits[s] for s in ("train", "test") if s in splits}
        if "test" not in splits:
            splits = {"all": splits["train"]}
    first = next(iter(splits.values()))
    labels, class_names = tables.encode_labels({s: rows.raw_labels() for s, rows in splits.items()},
                                               first.class_names, where, path)
    scanned: list[tuple[str, int]] = []

    def headers():
        for s, rows in splits.items():
            for row, header_size, mode in rows.scan(where):
                scanned.append((s, row))
                yield header_size, mode

    sizes, modes = _scan(headers(), sum(rows.num_rows for rows in splits.values()), where)
    shape = images.check_sizes(sizes, lambda i: f"{splits[scanned[i][0]].source} row {scanned[i][1]}", where, size)
    channels = images.channels_for(modes)
    split_readers = {s: tables.TableReader(path, rows, labels[s], class_names, channels, shape) for s, rows in splits.items()}
    return _split_sources(split_readers, class_names, seed, batch_size)


def open_path(path: str, *, seed: int = 0, image_size: Any = None, batch_size: int = 1024,
              where: str = "load") -> UserData:
    """The user data set at ``path`` as train and test ``IndexedSource``s (nothing decoded yet).

    image_size: None, H or (H, W): every image resized to it (bilinear), else all images must
    share one size. seed: the stratified split of a set without a test split.
    """
    path = os.fspath(path)
    size = images.image_size(image_size, f"{where}: image_size")
    kind = kind_of(path, where)
    if kind == "folder":
        opened = _open_folder(path, where, size, seed, batch_size)
    elif kind == "npz":
        opened = _open_npz(path, where, size, seed, batch_size)
    else:
        opened = _open_table(path, kind, where, size, seed, batch_size)
    train, test, class_names, split = opened
    if len(np.unique(train.labels)) < 2:
        raise ValueError(f"{where}: expected at least 2 classes in the train split of {path}, got {len(np.unique(train.labels))}")
    return UserData(path, kind, train, test, class_names, split)


def load_path(path: str, *, seed: int = 0, image_size: Any = None) -> Dataset:
    """The user data set at ``path`` in memory (``open_path``, then every batch read)."""
    opened = open_path(path, seed=seed, image_size=image_size)
    x_train, y_train = opened.train.arrays()
    x_test, y_test = opened.test.arrays()
    return Dataset(opened.name, x_train, y_train, x_test, y_test, opened.class_names)


# --- listing --------------------------------------------------------------------------------------------


def _describe(path: str) -> str:
    """One line about the set at ``path`` without decoding pixels; ValueError when it is none."""
    kind = kind_of(path, "datasets")
    if kind == "folder":
        splits = readers.image_folder(path, "datasets")
        files = [f for split in splits.values() for f in split[0]]
        classes = sorted(set(splits["train" if "train" in splits else "all"][1]))
        (h, w), mode = images.scan(files[0], files[0], "datasets")
        parts = ", ".join(f"{s} {len(v[0])}" for s, v in splits.items() if s != "all") or "split seeded"
        return (f"image folder: {len(files)} images, {len(classes)} classes ({_names(classes)}), {parts}; "
                f"first image {h}x{w} {mode}")
    if kind == "npz":
        members = readers.npz_members(path, "datasets")
        arrays = ", ".join(f"{k} {m.shape} {m.dtype}" for k, m in sorted(members.items()) if k.startswith(("x", "y")))
        return f".npz: {arrays}"
    if kind == "hf":
        try:
            splits = tables.hf_splits(path, "datasets")
        except ValueError as err:
            return f"Hugging Face dataset saved to disk (not readable here: {str(err).split(': ', 1)[1]})"
        return "Hugging Face dataset saved to disk: " + ", ".join(f"{s} {r.num_rows} rows" for s, r in splits.items())
    splits = tables.parquet_splits(path, "datasets")
    return "parquet: " + ", ".join(f"{s} {r.num_rows} rows in {len(r.files)} files" for s, r in splits.items())


def _names(classes: list[str]) -> str:
    return ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")


def find(path: str) -> dict[str, str]:
    """What ``glassjax datasets --path`` lists: path -> one-line description of the data set at
    ``path``, or of each one directly inside it when ``path`` itself is none."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"--path: expected an existing file or folder, got {path}")
    try:
        return {path: _describe(path)}
    except ValueError as err:
        if os.path.isfile(path):
            return {path: f"not readable: {str(err).split(': ', 1)[1]}"}
        problem = str(err).split(": ", 1)[1]
    found = {}
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.name.lower().endswith(SUFFIXES):
            try:
                found[entry.path] = _describe(entry.path)
            except ValueError:
                continue
    return found or {path: f"no data set found ({problem})"}
