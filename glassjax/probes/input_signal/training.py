"""The probe's two trainings and its forward passes, on an ``Autoencoder`` (Flax variables of both halves).

  init(config, image_shape, *, key)                        -> Autoencoder
  pretrain(ae, x, *, key)                                  -> Autoencoder: MSE, every weight
  finetune(ae, x, y, scores, classifier_params, *, key)    -> Autoencoder: the classifier's cross-entropy,
                                                              decoder only; the encoder is returned as given
  reconstruct(ae, x, *, batch_size)                        -> (N, H, W, C) numpy, inference mode
  encode(ae, x, *, batch_size)                             -> Code (numpy), inference mode

x (N, H, W, C) float32 images; y (N,) int labels; ``scores(classifier_params, x) -> (N, classes)``
jittable. Batches are ceil(N / batch_size) per epoch, the last one completed from the start of
the epoch's seeded permutation, so every step has one shape (one compile) and real images only.
In fine-tuning the frozen encoder runs once over x in inference mode (its batch norm on running
statistics), so its codes are fixed inputs and no gradient can reach it.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassjax.core import arrays
from glassjax.core.batching import map_batches
from glassjax.core.progress import progress
from glassjax.probes.input_signal.autoencoder import (
    AutoencoderConfig,
    Code,
    Decoder,
    Encoder,
)

__all__ = ["Autoencoder", "init", "pretrain", "finetune", "reconstruct", "encode", "parameter_count"]


class Autoencoder(NamedTuple):
    """Both halves' Flax variables ({"params", "batch_stats"}), the config, the image shape (H, W, C),
    and the mean loss of each epoch trained so far (pretraining, then fine-tuning)."""

    config: AutoencoderConfig
    image_shape: tuple[int, int, int]
    encoder: dict
    decoder: dict
    losses: tuple[float, ...] = ()


def _modules(config: AutoencoderConfig, image_shape) -> tuple[Encoder, Decoder]:
    height, width, channels = image_shape
    return (Encoder(config.widths, config.convs),
            Decoder(config.widths, config.convs, channels, (height, width)))


@functools.partial(jax.jit, static_argnames=("encoder", "decoder", "image_shape"))
def _init(key, *, encoder, decoder, image_shape):
    # One compiled program: eager Flax init would compile every initializer op on its own.
    k_enc, k_dec = jax.random.split(key)
    x = jnp.zeros((1,) + image_shape, jnp.float32)
    enc = encoder.init(k_enc, x, train=False)
    dec = decoder.init(k_dec, encoder.apply(enc, x, train=False), train=False)
    return enc, dec


def init(config: AutoencoderConfig, image_shape, *, key: jax.Array) -> Autoencoder:
    """Fresh weights for images of ``image_shape`` (H, W, C); ``key`` seeds both halves."""
    config = config.validated()
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or min(image_shape[:2]) < 2 ** len(config.widths):
        raise ValueError(f"input_signal: expected images (H, W, C) with H, W >= {2 ** len(config.widths)} for "
                         f"{len(config.widths)} poolings, got {image_shape}")
    encoder, decoder = _modules(config, image_shape)
    enc, dec = _init(key, encoder=encoder, decoder=decoder, image_shape=image_shape)
    return Autoencoder(config, image_shape, dict(enc), dict(dec))


def parameter_count(ae: Autoencoder) -> dict[str, int]:
    """Trained weights of each half: {"encoder": n, "decoder": n}."""
    return {half: int(sum(np.size(leaf) for leaf in jax.tree.leaves(getattr(ae, half)["params"])))
            for half in ("encoder", "decoder")}


def _check_x(x, where: str, image_shape=None) -> np.ndarray:
    x = arrays.as_images(x, where)
    if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
        raise ValueError(f"{where}: expected images of shape (N, {', '.join(map(str, image_shape))}) like the "
                         f"autoencoder's, got shape {tuple(x.shape)}")
    return np.asarray(x, np.float32)


def _batches(n: int, batch: int, key: jax.Array, epoch: int) -> np.ndarray:
    """(steps, batch) row indices of one epoch: a seeded permutation, wrapped round to fill the last batch."""
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
    steps = -(-n // batch)
    return order[np.arange(steps * batch) % n].reshape(steps, batch)


@functools.lru_cache(maxsize=8)
def _optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


def _update(optimizer, grads, opt_state, params):
    # Adam's bias correction raises a float to an int32 count, which strict promotion (the tests') rejects.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


@functools.partial(jax.jit, static_argnames=("encoder", "decoder", "optimizer"))
def _pretrain_step(variables, opt_state, x, *, encoder, decoder, optimizer):
    enc, dec = variables

    def loss_fn(params):
        code, enc_state = encoder.apply({"params": params[0], "batch_stats": enc["batch_stats"]}, x, train=True,
                                        mutable=["batch_stats"])
        out, dec_state = decoder.apply({"params": params[1], "batch_stats": dec["batch_stats"]}, code, train=True,
                                       mutable=["batch_stats"])
        return jnp.mean(jnp.square(out - x)), (enc_state["batch_stats"], dec_state["batch_stats"])

    params = (enc["params"], dec["params"])
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    params, opt_state = _update(optimizer, grads, opt_state, params)
    return ({"params": params[0], "batch_stats": stats[0]}, {"params": params[1], "batch_stats": stats[1]}), \
        opt_state, loss


@functools.partial(jax.jit, static_argnames=("decoder", "scores", "optimizer"))
def _finetune_step(dec, opt_state, code, y, classifier_params, *, decoder, scores, optimizer):
    def loss_fn(params):
        out, state = decoder.apply({"params": params, "batch_stats": dec["batch_stats"]}, code, train=True,
                                   mutable=["batch_stats"])
        logits = scores(classifier_params, out)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), state["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(dec["params"])
    params, opt_state = _update(optimizer, grads, opt_state, dec["params"])
    return {"params": params, "batch_stats": stats}, opt_state, loss


def pretrain(ae: Autoencoder, x: Any, *, key: jax.Array, desc: str = "autoencoder") -> Autoencoder:
    """``ae`` trained ``config.pretrain_epochs`` epochs to reconstruct x (N, H, W, C) (mean squared error)."""
    x = _check_x(x, "input_signal.pretrain", ae.image_shape)
    config = ae.config
    encoder, decoder = _modules(config, ae.image_shape)
    optimizer = _optimizer(float(config.learning_rate))
    variables = (ae.encoder, ae.decoder)
    opt_state = optimizer.init((ae.encoder["params"], ae.decoder["params"]))
    batch = min(config.batch_size, x.shape[0])
    losses = list(ae.losses)
    for epoch in progress(range(config.pretrain_epochs), total=config.pretrain_epochs, desc=desc, unit="epoch"):
        total = []
        for rows in _batches(x.shape[0], batch, key, epoch):
            variables, opt_state, loss = _pretrain_step(variables, opt_state, jnp.asarray(x[rows]), encoder=encoder,
                                                        decoder=decoder, optimizer=optimizer)
            total.append(loss)
        losses.append(float(np.mean(jax.device_get(total))))
    return ae._replace(encoder=variables[0], decoder=variables[1], losses=tuple(losses))


def finetune(ae: Autoencoder, x: Any, y: Any, scores: Callable[[Any, jax.Array], jax.Array], classifier_params: Any,
             *, key: jax.Array, desc: str = "fine-tune") -> Autoencoder:
    """``ae`` with its decoder trained ``config.finetune_epochs`` epochs so that the frozen classifier
    ``scores(classifier_params, .)`` labels its reconstructions of x (N, H, W, C) as y (N,):
    mean cross-entropy, Adam on the decoder's weights only. The encoder comes back as given."""
    x = _check_x(x, "input_signal.finetune", ae.image_shape)
    y = np.asarray(arrays.as_labels(y, x.shape[0], "input_signal.finetune"))
    if not callable(scores):
        raise TypeError(f"input_signal.finetune: expected scores a function (params, x) -> logits, "
                        f"got {type(scores).__name__}")
    config = ae.config
    code = encode(ae, x, batch_size=max(config.batch_size, 256))
    _, decoder = _modules(config, ae.image_shape)
    optimizer = _optimizer(float(config.learning_rate))
    dec = ae.decoder
    opt_state = optimizer.init(dec["params"])
    batch = min(config.batch_size, x.shape[0])
    losses = list(ae.losses)
    for epoch in progress(range(config.finetune_epochs), total=config.finetune_epochs, desc=desc, unit="epoch"):
        total = []
        for rows in _batches(x.shape[0], batch, key, epoch):
            batch_code = Code(jnp.asarray(code.maps[rows]), tuple(jnp.asarray(a[rows]) for a in code.argmax))
            dec, opt_state, loss = _finetune_step(dec, opt_state, batch_code, jnp.asarray(y[rows]), classifier_params,
                                                  decoder=decoder, scores=scores, optimizer=optimizer)
            total.append(loss)
        losses.append(float(np.mean(jax.device_get(total))))
    return ae._replace(decoder=dec, losses=tuple(losses))


