"""Figures of the class-specificity section (``analysis.class_specificity.run``'s result):
the filter-class matrix, the leakage curves of gated training, and the measures side by side.
PNG bytes, matplotlib's Agg canvas, no pyplot."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from glassjax.analysis import class_specificity
from glassjax.report.figures import _PALETTE, _figure, _png

__all__ = ["matrix_figure", "leakage_figure", "summary_figure", "class_specificity_figures"]


def matrix_figure(section: Mapping) -> bytes:
    """The filter-class matrix of every system: MI[c, k] with filters grouped by their highest-MI
    class (and the filter classes G beside it, same filters, where the system has them); the
    filters ``evaluate`` stored."""
    systems = list(section["systems"].items())
    classes = section["classes"]
    fig = _figure(11, 1.0 + 0.32 * len(classes) * len(systems))
    axes = fig.subplots(len(systems), 2, squeeze=False, width_ratios=(3, 2))
    for (name, s), (ax_mi, ax_g) in zip(systems, axes):
        mi = np.asarray(s["mi_matrix"])
        shown = "" if mi.shape[1] == s["filters"] else f", {mi.shape[1]} of {s['filters']} filters shown"
        im = ax_mi.imshow(mi, aspect="auto", cmap="viridis", interpolation="nearest")
        ax_mi.set_title(f"{name} ({s['layer']}): MI[c, k], MIS {s['mis']:.3f}{shown}", fontsize=9)
        ax_mi.set_yticks(range(len(classes)), classes, fontsize=7)
        ax_mi.set_xlabel("filter (grouped by class)", fontsize=8)
        fig.colorbar(im, ax=ax_mi, fraction=0.04)
        if s.get("filter_classes") is not None:
            ax_g.imshow(np.asarray(s["filter_classes"]).T, aspect="auto", cmap="Greys", vmin=0, vmax=1,
                        interpolation="nearest")
            ax_g.set_title(f"filter classes G, density {s['gate_density']:.3f}", fontsize=9)
            ax_g.set_yticks(range(len(classes)), classes, fontsize=7)
            ax_g.set_xlabel("filter (same order)", fontsize=8)
        else:
            ax_g.axis("off")
            ax_g.text(0.5, 0.5, "no filter classes", ha="center", va="center", fontsize=9)
    return _png(fig)


def leakage_figure(section: Mapping) -> bytes | None:
    """Test accuracy per epoch with the gate off (solid) and with the true label's gate on
    (dashed) for every system with a training history; CSG epochs shaded. None if none has one."""
    curves = [(name, s["history"]) for name, s in section["systems"].items() if s.get("history")]
    if not curves:
        return None
    fig = _figure(7, 3.2)
    ax = fig.subplots()
    colours = _PALETTE
    shaded = False
    for i, (title, history) in enumerate(curves):
        epochs = [row["epoch"] for row in history]
        colour = colours[i % len(colours)]
        ax.plot(epochs, [row["accuracy_gate_off"] for row in history], color=colour, label=f"{title}: gate off")
        on = [row["accuracy_gate_true"] for row in history]
        if not all(np.isnan(v) for v in on):
            ax.plot(epochs, on, color=colour, linestyle="--", label=f"{title}: true label's gate on")
            if not shaded:
                for row in history:
                    if row["path"] == "csg":
                        ax.axvspan(row["epoch"] - 0.5, row["epoch"] + 0.5, color="#dddddd", zorder=0)
                shaded = True
    ax.set_xlabel("epoch (shaded: CSG epochs)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    return _png(fig)


def summary_figure(section: Mapping) -> bytes:
    """MIS, localization APs and detection AUCs side by side for every system."""
    rows = class_specificity.table_rows(section)
    panels = [("mis", "MIS (nats)"), ("gradient_iou", "gradient-map IoU"), ("gradient_ap", "gradient-map AP@0.2"),
              ("cam_iou", "CAM IoU"), ("cam_ap", "CAM AP@0.3"), ("pgd_auc_r", "PGD detection AUC, r(x)"),
              ("pgd_auc_logistic", "PGD detection AUC, logistic")]
    fig = _figure(14, 2.8)
    axes = fig.subplots(1, len(panels))
    names = [r["system"] for r in rows]
    for ax, (key, title) in zip(axes, panels):
        values = [np.nan if r.get(key) is None else r[key] for r in rows]
        ax.bar(range(len(rows)), values, color="#2166ac")
        ax.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=7)
        if "auc" in key:
            ax.axhline(0.5, color="#888888", linewidth=0.8, linestyle=":")  # chance
        ax.set_title(title, fontsize=8)
    return _png(fig)


def class_specificity_figures(section: Mapping) -> dict[str, bytes]:
    """The section's figures as {file name: PNG bytes}."""
    figures = {"class_specificity_matrix.png": matrix_figure(section),
               "class_specificity_summary.png": summary_figure(section)}
    leakage = leakage_figure(section)
    if leakage is not None:
        figures["class_specificity_leakage.png"] = leakage
    return figures
