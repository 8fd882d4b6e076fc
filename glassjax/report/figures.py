"""The report's figures, each drawn as PNG bytes (matplotlib's Agg canvas through
``matplotlib.figure.Figure``: no pyplot, no global backend)."""
from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

from glassjax.analysis import scoring
from glassjax.core import groups

__all__ = [
    "element_label", "system_colours", "filters_figure", "orbit_figure", "scatter_figure", "layers_figure",
    "accuracy_figure", "confusion_figure", "make_figures",
]

# The subject (first system) green, then purple, orange, blue, ...: colour-blind-safe, print-safe.
_PALETTE = ("#1b7837", "#762a83", "#e08214", "#2166ac", "#b2182b", "#4d4d4d", "#8c510a", "#01665e")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # No software/date metadata: the same numbers give the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _show(ax, image: np.ndarray) -> None:
    """Draw an (H, W, 1 or 3) image in [0, 1]."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _title(titles: Mapping[str, str] | None, name: str) -> str:
    return (titles or {}).get(name, name)


def system_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per system, in order (the first system, the report's subject, green)."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def element_label(group: groups.Group | str, index: int) -> str:
    """A short name of element ``index``: 'identity', 'turn 90°', 'flip, turn 180°', 'shift (1, 0)/4'."""
    group = groups.get(group)
    params = group.elements[index]
    if group.name.startswith("rot:"):
        angle = params[0] * 360.0 / group.order
        return "identity" if angle == 0 else f"turn {angle:g}°"
    if group.name.startswith("trans:"):
        return "identity" if params == (0, 0) else f"shift ({params[0]}, {params[1]})/{group.name[6:]}"
    turns, flipped = params
    parts = (["flip"] if flipped else []) + ([f"turn {90 * turns}°"] if turns else [])
    return ", ".join(parts) or "identity"


# --- figures -------------------------------------------------------------------------------


def filters_figure(banks: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]]) -> bytes:
    """Filters as images labelled with their class: one row per (title, [(image (k, k, C), class name)])."""
    banks = [(title, list(images)) for title, images in banks if images]
    if not banks:
        raise ValueError("filters_figure: expected at least one non-empty filter bank, got none")
    columns = min(12, max(len(images) for _, images in banks))
    heights = [-(-len(images) // columns) for _, images in banks]
    fig = _figure(1.1 * columns + 0.4, sum(1.3 * h + 0.35 for h in heights))
    subfigures = np.atleast_1d(fig.subfigures(len(banks), 1, height_ratios=heights))
    for sub, (title, images), rows in zip(subfigures, banks, heights):
        sub.suptitle(title, x=0.01, ha="left", fontsize=10)
        for i, (image, label) in enumerate(images):
            ax = sub.add_subplot(rows, columns, i + 1)
            _show(ax, image)
            ax.set_title(label, fontsize=8)
    return _png(fig)


def orbit_figure(images: np.ndarray, labels: Sequence[str], predictions: Mapping[str, Sequence[str]]) -> bytes:
    """One input's orbit, images (|G|, H, W, C) titled by element, with each system's predicted class below
    (predictions: display name -> |G| class names)."""
    n = images.shape[0]
    columns = min(n, 8)
    rows = -(-n // columns)
    fig = _figure(1.5 * columns + 0.4, (1.8 + 0.15 * len(predictions)) * rows)
    for i in range(n):
        ax = fig.add_subplot(rows, columns, i + 1)
        _show(ax, images[i])
        ax.set_title(labels[i], fontsize=8)
        caption = [f"{model}: {names[i]}" for model, names in predictions.items()]
        ax.set_xlabel("\n".join(caption), fontsize=7)
    return _png(fig)


def _pca_2d(clean: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets (N, D) projected on the top two principal axes of ``clean``."""
    clean = clean.reshape(clean.shape[0], -1).astype(np.float64)
    moved = moved.reshape(moved.shape[0], -1).astype(np.float64)
    mean = clean.mean(axis=0)
    _, _, vt = np.linalg.svd(clean - mean, full_matrices=False)
    axes = vt[:2].T
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    return (clean - mean) @ axes, (moved - mean) @ axes


