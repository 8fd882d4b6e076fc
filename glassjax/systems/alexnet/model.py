"""AlexNet in Flax Linen with torchvision's layout, NHWC inside.

Parameters are a plain dict ``{"conv1": {"kernel", "bias"}, ..., "fc8": {...}}``: conv
kernels HWIO, dense kernels (in, out). ``fc6``'s input rows follow the NHWC flatten of the
(6, 6, C) pooled map, so weights imported from torchvision (whose flatten is (C, 6, 6)) are
reordered once, at load time (``glassjax.systems.alexnet.weights``). Widths are read from the parameters,
so one ``apply`` serves the full network and reduced-width ones alike.

Layer names map to torchvision's state-dict keys: conv1..conv5 = features.0/3/6/8/10,
fc6..fc8 = classifier.1/4/6.
"""
from __future__ import annotations

import functools
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays

__all__ = [
    "AlexNet",
    "Conv",
    "Dense",
    "model_for",
    "adaptive_avg_pool",
    "init",
    "apply",
    "activations",
    "preprocess",
    "CONV_NAMES",
    "CONV_GEOMETRY",
    "DENSE_NAMES",
    "LAYER_NAMES",
    "MIN_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
DENSE_NAMES = ("fc6", "fc7", "fc8")
LAYER_NAMES = CONV_NAMES + DENSE_NAMES
# (kernel, stride, padding) of each conv and whether a 3x3/2 max pool follows it.
CONV_GEOMETRY = ((11, 4, 2, True), (5, 1, 2, True), (3, 1, 1, False), (3, 1, 1, False), (3, 1, 1, True))
FULL_WIDTHS = (64, 192, 384, 256, 256)
FULL_HIDDEN = (4096, 4096)
POOL_SIZE = 6
# Smallest H or W whose conv1/pool chain still leaves a 1x1 map before the adaptive pool.
MIN_SIZE = 63
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _adaptive_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging weights of torch's adaptive pooling bins along one axis.

    Bin i covers [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out)).
    """
    m = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x: jax.Array, size: int = POOL_SIZE) -> jax.Array:
    """torch's ``AdaptiveAvgPool2d((size, size))`` on NHWC: (N, H, W, C) -> (N, size, size, C)."""
    _, h, w, _ = x.shape
    if h != size:
        x = jnp.einsum("ph,nhwc->npwc", _adaptive_pool_matrix(h, size), x, precision="highest")
    if w != size:
        x = jnp.einsum("qw,npwc->npqc", _adaptive_pool_matrix(w, size), x, precision="highest")
    return x


def _max_pool(x: jax.Array) -> jax.Array:
    """torch's MaxPool2d(3, stride=2) on NHWC: (N, H, W, C) -> (N, (H-3)//2+1, (W-3)//2+1, C).

    The max of the window's nine strided slices: XLA:CPU fuses it with the preceding ReLU,
    about ten times faster than ``reduce_window``, and bit-identical.
    """
    n, h, w, c = x.shape
    ho, wo = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    out = None
    for i in range(3):
        for j in range(3):
            window = jax.lax.slice(x, (0, i, j, 0), (n, i + 2 * ho - 1, j + 2 * wo - 1, c), (1, 2, 2, 1))
            out = window if out is None else jnp.maximum(out, window)
    return out


def _conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, stride: int, pad: int) -> jax.Array:
    """ReLU(conv(x) + bias), NHWC x HWIO, full float32 precision."""
    y = jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision="highest",
    )
    return jax.nn.relu(y + bias.reshape(1, 1, 1, -1))


