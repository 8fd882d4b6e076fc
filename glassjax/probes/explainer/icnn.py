"""An ICNN-trained performer (Interpretable CNNs, Zhang, Wu, Zhu 2018): AlexNet trained from scratch
with the mask layer after one conv layer and the filter loss on its masked maps.

loss = cross-entropy + lambda_f / F sum_f Loss_f(masked maps of ``layer``)

The network is the registered AlexNet, unchanged; the mask is applied to ``layer``'s output through
a Flax method interceptor, in training and at test time alike. The mask keeps each map's peak
value and position, so the layer's peaks (what location instability reads) are those of the
plain forward pass. AdamW as ``glassjax.systems.alexnet.training``; epoch e's random choices
come from ``fold_in(key, e)``.
"""
from __future__ import annotations

import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassjax.core import arrays
from glassjax.core.arrays import pad_rows
from glassjax.core.progress import progress
from glassjax.probes.explainer.filter_loss import filter_loss
from glassjax.probes.explainer.templates import mask
from glassjax.systems.alexnet import model as alexnet
from glassjax.systems.alexnet import system as alexnet_system
from glassjax.systems.alexnet.training import make_optimizer

__all__ = ["forward", "scores", "train"]


def forward(weights, x: jax.Array, layer: str, *, train: bool = False, key: jax.Array | None = None):
    """(logits (N, classes), the masked map of ``layer`` (N, h, w, F)) of preprocessed images x (N, S, S, 3)."""
    kept = []

    def masked(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.module.name == layer and context.method_name == "__call__":
            out = mask(out)
            kept.append(out)
        return out

    rngs = {"dropout": key} if train else {}
    with nn.intercept_methods(masked):
        logits, _ = alexnet.model_for(weights).apply({"params": weights}, x, train=train, rngs=rngs)
    return logits, kept[0]


def _loss(weights, x, y, key, layer, filter_weight):
    logits, maps = forward(weights, x, layer, train=True, key=key)
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    return ce + filter_weight * jnp.sum(filter_loss(maps)) / maps.shape[-1], ce


@functools.partial(jax.jit, static_argnames=("layer", "optimizer"), donate_argnums=(0, 1))
def _step(weights, opt_state, x, y, key, filter_weight, *, layer, optimizer):
    (loss, ce), grads = jax.value_and_grad(_loss, has_aux=True)(weights, x, y, key, layer, filter_weight)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int32 step
        updates, opt_state = optimizer.update(grads, opt_state, weights)
    return optax.apply_updates(weights, updates), opt_state, loss, ce


@functools.partial(jax.jit, static_argnames="layer")
def _predict(weights, x, layer):
    return jnp.argmax(forward(weights, x, layer)[0], axis=-1)


def scores(params, x: np.ndarray, layer: str, *, batch_size: int = 64) -> np.ndarray:
    """Predicted classes (N,) of images x (N, H, W, C) in [0, 1] by the masked network."""
    x = np.asarray(alexnet.preprocess(arrays.as_images(x, "icnn.scores"), params.config.size))
    out = [np.asarray(_predict(params.weights, pad_rows(x[i:i + batch_size], batch_size), layer))[:x[i:i + batch_size].shape[0]]
           for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(out)


def train(dataset, *, layer: str = "conv4", config: alexnet_system.AlexNetConfig | None = None,
          filter_weight: float = 1.0, key: jax.Array) -> alexnet_system.AlexNetParams:
    """AlexNet (``config``'s size, width, epochs, batch size, learning rate) trained with the ICNN mask and
    filter loss on ``layer``; returned as the registered system's params (``info`` says how it was made)."""
    if layer not in alexnet.CONV_NAMES:
        raise ValueError(f"icnn.train: expected layer one of {alexnet.CONV_NAMES}, got {layer!r}")
    filter_weight = arrays.as_float(filter_weight, "icnn.train", "filter_weight", positive=False)
    config = (config or alexnet_system.AlexNetConfig()).validated()
    key_init, key_epochs = jax.random.split(key)
    weights = jax.jit(alexnet.init, static_argnums=(1,), static_argnames="width")(
        key_init, int(dataset.num_classes), width=float(config.width))
    optimizer = make_optimizer(config.learning_rate)
    opt_state = optimizer.init(weights)
    x = np.asarray(alexnet.preprocess(dataset.x_train, config.size))
    y = np.asarray(dataset.y_train, np.int32)
    n, b = x.shape[0], min(config.batch_size, x.shape[0])
    steps, history, start = n // b, [], time.perf_counter()
    for epoch in progress(range(config.epochs), total=config.epochs, desc=f"ICNN AlexNet ({layer})", unit="epoch"):
        key_perm, key_steps = jax.random.split(jax.random.fold_in(key_epochs, epoch))
        order = np.asarray(jax.random.permutation(key_perm, n))
        total = ce_total = 0.0
        for step in range(steps):
            rows = order[step * b:(step + 1) * b]
            weights, opt_state, loss, ce = _step(weights, opt_state, x[rows], y[rows], jax.random.fold_in(key_steps, step),
                                                 np.float32(filter_weight), layer=layer, optimizer=optimizer)
            total, ce_total = total + float(loss), ce_total + float(ce)
        history.append({"epoch": epoch + 1, "loss": total / steps, "cross_entropy": ce_total / steps})
    info = {"source": "trained with the ICNN filter loss", "icnn_layer": layer, "filter_weight": filter_weight,
            "train_seconds": time.perf_counter() - start, "history": history}
    return alexnet_system.AlexNetParams(config, tuple(dataset.class_names), weights, info)