@functools.partial(jax.jit, static_argnames=("encoder",))
def _encode(enc, x, *, encoder):
    return encoder.apply(enc, x, train=False)


@functools.partial(jax.jit, static_argnames=("encoder", "decoder"))
def _reconstruct(enc, dec, x, *, encoder, decoder):
    return decoder.apply(dec, encoder.apply(enc, x, train=False), train=False)


def encode(ae: Autoencoder, x: Any, *, batch_size: int = 256) -> Code:
    """The frozen encoder's Code of x (N, H, W, C), as numpy arrays (inference mode)."""
    x = _check_x(x, "input_signal.encode", ae.image_shape)
    encoder, _ = _modules(ae.config, ae.image_shape)
    out = map_batches(lambda b: tuple(_encode(ae.encoder, b, encoder=encoder)), x, batch_size)
    return Code(out[0], tuple(out[1]))


def reconstruct(ae: Autoencoder, x: Any, *, batch_size: int = 256) -> np.ndarray:
    """Reconstructions (N, H, W, C) float32 of x (N, H, W, C), inference mode (no output clipping)."""
    x = _check_x(x, "input_signal.reconstruct", ae.image_shape)
    encoder, decoder = _modules(ae.config, ae.image_shape)
    return map_batches(lambda b: _reconstruct(ae.encoder, ae.decoder, b, encoder=encoder, decoder=decoder), x,
                       batch_size)
