"""The influence figure: each high-loss test image beside its most helpful and most harmful
training images (``analysis.influence``). PNG bytes, matplotlib's Agg canvas, no pyplot."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from glassjax.report.figures import _figure, _png

__all__ = ["influence_figure"]


def _show(ax, image: np.ndarray, title: str, colour: str | None = None) -> None:
    image = np.asarray(image, np.float32)
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_title(title, fontsize=7, color=colour or "black")
    ax.set_xticks([])
    ax.set_yticks([])
    if colour:
        for spine in ax.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(2)


def influence_figure(entries: Sequence[Mapping], x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     class_names: Sequence[str], *, top: int = 5) -> bytes:
    """One row per entry (an ``analysis.influence.influence`` result: test_index, label, loss,
    helpful, harmful): the test image, its ``top`` most helpful training images (green) and its
    ``top`` most harmful (red), each titled with its class. Images (N, H, W, C) in [0, 1]."""
    if not entries:
        raise ValueError("influence_figure: expected at least one entry, got none")
    top = max(1, min(top, min(len(e["helpful"]) for e in entries), min(len(e["harmful"]) for e in entries)))
    columns = 1 + 2 * top
    fig = _figure(1.0 * columns + 0.5, 1.25 * len(entries) + 0.4)
    axes = fig.subplots(len(entries), columns, squeeze=False)
    for row, entry in zip(axes, entries):
        i = int(entry["test_index"])
        _show(row[0], x_test[i], f"test {i}: {class_names[int(entry['label'])]}\nloss {entry['loss']:.2f}")
        for k, j in enumerate(entry["helpful"][:top]):
            _show(row[1 + k], x_train[j], f"helpful {j}\n{class_names[int(y_train[j])]}", "#1b7837")
        for k, j in enumerate(entry["harmful"][:top]):
            _show(row[1 + top + k], x_train[j], f"harmful {j}\n{class_names[int(y_train[j])]}", "#b2182b")
    fig.suptitle("highest-loss test images with their most helpful (green) and most harmful (red) training images",
                 fontsize=9)
    return _png(fig)
