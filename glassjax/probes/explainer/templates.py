"""The part templates of Interpretable CNNs (Zhang, Wu, Zhu, CVPR 2018) and the mask layer.

For an h x w map (n = max(h, w), P = h w positions) the positive template of position mu is
t_ij = tau * max(1 - beta ||(i, j) - mu||_1 / n, -1), the negative template is T^- = -tau
everywhere. The paper's constants, stated once:

  tau = 0.5 / P         template scale
  beta = 4              how fast a template falls off from its centre
  alpha = P / (1 + P)   prior mass of the P positive templates together; p(T^-) = 1 - alpha
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays

__all__ = ["BETA", "alpha", "log_priors", "mask", "tau", "template_shapes", "templates"]

BETA = 4.0


def tau(h: int, w: int) -> float:
    """The paper's tau = 0.5 / n^2 for an h x w map (n^2 = h w)."""
    return 0.5 / (h * w)


def alpha(h: int, w: int) -> float:
    """The paper's alpha = n^2 / (1 + n^2): the positive templates' prior mass together."""
    return (h * w) / (1.0 + h * w)


def template_shapes(h: int, w: int, beta: float = BETA) -> np.ndarray:
    """max(1 - beta ||(i, j) - mu||_1 / n, -1) for every position mu: (P, h, w) float32, row-major mu.

    The positive templates without tau: 1 at mu, falling to -1 away from it.
    """
    h = arrays.as_int(h, "template_shapes", "h")
    w = arrays.as_int(w, "template_shapes", "w")
    n = max(h, w)
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    mu_i, mu_j = i.reshape(-1), j.reshape(-1)
    dist = np.abs(i[None] - mu_i[:, None, None]) + np.abs(j[None] - mu_j[:, None, None])
    return np.maximum(1.0 - beta * dist / n, -1.0).astype(np.float32)


def templates(h: int, w: int, beta: float = BETA) -> np.ndarray:
    """All P + 1 templates (P + 1, h, w) float32: the P positive ones times tau, then T^- = -tau."""
    t = tau(h, w)
    negative = np.full((1, h, w), -t, np.float32)
    return np.concatenate([t * template_shapes(h, w, beta), negative]).astype(np.float32)


def log_priors(h: int, w: int) -> np.ndarray:
    """log p(T) (P + 1,) float32: log(alpha / P) for each positive template, log(1 - alpha) for T^-."""
    a, p = alpha(h, w), h * w
    return np.log(np.array([a / p] * p + [1.0 - a], np.float64)).astype(np.float32)


def mask(x: jax.Array, beta: float = BETA) -> jax.Array:
    """ICNN's mask layer: x (N, h, w, F) >= 0 -> max(x * T_mu, 0), mu each map's argmax.

    T_mu is the template's shape (``template_shapes``, 1 at mu): the peak keeps its value and
    units far from it are zeroed. The position is chosen under ``stop_gradient``: gradients
    flow through x, never through the choice of mu.
    """
    if x.ndim != 4:
        raise ValueError(f"explainer.mask: expected maps (N, h, w, F), got shape {tuple(x.shape)}")
    n, h, w, f = x.shape
    shapes = jnp.asarray(template_shapes(h, w, beta), x.dtype)  # (P, h, w)
    peak = jnp.argmax(jax.lax.stop_gradient(x).reshape(n, h * w, f), axis=1)  # (N, F)
    chosen = jax.lax.stop_gradient(jnp.take(shapes, peak, axis=0))  # (N, F, h, w)
    return jnp.maximum(x * jnp.transpose(chosen, (0, 2, 3, 1)), 0.0)
