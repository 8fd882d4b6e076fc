"""The checks and the padding every layer applies to arrays of rows: one of each.

  as_images(x, where)        images (N, H, W, C) of a float dtype, checked by shape and dtype
  as_labels(y, n, where)     int class labels (n,), checked, values too when they are concrete
  as_weights(w, n, where)    per-row weights (n,), finite, >= 0 and not all 0 when concrete
  as_int(v, where, name)     an int option (a batch size, a count) >= a minimum
  as_float(v, where, name)   a finite float option (a penalty, a tolerance), >= 0 or > 0
  as_bool(v, where, name)    a bool option (numpy's bool too; not 0/1, not "yes")
  as_seed(v, where, name)    a seed: an int in 0..MAX_SEED, the one rule of the API and the CLI
  pad_rows(x, size)          x (n, ...) padded to ``size`` rows by repeating its last row

The checks raise TypeError / ValueError as "{where}: expected ..., got ...". Shape and dtype
checks work on traced arrays too (under ``jax.jit``); value checks run only on concrete ones.
No check converts pixel values: only ``glassjax.data`` turns uint8 into [0, 1].
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["as_images", "as_labels", "as_weights", "as_int", "as_float", "as_bool", "as_seed", "MAX_SEED", "pad_rows"]

# Seeds are uint32: every consumer (jax.random.key, numpy's generators, the CLI) takes them whole.
MAX_SEED = 2**32 - 1


def _is_concrete(a: Any) -> bool:
    return not isinstance(a, jax.core.Tracer)


def as_images(
    x: Any,
    where: str,
    *,
    grey: bool = False,
    uint8: bool = False,
    channels: Sequence[int] | None = None,
    min_size: int = 1,
) -> Any:
    """x as a batch of images (N, H, W, C), unconverted (numpy stays numpy, jax stays jax).

    grey: also accept (N, H, W), returned with a channel axis of 1. uint8: also accept uint8
    pixels (the caller scales them). channels: the channel counts allowed (default any).
    min_size: the smallest H and W allowed.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{where}: expected a numpy or JAX array of images, got {type(x).__name__}")
    if grey and len(x.shape) == 3:
        x = x[..., None]
    shape = tuple(x.shape)
    depth = "C" if channels is None else " or ".join(map(str, channels))
    if len(shape) != 4 or (channels is not None and shape[-1] not in channels):
        layouts = f"(N, H, W) or (N, H, W, {depth})" if grey else f"(N, H, W, {depth})"
        raise ValueError(f"{where}: expected images of shape {layouts}, got shape {shape}")
    if shape[0] == 0 or min(shape[1:]) == 0:
        raise ValueError(f"{where}: expected at least one non-empty image, got shape {shape}")
    if min(shape[1:3]) < min_size:
        raise ValueError(f"{where}: expected H, W >= {min_size}, got shape {shape}")
    if not (jnp.issubdtype(x.dtype, jnp.floating) or (uint8 and x.dtype == np.uint8)):
        kinds = "floating-point or uint8" if uint8 else "floating-point"
        raise TypeError(f"{where}: expected {kinds} images, got dtype {x.dtype}")
    return x


def as_labels(
    y: Any,
    n: int,
    where: str,
    *,
    name: str = "labels",
    num_classes: int | None = None,
    min_classes: int = 1,
    check_values: bool = True,
    integral_floats: bool = False,
) -> Any:
    """y as int32 class labels (n,): numpy for numpy input or a list, jax for jax input.

    Values, on concrete arrays only and unless ``check_values`` is False: labels in
    0..num_classes-1 (0 and up when num_classes is None) and at least ``min_classes`` classes
    present. integral_floats: also accept float labels that are whole numbers.
    """
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{where}: expected {name} as an integer array (N,), got {type(y).__name__}")
    if not hasattr(y, "dtype"):
        try:
            y = np.asarray(y)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: expected {name} as an integer array (N,), got {type(y).__name__}") from None
    concrete = _is_concrete(y)
    if integral_floats and concrete and jnp.issubdtype(y.dtype, jnp.floating):
        whole = bool(np.all(np.asarray(y) == np.round(np.asarray(y))))
    else:
        whole = False
    if not (jnp.issubdtype(y.dtype, jnp.integer) or whole):
        raise TypeError(f"{where}: expected integer {name}, got dtype {y.dtype}")
    if tuple(y.shape) != (n,):
        raise ValueError(f"{where}: expected {name} of shape ({n},), one label per row, got shape {tuple(y.shape)}")
    y = y.astype(jnp.int32) if isinstance(y, jax.Array) else np.asarray(y).astype(np.int32)
    if not (check_values and concrete and n):
        return y
    values = np.asarray(y)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or (num_classes is not None and hi >= num_classes):
        top = "C-1" if num_classes is None else num_classes - 1
        raise ValueError(f"{where}: expected {name} in 0..{top}, got {name} in {lo}..{hi}")
    if min_classes > 1 and (present := np.unique(values)).size < min_classes:
        raise ValueError(f"{where}: expected at least {min_classes} classes, got {present.size} ({present.tolist()})")
    return y


