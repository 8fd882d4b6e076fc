"""Train AlexNet from scratch with optax (AdamW, cross-entropy) on a glassjax data set.

Images are preprocessed once (grey to RGB, bilinear resize to ``size``, ImageNet
normalisation); D4 augmentation, if asked for, acts on the preprocessed square images with
one random element per image per step. Every random choice of epoch ``e`` comes from
``fold_in(key, e)``, so a run resumed from its checkpoint after epoch ``e`` continues
exactly as the uninterrupted run would.

The checkpoint (msgpack, written atomically after every epoch) holds params, optimizer
state, the number of finished epochs, the base key, the per-epoch losses and the settings
that must match for a resume.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from glassjax.systems.alexnet import model as alexnet
from glassjax.core import groups
from glassjax.core import parallel
from glassjax.core.files import write_bytes_atomic
from glassjax.core.progress import progress

__all__ = ["TrainState", "train", "evaluate", "evaluate_dataset", "make_optimizer", "load_checkpoint", "AUGMENTS"]

AUGMENTS = ("none", "d4")
_WEIGHT_DECAY = 5e-4


class TrainState(NamedTuple):
    """What a checkpoint holds: params, optax state, finished epochs, base key, per-epoch losses."""

    params: dict
    opt_state: optax.OptState
    epoch: int
    key: jax.Array
    losses: np.ndarray


@functools.lru_cache(maxsize=16)
def make_optimizer(learning_rate: float) -> optax.GradientTransformation:
    """AdamW with decoupled weight decay on kernels only (biases are not decayed)."""
    decay_mask = lambda params: jax.tree.map_with_path(lambda path, _: path[-1].key == "kernel", params)  # noqa: E731
    return optax.adamw(learning_rate, weight_decay=_WEIGHT_DECAY, mask=decay_mask)


def _loss(params, x, y, mask, key):
    logits = alexnet.apply(params, x, train=True, key=key)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(losses * mask) / jnp.sum(mask)


@functools.partial(jax.jit, static_argnames=("optimizer", "augment"), donate_argnums=(0, 1))
def _train_step(params, opt_state, x, y, mask, key, *, optimizer, augment):
    """One AdamW step on a (B, S, S, 3) batch; ``mask`` (B,) marks real (1) and padding (0) rows."""
    key_aug, key_dropout = jax.random.split(key)
    if augment == "d4":
        g = groups.random_elements("d4", x.shape[0], key=key_aug)
        x = groups.act_batch("d4", g, x)
    loss, grads = jax.value_and_grad(_loss)(params, x, y, mask, key_dropout)
    # optax's Adam bias correction raises a float to an int32 step count, which strict
    # dtype promotion (the test configuration) rejects; the result is float32 either way.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def _config(dataset, size, batch_size, learning_rate, augment, width) -> dict:
    return {
        "dataset": str(dataset.name),
        "num_classes": int(dataset.num_classes),
        "size": int(size),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "augment": augment,
        "width": float(width),
    }


def _save_checkpoint(path: Path, state: TrainState, config: dict) -> None:
    payload = {
        "config": config,
        "params": flax.serialization.to_state_dict(state.params),
        "opt_state": flax.serialization.to_state_dict(state.opt_state),
        "epoch": state.epoch,
        "key": np.asarray(jax.random.key_data(state.key)),
        "losses": np.asarray(state.losses, np.float32),
    }
    write_bytes_atomic(path, flax.serialization.msgpack_serialize(payload))


def load_checkpoint(path: str | os.PathLike, template: TrainState) -> tuple[TrainState, dict]:
    """Read a checkpoint into the structure of ``template``; returns (state, config)."""
    path = Path(path)
    try:
        raw = flax.serialization.msgpack_restore(path.read_bytes())
        state = TrainState(
            params=flax.serialization.from_state_dict(template.params, raw["params"]),
            opt_state=flax.serialization.from_state_dict(template.opt_state, raw["opt_state"]),
            epoch=int(raw["epoch"]),
            key=jax.random.wrap_key_data(jnp.asarray(raw["key"])),
            losses=np.asarray(raw["losses"], np.float32),
        )
        config = dict(raw["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"train: checkpoint {path} does not fit this model: expected a glassjax AlexNet checkpoint, got {err}") from err
    want = jax.tree.map(np.shape, (template.params, template.opt_state))
    got = jax.tree.map(np.shape, (state.params, state.opt_state))
    if want != got:
        raise ValueError(f"train: checkpoint {path} does not fit this model: expected arrays of this model's shapes, "
                         f"got other shapes (made with {config})")
    return state, config


def check_train_args(size, epochs, batch_size, learning_rate, augment, width) -> None:
    """ValueError naming the first training setting out of range."""
    if not isinstance(size, int) or size < 64:
        raise ValueError(f"train: expected size an int >= 64, got {size!r}")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"train: expected epochs an int >= 0, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"train: expected batch_size a positive int, got {batch_size!r}")
    if not learning_rate > 0:
        raise ValueError(f"train: expected learning_rate > 0, got {learning_rate!r}")
    if augment not in AUGMENTS:
        raise ValueError(f"train: expected augment one of {AUGMENTS}, got {augment!r}")
    if not width > 0:
        raise ValueError(f"train: expected width > 0, got {width!r}")


def train(
    dataset,
    *,
    size: int = 64,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 3e-4,
    augment: str = "none",
    key: jax.Array,
    checkpoint: str | os.PathLike | None = None,
    width: float = 1.0,
    mesh: Mesh | None = None,
) -> tuple[dict, list[dict]]:
    """Train AlexNet on ``dataset.x_train`` for ``epochs`` epochs; returns (params, history).

    ``history`` has one ``{"epoch", "loss"}`` per finished epoch (mean training loss). With
    ``checkpoint``, an existing file is resumed from (its settings must match) and the file is
    rewritten atomically after every epoch. Data-parallel over ``mesh`` (default: every device,
    ``parallel.make_mesh()``): each step's batch is padded to a multiple of the device count
    (padding masked) and sharded by rows; params and optimizer state are replicated, and XLA
    sums the gradients across devices.
    """
    if not hasattr(dataset, "x_train") or not hasattr(dataset, "num_classes"):
        raise TypeError(f"train: expected a glassjax.data.Dataset, got {type(dataset).__name__}")
    check_train_args(size, epochs, batch_size, learning_rate, augment, width)
    config = _config(dataset, size, batch_size, learning_rate, augment, width)
    optimizer = make_optimizer(learning_rate)
    key_init, key_epochs = jax.random.split(key)
    params = alexnet.init(key_init, dataset.num_classes, width=width)
    state = TrainState(params, optimizer.init(params), 0, key_epochs, np.zeros((0,), np.float32))
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state, saved = load_checkpoint(checkpoint, state)
        if saved != config:
            raise ValueError(f"train: checkpoint {checkpoint} was made with {saved}, expected {config}")
        if state.epoch > epochs:
            raise ValueError(f"train: checkpoint {checkpoint} is already past epochs={epochs}, got {state.epoch} epochs")

    mesh = parallel.make_mesh() if mesh is None else mesh
    rows_per_step = parallel.padded_size(batch_size, mesh)
    x = np.asarray(alexnet.preprocess(dataset.x_train, size))
    y = np.asarray(dataset.y_train, np.int32)
    n = x.shape[0]
    steps = -(-n // batch_size)
    params, opt_state = parallel.replicate(mesh, (state.params, state.opt_state))
    losses = list(state.losses)
    for epoch in range(state.epoch, epochs):
        key_perm, key_steps = jax.random.split(jax.random.fold_in(state.key, epoch))
        order = np.asarray(jax.random.permutation(key_perm, n))
        total, start = 0.0, time.perf_counter()
        bar = progress(range(steps), total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="step")
        for step in bar:
            rows = order[step * batch_size : (step + 1) * batch_size]
            # The last, shorter batch is padded like every batch: to rows_per_step, padding masked.
            xb, yb, mask = parallel.shard_batch(mesh, x[rows], y[rows], size=rows_per_step)
            params, opt_state, loss = _train_step(
                params, opt_state, xb, yb, mask, jax.random.fold_in(key_steps, step),
                optimizer=optimizer, augment=augment,
            )
            loss = float(loss)
            total += loss * rows.size
            rate = (step + 1) * batch_size / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.0f}")
        losses.append(np.float32(total / n))
        if checkpoint is not None:
            done = TrainState(params, opt_state, epoch + 1, state.key, np.asarray(losses, np.float32))
            _save_checkpoint(checkpoint, done, config)
    history = [{"epoch": i + 1, "loss": float(v)} for i, v in enumerate(losses)]
    return params, history


@functools.partial(jax.jit, static_argnames="group")
def _predict(params, x, g, *, group):
    if group is not None:
        x = groups.act_batch(group, g, x)
    return jnp.argmax(alexnet.apply(params, x), axis=-1)


def evaluate(params, x, y, *, group: str | None = None, key: jax.Array | None = None, batch_size: int = 256) -> float:
    """Accuracy on preprocessed images x (N, S, S, 3) with labels y (N,).

    With ``group`` (e.g. ``"d4"``) each image is first acted on by a random element drawn
    with ``key``.
    """
    y = np.asarray(y)
    if np.ndim(x) != 4 or y.shape != (np.shape(x)[0],):
        raise ValueError(f"evaluate: expected x (N, S, S, 3) and y (N,), got {np.shape(x)} and {y.shape}")
    if group is not None and key is None:
        raise ValueError(f"evaluate: expected a key to draw elements of group {group!r}, got key=None")
    n = y.shape[0]
    g = groups.random_elements(group, n, key=key) if group is not None else jnp.zeros((n,), jnp.int32)
    correct = 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        pred = _predict(params, x[start:stop], g[start:stop], group=group)
        correct += int(np.sum(np.asarray(pred) == y[start:stop]))
    return correct / max(n, 1)


def evaluate_dataset(params, dataset, *, size: int, key: jax.Array, group: str = "d4") -> dict[str, float]:
    """{"accuracy", "accuracy_transformed"} on the test split; the latter under random ``group`` elements."""
    x = alexnet.preprocess(dataset.x_test, size)
    return {
        "accuracy": evaluate(params, x, dataset.y_test),
        "accuracy_transformed": evaluate(params, x, dataset.y_test, group=group, key=key),
    }
