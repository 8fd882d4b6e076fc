"""The probe's two figures as PNG bytes (matplotlib's Agg canvas through ``Figure``: no pyplot).

  reconstruction_grid(samples, rows)   one row of images per autoencoder under the originals
  matrix_heatmap(matrix, rows, columns)  M[A][B] as a heat map with its values written in
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

__all__ = ["reconstruction_grid", "matrix_heatmap"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no metadata: same numbers, same bytes
    return buffer.getvalue()


def reconstruction_grid(samples: Mapping[str, np.ndarray], rows: Sequence[str]) -> bytes:
    """samples["original"] and samples[row] (k, H, W, C) for each row: one line of k images each, every
    image on the originals' grey scale clipped to [0, 1] (values outside show as black or white)."""
    lines = ["original", *rows]
    k = samples["original"].shape[0]
    fig = _figure(0.8 * k + 1.4, 0.8 * len(lines) + 0.3)
    axes = fig.subplots(len(lines), k, squeeze=False)
    for i, line in enumerate(lines):
        for j in range(k):
            ax = axes[i, j]
            image = np.clip(np.asarray(samples[line][j], np.float32), 0, 1)
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(line, rotation=0, ha="right", va="center", fontsize=8)
    return _png(fig)


def matrix_heatmap(m: Mapping[str, Mapping[str, float]], rows: Sequence[str], columns: Sequence[str]) -> bytes:
    """M[row][column] (autoencoder tuned for row, read by column) as a heat map, values written in."""
    values = np.asarray([[m[r][c] for c in columns] for r in rows], np.float64)
    fig = _figure(1.0 * len(columns) + 2.2, 0.6 * len(rows) + 1.4)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=min(0.5, np.nanmin(values)), vmax=max(1.0, np.nanmax(values)))
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("classifier B (reads the reconstructions)")
    ax.set_ylabel("autoencoder tuned for A")
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if values[i, j] > 0.8 else "white")
    fig.colorbar(image, ax=ax, label="acc_B(recon A) / acc_B(original)")
    return _png(fig)
