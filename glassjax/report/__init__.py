"""The ``glassjax compare`` report: PNG figures, measured findings, one self-contained HTML page.

  figures   every figure as PNG bytes (matplotlib Agg, no pyplot)
  class_specificity  the class-specificity section's figures
  influence the influence section's figure: high-loss test images and their most helpful / harmful training images
  findings  where the subject system loses and wins, phrased from the numbers
  page      the HTML page, figures embedded as data URIs
  folder    the report folder, written all or nothing
"""
from glassjax.report.class_specificity import class_specificity_figures
from glassjax.report.figures import (
    accuracy_figure, confusion_figure, element_label, filters_figure, layers_figure, make_figures, orbit_figure,
    scatter_figure, system_colours,
)
from glassjax.report.findings import findings
from glassjax.report.influence import influence_figure
from glassjax.report.folder import FORMAT, check_out, write_report
from glassjax.report.page import render_html

__all__ = [
    "FORMAT", "accuracy_figure", "check_out", "class_specificity_figures", "confusion_figure", "element_label", "filters_figure", "findings",
    "influence_figure", "layers_figure", "make_figures", "orbit_figure", "render_html", "scatter_figure", "system_colours", "write_report",
]
