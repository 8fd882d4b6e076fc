"""Maps of a bank of explicit filters (the glass-box's class-labelled patch filters) on images,
so their part locations are measured like a network layer's.

The glass-box correlates each k x k filter with the image (valid) and applies relu_pair: relu(r)
and relu(-r) are two features, so each filter gives two maps, the second its sign-flipped twin.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays

__all__ = ["bank_maps"]


@jax.jit
def _maps(filters, x):
    r = jax.lax.conv_general_dilated(x, jnp.transpose(filters, (1, 2, 3, 0)), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
    return jnp.concatenate([jax.nn.relu(r), jax.nn.relu(-r)], axis=-1)


def bank_maps(filters: np.ndarray, x: np.ndarray) -> np.ndarray:
    """filters (F, k, k, C), images x (N, H, W, C) -> (N, H - k + 1, W - k + 1, 2F): relu(r) then relu(-r)."""
    x = arrays.as_images(x, "explainer.bank_maps")
    filters = np.asarray(filters, np.float32)
    if filters.ndim != 4 or filters.shape[1] != filters.shape[2] or filters.shape[3] != x.shape[3]:
        raise ValueError(f"explainer.bank_maps: expected filters (F, k, k, {x.shape[3]}), got shape {filters.shape}")
    return np.asarray(_maps(jnp.asarray(filters), jnp.asarray(x, jnp.float32)))
