"""The ``glassjax compare`` report: PNG figures and one self-contained HTML page.

``make_figures`` draws every figure as PNG bytes (matplotlib's Agg canvas through
``matplotlib.figure.Figure``: no pyplot, no global backend); ``render_html`` embeds them as
base64 data URIs beside the tables, so ``index.html`` needs no other file and no network;
``write_report`` writes the folder under a temporary name beside ``out`` and renames it into
place, so a failure leaves ``out`` absent or as it was.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from glassjax import evaluation, groups

__all__ = [
    "FORMAT",
    "element_label",
    "filters_figure",
    "orbit_figure",
    "scatter_figure",
    "layers_figure",
    "accuracy_figure",
    "confusion_figure",
    "make_figures",
    "findings",
    "render_html",
    "check_out",
    "write_report",
]

FORMAT = "glassjax.compare"
_REPORT_SUFFIXES = (".png", ".html", ".json")
_GLASSBOX_COLOUR = "#1b7837"
_ALEXNET_COLOUR = "#762a83"
_MODEL_TITLES = {"glassbox": "glass-box (invariant)", "glassbox_both": "glass-box (invariant + orbit)", "alexnet": "AlexNet"}
_MODEL_SHORT = {"glassbox": "glass-box", "glassbox_both": "glass-box + orbit", "alexnet": "AlexNet"}


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


def _model_title(name: str) -> str:
    return _MODEL_TITLES.get(name, name)


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
    """One input's orbit, images (|G|, H, W, C) titled by element, with each model's predicted class below."""
    n = images.shape[0]
    columns = min(n, 8)
    rows = -(-n // columns)
    fig = _figure(1.5 * columns + 0.4, (1.8 + 0.15 * len(predictions)) * rows)
    for i in range(n):
        ax = fig.add_subplot(rows, columns, i + 1)
        _show(ax, images[i])
        ax.set_title(labels[i], fontsize=8)
        caption = [f"{_MODEL_SHORT.get(model, model)}: {names[i]}" for model, names in predictions.items()]
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


def layers_figure(rows: Sequence[Mapping]) -> bytes:
    """Per-layer bars of invariance error, equivariance error and Fisher ratio; glass-box beside AlexNet."""
    from matplotlib.patches import Patch

    names = [r["name"] for r in rows]
    colours = [_GLASSBOX_COLOUR if n.startswith("glassbox") else _ALEXNET_COLOUR for n in names]
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
    fig.legend(handles=[Patch(color=_GLASSBOX_COLOUR, label="glass-box"), Patch(color=_ALEXNET_COLOUR, label="AlexNet")],
               loc="outside lower center", ncols=2, fontsize=8)
    return _png(fig)


def _scored(accuracy: Mapping[str, Mapping | None]) -> dict[str, Mapping]:
    return {name: scores for name, scores in accuracy.items() if scores is not None}


def accuracy_figure(accuracy: Mapping[str, Mapping | None], group: str) -> bytes:
    """Test accuracy clean and under random ``group`` elements, grouped by model."""
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
    ax.set_xticklabels([_model_title(name) for name in scored], fontsize=8)
    ax.set_ylim(0.0, 1.12)
    ax.set_ylabel("test accuracy")
    fig.legend(loc="outside upper center", ncols=2, fontsize=8)
    return _png(fig)


def confusion_figure(accuracy: Mapping[str, Mapping | None], class_names: Sequence[str], group: str) -> bytes:
    """Confusion matrices (rows true, columns predicted) per model, clean and under random ``group`` elements."""
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
            ax.set_title(f"{_model_title(name)}\n{kind}", fontsize=8)
    return _png(fig)


def make_figures(
    result: Mapping,
    *,
    dataset,
    glassboxes: Mapping,
    alexnet_features: Callable[[np.ndarray], np.ndarray] | None = None,
    alexnet_predict: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, bytes]:
    """Every figure of the report as {file name: PNG bytes}.

    glassboxes: row prefix -> fitted GlassBox, the first one is shown in the filter and
    scatter figures; alexnet_features: images -> fc7 (N, F); alexnet_predict: images -> labels.
    """
    from glassjax.filters import class_prototypes, filter_images

    group = groups.get(result["group"])
    names = tuple(dataset.class_names)
    first = next(iter(glassboxes.values()))
    params = first.params_
    banks = []
    if params.patches is not None:
        banks.append(("patch filters", filter_images(params.patches, names)))
    shown_prototypes = params.prototypes
    title = "class prototypes"
    if shown_prototypes is None:
        shown_prototypes = class_prototypes(dataset.x_train, dataset.y_train, len(names), group)
        title = "class prototypes (shown, not used)"
    banks.append((title, filter_images(shown_prototypes, names)))
    figures = {"filters.png": filters_figure(banks)}

    x = dataset.x_test
    orbit = np.asarray(groups.orbit(group, x[:1]))[0]
    predictors = {prefix: model.predict for prefix, model in glassboxes.items()}
    if alexnet_predict is not None:
        predictors["alexnet"] = alexnet_predict
    predictions = {model: [names[int(c)] for c in predict(orbit)] for model, predict in predictors.items()}
    labels = [element_label(group, i) for i in range(group.order)]
    figures["orbit.png"] = orbit_figure(orbit, labels, predictions)

    moved = evaluation.transformed_test_set(x, group, seed=seed)
    panels = [(f"glass-box layer 1 ({params.config.representation})", first.represent(x), first.represent(moved))]
    if alexnet_features is not None:
        panels.append(("AlexNet fc7", alexnet_features(x), alexnet_features(moved)))
    figures["scatter.png"] = scatter_figure(panels, dataset.y_test, names)
    figures["layers.png"] = layers_figure(result["layers"])
    if _scored(result["accuracy"]):
        figures["accuracy.png"] = accuracy_figure(result["accuracy"], group.name)
        figures["confusion.png"] = confusion_figure(result["accuracy"], names, group.name)
    return figures


# --- text ----------------------------------------------------------------------------------


def _row(rows: Sequence[Mapping], name: str) -> Mapping | None:
    return next((r for r in rows if r["name"] == name), None)


def _contains_half_turn(group: groups.Group) -> bool:
    """Whether some element of ``group`` turns an image by 180 degrees (checked on a 12 x 12 probe)."""
    probe = np.arange(144, dtype=np.float32).reshape(12, 12, 1)
    for g in range(group.order):
        try:
            moved = np.asarray(group.act(g, probe))
        except ValueError:  # a group that cannot act on 12 x 12 images has no half turn of them either
            return False
        # rot:N resamples bilinearly, exact up to float rounding at 180 degrees.
        if np.allclose(moved, probe[::-1, ::-1], atol=1e-3):
            return True
    return False


def findings(result: Mapping) -> dict[str, list[str]]:
    """Measured statements for the report: {"loses": [...], "wins": [...]}, plain text.

    Each comparison is phrased from the numbers in ``result``; a statement goes under
    "loses" only when the glass-box's number is the worse one (or, for the 180-degree turn,
    because exact invariance to it is a structural blind spot).
    """
    rows, accuracy = result["layers"], result["accuracy"]
    group = groups.get(result["group"])
    loses, wins = [], []
    gb, both, ax = accuracy.get("glassbox"), accuracy.get("glassbox_both"), accuracy.get("alexnet")
    invariant = _row(rows, "glassbox_invariant")

    if gb is not None and ax is not None:
        for key, what in (("accuracy", "clean test accuracy"),
                          ("accuracy_transformed", f"test accuracy under random {group.name} elements")):
            text = f"{what}: glass-box {gb[key]:.3f}, AlexNet {ax[key]:.3f} ({gb['n_test']} test images)"
            if gb[key] < ax[key]:
                loses.append(f"Lower {text}.")
            else:
                wins.append(f"{'Higher' if gb[key] > ax[key] else 'Equal'} {text}.")

    if gb is not None and _contains_half_turn(group):
        text = (f"Turning every test image by 180 degrees, the turn that makes a 6 a 9, changes {gb['turned_changed']} of "
                f"{gb['n_test']} predictions of the invariant glass-box")
        if ax is not None:
            text += f" and {ax['turned_changed']} of AlexNet's"
        text += ". "
        if invariant is not None:
            text += (f"Its layer 1 is exactly invariant to {group.name} "
                     f"(relative change {invariant['invariance_error']:.1e}), "
                     "so an image and its turned copy get the same features and the same label: it can tell a 6 from "
                     "a 9 only by differences in handwriting that survive the turn, never by orientation. ")
        classes = list(result["classes"])
        if "6" in classes and "9" in classes:
            six, nine = classes.index("6"), classes.index("9")

            def mixed(scores):
                counts = scores["confusion"]
                return counts[six][nine] + counts[nine][six], sum(counts[six]) + sum(counts[nine])

            wrong, total = mixed(gb)
            text += f"Here it calls {wrong} of the {total} test 6s and 9s by the other's name"
            text += f" (AlexNet {mixed(ax)[0]}). " if ax is not None else ". "
        if both is not None:
            text += (f"The invariant + orbit representation keeps the orientation ({both['turned_changed']} of "
                     f"{both['n_test']} predictions change) and pays for it under random {group.name} elements: "
                     f"accuracy {both['accuracy_transformed']:.3f} against {both['accuracy']:.3f} clean.")
        loses.append(text.strip())

    fc7 = _row(rows, "fc7")
    if invariant is not None and fc7 is not None:
        text = (f"Invariance to {group.name} is exact only for its {group.order} elements: under small continuous "
                f"rotation the glass-box invariant layer changes at {invariant['lie_derivative']:.2f} per radian "
                f"(relative Lie derivative), AlexNet fc7 at {fc7['lie_derivative']:.2f}.")
        (loses if invariant["lie_derivative"] > fc7["lie_derivative"] else wins).append(text)

    glass_rows = [r for r in rows if r["name"].startswith("glassbox")]
    alex_rows = [r for r in rows if not r["name"].startswith("glassbox")]
    if glass_rows and alex_rows:
        best_gb = max(glass_rows, key=lambda r: r["fisher_ratio"])
        best_ax = max(alex_rows, key=lambda r: r["fisher_ratio"])
        text = (f"class separation (Fisher ratio tr S_b / tr S_w on the test images): best glass-box layer "
                f"{best_gb['name']} {best_gb['fisher_ratio']:.3g}, best AlexNet layer {best_ax['name']} "
                f"{best_ax['fisher_ratio']:.3g}")
        if best_gb["fisher_ratio"] < best_ax["fisher_ratio"]:
            loses.append(f"Weaker {text}.")
        else:
            wins.append(f"Stronger {text}.")
        orbit = _row(rows, "glassbox_orbit")
        if orbit is not None:
            # The fit's own floor (its error for the identity element) is what any map leaves; only
            # the excess over it measures a lack of equivariance.
            def excess(row):
                return row["equivariance_error"] - row["equivariance_error_identity"]

            most = min(alex_rows, key=excess)
            text = (f"Equivariance error of the orbit projection {orbit['equivariance_error']:.2g}, "
                    f"{excess(orbit):.1e} above its fit's floor; the most equivariant AlexNet layer, {most['name']}, "
                    f"{most['equivariance_error']:.2g}, {excess(most):.2g} above its floor.")
            if orbit["equivariance_error_identity"] > 0.05:
                text += (f" The floor is high: {orbit['fit_rows']} fit rows for {int(np.prod(orbit['shape']))} "
                         "columns leave the fit underdetermined; more --images would lower it.")
            (wins if excess(orbit) <= excess(most) else loses).append(text)

    both_rep, both_pca = _row(rows, "glassbox_both_representation"), _row(rows, "glassbox_both_pca")
    if (both_rep is not None and both_pca is not None
            and both_pca["equivariance_error"] > 10 * max(both_rep["equivariance_error"], 1e-6)):
        loses.append(
            f"Layer 2 (PCA) of the invariant + orbit model is not equivariant (error {both_pca['equivariance_error']:.2g}) "
            f"although its input is ({both_rep['equivariance_error']:.1e}): its components are fitted on the training "
            "images, not on their orbits, so the group's permutation of the orbit blocks does not map the kept "
            "subspace to itself.")
    return {"loses": loses, "wins": wins}


# --- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
tr.glassbox td:first-child { color: #1b7837; font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; } code { background: #f4f4f4; padding: 0 3px; }
.loses li { margin-bottom: 0.4em; }
"""

