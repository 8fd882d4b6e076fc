"""Class-specific gates (Liang et al., ECCV 2020): which filters may speak for which class.

The gate G (K, C) holds one number in [0, 1] per filter k of the gated layer (the last
convolution) and class c. On the CSG path of training, an image of class y has its feature map
a(x) (N, h, w, K) multiplied channel-wise by G[:, y] before it is pooled and classified; at
evaluation no gate is applied. The gate starts half open (0.5), a sparsity loss
relu(||G||_1 - d K C) pulls its density towards d, and after every CSG step each row (filter) is
divided by its largest entry and clipped to [0, 1], so every filter stays fully open for at
least one class.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["init", "check", "rows", "apply", "sparsity", "renormalise", "density", "INIT_VALUE"]

INIT_VALUE = 0.5


def init(channels: int, num_classes: int, value: float = INIT_VALUE) -> jax.Array:
    """A fresh gate (channels, num_classes), every entry ``value``."""
    for name, n in (("channels", channels), ("num_classes", num_classes)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"gates.init: expected {name} a positive int, got {n!r}")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"gates.init: expected value in (0, 1], got {value!r}")
    return jnp.full((int(channels), int(num_classes)), value, jnp.float32)


def check(gate, where: str, *, channels: int | None = None, num_classes: int | None = None) -> None:
    """ValueError unless ``gate`` is a float (K, C) matrix of the given sizes."""
    shape = tuple(np.shape(gate))
    want = (channels if channels is not None else "K", num_classes if num_classes is not None else "C")
    if len(shape) != 2 or (channels is not None and shape[0] != channels) or (
            num_classes is not None and shape[1] != num_classes):
        raise ValueError(f"{where}: expected a gate of shape ({want[0]}, {want[1]}), got shape {shape}")
    if not jnp.issubdtype(jnp.result_type(gate), jnp.floating):
        raise TypeError(f"{where}: expected a floating-point gate, got dtype {jnp.result_type(gate)}")


def rows(gate: jax.Array, y: jax.Array) -> jax.Array:
    """The gate column of each label: gate (K, C), y (N,) -> (N, K), row n = G[:, y_n]."""
    return jnp.take(gate, y, axis=1).T


def apply(feature_map: jax.Array, gate_rows: jax.Array) -> jax.Array:
    """feature_map (N, h, w, K) multiplied channel-wise by gate_rows (N, K)."""
    return feature_map * gate_rows[:, None, None, :].astype(feature_map.dtype)


def sparsity(gate: jax.Array, target_density: float) -> jax.Array:
    """relu(||G||_1 - d K C): zero once the gate's density is at most d."""
    k, c = gate.shape
    return jax.nn.relu(jnp.sum(jnp.abs(gate)) - jnp.asarray(target_density * k * c, gate.dtype))


def renormalise(gate: jax.Array) -> jax.Array:
    """Each row divided by its largest entry, then clipped to [0, 1].

    A row with no positive entry (every class closed) is reopened fully (all ones): dividing it
    by its non-positive maximum is what the reference does (it gives ones once clipped) when
    that maximum is negative, and this also covers an exact zero, where it would give NaN.
    """
    top = jnp.max(gate, axis=1, keepdims=True)
    safe = jnp.where(top > 0, top, jnp.ones_like(top))
    return jnp.where(top > 0, jnp.clip(gate / safe, 0.0, 1.0), jnp.ones_like(gate))


def density(gate) -> float:
    """||G||_1 / (K C): the share of the gate that is open."""
    gate = np.asarray(gate, np.float64)
    return float(np.abs(gate).sum() / gate.size)
