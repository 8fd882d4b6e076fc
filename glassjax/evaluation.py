"""Scoring a fitted classifier the way every report in glassjax does: clean and transformed."""
from __future__ import annotations

import jax
import numpy as np

from glassjax import groups, metrics


def transformed_test_set(x: np.ndarray, group: str | groups.Group, *, seed: int) -> np.ndarray:
    """Every image (N, H, W, C) acted on by its own seeded random element of ``group``."""
    group = groups.get(group)
    elements = groups.random_elements(group, x.shape[0], key=jax.random.PRNGKey(seed))
    return np.asarray(jax.jit(groups.act_batch, static_argnums=0)(group, elements, x))


def robustness_group(image_shape: tuple[int, ...]) -> str:
    """The group used to perturb test sets: D4 for square images, else the flip."""
    return "d4" if image_shape[0] == image_shape[1] else "flip"


def classification_report(predict, features, x: np.ndarray, y: np.ndarray, *, seed: int, test_group: str | None = None) -> dict:
    """Accuracy clean and under random group elements, plus the class geometry of ``features(x)``.

    predict: images -> labels (N,); features: images -> (N, D).
    """
    test_group = test_group or robustness_group(x.shape[1:3])
    x_moved = transformed_test_set(x, test_group, seed=seed)
    geometry = metrics.separability(features(x), y)
    return {
        "accuracy": float(np.mean(predict(x) == y)),
        "accuracy_transformed": float(np.mean(predict(x_moved) == y)),
        "test_group": test_group,
        "intra_class_distance": float(geometry["intra_class_distance"]),
        "inter_class_distance": float(geometry["inter_class_distance"]),
        "fisher_ratio": float(geometry["fisher_ratio"]),
    }
