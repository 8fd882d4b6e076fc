"""Location instability (Zhang et al. 2018; Interpretable CNNs, 2018): how far a filter's part moves.

For each filter: on each image, its peak unit, placed in the image at that unit's receptive-field
centre; the M images with the highest peak activation; for each landmark k the distance d_k from
the peak to the landmark, divided by the image diagonal; the filter's instability is the mean over
landmarks of the standard deviation of d_k over those M images. A layer's is the mean over its
filters. Lower is better. A filter that fires (peak > 0) on fewer than M of the images is left out
(its argmax is the first unit on the others, which would look perfectly stable).
"""
from __future__ import annotations

import numpy as np

__all__ = ["filter_instability", "peaks", "summary"]


def peaks(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each filter's peak on each image: values (N, F) and flat positions (N, F) of maps (N, h, w, F)."""
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"explainer.peaks: expected maps (N, h, w, F), got shape {maps.shape}")
    flat = maps.reshape(maps.shape[0], -1, maps.shape[3])
    where = np.argmax(flat, axis=1)
    return np.take_along_axis(flat, where[:, None], axis=1)[:, 0], where


def filter_instability(values: np.ndarray, positions: np.ndarray, centres: np.ndarray, landmarks: np.ndarray,
                       image_shape, *, top: int) -> np.ndarray:
    """Instability (F,) float64 of each filter, NaN where it fires on fewer than ``top`` images.

    values, positions (N, F) from ``peaks``; centres (h, w, 2) image coordinates of each unit;
    landmarks (N, K, 2); image_shape (H, W, ...) gives the diagonal.
    """
    n, f = values.shape
    if positions.shape != (n, f) or landmarks.ndim != 3 or landmarks.shape[0] != n or landmarks.shape[2] != 2:
        raise ValueError(f"explainer.filter_instability: expected values, positions (N, F) and landmarks (N, K, 2), "
                         f"got {values.shape}, {positions.shape}, {landmarks.shape}")
    if not 2 <= top <= n:
        raise ValueError(f"explainer.filter_instability: expected top in 2..{n} (the images), got {top}")
    diagonal = float(np.hypot(image_shape[0], image_shape[1]))
    points = centres.reshape(-1, 2)[positions]  # (N, F, 2)
    out = np.full(f, np.nan)
    for j in range(f):
        order = np.argsort(-values[:, j], kind="stable")[:top]
        if values[order[-1], j] <= 0:
            continue
        d = np.linalg.norm(points[order, j][:, None, :] - landmarks[order], axis=-1) / diagonal  # (top, K)
        out[j] = float(np.mean(np.std(d, axis=0)))
    return out


def summary(per_filter: np.ndarray) -> dict:
    """{instability: mean over measured filters, filters, measured}."""
    measured = np.isfinite(per_filter)
    mean = float(np.mean(per_filter[measured])) if measured.any() else float("nan")
    return {"instability": mean, "filters": int(per_filter.size), "measured": int(measured.sum())}
