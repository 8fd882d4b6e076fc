"""The explainer network in Flax: two encoder tracks on the performer's layer-l maps, mixed by a
learned p in [0, 1], and a decoder that reconstructs the performer's higher layers.

  interpretable track   per layer: 3x3 conv, ReLU, ICNN mask (``templates.mask``)
  ordinary track        one 3x3 conv, ReLU
  both                  normalised per image to unit RMS, then x_enc = p x_int + (1 - p) x_ord,
                        p = sigmoid(w), w a learned scalar starting at 0 (p = 0.5)
  decoder               per target, in depth order, from the previous reconstruction (x_enc first):
                        spatial (h, w, c): resized to (h, w) if needed, 3x3 conv, ReLU, 3x3 conv to c;
                        vector (d,): flattened, dense ``hidden``, ReLU, dense to d;
                        a final ReLU where the performer's layer is non-negative

Targets are reconstructed in units of their training RMS (``ExplainerParams.target_scales``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glassjax.probes.explainer.templates import mask

__all__ = ["Encoded", "Explainer", "Target", "normalise"]


class Target(NamedTuple):
    """A layer the decoder reconstructs: its name, shape per image ((h, w, c) or (d,)), whether it is >= 0."""

    name: str
    shape: tuple[int, ...]
    nonnegative: bool


class Encoded(NamedTuple):
    """What the explainer computes from maps (N, h, w, c).

    interpretable  the interpretable track's masked maps, one (N, h, w, filters) per layer
    ordinary       the ordinary track's maps (N, h, w, filters)
    p              the interpretable track's share, a scalar in [0, 1]
    reconstructed  target name -> (N, *shape), in the targets' RMS units
    """

    interpretable: tuple[jax.Array, ...]
    ordinary: jax.Array
    p: jax.Array
    reconstructed: dict


def normalise(x: jax.Array) -> jax.Array:
    """x (N, ...) divided by each image's RMS (a small floor keeps an all-zero map finite)."""
    rms = jnp.sqrt(jnp.mean(jnp.square(x), axis=tuple(range(1, x.ndim)), keepdims=True) + 1e-6)
    return x / rms


def _conv(features: int, name: str) -> nn.Conv:
    return nn.Conv(features, (3, 3), padding="SAME", name=name, precision=jax.lax.Precision.HIGHEST)


class Explainer(nn.Module):
    """maps (N, h, w, c) -> ``Encoded``; see the module docstring."""

    filters: int
    interpretable_layers: int
    hidden: int
    targets: Sequence[Target]

    @nn.compact
    def __call__(self, maps: jax.Array) -> Encoded:
        z, interpretable = maps, []
        for i in range(self.interpretable_layers):
            z = mask(jax.nn.relu(_conv(self.filters, f"interpretable{i + 1}")(z)))
            interpretable.append(z)
        x_ord = jax.nn.relu(_conv(self.filters, "ordinary")(maps))
        p = jax.nn.sigmoid(self.param("p_logit", nn.initializers.zeros, (), maps.dtype))
        z = p * normalise(interpretable[-1]) + (1 - p) * normalise(x_ord)
        out = {}
        for target in self.targets:
            if len(target.shape) == 3:
                if z.ndim != 4:
                    raise ValueError(f"Explainer: a spatial target ({target.name}) cannot follow a vector one")
                h, w, c = target.shape
                if z.shape[1:3] != (h, w):
                    z = jax.image.resize(z, (z.shape[0], h, w, z.shape[3]), method="bilinear")
                z = jax.nn.relu(_conv(self.filters, f"{target.name}_hidden")(z))
                z = _conv(c, f"{target.name}_out")(z)
            else:
                z = z.reshape(z.shape[0], -1)
                z = jax.nn.relu(nn.Dense(self.hidden, name=f"{target.name}_hidden",
                                         precision=jax.lax.Precision.HIGHEST)(z))
                z = nn.Dense(target.shape[0], name=f"{target.name}_out", precision=jax.lax.Precision.HIGHEST)(z)
            if target.nonnegative:
                z = jax.nn.relu(z)
            out[target.name] = z
        return Encoded(tuple(interpretable), x_ord, p, out)
