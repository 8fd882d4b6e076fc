"""The probe as one self-contained HTML section (tables and figures inlined as base64 PNG).

  html_section(result, figures)   result of ``probe.run`` (with ``skipped``), figures {name: PNG bytes} -> str
"""
from __future__ import annotations

import base64
import html
from typing import Mapping

__all__ = ["html_section"]


def _number(value) -> str:
    return "" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_section(result: Mapping, figures: Mapping[str, bytes]) -> str:
    """A <section> with the matrix, the accuracies, the NMI, the order, the skipped systems and the figures."""
    names = list(result["classifiers"])
    rows = list(result["matrix"])
    parts = [f"<section id='input-signal'><h2>What the classifiers like to see ({html.escape(result['dataset'])})</h2>",
             ("<p>M[A][B]: accuracy of B on the test reconstructions of the autoencoder whose decoder was tuned "
              "on A's gradients, divided by B's accuracy on the original test images.</p>"),
             _table(["A \\ B", *names], [[r, *(result["matrix"][r][b] for b in names)] for r in rows]),
             _table(["classifier", "accuracy", "parameters", "NMI intra", "NMI inter", "MSE"],
                    [[n, result["accuracy"][n], result["parameters"][n], result["nmi"][n]["intra"],
                      result["nmi"][n]["inter"], result["mse"][n]] for n in names]),
             (f"<p>Order (row means, best first): {html.escape(' > '.join(result['order']))}. "
              f"NMI: {html.escape(result['nmi_definition'])}, {result['nmi_bins']} bins.</p>")]
    skipped = result.get("skipped") or {}
    if skipped:
        parts.append(_table(["skipped", "reason"], [[k, v] for k, v in skipped.items()]))
    for name, png in figures.items():
        data = base64.b64encode(png).decode()
        parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(name)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)
