"""CSG training: standard epochs and class-specific-gate epochs alternating, each path with its own
optax state.

Standard path: cross-entropy of the ungated network; AdamW on the weights
(``alexnet.training.make_optimizer``: decay on kernels only). CSG path: cross-entropy of the
network whose gated layer is multiplied by G[:, y], plus ``gate_sparsity`` * relu(||G||_1 - d K C);
AdamW on the weights with a second state, Adam on the gate, then every row of G divided by its
maximum and clipped to [0, 1]. Which epochs run which path: ``config.is_csg_epoch``. With
``gates=False`` every epoch is standard: the same network, seed and data order, trained the
standard way.

After every epoch the test accuracy is measured with the gate off (how the network is used) and
with the gate of the true label on: the second far above the first means the network has learnt
to read the label from which gates are open (leakage; issue #6 of the reference code).

Every random choice of epoch ``e`` comes from ``fold_in(key, e)``, so a run resumed from its
checkpoint continues exactly as the uninterrupted one. The checkpoint (msgpack, written
atomically after every epoch) holds weights, gate, both optimizer states, finished epochs, the
key, the history and the settings that must match for a resume.
"""
from __future__ import annotations

import dataclasses
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

from glassjax.core import parallel
from glassjax.core.files import write_bytes_atomic
from glassjax.core.progress import progress
from glassjax.systems.alexnet.training import make_optimizer
from glassjax.systems.csg import gates, networks
from glassjax.systems.csg.config import is_csg_epoch

__all__ = ["TrainState", "HISTORY_KEYS", "train", "history_rows"]

# One float per finished epoch each. path: 1 for a CSG epoch, 0 for a standard one.
HISTORY_KEYS = ("path", "loss", "sparsity", "density", "accuracy_gate_off", "accuracy_gate_true", "seconds")


class TrainState(NamedTuple):
    """What a checkpoint holds."""

    weights: dict
    gate: jax.Array
    opt_standard: optax.OptState
    opt_csg: optax.OptState
    opt_gate: optax.OptState
    epoch: int
    key: jax.Array
    history: dict


@functools.lru_cache(maxsize=16)
def _gate_optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


def _masked_cross_entropy(logits, y, mask):
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(losses * mask) / jnp.sum(mask)


def _update(optimizer, grads, state, params):
    # optax's Adam bias correction raises a float to an int32 step count, which strict dtype
    # promotion (the test configuration) rejects; the result is float32 either way.
    with jax.numpy_dtype_promotion("standard"):
        updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state


@functools.partial(jax.jit, static_argnames=("network", "optimizer"), donate_argnums=(0, 1))
def _standard_step(weights, opt_state, x, y, mask, key, *, network, optimizer):
    def loss_fn(w):
        return _masked_cross_entropy(network.logits(w, x, None, True, key), y, mask)

    loss, grads = jax.value_and_grad(loss_fn)(weights)
    weights, opt_state = _update(optimizer, grads, opt_state, weights)
    return weights, opt_state, loss, jnp.zeros((), jnp.float32)


@functools.partial(jax.jit, static_argnames=("network", "optimizer", "gate_optimizer", "density", "weight"),
                   donate_argnums=(0, 1, 2, 3))
def _csg_step(weights, gate, opt_state, gate_state, x, y, mask, key, *, network, optimizer, gate_optimizer, density,
              weight):
    def loss_fn(w, g):
        ce = _masked_cross_entropy(network.logits(w, x, gates.rows(g, y), True, key), y, mask)
        reg = gates.sparsity(g, density)
        return ce + jnp.asarray(weight, ce.dtype) * reg, (ce, reg)

    (_, (ce, reg)), (grad_w, grad_g) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(weights, gate)
    weights, opt_state = _update(optimizer, grad_w, opt_state, weights)
    gate, gate_state = _update(gate_optimizer, grad_g, gate_state, gate)
    return weights, gates.renormalise(gate), opt_state, gate_state, ce, reg


@functools.partial(jax.jit, static_argnames="network")
def _correct(weights, gate, x, y, mask, *, network):
    """(correct with the gate off, correct with the true label's gate on), summed over real rows."""
    off = jnp.argmax(network.logits(weights, x, None, False, None), axis=-1)
    on = jnp.argmax(network.logits(weights, x, gates.rows(gate, y), False, None), axis=-1)
    return jnp.sum(jnp.where(off == y, mask, 0.0)), jnp.sum(jnp.where(on == y, mask, 0.0))


