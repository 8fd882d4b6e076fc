"""Class-specific gates (CSG-CNN; Liang et al., "Training Interpretable Convolutional Neural Networks
by Differentiating Class-specific Filters", ECCV 2020), trained in JAX.

  gates     the gate matrix G (K, C): applying it, its sparsity loss, renormalisation, density
  cnn       the small CNN of ``cnn_csg`` (three convs, global average pool, linear head)
  networks  the small CNN and AlexNet behind one interface, the gate on their last conv
  config    the two systems' configs and the schedule of standard / CSG epochs
  training  the alternating training loop, resumable checkpoints, the gate-off accuracy curve
  system    the registered systems ``cnn_csg`` and ``alexnet_csg``
"""
from glassjax.systems.csg import cnn, gates, networks
from glassjax.systems.csg.config import AlexNetCSGConfig, CNNCSGConfig, is_csg_epoch
from glassjax.systems.csg.training import train

__all__ = ["cnn", "gates", "networks", "AlexNetCSGConfig", "CNNCSGConfig", "is_csg_epoch", "train"]
