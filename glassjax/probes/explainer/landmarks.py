"""Landmarks the location-instability metric measures distances to, in pixel coordinates (row, column).

  lfw_faces   the crops are aligned, so the landmarks are fixed canonical positions, read off the
              mean of the 100 face images (25 x 25): eyes, nose (between the nostrils), mouth;
              scaled with the image for other sizes. Only face images count (non-faces have none).
  digits      (mnist5k, digits) per image, from the ink (pixels > 0.5): its top end (mean column
              of the topmost ink row), its bottom end, and its centre of mass.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassjax.core import arrays

__all__ = ["FACE_LANDMARKS", "FACE_SIZE", "Landmarks", "face_landmarks", "for_dataset", "stroke_landmarks"]

FACE_SIZE = 25
# (row, column) on the 25 x 25 mean face of scikit-image's lfw_subset.
FACE_LANDMARKS = {"left eye": (8.0, 6.0), "right eye": (8.0, 14.5), "nose": (14.0, 10.0), "mouth": (17.5, 11.0)}
STROKE_NAMES = ("top end", "bottom end", "centre of mass")
INK = 0.5


class Landmarks(NamedTuple):
    """points (N, K, 2) (row, column) per image; names (K,); rows (N,) bool: the images that have them."""

    points: np.ndarray
    names: tuple[str, ...]
    rows: np.ndarray


def face_landmarks(n: int, image_shape) -> np.ndarray:
    """The canonical face landmarks for n images of ``image_shape`` (H, W, ...): (n, 4, 2)."""
    h, w = image_shape[:2]
    pts = np.array(list(FACE_LANDMARKS.values()), np.float64)
    scale = np.array([h / FACE_SIZE, w / FACE_SIZE])
    pts = (pts + 0.5) * scale - 0.5  # pixel centres scale, not pixel corners
    return np.broadcast_to(pts, (n,) + pts.shape).copy()


def stroke_landmarks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top end, bottom end and centre of mass of the ink of images x (N, H, W, 1):
    points (N, 3, 2) and whether each image has ink (N,)."""
    x = np.asarray(arrays.as_images(x, "explainer.stroke_landmarks", grey=True))[..., 0]
    ink = x > INK
    has = ink.any(axis=(1, 2))
    out = np.zeros((x.shape[0], 3, 2))
    rows, cols = np.meshgrid(np.arange(x.shape[1]), np.arange(x.shape[2]), indexing="ij")
    for i in np.flatnonzero(has):
        r, c = np.nonzero(ink[i])
        out[i, 0] = (r.min(), c[r == r.min()].mean())
        out[i, 1] = (r.max(), c[r == r.max()].mean())
        mass = x[i] * ink[i]
        out[i, 2] = ((mass * rows).sum() / mass.sum(), (mass * cols).sum() / mass.sum())
    return out, has


def for_dataset(name: str, x: np.ndarray, y: np.ndarray, class_names) -> Landmarks:
    """The landmarks of data set ``name``'s images x (N, H, W, C) with labels y (N,)."""
    if name == "lfw_faces":
        face = list(class_names).index("face")
        return Landmarks(face_landmarks(x.shape[0], x.shape[1:]), tuple(FACE_LANDMARKS), np.asarray(y) == face)
    if name in ("mnist5k", "digits"):
        points, has = stroke_landmarks(x)
        return Landmarks(points, STROKE_NAMES, has)
    raise ValueError(f"explainer landmarks: expected a data set with stated landmarks (lfw_faces, mnist5k, digits), "
                     f"got {name!r}")
