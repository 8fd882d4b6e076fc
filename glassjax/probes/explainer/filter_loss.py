"""The filter loss of Interpretable CNNs: minus the mutual information between a filter's maps
and the part templates (Zhang, Wu, Zhu, CVPR 2018, eq. 1-2).

For one filter, X its maps over a batch (each x an h x w map >= 0) and Omega the templates
(``templates.templates``, priors ``templates.log_priors``):

  p(x | T) = exp(tr(x T)) / Z_T,   Z_T = sum over the batch of exp(tr(x' T)),
  p(x)     = sum_T p(T) p(x | T),
  Loss_f   = -MI(X; Omega) = -sum_T p(T) sum_x p(x | T) log(p(x | T) / p(x)),

with tr(x T) = sum_ij x_ij t_ij. Computed in the log domain (logsumexp), so it is finite for
any map magnitude.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from glassjax.probes.explainer.templates import BETA, log_priors, templates

__all__ = ["filter_loss"]


def filter_loss(x: jax.Array, beta: float = BETA) -> jax.Array:
    """-MI(X; Omega) of every filter: x (N, h, w, F) maps over a batch of N >= 2 -> (F,)."""
    if x.ndim != 4 or x.shape[0] < 2:
        raise ValueError(f"explainer.filter_loss: expected maps (N, h, w, F) with N >= 2, got shape {tuple(x.shape)}")
    _, h, w, _ = x.shape
    t = jnp.asarray(templates(h, w, beta), x.dtype)  # (T, h, w)
    log_prior = jnp.asarray(log_priors(h, w), x.dtype).reshape(1, 1, -1)  # (1, 1, T)
    s = jnp.einsum("nhwf,thw->fnt", x, t, precision="highest")  # tr(x T): (F, N, T)
    log_px_t = s - jax.nn.logsumexp(s, axis=1, keepdims=True)  # log p(x | T)
    log_px = jax.nn.logsumexp(log_prior + log_px_t, axis=2, keepdims=True)  # log p(x): (F, N, 1)
    mi = jnp.sum(jnp.exp(log_prior + log_px_t) * (log_px_t - log_px), axis=(1, 2))
    return -mi
