"""Scoring a classifier the way every report in glassjax does: on the clean test images and on
the same images each acted on by its own seeded random group element.

One protocol everywhere: ``transformed_test_set(x, group, seed=seed)`` draws the elements from
``jax.random.key(seed)``, so every model and every command sees the same moved images.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from glassjax.analysis import metrics
from glassjax.core import groups

__all__ = ["transformed_test_set", "robustness_group", "confusion", "scores", "classification_report"]


def transformed_test_set(x: np.ndarray, group: str | groups.Group, *, seed: int) -> np.ndarray:
    """Every image (N, H, W, C) acted on by its own seeded random element of ``group``."""
    group = groups.get(group)
    elements = groups.random_elements(group, x.shape[0], key=jax.random.key(seed))
    return np.asarray(jax.jit(groups.act_batch, static_argnums=0)(group, elements, x))


def robustness_group(image_shape: tuple[int, ...]) -> str:
    """The group used to perturb test sets of images (H, W, ...): D4 for square images, else the flip."""
    return "d4" if image_shape[0] == image_shape[1] else "flip"


def confusion(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts (num_classes, num_classes): rows the true class y (N,), columns the predicted one (N,)."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(y), np.asarray(predicted)), 1)
    return counts.tolist()


def scores(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, *, group: str, seed: int,
           num_classes: int) -> dict:
    """Accuracy and confusion of ``predict`` (images -> labels (N,)) on x (N, H, W, C), y (N,).

    Clean, and with every image acted on by its own seeded random element of ``group``.
    ``turned_changed`` counts images whose prediction changes when the image is turned by
    180 degrees: the turn that makes a 6 a 9.
    """
    clean = np.asarray(predict(x))
    moved = np.asarray(predict(transformed_test_set(x, group, seed=seed)))
    turned = np.asarray(predict(np.ascontiguousarray(x[:, ::-1, ::-1])))
    return {
        "accuracy": float(np.mean(clean == y)),
        "accuracy_transformed": float(np.mean(moved == y)),
        "turned_changed": int(np.sum(turned != clean)),
        "n_test": int(y.shape[0]),
        "confusion": confusion(y, clean, num_classes),
        "confusion_transformed": confusion(y, moved, num_classes),
    }


def classification_report(predict, features, x: np.ndarray, y: np.ndarray, *, seed: int, num_classes: int,
                          test_group: str | None = None) -> dict:
    """``scores`` under ``test_group`` (default ``robustness_group``) plus the class geometry of
    ``features(x)`` (images -> (N, D)): intra- and inter-class distance, Fisher ratio."""
    test_group = test_group or robustness_group(x.shape[1:3])
    geometry = metrics.separability(np.asarray(features(x)).reshape(x.shape[0], -1), y, num_classes=num_classes)
    return dict(
        scores(predict, x, y, group=test_group, seed=seed, num_classes=num_classes),
        test_group=test_group,
        intra_class_distance=float(geometry["intra_class_distance"]),
        inter_class_distance=float(geometry["inter_class_distance"]),
        fisher_ratio=float(geometry["fisher_ratio"]),
    )
