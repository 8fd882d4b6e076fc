"""The frozen performer: a fitted system read as layers, never trained by the explainer.

  Performer(system, params)        any registered system and its fitted params
  spatial_layers(performer, shape) its (N, h, w, c) layers, in depth order
  layer_maps(performer, x, names)  those layers of images x, in fixed-size jitted batches
  centres(performer, layer, shape) where each unit of a spatial layer looks in the image
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays
from glassjax.core.batching import map_batches
from glassjax.probes.explainer import receptive
from glassjax.systems.alexnet import model as alexnet
from glassjax.systems.protocol import System

__all__ = ["Performer", "alexnet_weights", "centres", "default_targets", "layer_maps", "layer_shapes", "spatial_layers"]


class Performer(NamedTuple):
    """A registered system and its fitted params; the explainer reads it and never changes it."""

    system: System
    params: Any


def layer_shapes(performer: Performer, image_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """layer -> shape per image, in depth order, of the performer on images of ``image_shape`` (H, W, C)."""
    order: list[str] = []

    def in_order(params, x):  # a dict output comes back with sorted keys; keep the depth order
        out = performer.system.features(params, x)
        order[:] = list(out)
        return [out[name] for name in order]

    probe = jax.ShapeDtypeStruct((1,) + tuple(image_shape), jnp.float32)
    shapes = jax.eval_shape(in_order, performer.params, probe)
    return {name: tuple(s.shape[1:]) for name, s in zip(order, shapes)}


def spatial_layers(performer: Performer, image_shape: Sequence[int]) -> list[str]:
    """The performer's spatial layers (h, w, c per image), in depth order."""
    return [name for name, shape in layer_shapes(performer, image_shape).items() if len(shape) == 3]


def default_targets(performer: Performer, image_shape: Sequence[int], layer: str) -> tuple[str, ...]:
    """The layer after ``layer``, and the layer the performer's classifier reads when it is deeper."""
    names = list(layer_shapes(performer, image_shape))
    at = names.index(layer)
    if at + 1 >= len(names):
        raise ValueError(f"explainer: layer {layer} is the performer's last; expected a layer with one after it")
    out = [names[at + 1]]
    rep = performer.system.representation(performer.params)
    if rep in names and names.index(rep) > at + 1:
        out.append(rep)
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _layers_fn(system: System, names: tuple[str, ...]):
    return jax.jit(lambda params, x: {name: system.features(params, x)[name] for name in names})


def layer_maps(performer: Performer, x: np.ndarray, names: Sequence[str], *, batch_size: int = 64,
               desc: str = "performer") -> dict[str, np.ndarray]:
    """Layers ``names`` of images x (N, H, W, C) in [0, 1]: name -> (N, ...) float32 numpy."""
    arrays.as_images(x, "explainer.layer_maps")
    fn = _layers_fn(performer.system, tuple(names))
    return map_batches(lambda chunk: fn(performer.params, chunk), np.asarray(x, np.float32), batch_size, desc=desc)


def alexnet_weights(performer: Performer):
    """The performer's weights when they are an AlexNet's (``alexnet``, ``alexnet_csg``), else None."""
    weights = getattr(performer.params, "weights", None)
    try:
        alexnet.model_for(weights)
    except (TypeError, ValueError):
        return None
    return weights


def centres(performer: Performer, layer: str, image_shape: Sequence[int]) -> tuple[np.ndarray, str]:
    """Receptive-field centres (h, w, 2) of ``layer``'s units on images of ``image_shape``, and how they
    were found: AlexNet's own geometry, else units spread evenly over the image."""
    h, w, _ = layer_shapes(performer, image_shape)[layer]
    if alexnet_weights(performer) is not None and layer in alexnet.CONV_NAMES:
        size = int(performer.params.config.size)
        return receptive.alexnet_centres(layer, h, w, size, image_shape), "alexnet geometry"
    return receptive.grid_centres(h, w, image_shape), "even grid"