def scatter_figure(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], y: np.ndarray, class_names: Sequence[str]) -> bytes:
    """2-D PCA per panel (title, features of the images (N, D), of the moved images (N, D)), coloured by class y (N,)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    fig = _figure(4.6 * len(panels), 4.4)
    for i, (title, clean, moved) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        p_clean, p_moved = _pca_2d(clean, moved)
        for c, name in enumerate(class_names):
            mask = y == c
            colour = cmap(c % cmap.N)
            ax.scatter(p_clean[mask, 0], p_clean[mask, 1], s=18, color=colour, label=f"{name}")
            ax.scatter(p_moved[mask, 0], p_moved[mask, 1], s=22, color=colour, marker="x", linewidths=0.8,
                       label=f"{name}, moved")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    if len(class_names) <= 12:
        ax.legend(fontsize=7, loc="best")
    return _png(fig)


def layers_figure(rows: Sequence[Mapping], titles: Mapping[str, str] | None = None) -> bytes:
    """Per-layer bars of invariance error, equivariance error and Fisher ratio, coloured by system
    (``row["system"]``; titles: system -> display name)."""
    from matplotlib.patches import Patch

    names = [r["name"] for r in rows]
    owners = [r.get("system", r["name"]) for r in rows]
    palette = system_colours(owners)
    colours = [palette[o] for o in owners]
    panels = (("invariance_error", "invariance error (0 = invariant)"),
              ("equivariance_error", "equivariance error (0 = equivariant)"),
              ("fisher_ratio", "Fisher ratio tr S_b / tr S_w (higher separates)"))
    fig = _figure(13.0, 0.34 * len(rows) + 1.4)
    positions = np.arange(len(rows))[::-1]
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        values = np.asarray([float(r[key]) for r in rows])
        # Log scale: exact symmetry shows as ~1e-8 beside AlexNet's ~0.1, which a linear axis hides.
        shown = np.clip(np.nan_to_num(values, nan=1e-9, posinf=1e9), 1e-9, None)
        ax.barh(positions, shown, color=colours)
        ax.set_xscale("log")
        ax.set_xlim(1e-9 if key != "fisher_ratio" else shown.min() / 3, shown.max() * 30)
        for p, v, s in zip(positions, values, shown):
            ax.text(s * 1.15, p, f"{v:.2g}", va="center", fontsize=7)
        ax.set_yticks(positions)
        ax.set_yticklabels(names if i == 0 else [], fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.legend(handles=[Patch(color=c, label=_title(titles, o)) for o, c in palette.items()],
               loc="outside lower center", ncols=min(len(palette), 4), fontsize=8)
    return _png(fig)



def _scored(accuracy: Mapping[str, Mapping | None]) -> dict[str, Mapping]:
    return {name: scores for name, scores in accuracy.items() if scores is not None}


def accuracy_figure(accuracy: Mapping[str, Mapping | None], group: str, titles: Mapping[str, str] | None = None) -> bytes:
    """Test accuracy clean and under random ``group`` elements, grouped by system (titles: system -> display name)."""
    scored = _scored(accuracy)
    fig = _figure(1.9 * len(scored) + 2.0, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(scored))
    for offset, key, colour, label in ((-0.2, "accuracy", "#4393c3", "clean"),
                                      (0.2, "accuracy_transformed", "#d6604d", f"random {group} element")):
        values = [scores[key] for scores in scored.values()]
        ax.bar(x + offset, values, width=0.38, color=colour, label=label)
        for xi, v in zip(x, values):
            ax.text(xi + offset, v + 0.01, f"{v:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([_title(titles, name) for name in scored], fontsize=8)
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("test accuracy")
    fig.legend(loc="outside upper center", ncols=2, fontsize=8)
    return _png(fig)


def confusion_figure(accuracy: Mapping[str, Mapping | None], class_names: Sequence[str], group: str,
                     titles: Mapping[str, str] | None = None) -> bytes:
    """Confusion matrices (rows true, columns predicted) per system, clean and under random ``group`` elements."""
    scored = _scored(accuracy)
    k = len(class_names)
    side = min(1.2 + 0.35 * k, 8.0)
    fig = _figure(side * len(scored) + 0.5, 2 * side + 0.6)
    ticks = k <= 12
    for j, (name, scores) in enumerate(scored.items()):
        for i, (key, kind) in enumerate((("confusion", "clean"), ("confusion_transformed", f"random {group}"))):
            ax = fig.add_subplot(2, len(scored), i * len(scored) + j + 1)
            counts = np.asarray(scores[key])
            ax.imshow(counts, cmap="Blues", vmin=0)
            if ticks:
                for (r, c), v in np.ndenumerate(counts):
                    ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                            color="white" if v > counts.max() / 2 else "black")
            ax.set_xticks(range(k) if ticks else [])
            ax.set_yticks(range(k) if ticks else [])
            if ticks:
                ax.set_xticklabels(class_names, fontsize=7, rotation=90 if k > 4 else 0)
                ax.set_yticklabels(class_names, fontsize=7)
            ax.set_title(f"{_title(titles, name)}\n{kind}", fontsize=8)
    return _png(fig)



def make_figures(result: Mapping, *, dataset, fitted: Mapping, seed: int = 0) -> dict[str, bytes]:
    """Every figure of the report as {file name: PNG bytes}.

    result: ``comparison.run``'s; fitted: system name -> ``comparison.Fitted``. Filters are drawn
    for every system that has them, predictions for every scored system, and the scatter of
    each system's representation layer (``System.representation``).
    """
    from glassjax.analysis import comparison

    group = groups.get(result["group"])
    names = tuple(dataset.class_names)
    titles = {name: info["title"] for name, info in result["systems"].items()}
    figures = {}
    shown: dict[bytes, tuple[list[str], str, list]] = {}  # systems that share a bank (same filters) share its row
    for name, f in fitted.items():
        if f.system.filter_images is not None:
            for title, images in f.system.filter_images(f.params, names):
                key = b"".join(np.asarray(image).tobytes() + label.encode() for image, label in images)
                shown.setdefault(key, ([], title, list(images)))[0].append(name)
    banks = [(f"{', '.join(owners)}: {title}", images) for owners, title, images in shown.values()]
    if any(images for _, images in banks):
        figures["filters.png"] = filters_figure(banks)

    x = dataset.x_test
    scored = [name for name in fitted if result["accuracy"].get(name) is not None]
    orbit = np.asarray(groups.orbit(group, x[:1]))[0]
    predictions = {name: [names[int(c)] for c in comparison.predictor(fitted[name])(orbit)] for name in scored}
    labels = [element_label(group, i) for i in range(group.order)]
    figures["orbit.png"] = orbit_figure(orbit, labels, predictions)

    moved = scoring.transformed_test_set(x, group, seed=seed)
    panels = []
    for name, f in fitted.items():
        layer = f.system.representation(f.params)
        features = comparison.layer_function(f, layer)
        panels.append((f"{titles[name]}: {layer}", features(x), features(moved)))
    figures["scatter.png"] = scatter_figure(panels, dataset.y_test, names)
    figures["layers.png"] = layers_figure(result["layers"], titles)
    if _scored(result["accuracy"]):
        figures["accuracy.png"] = accuracy_figure(result["accuracy"], group.name, titles)
        figures["confusion.png"] = confusion_figure(result["accuracy"], names, group.name, titles)
    return figures
