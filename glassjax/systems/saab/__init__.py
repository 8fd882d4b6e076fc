"""The Saab transform and the FF-CNN (Kuo et al. 2019); its back-propagated reference is ``glassjax.systems.lenet``.

  geometry   the input canvas, k x k patches, max pooling
  transform  the Saab transform: streaming statistics -> DC + AC kernels, bias, energies
  passes     streaming fit passes over a layer's input (whole windows or channel by channel)
  ffcnn      FFCNNConfig, FFCNNParams, the one-pass fit and the jittable forward pass
  files      model-file helpers
  system     the registered system ``saab_ff``, save / load

``glassjax.systems.pixelhop`` builds on ``transform``; nothing here imports it.
"""
from glassjax.systems.saab import transform
from glassjax.systems.saab.ffcnn import FFCNNConfig, FFCNNParams, features, fit, scores
from glassjax.systems.saab.transform import Saab

__all__ = ["FFCNNConfig", "FFCNNParams", "Saab", "features", "fit", "scores", "transform"]