_LAYER_COLUMNS = (
    ("name", "layer"), ("shape", "shape"), ("invariance_error", "invariance error"),
    ("equivariance_error", "equivariance error"), ("equivariance_error_identity", "equivariance floor (identity)"),
    ("lie_derivative", "Lie derivative"), ("intra_class_distance", "intra-class distance"),
    ("inter_class_distance", "inter-class distance"), ("fisher_ratio", "Fisher ratio"),
    ("linear_probe_accuracy", "linear probe accuracy"), ("ridge", "ridge"),
)

_CAPTIONS = {
    "filters.png": "The class information of layer 1: every filter is an image, labelled with the class whose "
                   "training images it was computed from (patch filters: top principal components of that class's "
                   "patches; prototypes: class means averaged over the group).",
    "orbit.png": "One test image acted on by every element of the group, with each model's predicted class.",
    "scatter.png": "Test images (dots) and the same images acted on by random group elements (crosses), projected "
                   "on the two principal axes of each representation, coloured by class. Where the representation "
                   "is invariant, every cross sits on its dot.",
    "layers.png": "Per layer, log scale: invariance error, Lenc-Vedaldi equivariance error (held-out residual of the "
                  "best linear map), Fisher ratio.",
    "accuracy.png": "Test accuracy on clean images and on the same images acted on by random group elements.",
    "confusion.png": "Confusion matrices (rows: true class, columns: predicted class).",
}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    if isinstance(value, list):
        return "&times;".join(str(v) for v in value)
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(result: Mapping, figures: Mapping[str, bytes]) -> str:
    """The report page: findings, figures embedded as data URIs, the numbers as tables."""
    esc = html.escape
    rows = result["layers"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>glassjax compare: {esc(result['dataset'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Glass-box vs AlexNet on {esc(result['dataset'])}, group {esc(result['group'])}</h1>",
        f"<p>Classes: {esc(', '.join(result['classes']))}. Metrics on {result['n_fit_images']} fit images "
        f"(and their orbits) and {result['n_eval_images']} held-out test images. "
        f"Command: <code>{esc(result.get('command', ''))}</code>. "
        f"Run time {result['seconds']['total']:.0f} s. The numbers are in <code>metrics.json</code>.</p>",
    ]
    found = findings(result)
    parts.append("<h2>Where the glass-box loses</h2>")
    parts.append('<ul class="loses">' + "".join(f"<li>{esc(t)}</li>" for t in found["loses"]) + "</ul>"
                 if found["loses"] else "<p>On these numbers, nowhere.</p>")
    if found["wins"]:
        parts.append("<h2>Where it holds up</h2><ul>" + "".join(f"<li>{esc(t)}</li>" for t in found["wins"]) + "</ul>")

    for name in ("orbit.png", "filters.png", "layers.png", "scatter.png", "accuracy.png", "confusion.png"):
        if name not in figures:
            continue
        data = base64.b64encode(figures[name]).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(name)}">'
                     f"<figcaption>{esc(_CAPTIONS[name])}</figcaption></figure>")
        if name == "layers.png":
            parts.append("<h2>Layers, side by side</h2>")
            parts.append(_table([h for _, h in _LAYER_COLUMNS],
                                [[_cell(r.get(key, "")) for key, _ in _LAYER_COLUMNS] for r in rows],
                                ["glassbox" if r["name"].startswith("glassbox") else "" for r in rows]))
            parts.append(
                "<p>Invariance error: mean over images and non-identity group elements of "
                "||phi(g x) - phi(x)|| / ||phi(x)||. Equivariance error (Lenc &amp; Vedaldi 2015): held-out residual of "
                "the best linear map M_g with phi(g x) ~ M_g(g . phi(x)), fitted by ridge least squares on the fit "
                "images and their orbits; 0 is exactly equivariant, 1 no better than the mean; the floor is the same "
                "fit for the identity element, the error the fit itself leaves. The ridge column is the penalty "
                "relative to the mean eigenvalue of the fitted Gram matrix (larger for layers wider than their fit "
                "rows). Lie derivative (Gruver et al. 2023): relative rate of change per radian of continuous "
                "rotation. Fisher ratio: tr S_b / tr S_w.</p>")
    scored = _scored(result["accuracy"])
    if scored:
        parts.append("<h2>Accuracy</h2>")
        parts.append(_table(["model", "clean", f"random {result['group']}", "changed by a 180° turn"],
                            [[esc(_model_title(n)), f"{s['accuracy']:.3f}", f"{s['accuracy_transformed']:.3f}",
                              f"{s['turned_changed']} / {s['n_test']}"] for n, s in scored.items()]))
    missing = [n for n, s in result["accuracy"].items() if s is None]
    if missing:
        parts.append(f"<p>Not scored: {esc(', '.join(missing))} (its last layer does not have one output per class).</p>")
    models = result.get("models", {})
    if models:
        parts.append("<h2>Models</h2>")
        parts.append(_table(["model", "settings"], [[esc(_model_title(n)), esc(json.dumps(m, sort_keys=True))]
                                                    for n, m in models.items()]))
    parts.append("</body></html>")
    return "\n".join(parts)


# --- the folder ----------------------------------------------------------------------------


def check_out(out: str | os.PathLike) -> None:
    """ValueError unless ``out`` is missing, an empty folder, or an earlier report (only its own kinds of file)."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out: expected a folder for the report, got the file {out}")
    entries = list(out.iterdir())
    if not entries:
        return
    foreign = [e.name for e in entries if not e.is_file() or e.suffix not in _REPORT_SUFFIXES]
    try:
        marker = json.loads((out / "metrics.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        marker = None
    if foreign or marker != FORMAT:
        example = foreign[0] if foreign else "no glassjax metrics.json"
        raise ValueError(f"--out: expected a new or empty folder or an earlier glassjax report, got {out} ({example}); "
                         "choose another --out")


def write_report(out: str | os.PathLike, result: Mapping, figures: Mapping[str, bytes]) -> Path:
    """Write metrics.json, the PNG figures and index.html into the folder ``out``, all or nothing.

    The folder is built under a temporary name beside ``out`` and renamed into place; an
    earlier report at ``out`` is replaced only once the new one is complete.
    """
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # os.mkdir, unlike mkdtemp, gives the folder the user's usual (umask) permissions.
    building = out.parent / f".{out.name}.{secrets.token_hex(6)}.new"
    building.mkdir()
    old = None
    try:
        document = dict(result, format=FORMAT, version=1, figures=sorted(figures))
        (building / "metrics.json").write_text(json.dumps(document, indent=1, allow_nan=True))
        for name, data in figures.items():
            (building / name).write_bytes(data)
        (building / "index.html").write_text(render_html(document, figures), encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        try:
            os.replace(building, out)
        except OSError:
            if old is not None:
                os.replace(old / out.name, out)
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out
