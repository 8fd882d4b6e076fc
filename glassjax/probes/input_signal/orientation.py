"""How much orientation a reconstruction keeps: is it closer to its original than to any other
element of the original's orbit?

  orientation_kept(x, r, group)   x, r (N, H, W, C) -> {kept: the fraction of i with corr(r_i, x_i) >
                                  corr(r_i, g x_i) for every g != e in the group (d4 by default; exact groups
                                  only), margin: the mean of corr(r_i, x_i) - max_(g != e) corr(r_i, g x_i)}

Pearson correlation over pixels. An image with a symmetry (a 0 under a half turn) ties with its
own transform and does not count as kept, so 1.0 is out of reach and the number is read
against the untuned autoencoder's, not against 1.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, groups

__all__ = ["orientation_kept"]


def _correlations(orbit: jax.Array, r: jax.Array) -> jax.Array:
    """orbit (N, G, P), r (N, P) -> (N, G) Pearson correlations."""
    o = orbit - jnp.mean(orbit, axis=-1, keepdims=True)
    c = r - jnp.mean(r, axis=-1, keepdims=True)
    num = jnp.einsum("ngp,np->ng", o, c)
    den = jnp.sqrt(jnp.sum(o * o, axis=-1) * jnp.sum(c * c, axis=-1)[:, None])
    return num / jnp.where(den > 0, den, jnp.ones_like(den))


def orientation_kept(x: Any, r: Any, group: str = "d4") -> dict[str, float]:
    """{kept: the fraction of images whose reconstruction r_i correlates more with x_i than with any other
    g x_i, margin: the mean lead of corr(r_i, x_i) over the best other element}."""
    x = arrays.as_images(x, "input_signal.orientation_kept")
    r = arrays.as_images(r, "input_signal.orientation_kept")
    if tuple(x.shape) != tuple(r.shape):
        raise ValueError(f"input_signal.orientation_kept: expected originals and reconstructions of one shape, "
                         f"got {tuple(x.shape)} and {tuple(r.shape)}")
    g = groups.get(group)
    if not g.exact:
        raise ValueError(f"input_signal.orientation_kept: expected an exact group (d4, c4, flip), got {g.name!r}")
    x, r = jnp.asarray(x, jnp.float32), jnp.asarray(r, jnp.float32)
    orbit = groups.orbit(g, x).reshape(x.shape[0], g.order, -1)
    corr = np.asarray(jax.jit(_correlations)(orbit, r.reshape(r.shape[0], -1)))
    # groups.Group: elements[0] is the identity.
    lead = corr[:, 0] - corr[:, 1:].max(axis=1)
    return {"kept": float(np.mean(lead > 0)), "margin": float(np.mean(lead))}
