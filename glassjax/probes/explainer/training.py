"""Training the explainer on a frozen performer's maps, without labels.

loss = sum_l ||f_l - f_hat_l||^2 / (s_l^2 dim_l)  +  lambda_f / F sum_f Loss_f  -  eta log p

f_l the performer's target layer l (s_l its RMS over the training maps, so each term is a
relative squared error), Loss_f the ICNN filter loss of each interpretable filter on every
interpretable layer (``filter_loss``), p the interpretable track's share. Adam; every random
choice of epoch e comes from ``fold_in(key, e)``; one epoch is one jitted ``lax.scan``.
"""
from __future__ import annotations

import dataclasses
import functools
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassjax.core import arrays
from glassjax.core.progress import progress
from glassjax.probes.explainer import performer as perf
from glassjax.probes.explainer.config import ExplainerConfig
from glassjax.probes.explainer.filter_loss import filter_loss
from glassjax.probes.explainer.model import Encoded, Explainer, Target

__all__ = ["ExplainerParams", "encode", "fit", "module_for"]


class ExplainerParams(eqx.Module):
    """A trained explainer: its Flax weights, the input and target scales, and what it explains.

    input_scale    RMS of the performer's layer-l maps over the training images (the encoder reads maps / it)
    target_scales  target name -> RMS of that layer over the training images
    info           performer name, losses per epoch, train seconds
    """

    config: ExplainerConfig = eqx.field(static=True)
    targets: tuple[Target, ...] = eqx.field(static=True)
    weights: dict
    input_scale: jax.Array
    target_scales: dict
    info: dict = eqx.field(static=True, default_factory=dict)


def module_for(config: ExplainerConfig, targets) -> Explainer:
    return Explainer(config.filters, config.interpretable_layers, config.hidden, tuple(targets))


@functools.partial(jax.jit, static_argnames="module")
def _encode(module: Explainer, weights, maps, input_scale, target_scales) -> Encoded:
    enc = module.apply({"params": weights}, maps / input_scale)
    return enc._replace(reconstructed={k: v * target_scales[k] for k, v in enc.reconstructed.items()})


def encode(params: ExplainerParams, maps: jax.Array) -> Encoded:
    """The explainer on the performer's layer-l maps (N, h, w, c): reconstructions in the layers' own units."""
    arrays.as_images(maps, "explainer.encode")
    return _encode(module_for(params.config, params.targets), params.weights, jnp.asarray(maps),
                   params.input_scale, params.target_scales)


def _loss(weights, module, maps, targets, eta, filter_weight):
    enc = module.apply({"params": weights}, maps)
    recon = sum(jnp.mean(jnp.square(enc.reconstructed[k] - v)) for k, v in targets.items())
    filt = sum(jnp.sum(filter_loss(x)) for x in enc.interpretable) / module.filters
    total = recon + filter_weight * filt - eta * jnp.log(enc.p)
    return total, (recon, filt, enc.p)


@functools.partial(jax.jit, static_argnames=("module", "optimizer"), donate_argnums=(0, 1))
def _epoch(weights, opt_state, maps, targets, order, eta, filter_weight, *, module, optimizer):
    """One pass over ``order`` (steps, B) rows of maps / targets; returns the means of the loss terms."""

    def step(carry, rows):
        w, s = carry
        batch = {k: v[rows] for k, v in targets.items()}
        grads, aux = jax.grad(_loss, has_aux=True)(w, module, maps[rows], batch, eta, filter_weight)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int32 step
            updates, s = optimizer.update(grads, s, w)
        return (optax.apply_updates(w, updates), s), jnp.stack(aux)

    (weights, opt_state), aux = jax.lax.scan(step, (weights, opt_state), order)
    return weights, opt_state, jnp.mean(aux, axis=0)


@functools.lru_cache(maxsize=8)
def _optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)  # cached: a jit static argument must be the same object to hit the cache


def _rms(a: np.ndarray) -> np.float32:
    return np.float32(max(float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))), 1e-12))


def fit(performer: perf.Performer, x: np.ndarray, config: ExplainerConfig | None = None, *,
        key: jax.Array) -> ExplainerParams:
    """An explainer of ``performer``'s layer ``config.layer``, trained on images x (N, H, W, C) in [0, 1]
    (no labels). The performer is only read: its params are never differentiated or changed."""
    config = (config or ExplainerConfig()).validated()
    x = np.asarray(arrays.as_images(x, "explainer.fit"), np.float32)
    shapes = perf.layer_shapes(performer, x.shape[1:])
    if config.layer not in shapes:
        raise ValueError(f"explainer.fit: expected layer one of the performer's {list(shapes)}, got {config.layer!r}")
    if len(shapes[config.layer]) != 3:
        raise ValueError(f"explainer.fit: expected a spatial (N, h, w, c) layer, got {config.layer} of shape "
                         f"{shapes[config.layer]} per image; spatial layers: "
                         f"{perf.spatial_layers(performer, x.shape[1:])}")
    names = list(shapes)
    targets = config.targets or perf.default_targets(performer, x.shape[1:], config.layer)
    for t in targets:
        if t not in shapes or names.index(t) <= names.index(config.layer):
            raise ValueError(f"explainer.fit: expected targets among the layers after {config.layer} "
                             f"({names[names.index(config.layer) + 1:]}), got {t!r}")
    if x.shape[0] < config.batch_size:
        raise ValueError(f"explainer.fit: expected at least batch_size={config.batch_size} images, got {x.shape[0]}")
    images = np.concatenate([x, x[:, :, ::-1]]) if config.flip else x
    maps = perf.layer_maps(performer, images, (config.layer,) + tuple(targets), desc="explainer: performer maps")
    input_scale = _rms(maps[config.layer])
    scales = {t: _rms(maps[t]) for t in targets}
    spec = tuple(Target(t, shapes[t], bool(np.min(maps[t]) >= 0)) for t in targets)
    module = module_for(config, spec)
    inputs = jnp.asarray(maps[config.layer] / input_scale)
    goals = {t: jnp.asarray(maps[t] / scales[t]) for t in targets}

    key_init, key_epochs = jax.random.split(key)
    weights = jax.jit(module.init)(key_init, inputs[:1])["params"]
    optimizer = _optimizer(config.learning_rate)
    opt_state = optimizer.init(weights)
    n = inputs.shape[0]
    steps = n // config.batch_size
    history, start = [], time.perf_counter()
    bar = progress(range(config.epochs), total=config.epochs, desc=f"explainer {config.layer}", unit="epoch")
    for epoch in bar:
        order = jax.random.permutation(jax.random.fold_in(key_epochs, epoch), n)[: steps * config.batch_size]
        weights, opt_state, means = _epoch(weights, opt_state, inputs, goals, order.reshape(steps, -1),
                                           np.float32(config.eta), np.float32(config.filter_weight),
                                           module=module, optimizer=optimizer)
        recon, filt, p = (float(v) for v in means)
        history.append({"epoch": epoch + 1, "reconstruction": recon, "filter_loss": filt, "p": p})
        bar.set_postfix(recon=f"{recon:.3f}", filt=f"{filt:.3f}", p=f"{p:.3f}")
    info = {"performer": performer.system.name, "train_seconds": time.perf_counter() - start,
            "training_maps": int(n), "history": history, "config": dataclasses.asdict(config)}
    return ExplainerParams(config, spec, weights, jnp.asarray(input_scale), {t: jnp.asarray(s) for t, s in scales.items()},
                           info)
