"""The small CNN of ``cnn_csg``, for 28x28 digits: three 3x3 convolutions, global average pooling,
one linear head, so that the gate sits right before the pooling as in the reference ResNet.

    conv1  3x3, K/2 channels, ReLU                   (N, H, W, K/2), then a 2x2 max pool
    conv2  3x3, K channels, ReLU                     (N, H/2, W/2, K), then a 2x2 max pool
    conv3  3x3, K channels, ReLU: the gated layer    (N, H/4, W/4, K)
    pool   global average of conv3 (times the gate)  (N, K)
    logits pool @ kernel + bias                      (N, C)

Parameters are a plain dict ``{"conv1": {"kernel", "bias"}, ..., "fc": {...}}`` (kernels HWIO
and (in, out), the AlexNet layout), widths read from the parameters. Images enter in [0, 1]
and are centred (x - 0.5) inside.
"""
from __future__ import annotations

import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays
from glassjax.systems.csg import gates

__all__ = ["init", "forward", "check_params", "CONV_NAMES", "LAYER_NAMES", "GATED_LAYER", "MIN_SIZE"]

CONV_NAMES = ("conv1", "conv2", "conv3")
LAYER_NAMES = CONV_NAMES + ("fc",)
GATED_LAYER = "conv3"
MIN_SIZE = 4  # two 2x2 poolings leave at least a 1x1 map


def init(key: jax.Array, num_classes: int, in_channels: int, channels: int = 64) -> dict:
    """Fresh parameters: He-normal conv kernels, LeCun-normal head (both untruncated), zero biases."""
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 2:
        raise ValueError(f"cnn.init: expected channels an int >= 2, got {channels!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"cnn.init: expected num_classes a positive int, got {num_classes!r}")
    return _init(key, num_classes, int(in_channels), channels)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _init(key, num_classes, in_channels, channels):
    # One compiled program: drawn eagerly, every kernel shape would compile its own random bits.
    widths = (in_channels, channels // 2, channels, channels)
    keys = jax.random.split(key, 4)
    params = {}
    for i, name in enumerate(CONV_NAMES):
        # He et al. (2015): normal with variance 2 / fan_in (untruncated: far cheaper to compile).
        std = np.sqrt(2.0 / (9 * widths[i]))
        params[name] = {"kernel": std * jax.random.normal(keys[i], (3, 3, widths[i], widths[i + 1]), jnp.float32),
                        "bias": jnp.zeros((widths[i + 1],), jnp.float32)}
    params["fc"] = {"kernel": np.sqrt(1.0 / channels) * jax.random.normal(keys[3], (channels, num_classes), jnp.float32),
                    "bias": jnp.zeros((num_classes,), jnp.float32)}
    return params


def check_params(params: Mapping, where: str = "cnn params") -> None:
    """ValueError unless ``params`` has the layers and chained shapes of this CNN."""
    if not isinstance(params, Mapping) or set(params) != set(LAYER_NAMES):
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"{where}: expected layers {list(LAYER_NAMES)}, got {got}")
    width = None
    for name in CONV_NAMES:
        k, b = np.shape(params[name]["kernel"]), np.shape(params[name]["bias"])
        if len(k) != 4 or k[:2] != (3, 3) or (width is not None and k[2] != width) or b != k[3:]:
            raise ValueError(f"{where}[{name!r}]: expected kernel (3, 3, {width or 'C'}, F) and bias (F,), got {k} and {b}")
        width = k[3]
    k, b = np.shape(params["fc"]["kernel"]), np.shape(params["fc"]["bias"])
    if len(k) != 2 or k[0] != width or b != k[1:]:
        raise ValueError(f"{where}['fc']: expected kernel ({width}, C) and bias (C,), got {k} and {b}")


def _conv(x: jax.Array, layer: Mapping) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, layer["kernel"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
    return jax.nn.relu(y + layer["bias"].reshape(1, 1, 1, -1))


def _max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max pool, stride 2, odd rows/columns dropped: (N, H, W, C) -> (N, H//2, W//2, C)."""
    n, h, w, c = x.shape
    x = x[:, : 2 * (h // 2), : 2 * (w // 2)]
    return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def forward(params: Mapping, x: jax.Array, gate_rows: jax.Array | None = None, *,
            shift: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Images x (N, H, W, C) in [0, 1] -> (logits (N, classes), {conv1, conv2, conv3, pool, logits}).

    With ``gate_rows`` (N, K) (``gates.rows``), conv3 is gated before pooling (the CSG path);
    ``conv3`` in the returned activations is the map before the gate. ``shift`` (N, h, w, K) is
    added to conv3 first: the gradient of the logits with respect to it at zero is their
    gradient with respect to the map (Grad-CAM).
    """
    arrays.as_images(x, "cnn.forward", min_size=MIN_SIZE)
    a1 = _conv(x - 0.5, params["conv1"])
    a2 = _conv(_max_pool2(a1), params["conv2"])
    a = _conv(_max_pool2(a2), params["conv3"])
    if shift is not None:
        a = a + shift
    gated = a if gate_rows is None else gates.apply(a, gate_rows)
    pool = jnp.mean(gated, axis=(1, 2))
    logits = jnp.dot(pool, params["fc"]["kernel"], precision="highest") + params["fc"]["bias"].reshape(1, -1)
    return logits, {"conv1": a1, "conv2": a2, "conv3": a, "pool": pool, "logits": logits}