def _accuracies(weights, gate, x, y, mesh, batch_size, network) -> tuple[float, float]:
    rows = parallel.padded_size(min(batch_size, x.shape[0]), mesh)
    off = on = 0.0
    for start in range(0, x.shape[0], rows):
        xb, yb, mask = parallel.shard_batch(mesh, x[start:start + rows], y[start:start + rows], size=rows)
        a, b = _correct(weights, gate, xb, yb, mask, network=network)
        off, on = off + float(a), on + float(b)
    return off / x.shape[0], on / x.shape[0]


def _settings(config, dataset) -> dict:
    return {"network": config.network, "dataset": str(dataset.name), "num_classes": int(dataset.num_classes),
            "config": {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(config).items()
                       if k != "epochs"}}


def _empty_history() -> dict:
    return {k: np.zeros((0,), np.float64) for k in HISTORY_KEYS}


def _save_checkpoint(path: Path, state: TrainState, settings: dict) -> None:
    payload = {
        "settings": settings,
        "weights": flax.serialization.to_state_dict(state.weights),
        "gate": np.asarray(state.gate),
        "opt_standard": flax.serialization.to_state_dict(state.opt_standard),
        "opt_csg": flax.serialization.to_state_dict(state.opt_csg),
        "opt_gate": flax.serialization.to_state_dict(state.opt_gate),
        "epoch": state.epoch,
        "key": np.asarray(jax.random.key_data(state.key)),
        "history": {k: np.asarray(v, np.float64) for k, v in state.history.items()},
    }
    write_bytes_atomic(path, flax.serialization.msgpack_serialize(payload))


def _load_checkpoint(path: Path, template: TrainState) -> tuple[TrainState, dict]:
    try:
        raw = flax.serialization.msgpack_restore(path.read_bytes())
        state = TrainState(
            weights=flax.serialization.from_state_dict(template.weights, raw["weights"]),
            gate=jnp.asarray(raw["gate"]),
            opt_standard=flax.serialization.from_state_dict(template.opt_standard, raw["opt_standard"]),
            opt_csg=flax.serialization.from_state_dict(template.opt_csg, raw["opt_csg"]),
            opt_gate=flax.serialization.from_state_dict(template.opt_gate, raw["opt_gate"]),
            epoch=int(raw["epoch"]),
            key=jax.random.wrap_key_data(jnp.asarray(raw["key"])),
            history={k: np.asarray(raw["history"][k], np.float64) for k in HISTORY_KEYS},
        )
        settings = raw["settings"]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"csg train: checkpoint {path} does not fit this model: {err}") from err
    want = jax.tree.map(np.shape, template[:5])
    got = jax.tree.map(np.shape, state[:5])
    if want != got:
        raise ValueError(f"csg train: checkpoint {path} holds arrays of other shapes than this model")
    return state, settings


def history_rows(history: dict) -> list[dict]:
    """The history as one dict per epoch (epoch counted from 1, path 'csg' or 'standard')."""
    n = len(history["loss"])
    rows = []
    for i in range(n):
        row = {"epoch": i + 1, "path": "csg" if history["path"][i] else "standard"}
        row.update({k: float(history[k][i]) for k in HISTORY_KEYS if k != "path"})
        rows.append(row)
    return rows