def _dense(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    return jnp.dot(x, kernel, precision="highest") + bias.reshape(1, -1)


class Conv(nn.Module):
    """ReLU(conv + bias) with torch's symmetric padding: (N, H, W, Cin) -> (N, h, w, features)."""

    features: int
    kernel_size: int
    stride: int
    pad: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.he_normal(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return _conv(x, kernel, bias, self.stride, self.pad)


class Dense(nn.Module):
    """x @ kernel + bias, ReLU unless ``relu=False``: (N, F_in) -> (N, features)."""

    features: int
    relu: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.he_normal() if self.relu else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        y = _dense(x, kernel, bias)
        return jax.nn.relu(y) if self.relu else y


class AlexNet(nn.Module):
    """torchvision AlexNet on NHWC images; returns (logits, activations).

    Attributes:
      num_classes: size of fc8.
      widths: output channels of conv1..conv5.
      hidden: sizes of fc6 and fc7.
    """

    num_classes: int = 1000
    widths: tuple[int, ...] = FULL_WIDTHS
    hidden: tuple[int, int] = FULL_HIDDEN

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
        """x (N, H, W, 3) -> logits (N, num_classes) and {layer name: activation}."""
        acts = {}
        for name, width, (k, stride, pad, pool) in zip(CONV_NAMES, self.widths, CONV_GEOMETRY):
            x = acts[name] = Conv(width, k, stride, pad, name=name)(x)
            if pool:
                x = _max_pool(x)
        x = adaptive_avg_pool(x).reshape(x.shape[0], -1)
        # torchvision puts dropout before fc6 and fc7, not before fc8.
        for name, width in zip(("fc6", "fc7"), self.hidden):
            x = nn.Dropout(0.5, deterministic=not train)(x)
            x = acts[name] = Dense(width, name=name)(x)
        x = acts["fc8"] = Dense(self.num_classes, relu=False, name="fc8")(x)
        return x, acts


def init(
    key: jax.Array,
    num_classes: int = 1000,
    *,
    width: float = 1.0,
    widths: tuple[int, ...] | None = None,
    hidden: tuple[int, int] | None = None,
) -> dict[str, dict[str, jax.Array]]:
    """Fresh parameters (He-normal kernels, zero biases).

    ``width`` scales torchvision's channel counts (64, 192, 384, 256, 256) and fc sizes
    (4096, 4096); ``widths`` / ``hidden`` set them explicitly instead.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"alexnet.init: expected num_classes a positive int, got {num_classes!r}")
    if not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"alexnet.init: expected width > 0, got {width!r}")
    widths = tuple(widths) if widths is not None else tuple(max(1, round(c * width)) for c in FULL_WIDTHS)
    hidden = tuple(hidden) if hidden is not None else tuple(max(1, round(c * width)) for c in FULL_HIDDEN)
    if len(widths) != 5 or len(hidden) != 2 or min(widths + hidden) < 1:
        raise ValueError(f"alexnet.init: expected 5 positive widths and 2 hidden sizes, got {widths}, {hidden}")
    model = AlexNet(num_classes=num_classes, widths=widths, hidden=hidden)
    # lazy_init runs only the initialisers, not the forward pass: no compilation needed.
    dummy = jax.ShapeDtypeStruct((1, MIN_SIZE, MIN_SIZE, 3), jnp.float32)
    return model.lazy_init(key, dummy)["params"]


def model_for(params: Mapping[str, Mapping[str, jax.Array]]) -> AlexNet:
    """The AlexNet module whose widths match ``params``; ValueError if they do not fit together."""
    if not isinstance(params, Mapping):
        raise TypeError(f"alexnet params: expected a dict of layers, got {type(params).__name__}")
    missing = [name for name in LAYER_NAMES if name not in params]
    if missing:
        raise ValueError(f"alexnet params: missing layers {missing}; expected {list(LAYER_NAMES)}")
    shapes = {}
    for name in LAYER_NAMES:
        layer = params[name]
        if not isinstance(layer, Mapping) or set(layer) != {"kernel", "bias"}:
            raise ValueError(f"alexnet params[{name!r}]: expected keys kernel and bias, got {layer!r:.80}")
        shapes[name] = (tuple(np.shape(layer["kernel"])), tuple(np.shape(layer["bias"])))
    channels = 3
    for name, (k, *_rest) in zip(CONV_NAMES, CONV_GEOMETRY):
        kshape, bshape = shapes[name]
        if len(kshape) != 4 or kshape[:3] != (k, k, channels) or bshape != kshape[3:]:
            raise ValueError(
                f"alexnet params[{name!r}]: expected kernel ({k}, {k}, {channels}, C) and bias (C,), "
                f"got {kshape} and {bshape}"
            )
        channels = kshape[3]
    features = POOL_SIZE * POOL_SIZE * channels
    for name in DENSE_NAMES:
        kshape, bshape = shapes[name]
        if len(kshape) != 2 or kshape[0] != features or bshape != kshape[1:]:
            raise ValueError(
                f"alexnet params[{name!r}]: expected kernel ({features}, F) and bias (F,), got {kshape} and {bshape}"
            )
        features = kshape[1]
    return AlexNet(
        num_classes=shapes["fc8"][0][1],
        widths=tuple(shapes[name][0][3] for name in CONV_NAMES),
        hidden=(shapes["fc6"][0][1], shapes["fc7"][0][1]),
    )


def _check_images(x: jax.Array, where: str) -> None:
    arrays.as_images(x, where, channels=(3,), min_size=MIN_SIZE)  # MIN_SIZE: AlexNet's smallest input


@functools.partial(jax.jit, static_argnames="train")
def _run(params, x, key, *, train: bool):
    model = model_for(params)
    rngs = {"dropout": key} if train else {}
    return model.apply({"params": params}, x, train=train, rngs=rngs)


def apply(params, x: jax.Array, *, train: bool = False, key: jax.Array | None = None) -> jax.Array:
    """Logits (N, num_classes) of images x (N, H, W, 3), H, W >= 63 (already normalised).

    ``train=True`` turns dropout on and needs ``key``.
    """
    _check_images(x, "alexnet.apply")
    if train and key is None:
        raise ValueError("alexnet.apply: expected a dropout key with train=True, got key=None")
    return _run(params, x, key, train=train)[0]


def activations(params, x: jax.Array) -> dict[str, jax.Array]:
    """{conv1..conv5: (N, h, w, C) after ReLU, before pooling; fc6, fc7: (N, F) after ReLU; fc8: logits}."""
    _check_images(x, "alexnet.activations")
    return _run(params, x, None, train=False)[1]


@functools.partial(jax.jit, static_argnames="size")
def _preprocess(x: jax.Array, size: int) -> jax.Array:
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    x = jax.image.resize(x, (x.shape[0], size, size, 3), method="bilinear")
    mean = jnp.asarray(IMAGENET_MEAN, x.dtype).reshape(1, 1, 1, 3)
    std = jnp.asarray(IMAGENET_STD, x.dtype).reshape(1, 1, 1, 3)
    return (x - mean) / std


def preprocess(x, size: int = 224) -> jax.Array:
    """Images (N, H, W, 1 or 3) in [0, 1] -> (N, size, size, 3): grey to RGB, bilinear resize,
    ImageNet mean/std normalisation."""
    x = arrays.as_images(x, "alexnet.preprocess", channels=(1, 3))
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"alexnet.preprocess: expected size an int >= {MIN_SIZE}, got {size!r}")
    return _preprocess(jnp.asarray(x), size)
