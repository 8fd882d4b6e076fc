"""The performer's head: the rest of its network run from one of its layers, so that reconstructed
features can be classified by the performer itself.

AlexNet (any performer whose ``params.weights`` is an AlexNet's, ``alexnet`` and ``alexnet_csg``):
the registered module runs with the named layer's output replaced (a Flax method interceptor), so
the head is exactly the network's own layers after it. Any other performer: only its last layer,
when that layer is its class scores (checked on the images given).
"""
from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.probes.explainer.performer import Performer, alexnet_weights, layer_shapes
from glassjax.systems.alexnet import model as alexnet

__all__ = ["head"]


def head(performer: Performer, layer: str, x: np.ndarray) -> Callable[[jax.Array], jax.Array] | None:
    """activation of ``layer`` (N, ...) -> the performer's class scores (N, classes), or None where the
    performer's network after ``layer`` is not known. x (N, H, W, C): images the check runs on."""
    weights = alexnet_weights(performer)
    if weights is not None and layer in alexnet.LAYER_NAMES:
        module, size = alexnet.model_for(weights), int(performer.params.config.size)

        def rest(activation):
            def replace(next_fun, args, kwargs, context):
                out = next_fun(*args, **kwargs)
                if context.module.name == layer and context.method_name == "__call__":
                    return activation
                return out

            dummy = jnp.zeros((activation.shape[0], size, size, 3), activation.dtype)  # its layers are discarded
            with nn.intercept_methods(replace):
                return module.apply({"params": weights}, dummy)[0]

        return jax.jit(rest)
    if layer != list(layer_shapes(performer, x.shape[1:]))[-1]:
        return None
    feats = performer.system.features(performer.params, x)[layer]
    scores = performer.system.scores(performer.params, x)
    same = feats.shape == scores.shape and np.allclose(np.asarray(feats), np.asarray(scores), rtol=1e-5, atol=1e-5)
    return (lambda activation: activation) if same else None
