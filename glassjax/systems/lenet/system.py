"""LeNet-5 trained by back-propagation (Flax Linen, optax Adam): the FF-CNN's reference, same shape.

conv1 5x5 x 6 (valid) -> ReLU -> 2x2 max pool -> conv2 5x5 x 16 -> ReLU -> 2x2 max pool -> fc1 120
-> ReLU -> fc2 84 -> ReLU -> fc3 (classes), on the same canvas as the FF-CNN (28x28 MNIST padded
to 32x32). Max pooling and ReLU where the 1998 original had subsampling and tanh, as in Kuo et
al.'s comparison. Every random choice (init, shuffling) comes from the ``key`` given to ``fit``.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassjax.core import modelfile
from glassjax.core.progress import progress
from glassjax.systems.protocol import System
from glassjax.systems.saab import files, geometry, passes

__all__ = ["LeNetConfig", "LeNetParams", "LeNet5", "fit", "features", "scores", "save", "load", "SYSTEMS"]

FORMAT_VERSION = 1
LAYERS = ("conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3")


@dataclasses.dataclass(frozen=True)
class LeNetConfig:
    """How the BP LeNet-5 is trained.

    size           side of the input canvas, as the FF-CNN's (32)
    input          pad (zero-pad each image around its centre to size) or resize (bilinear)
    widths         conv1, conv2, fc1, fc2 widths (6, 16, 120, 84)
    epochs         passes over the train split
    batch_size     images per Adam step
    learning_rate  Adam's step size
    """

    size: int = 32
    input: str = "pad"
    widths: tuple[int, ...] = (6, 16, 120, 84)
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3

    def validated(self) -> "LeNetConfig":
        """The config with its values checked (one-line ValueError naming the field otherwise)."""
        for name in ("size", "epochs", "batch_size"):
            passes.check_positive_int("lenet5", name, getattr(self, name))
        if self.input not in geometry.INPUTS:
            raise ValueError(f"lenet5: expected input one of {', '.join(geometry.INPUTS)}, got {self.input!r}")
        config = dataclasses.replace(self, widths=passes.check_int_tuple("lenet5", "widths", self.widths))
        if len(config.widths) != 4:
            raise ValueError(f"lenet5: expected widths of 4 layers (conv1, conv2, fc1, fc2), got {self.widths!r}")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) \
                or not self.learning_rate > 0:
            raise ValueError(f"lenet5: expected learning_rate > 0, got {self.learning_rate!r}")
        if (self.size - 4) // 2 - 4 < 2:
            raise ValueError(f"lenet5: expected size >= 16 (two 5x5 convolutions and 2x2 poolings), got {self.size}")
        return config


class LeNet5(nn.Module):
    """LeNet-5 on (N, size, size, C) canvases; ``__call__`` returns every layer in depth order."""

    widths: tuple[int, ...]
    classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        out = {}
        out["conv1"] = nn.relu(nn.Conv(self.widths[0], (5, 5), padding="VALID", name="conv1")(x))
        out["pool1"] = geometry.max_pool(out["conv1"], 2)
        out["conv2"] = nn.relu(nn.Conv(self.widths[1], (5, 5), padding="VALID", name="conv2")(out["pool1"]))
        out["pool2"] = geometry.max_pool(out["conv2"], 2)
        f = out["pool2"].reshape(x.shape[0], -1)
        out["fc1"] = nn.relu(nn.Dense(self.widths[2], name="fc1")(f))
        out["fc2"] = nn.relu(nn.Dense(self.widths[3], name="fc2")(out["fc1"]))
        out["fc3"] = nn.Dense(self.classes, name="fc3")(out["fc2"])
        return out


class LeNetParams(eqx.Module):
    """Trained LeNet-5 weights (Flax ``params`` dict), the mean training loss of each epoch (epochs,); its config
    and class names (static)."""

    config: LeNetConfig = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    weights: dict
    losses: jax.Array


def _module(params: LeNetParams) -> LeNet5:
    return LeNet5(tuple(params.config.widths), len(params.class_names))


def features(params: LeNetParams, x: jax.Array) -> dict[str, jax.Array]:
    """conv1, pool1, conv2, pool2 (spatial), fc1, fc2, fc3 (vectors; fc3 the logits) of images x (N, H, W, C)."""
    h = geometry.canvas(x, params.config.size, params.config.input)
    return _module(params).apply({"params": params.weights}, h)


def scores(params: LeNetParams, x: jax.Array) -> jax.Array:
    """Logits (N, classes)."""
    return features(params, x)["fc3"]


@functools.partial(jax.jit, static_argnames=("module", "optimizer"), donate_argnums=(0, 1))
def _step(weights, opt_state, x, y, mask, *, module, optimizer):
    def loss_fn(w):
        logits = module.apply({"params": w}, x)["fc3"]
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y) * mask) / jnp.sum(mask)

    loss, grads = jax.value_and_grad(loss_fn)(weights)
    # Adam's bias correction raises a float to an int32 count, which strict promotion (the tests') rejects.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, weights)
    return optax.apply_updates(weights, updates), opt_state, loss


@functools.lru_cache(maxsize=8)
def _optimizer(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


def fit(config: LeNetConfig, dataset, *, key: jax.Array, mesh=None) -> LeNetParams:
    """LeNet-5 trained with Adam on ``dataset``'s train split (cross-entropy, seeded shuffles; ``mesh`` unused)."""
    del mesh
    config = config.validated()
    x = np.asarray(dataset.x_train, np.float32)
    y = np.asarray(dataset.y_train, np.int32)
    geometry.check_canvas("lenet5", x.shape, config.size, config.input)
    canvas = np.asarray(jax.jit(geometry.canvas, static_argnums=(1, 2))(jnp.asarray(x), config.size, config.input))
    module = LeNet5(tuple(config.widths), len(dataset.class_names))
    key_init, key_order = jax.random.split(key)
    weights = module.init(key_init, jnp.asarray(canvas[:1]))["params"]
    optimizer = _optimizer(float(config.learning_rate))
    opt_state = optimizer.init(weights)
    n, batch = x.shape[0], min(config.batch_size, x.shape[0])
    losses = []
    for epoch in progress(range(config.epochs), total=config.epochs, desc="lenet5", unit="epoch"):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key_order, epoch), n))
        total, steps = 0.0, 0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            mask = np.ones(batch, np.float32)
            if idx.size < batch:  # the last batch padded with repeats and masked: one compiled shape
                mask[idx.size :] = 0
                idx = np.concatenate([idx, np.repeat(idx[-1:], batch - idx.size)])
            weights, opt_state, loss = _step(weights, opt_state, jnp.asarray(canvas[idx]), jnp.asarray(y[idx]),
                                             jnp.asarray(mask), module=module, optimizer=optimizer)
            total, steps = total + float(loss), steps + 1
        losses.append(total / steps)
    return LeNetParams(config, tuple(dataset.class_names), weights, jnp.asarray(losses, jnp.float32))


