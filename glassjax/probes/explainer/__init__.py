"""The explainer network (Zhang et al. 2018): an autoencoder on a frozen performer's middle-layer
maps whose encoder has interpretable part filters (the ICNN filter loss, Zhang, Wu, Zhu 2018).

  templates      the part templates, their priors and the mask layer
  filter_loss    -MI(X; Omega) of every filter
  config         ExplainerConfig
  model          the Flax explainer: two tracks, the share p, the decoder
  performer      the frozen system it explains, read as layers
  training       fit(performer, images, config, key=...) -> ExplainerParams; encode
"""
from glassjax.probes.explainer.config import ExplainerConfig
from glassjax.probes.explainer.filter_loss import filter_loss
from glassjax.probes.explainer.performer import (
           Performer,
           layer_maps,
           layer_shapes,
           spatial_layers,
)
from glassjax.probes.explainer.templates import mask
from glassjax.probes.explainer.training import ExplainerParams, encode, fit

__all__ = ["ExplainerConfig", "ExplainerParams", "Performer", "encode", "filter_loss", "fit", "layer_maps",
           "layer_shapes", "mask", "spatial_layers"]
