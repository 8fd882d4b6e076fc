"""The explainer study's figures (PNG bytes) and its HTML section (``glassjax.probes.explainer.study``)."""
from __future__ import annotations

import base64
import html
from collections.abc import Mapping

import numpy as np

from glassjax.report.figures import _figure, _png, _show, system_colours

__all__ = ["SET_TITLES", "html_section", "instability_figure", "landmarks_figure", "make_figures", "top_images_figure"]

SET_TITLES = {"performer": "performer's own filters", "explainer": "explainer, interpretable filters",
              "explainer_ordinary": "explainer, ordinary filters", "icnn": "ICNN-trained performer",
              "glassbox": "glass-box patch filters (relu pair)"}


def top_images_figure(arrays: Mapping, name: str, *, images: int = 3, columns: int = 4,
                      max_filters: int | None = None) -> bytes:
    """Each filter of set ``name`` (the first ``max_filters``; None: all): its top ``images`` images, the peak
    unit's receptive-field centre marked, titled with the filter's instability."""
    data, x = arrays[name], arrays["images"]
    filters = min(data["top_images"].shape[1], max_filters or data["top_images"].shape[1])
    rows = -(-filters // columns)
    fig = _figure(columns * images * 0.48 + 0.3, rows * 0.62 + 0.5)
    fig.suptitle(f"{SET_TITLES.get(name, name)}: top {images} images of each filter (red: peak unit)", fontsize=9)
    points = data["centres"].reshape(-1, 2)
    for f in range(filters):
        for k in range(images):
            ax = fig.add_subplot(rows, columns * images, (f // columns) * columns * images + (f % columns) * images + k + 1)
            i = data["top_images"][k, f]
            _show(ax, x[i])
            r, c = points[data["positions"][i, f]]
            ax.plot([c], [r], "o", ms=3.5, mfc="none", mec="#d7301f", mew=1.2)
            if k == 0:
                v = data["per_filter"][f]
                ax.set_title(f"#{f} {v:.3f}" if np.isfinite(v) else f"#{f} (off)", fontsize=6, loc="left")
    return _png(fig)


def landmarks_figure(arrays: Mapping) -> bytes:
    """The mean landmark image with its landmarks (their mean position per image)."""
    x, points, names = arrays["images"], arrays["landmarks"], arrays["landmark_names"]
    fig = _figure(3.2, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    mean = x.mean(axis=0)
    _show(ax, (mean - mean.min()) / max(float(np.ptp(mean)), 1e-12))
    colours = list(system_colours([str(n) for n in names]).values())
    for k, name in enumerate(names):
        r, c = points[:, k].mean(axis=0)
        ax.plot([c], [r], "o", color=colours[k], ms=6, label=name)
    ax.legend(fontsize=7, loc="lower center", ncols=2, bbox_to_anchor=(0.5, -0.28))
    ax.set_title(f"mean of the {x.shape[0]} landmark images", fontsize=9)
    return _png(fig)


def instability_figure(result: Mapping) -> bytes:
    """Per-filter location instability of every filter set, one strip each, with the mean marked."""
    sets = result["instability"]
    fig = _figure(1.3 * len(sets) + 1.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    colours = system_colours(list(sets))
    rng = np.random.default_rng(0)
    for i, (name, entry) in enumerate(sets.items()):
        values = np.array([v for v in entry["per_filter"] if v is not None], float)
        ax.scatter(i + rng.uniform(-0.25, 0.25, values.size), values, s=6, alpha=0.5, color=colours[name])
        ax.plot([i - 0.35, i + 0.35], [entry["instability"]] * 2, color="k", lw=2)
    ax.set_xticks(range(len(sets)), [SET_TITLES.get(n, n).replace(", ", ",\n") for n in sets], fontsize=7)
    ax.set_ylabel("location instability (lower: more stable)")
    ax.set_title(f"{result['dataset']}, {result['performer']} {result['layer']}: per filter, mean as a bar", fontsize=9)
    return _png(fig)


def make_figures(result: Mapping, arrays: Mapping, prefix: str = "explainer") -> dict[str, bytes]:
    """file name -> PNG bytes of every figure of one study."""
    figures = {f"{prefix}_instability.png": instability_figure(result),
               f"{prefix}_landmarks.png": landmarks_figure(arrays)}
    figures[f"{prefix}_top_explainer.png"] = top_images_figure(arrays, "explainer")
    figures[f"{prefix}_top_performer.png"] = top_images_figure(arrays, "performer", max_filters=32)
    return figures


def html_section(result: Mapping, figures: Mapping[str, bytes]) -> str:
    """A self-contained <section>: the numbers as a table, the figures embedded as data URIs."""
    rows = "".join(
        f"<tr><td>{html.escape(SET_TITLES.get(n, n))}</td><td>{e['instability']:.4f}</td>"
        f"<td>{e['measured']} / {e['filters']}</td></tr>" for n, e in result["instability"].items())
    recon = ", ".join(f"{k} {v:.3f}" for k, v in result["reconstruction_error"].items())
    heads = ", ".join(f"{k} {v['reconstructed']:.3f}" for k, v in result["head_accuracy_by_layer"].items())
    images = "".join(f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
                     f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(n)}</figcaption></figure>'
                     for n, png in figures.items())
    return (f"<section><h2>Explainer: {html.escape(result['performer'])} {html.escape(result['layer'])} on "
            f"{html.escape(result['dataset'])}</h2>"
            f"<p>p = {result['p']:.3f}; relative reconstruction error (test) {html.escape(recon)}; head accuracy "
            f"{result['head_accuracy']:.3f} on the performer's features, on reconstructed ones {html.escape(heads)}; "
            f"trained in {result['train_seconds']:.0f} s.</p>"
            f"<table><tr><th>filters</th><th>location instability</th><th>measured / filters</th></tr>{rows}</table>"
            f"{images}</section>")
