"""AlexNet, the paper's baseline: torchvision's layout in Flax, weights in and out, training.

  model     the Flax module and the pure ``apply`` / ``activations`` / ``preprocess``
  weights   torchvision-format state dicts (.safetensors, .npz, .pth read-only)
  training  training from scratch with optax, resumable checkpoints
  system    the registered system ``alexnet``
"""
from glassjax.systems.alexnet.model import (
    CONV_GEOMETRY, CONV_NAMES, DENSE_NAMES, IMAGENET_MEAN, IMAGENET_STD, LAYER_NAMES, MIN_SIZE, POOL_SIZE,
    AlexNet, Conv, Dense, activations, adaptive_avg_pool, apply, init, model_for, preprocess,
)
from glassjax.systems.alexnet.weights import load_torchvision, save_torchvision

__all__ = [
    "AlexNet", "Conv", "Dense", "activations", "adaptive_avg_pool", "apply", "init", "model_for", "preprocess",
    "load_torchvision", "save_torchvision", "CONV_GEOMETRY", "CONV_NAMES", "DENSE_NAMES", "IMAGENET_MEAN",
    "IMAGENET_STD", "LAYER_NAMES", "MIN_SIZE", "POOL_SIZE",
]