def as_weights(w: Any, n: int, where: str, *, name: str = "sample_weight", dtype: Any = np.float32) -> Any:
    """w as per-row weights (n,) of ``dtype`` in scikit-learn's convention (None: ones): numpy for
    numpy input or a list, jax for jax input. Values, on concrete arrays only: finite, >= 0, with a
    positive sum (not all 0)."""
    if w is None:
        return np.ones((n,), dtype)
    if isinstance(w, (str, bytes)) or not (hasattr(w, "dtype") or isinstance(w, (list, tuple))):
        raise TypeError(f"{where}: expected {name} as a float array (N,), got {type(w).__name__}")
    w = w if hasattr(w, "dtype") else np.asarray(w)
    if not (jnp.issubdtype(w.dtype, jnp.floating) or jnp.issubdtype(w.dtype, jnp.integer) or w.dtype == jnp.bool_):
        raise TypeError(f"{where}: expected numeric {name}, got dtype {w.dtype}")
    if tuple(w.shape) != (n,):
        raise ValueError(f"{where}: expected {name} of shape ({n},), one weight per row, got shape {tuple(w.shape)}")
    w = w.astype(dtype) if isinstance(w, jax.Array) else np.asarray(w, dtype)
    if _is_concrete(w) and n:
        values = np.asarray(w)
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError(f"{where}: expected finite {name} >= 0, got values in {values.min()}..{values.max()}")
        if not values.sum() > 0:
            raise ValueError(f"{where}: expected {name} with a positive sum, got all weights 0")
    return w


def as_int(value: Any, where: str, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; TypeError for a non-integer (bool included), ValueError below it."""
    if isinstance(value, bool):
        raise TypeError(f"{where}: expected an int {name}, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{where}: expected an int {name}, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{where}: expected {name} >= {minimum}, got {value}")
    return value


def as_float(value: Any, where: str, name: str, *, positive: bool) -> float:
    """``value`` as a finite float, > 0 if ``positive`` else >= 0; TypeError for a non-number (bool included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: expected a float {name}, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{where}: expected {name} {'> 0' if positive else '>= 0'}, got {value}")
    return value


def as_bool(value: Any, where: str, name: str) -> bool:
    """``value`` as a bool; TypeError for anything but True / False (numpy's bool included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: expected {name} True or False, got {value!r}"[:200])
    return bool(value)


def as_seed(value: Any, where: str, name: str = "seed") -> int:
    """``value`` as a seed: an int (numpy's too, not a bool) in 0..MAX_SEED.

    TypeError for a non-integer, ValueError outside the range, both as
    "{where}: expected {name} an int in 0..4294967295, got ...".
    """
    expected = f"{where}: expected {name} an int in 0..{MAX_SEED}"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{expected}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{expected}, got {value!r}"[:200]) from None
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"{expected}, got {value}"[:200])
    return value


def pad_rows(x: Any, size: int) -> Any:
    """x (n, ...) padded to ``size`` rows by repeating its last row (numpy or jax, traced too).

    Padding repeats a real row, so padded rows hold valid inputs (images, labels) that no
    function can choke on; callers drop their outputs or give them mask 0.
    """
    n = x.shape[0]
    if n == size:
        return x
    if n == 0 or n > size:
        raise ValueError(f"pad_rows: expected 1 to {size} rows, got shape {tuple(x.shape)}")
    xp = jnp if isinstance(x, jax.Array) else np
    return xp.concatenate([x, xp.broadcast_to(x[-1:], (size - n,) + tuple(x.shape[1:]))])
