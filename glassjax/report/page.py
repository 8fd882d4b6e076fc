"""The report page: findings, figures embedded as base64 data URIs, the numbers as tables;
one self-contained HTML file with no external resources."""
from __future__ import annotations

import base64
import html
import json
from typing import Mapping, Sequence

from glassjax.analysis import class_specificity
from glassjax.report.figures import _scored, system_colours
from glassjax.report.findings import findings

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
td.system { font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; } code { background: #f4f4f4; padding: 0 3px; }
.loses li { margin-bottom: 0.4em; }
"""

_LAYER_COLUMNS = (
    ("name", "layer"), ("shape", "shape"), ("invariance_error", "invariance error"),
    ("equivariance_error", "equivariance error"), ("equivariance_error_identity", "equivariance floor (identity)"),
    ("lie_derivative", "Lie derivative"), ("e2e_lie_derivative", "end-to-end Lie derivative"),
    ("invariance_rate", "invariance rate"), ("intra_class_distance", "intra-class distance"),
    ("inter_class_distance", "inter-class distance"), ("fisher_ratio", "Fisher ratio"),
    ("linear_probe_accuracy", "linear probe accuracy"), ("ridge", "ridge"),
)

_CAPTIONS = {
    "filters.png": "Filters as images, labelled with the class whose training images they were computed from "
                   "(glass-box patch filters: top principal components of that class's patches; prototypes: class "
                   "means averaged over the group).",
    "orbit.png": "One test image acted on by every element of the group, with each system's predicted class.",
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], colours: Sequence[str] | None = None) -> str:
    """An HTML table of already escaped cells; ``colours`` (one per row) colour the first cell."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        first = f'<td class="system" style="color: {colours[i]}">' if colours else "<td>"
        body.append("<tr>" + first + row[0] + "</td>" + "".join(f"<td>{cell}</td>" for cell in row[1:]) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CLASS_SPECIFICITY_CAPTIONS = {
    "class_specificity_matrix.png": "MI[c, k] between each filter's pooled activation and 1[y = c] (filters grouped by "
                                    "their highest-MI class), and beside it the filter classes G where a system has them "
                                    "(the CSG gate; the glass-box's class-labelled filters).",
    "class_specificity_summary.png": "MIS, localization and adversarial-detection measures side by side.",
    "class_specificity_leakage.png": "Test accuracy per epoch of gated training, gate off (solid) and with the true "
                                     "label's gate (dashed): a gap means the network reads the label off the gate.",
}
_CLASS_SPECIFICITY_COLUMNS = (("layer", "filter layer"), ("accuracy", "accuracy (gate off)"), ("mis", "MIS (nats)"),
                              ("gate_density", "gate density"), ("gradient_ap", "gradient-map AP@0.2"),
                              ("cam_ap", "CAM AP@0.3"), ("pgd_success", "PGD success"),
                              ("pgd_auc_r", "PGD detection AUC, r(x)"), ("pgd_auc_logistic", "PGD detection AUC, logistic"))


def _embed(name: str, data: bytes, caption: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _class_specificity_section(section: Mapping, figures: Mapping[str, bytes], titles: Mapping[str, str],
                               colours: Mapping[str, str]) -> list[str]:
    """The class-specificity table (``class_specificity.table_rows``) and its figures."""
    esc = html.escape
    rows = class_specificity.table_rows(section)
    parts = ["<h2>Class specificity</h2>",
             _table(["system"] + [h for _, h in _CLASS_SPECIFICITY_COLUMNS],
                    [[esc(titles.get(r["system"], r["system"]))] + [_cell(r.get(key)) if r.get(key) is not None else "-"
                                                                    for key, _ in _CLASS_SPECIFICITY_COLUMNS] for r in rows],
                    [colours.get(r["system"], "#222") for r in rows]),
             "<p>MIS (Liang et al., ECCV 2020): mean over filters of the largest mutual information between a filter's "
             "pooled activation and a one-vs-rest class indicator, on test images. Localization: share of images whose "
             "binarised map overlaps the object mask with IoU at least 0.2 (gradient maps) or 0.3 (CAM). Detection: ROC "
             "AUC of clean against successful PGD images, scored by the gate-weighted class evidence r(x) and by a "
             "logistic detector on the pooled features. Definitions: <code>glassjax.analysis.class_specificity</code>.</p>"]
    parts += [_embed(name, figures[name], caption) for name, caption in _CLASS_SPECIFICITY_CAPTIONS.items() if name in figures]
    return parts


def _influence_section(entries: Sequence[Mapping], figures: Mapping[str, bytes], class_names: Sequence[str]) -> list[str]:
    """The influence table (``analysis.influence.highest_loss``) and its figure."""
    name = lambda c: html.escape(class_names[c] if c < len(class_names) else str(c))  # noqa: E731
    parts = ["<h2>Influence of the training images</h2>",
             _table(["test image", "class", "loss", "most helpful (training indices)", "most harmful (training indices)"],
                    [[str(e["test_index"]), name(int(e["label"])), f"{e['loss']:.3f}", ", ".join(map(str, e["helpful"])),
                      ", ".join(map(str, e["harmful"]))] for e in entries]),
             "<p>The default glass-box (the model <code>glassjax fit</code> fits) is a closed-form function of its "
             "training images, so the influence of training image j on a test image's loss is the exact derivative of "
             "that loss (cross-entropy of the softmax of the class scores) with respect to image j's weight, at weights 1, "
             "through the whole fit (<code>glassjax.analysis.influence</code>). Helpful: upweighting lowers the loss; "
             "harmful: raises it. The test images are those of highest loss.</p>"]
    if "influence.png" in figures:
        parts.append(_embed("influence.png", figures["influence.png"], "Each high-loss test image, its most helpful "
                            "(green) and most harmful (red) training images."))
    return parts


def render_html(result: Mapping, figures: Mapping[str, bytes]) -> str:
    """The report page: findings, figures embedded as data URIs, the numbers as tables."""
    esc = html.escape
    rows = result["layers"]
    titles = {name: info["title"] for name, info in result["systems"].items()}
    colours = system_colours(list(titles))
    subject = next(iter(titles))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>glassjax compare: {esc(result['dataset'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(' vs '.join(titles.values()))} on {esc(result['dataset'])}, group {esc(result['group'])}</h1>",
        f"<p>Classes: {esc(', '.join(result['classes']))}. Metrics on {result['n_fit_images']} fit images "
        f"(and their orbits) and {result['n_eval_images']} held-out test images. "
        f"Command: <code>{esc(result.get('command', ''))}</code>. "
        f"Run time {result['seconds']['total']:.0f} s. The numbers are in <code>metrics.json</code>.</p>",
    ]
    found = findings(result)
    parts.append(f"<h2>Where {esc(titles[subject])} loses</h2>")
    parts.append('<ul class="loses">' + "".join(f"<li>{esc(t)}</li>" for t in found["loses"]) + "</ul>"
                 if found["loses"] else "<p>On these numbers, nowhere.</p>")
    if found["wins"]:
        parts.append("<h2>Where it holds up</h2><ul>" + "".join(f"<li>{esc(t)}</li>" for t in found["wins"]) + "</ul>")
    if found["notes"]:
        parts.append("<h2>The other systems</h2><ul>" + "".join(f"<li>{esc(t)}</li>" for t in found["notes"]) + "</ul>")

    for name in ("orbit.png", "filters.png", "layers.png", "scatter.png", "accuracy.png", "confusion.png"):
        if name not in figures:
            continue
        parts.append(_embed(name, figures[name], _CAPTIONS[name]))
        if name == "layers.png":
            parts.append("<h2>Layers, side by side</h2>")
            parts.append(_table([h for _, h in _LAYER_COLUMNS],
                                [[_cell(r.get(key, "")) for key, _ in _LAYER_COLUMNS] for r in rows],
                                [colours.get(r.get("system"), "#222") for r in rows]))
            parts.append(
                "<p>Invariance error: mean over images and non-identity group elements of "
                "||phi(g x) - phi(x)|| / ||phi(x)||. Equivariance error (Lenc &amp; Vedaldi 2015): held-out residual of "
                "the best linear map M_g with phi(g x) ~ M_g(g . phi(x)), fitted by ridge least squares on the fit "
                "images and their orbits; 0 is exactly equivariant, 1 no better than the mean; the floor is the same "
                "fit for the identity element, the error the fit itself leaves. The ridge column is the penalty "
                "relative to the mean eigenvalue of the fitted Gram matrix (larger for layers wider than their fit "
                "rows). Lie derivative (Gruver et al. 2023): ||d/dt rho_out(-t) phi(rho_in(t) u)|| / ||phi(u)|| at "
                "t = 0, per radian of continuous rotation of u, the input the system's network sees (AlexNet's: "
                "resized and normalised), bilinear with mirror padding; a spatial layer is rotated back on its own "
                "grid, so an exactly equivariant map scores 0, and a vector is not, so 0 means invariant. End-to-end "
                "Lie derivative: mean over images and classes of |L softmax(scores)|, not normalised, one number per "
                "system. Invariance rate: ||d/dt phi(rotate(x, t))|| / ||phi(x)|| of the data set's image x, zero "
                "padding, nothing rotated back. Fisher ratio: tr S_b / tr S_w.</p>")
    scored = _scored(result["accuracy"])
    if scored:
        parts.append("<h2>Accuracy</h2>")
        parts.append(_table(["system", "clean", f"random {result['group']}", "changed by a 180° turn"],
                            [[esc(titles.get(n, n)), f"{s['accuracy']:.3f}", f"{s['accuracy_transformed']:.3f}",
                              f"{s['turned_changed']} / {s['n_test']}"] for n, s in scored.items()],
                            [colours[n] for n in scored]))
    missing = [n for n, s in result["accuracy"].items() if s is None]
    if missing:
        parts.append(f"<p>Not scored: {esc(', '.join(missing))} (its scores do not have one output per class).</p>")
    if result.get("class_specificity"):
        parts += _class_specificity_section(result["class_specificity"], figures, titles, colours)
    if result.get("influence"):
        parts += _influence_section(result["influence"], figures, result.get("classes", ()))
    parts.append("<h2>Systems</h2>")
    parts.append(_table(["system", "what it is", "fit seconds", "settings"],
                        [[esc(info["title"]), esc(info["description"]), f"{info['fit_seconds']:.1f}",
                          esc(json.dumps(info["settings"], sort_keys=True))] for info in result["systems"].values()],
                        list(colours.values())))
    blocks = [(info["title"], rho, b) for info in result["systems"].values()
              for rho, b in info["settings"].get("irrep_blocks", {}).items()]
    if blocks:
        parts.append("<h2>Layer 2 by irreducible block</h2>")
        parts.append(_table(["system", "irrep", "dimension", "share of the variance", "components kept", "variance they keep"],
                            [[esc(title), esc(rho), str(b["dim"]), f"{b['variance']:.4f}", str(b["components"]),
                              f"{b['kept_variance']:.4f}"] for title, rho, b in blocks]))
        parts.append("<p>Layer 2's reduction is symmetry-adapted: each isotypic component of the group's real irreducible "
                     "representations is reduced on its own and cut only in whole blocks, so every group element acts "
                     "on the features by a fixed block-diagonal matrix (<code>feature_action</code>).</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


