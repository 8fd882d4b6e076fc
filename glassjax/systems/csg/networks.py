"""The two networks CSG training drives, behind one interface: the small CNN and AlexNet.

A ``Network`` is static (module-level, hashable, a jit static argument): how to make fresh
weights, how to prepare images once before training, the logits with or without a gate, and
the activations a system shows. AlexNet is ``glassjax.systems.alexnet``'s own module,
unchanged: its conv5 output is gated through a Flax method interceptor, so the CSG path runs
exactly the AlexNet forward pass with conv5 multiplied by the gate before its max pool.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.systems.alexnet import model as alexnet
from glassjax.systems.csg import cnn, gates

__all__ = ["Network", "CNN", "ALEXNET", "get", "channels", "grad_cam"]


class Network(NamedTuple):
    """One trainable network. Every function is pure; ``config`` is the system's config.

    init(key, num_classes, image_shape (H, W, C), config) -> weights
    prepare(x, config) -> the images (N, ...) the network reads, from x (N, H, W, C) in [0, 1];
                          jittable (training prepares its images once, before the first step)
    logits(weights, prepared, gate_rows (N, K) or None, train, key) -> (N, classes)
    activations(weights, x, config) -> {layer: activation} of raw images x (N, H, W, C) in [0, 1]
    check(weights) -> None, ValueError unless the layers fit together
    gated_map(weights, prepared, shift (N, h, w, K) or None) -> (logits, the gated layer's map
                          (N, h, w, K), with ``shift`` added to that map before the rest runs)
    """

    name: str
    gated_layer: str
    init: Callable
    prepare: Callable
    logits: Callable
    activations: Callable
    check: Callable
    gated_map: Callable


def _cnn_init(key, num_classes, image_shape, config):
    if min(image_shape[:2]) < cnn.MIN_SIZE:
        raise ValueError(f"cnn_csg: expected images of at least {cnn.MIN_SIZE}x{cnn.MIN_SIZE}, got {tuple(image_shape)}")
    return cnn.init(key, num_classes, int(image_shape[-1]), config.channels)


def _cnn_logits(weights, x, gate_rows, train, key):
    del train, key  # no dropout
    return cnn.forward(weights, x, gate_rows)[0]


def _cnn_activations(weights, x, config):
    return cnn.forward(weights, x)[1]


def _cnn_gated_map(weights, x, shift):
    logits, acts = cnn.forward(weights, x, shift=shift)
    return logits, acts[cnn.GATED_LAYER] if shift is None else acts[cnn.GATED_LAYER] - shift


CNN = Network(
    name="cnn", gated_layer=cnn.GATED_LAYER, init=_cnn_init, prepare=lambda x, config: jnp.asarray(x),
    logits=_cnn_logits, activations=_cnn_activations, check=cnn.check_params,
    gated_map=_cnn_gated_map,
)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _alexnet_weights(key, num_classes, width):
    # One compiled program: drawn eagerly, every kernel shape would compile its own random bits.
    return alexnet.init(key, num_classes, width=width)


def _alexnet_init(key, num_classes, image_shape, config):
    return _alexnet_weights(key, int(num_classes), float(config.width))


def _alexnet_run(weights, x, change, train, key):
    """(logits, acts) of AlexNet with ``change`` (a function of conv5's output) applied to conv5."""
    module = alexnet.model_for(weights)
    rngs = {"dropout": key} if train else {}
    if change is None:
        return module.apply({"params": weights}, x, train=train, rngs=rngs)

    def change_conv5(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.module.name == "conv5" and context.method_name == "__call__":
            out = change(out)
        return out

    with nn.intercept_methods(change_conv5):
        return module.apply({"params": weights}, x, train=train, rngs=rngs)


def _alexnet_logits(weights, x, gate_rows, train, key):
    change = None if gate_rows is None else (lambda a: gates.apply(a, gate_rows))
    return _alexnet_run(weights, x, change, train, key)[0]


def _alexnet_gated_map(weights, x, shift):
    maps = []

    def keep(a):
        maps.append(a)
        return a if shift is None else a + shift

    logits, _ = _alexnet_run(weights, x, keep, False, None)
    return logits, maps[0]


def _alexnet_activations(weights, x, config):
    return alexnet.activations(weights, alexnet.preprocess(x, config.size))


ALEXNET = Network(
    name="alexnet", gated_layer="conv5", init=_alexnet_init,
    prepare=lambda x, config: alexnet.preprocess(x, config.size),
    logits=_alexnet_logits, activations=_alexnet_activations, check=alexnet.model_for,
    gated_map=_alexnet_gated_map,
)

_NETWORKS = {"cnn": CNN, "alexnet": ALEXNET}


def get(name: str) -> Network:
    """The network named ``name`` (cnn or alexnet)."""
    if name not in _NETWORKS:
        raise ValueError(f"csg: expected a network in {'|'.join(_NETWORKS)}, got {name!r}")
    return _NETWORKS[name]


def channels(network: Network, weights) -> int:
    """K, the gated layer's number of filters."""
    return int(np.shape(weights[network.gated_layer]["bias"])[0])



def grad_cam(network: Network, weights, x: jax.Array, y: jax.Array) -> jax.Array:
    """Class activation maps (N, h, w) of prepared images x for classes y (N,), on the gated layer.

    Grad-CAM (Selvaraju et al. 2017): the layer's map A (N, h, w, K) weighted by the spatial mean
    of d score_y / dA. When global average pooling and a linear head follow the layer (the
    small CNN), that weight is W[k, y] / (h w): CAM (Zhou et al. 2016) up to that constant.
    """
    _, maps = network.gated_map(weights, x, None)

    def score(shift):
        logits, _ = network.gated_map(weights, x, shift)
        return jnp.sum(jnp.take_along_axis(logits, y[:, None], axis=1))

    grads = jax.grad(score)(jnp.zeros_like(maps))
    return jnp.einsum("nhwk,nk->nhw", maps, jnp.mean(grads, axis=(1, 2)), precision="highest")
