"""PixelHop++ (Chen et al. 2020): channel-wise Saab hops grown by energy, cross-entropy feature selection.

  model   PixelHopConfig, PixelHopParams, the fit and the jittable forward pass
  system  the registered system ``pixelhop``, save / load

The Saab transform itself is ``glassjax.systems.saab.transform``.
"""
from glassjax.systems.pixelhop.model import (
    Hop, PixelHopConfig, PixelHopParams, cross_entropy, features, fit, parameter_count, saab_parameter_count, scores,
)

__all__ = ["Hop", "PixelHopConfig", "PixelHopParams", "cross_entropy", "features", "fit", "parameter_count",
           "saab_parameter_count", "scores"]