def train(config, dataset, *, key: jax.Array, checkpoint: str | os.PathLike | None = None,
          mesh=None) -> tuple[dict, jax.Array | None, list[dict]]:
    """Train ``config.network`` on ``dataset``'s train split; returns (weights, gate, history).

    gate (K, C) is None when ``config.gates`` is false. history: one row per epoch
    (``history_rows``): path, mean training cross-entropy, mean sparsity loss, gate density,
    test accuracy with the gate off and with the true label's gate on (NaN without gates), and
    the epoch's training seconds. With ``checkpoint``, an existing file is resumed from (its
    settings must match) and the file is rewritten atomically after every epoch.
    Data-parallel over ``mesh`` (default: every device): batches padded to a multiple of the
    device count (padding masked) and sharded by rows, everything else replicated.
    """
    if not hasattr(dataset, "x_train") or not hasattr(dataset, "num_classes"):
        raise TypeError(f"csg train: expected a glassjax.data.Dataset, got {type(dataset).__name__}")
    config = config.validated()
    network = networks.get(config.network)
    settings = _settings(config, dataset)
    key_init, key_epochs = jax.random.split(key)
    weights = network.init(key_init, dataset.num_classes, dataset.x_train.shape[1:], config)
    gate = gates.init(networks.channels(network, weights), dataset.num_classes)
    optimizer = make_optimizer(float(config.learning_rate))
    # After the warm-up the standard path may step more gently than the CSG path (the reference:
    # 1e-5 against 1e-3); AdamW's state does not depend on its learning rate, so it carries over.
    later = config.learning_rate if config.standard_learning_rate is None else config.standard_learning_rate
    optimizer_later = make_optimizer(float(later))
    gate_optimizer = _gate_optimizer(float(config.gate_learning_rate))
    state = TrainState(weights, gate, optimizer.init(weights), optimizer.init(weights), gate_optimizer.init(gate), 0,
                       key_epochs, _empty_history())
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state, saved = _load_checkpoint(checkpoint, state)
        if saved != settings:
            raise ValueError(f"csg train: checkpoint {checkpoint} was made with {saved}, expected {settings}")
        if state.epoch > config.epochs:
            raise ValueError(f"csg train: checkpoint {checkpoint} is already past epochs={config.epochs}, "
                             f"got {state.epoch} epochs")

    mesh = parallel.make_mesh() if mesh is None else mesh
    rows_per_step = parallel.padded_size(config.batch_size, mesh)
    x = np.asarray(network.prepare(dataset.x_train, config))
    y = np.asarray(dataset.y_train, np.int32)
    x_test = np.asarray(network.prepare(dataset.x_test, config))
    y_test = np.asarray(dataset.y_test, np.int32)
    n = x.shape[0]
    steps = -(-n // config.batch_size)
    weights, gate, opt_standard, opt_csg, opt_gate = parallel.replicate(mesh, tuple(state[:5]))
    history = {k: list(v) for k, v in state.history.items()}
    for epoch in range(state.epoch, config.epochs):
        csg = is_csg_epoch(epoch, config)
        key_perm, key_steps = jax.random.split(jax.random.fold_in(state.key, epoch))
        order = np.asarray(jax.random.permutation(key_perm, n))
        total = total_reg = 0.0
        start = time.perf_counter()
        bar = progress(range(steps), total=steps, desc=f"epoch {epoch + 1}/{config.epochs} {'csg' if csg else 'std'}",
                       unit="step")
        for step in bar:
            rows = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb, yb, mask = parallel.shard_batch(mesh, x[rows], y[rows], size=rows_per_step)
            step_key = jax.random.fold_in(key_steps, step)
            if csg:
                weights, gate, opt_csg, opt_gate, loss, reg = _csg_step(
                    weights, gate, opt_csg, opt_gate, xb, yb, mask, step_key, network=network, optimizer=optimizer,
                    gate_optimizer=gate_optimizer, density=float(config.gate_density),
                    weight=float(config.gate_sparsity))
            else:
                weights, opt_standard, loss, reg = _standard_step(
                    weights, opt_standard, xb, yb, mask, step_key, network=network,
                    optimizer=optimizer if epoch < config.warmup_epochs or not config.gates else optimizer_later)
            loss, reg = float(loss), float(reg)
            total += loss * rows.size
            total_reg += reg * rows.size
            bar.set_postfix(loss=f"{loss:.4f}")
        seconds = time.perf_counter() - start
        off, on = _accuracies(weights, gate, x_test, y_test, mesh, 256, network)
        values = {"path": float(csg), "loss": total / n, "sparsity": total_reg / n,
                  "density": gates.density(gate) if config.gates else float("nan"), "accuracy_gate_off": off,
                  "accuracy_gate_true": on if config.gates else float("nan"), "seconds": seconds}
        for k in HISTORY_KEYS:
            history[k].append(values[k])
        if checkpoint is not None:
            done = TrainState(weights, gate, opt_standard, opt_csg, opt_gate, epoch + 1, state.key,
                              {k: np.asarray(v, np.float64) for k, v in history.items()})
            _save_checkpoint(checkpoint, done, settings)
    history = {k: np.asarray(v, np.float64) for k, v in history.items()}
    # Replicated over a training mesh, every later call would run on all its devices.
    weights, gate = jax.device_put((weights, gate), jax.devices()[0])
    return weights, (gate if config.gates else None), history_rows(history)
