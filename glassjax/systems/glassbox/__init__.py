"""The one-layer glass-box: representation (group orbit x class-informed filters, invariant
pooling) -> PCA -> classifier, every parameter fitted in closed form from data statistics.

  config       GlassBoxConfig: every choice of the three layers
  filters      class-wise patch PCA filters and G-averaged class prototypes
  representation  responses over the orbit, orbit projection, group pooling
  model        GlassBoxParams and the jittable forward pass
  fit          the streaming fit passes
  modelfile    .npz save / load
  estimator    GlassBox, the scikit-learn estimator
  system       the registered systems ``glassbox`` and ``glassbox_both``
"""
from glassjax.systems.glassbox.config import FILTER_KINDS, REPRESENTATIONS, GlassBoxConfig
from glassjax.systems.glassbox.estimator import GlassBox
from glassjax.systems.glassbox.fit import fit
from glassjax.systems.glassbox.model import (
    GlassBoxParams, apply, feature_action, irrep_summary, layers, predict, represent, responses, transform,
)
from glassjax.systems.glassbox.modelfile import load_params, save_params

__all__ = [
    "GlassBox", "GlassBoxConfig", "GlassBoxParams", "FILTER_KINDS", "REPRESENTATIONS",
    "fit", "apply", "layers", "predict", "represent", "responses", "transform", "feature_action", "irrep_summary",
    "save_params", "load_params",
]
