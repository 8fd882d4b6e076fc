"""glassjax: interpretable CNNs in JAX; the glass-box CNN measured side by side with AlexNet.

Layout (imports run one way: core -> data -> systems -> analysis -> report -> cli):
  core      groups, streaming statistics, PCA/LDA/ridge and classifiers, mesh, batching, files
  data      bundled sets, TFDS, batch sources
  systems   the registry and one sub-package per system (glassbox, alexnet)
  analysis  metrics, testing asserts, scoring, the side-by-side comparison
  report    figures and the HTML report
  cli       the ``glassjax`` command, one module per sub-command
  bench     benchmark workloads
"""
from glassjax import data, systems
from glassjax.analysis import metrics, testing
from glassjax.core import classifiers, groups, reduction
from glassjax.systems.glassbox import GlassBox, GlassBoxConfig, GlassBoxParams, apply, fit, predict, represent, transform

__version__ = "0.1.0"

__all__ = [
    "GlassBox", "GlassBoxConfig", "GlassBoxParams", "fit", "apply", "predict", "represent", "transform",
    "classifiers", "data", "groups", "metrics", "reduction", "systems", "testing",
]
