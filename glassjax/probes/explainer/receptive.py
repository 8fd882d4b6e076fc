"""Where in the image each unit of a spatial layer looks: the centre of its receptive field, in
pixel coordinates (row, column) of the data set's image.

  alexnet_centres   AlexNet's geometry, exact: each conv (k, stride s, padding p) maps an output
                    centre c to s c - p + (k - 1) / 2, each 3x3/2 max pool c to 2 c + 1; the
                    network's input (S x S, a bilinear resize with half-pixel centres) maps u to
                    (u + 0.5) H / S - 0.5. The centre may lie outside the image where the padding is.
  window_centres    a valid k x k correlation: unit (i, j) looks at (i + (k - 1) / 2, j + (k - 1) / 2)
  grid_centres      any other layer: units spread evenly over the image, (i + 0.5) H / h - 0.5

Gradient-based centres were tried and left out: a trained network's mean |d unit / d image| for
AlexNet's conv4 (receptive field wider than the 64-pixel input) peaks near the image centre for
every unit, which would make every filter look stable.
"""
from __future__ import annotations

import numpy as np

from glassjax.systems.alexnet import model as alexnet

__all__ = ["alexnet_centres", "grid_centres", "window_centres"]


def _axis(n_out: int, layer: str, size: int, image: int) -> np.ndarray:
    c = np.arange(n_out, dtype=np.float64)
    at = alexnet.CONV_NAMES.index(layer)
    for index in range(at, -1, -1):
        k, s, p, pool = alexnet.CONV_GEOMETRY[index]
        if index < at and pool:
            c = 2 * c + 1  # the 3x3/2 max pool after conv ``index``
        c = s * c - p + (k - 1) / 2
    return (c + 0.5) * image / size - 0.5


def alexnet_centres(layer: str, h: int, w: int, size: int, image_shape) -> np.ndarray:
    """Centres (h, w, 2) of AlexNet's ``layer`` (h x w units, input resized to ``size``) on images of
    ``image_shape`` (H, W, ...)."""
    if layer not in alexnet.CONV_NAMES:
        raise ValueError(f"explainer.alexnet_centres: expected a conv layer {alexnet.CONV_NAMES}, got {layer!r}")
    rows, cols = _axis(h, layer, size, image_shape[0]), _axis(w, layer, size, image_shape[1])
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), -1)


def window_centres(h: int, w: int, k: int) -> np.ndarray:
    """Centres (h, w, 2) of the k x k windows of a valid correlation."""
    gi, gj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([gi, gj], -1).astype(np.float64) + (k - 1) / 2.0


def grid_centres(h: int, w: int, image_shape) -> np.ndarray:
    """Centres (h, w, 2) of h x w units spread evenly over images of ``image_shape`` (H, W, ...)."""
    rows = (np.arange(h) + 0.5) * image_shape[0] / h - 0.5
    cols = (np.arange(w) + 0.5) * image_shape[1] / w - 0.5
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), -1)