def save(params: LeNetParams, path: str | os.PathLike) -> None:
    """An .npz model file: every weight as ``layer.kernel`` / ``layer.bias``, the config and class names."""
    arrays = {f"{layer}.{part}": np.asarray(v) for layer, parts in params.weights.items() for part, v in parts.items()}
    meta = {"format": "glassjax.LeNet5", "system": "lenet5", "version": FORMAT_VERSION,
            "config": files.asdict(params.config), "class_names": list(params.class_names),
            "losses": np.asarray(params.losses).tolist()}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> LeNetParams:
    """Params written by ``save``, bit-exact."""
    meta, arrays = files.read(path, "glassjax.LeNet5", FORMAT_VERSION)
    config = files.config_from_meta(LeNetConfig, meta.get("config"), path)
    weights: dict[str, dict[str, jax.Array]] = {}
    for name, value in arrays.items():
        layer, _, part = name.partition(".")
        weights.setdefault(layer, {})[part] = jnp.asarray(value)
    return LeNetParams(config, tuple(meta.get("class_names", ())), weights, jnp.asarray(meta.get("losses", []), jnp.float32))


def parameter_count(params: LeNetParams) -> int:
    """Trained weights and biases."""
    return sum(int(np.prod(np.shape(v))) for v in jax.tree.leaves(params.weights))


def _settings(params: LeNetParams) -> dict:
    return dict(dataclasses.asdict(params.config), final_loss=float(params.losses[-1]) if params.losses.size else None,
                parameters=parameter_count(params))


SYSTEMS = (
    System(
        name="lenet5", title="LeNet-5 (back-propagation)", config=LeNetConfig(),
        description="LeNet-5 (conv 6, conv 16, fc 120, fc 84) trained by back-propagation with Adam; the "
                    "FF-CNN's reference",
        fit=fit, features=features, scores=scores, save=save, load=load,
        representation=lambda params: "fc2", class_names=lambda params: params.class_names, settings=_settings,
    ),
)
