"""The deep glass-box's forward pass, layer by layer: pure and jittable on a ``DeepGlassBoxParams`` pytree.

  lifted maps   layer 1 lifts, layers 2..L convolve on the lifted domain   (N, h_l, h_l, |G| C_l)
  responses     E[g] = T_g P_grid(F_L[g^-1]) (multiscale: every layer's,     (N, |G|, D)
                concatenated): the group permutes its axis
  orbit         z = the one-layer glass-box's whitened orbit projection      (N, |G|, d)
  invariant     poolings over g (mean, max, bilinear, irrep norms)           (N, D_I)
  pca           symmetry-adapted PCA of the representation                    (N, K)
  scores        the classifier                                                (N, classes)
"""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from glassjax.core import classifiers, groups, irreps, reduction
from glassjax.core.batching import map_chunks
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox_deep import lifted
from glassjax.systems.glassbox_deep.config import DeepGlassBoxConfig

__all__ = ["DeepGlassBoxParams", "layer_names", "lifted_maps", "responses", "represent", "transform", "layers",
           "scores", "irrep_norms", "CHUNK"]

# Images per chunk of the forward pass: bounds the lifted maps in memory whatever N.
CHUNK = 256


class DeepGlassBoxParams(eqx.Module):
    """A fitted deep glass-box: arrays in a pytree; config, image shape and class names static.

    filters[l] (F_l, k_l, k_l, Gin_l, Cin_l) (Gin = 1 for the lifting layer, |G| after); biases[l] (F_l,);
    filter_classes[l] (F_l,) int32, the class each filter was fitted for (-1: all classes).
    """

    config: DeepGlassBoxConfig = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    filters: tuple[jax.Array, ...]
    biases: tuple[jax.Array, ...]
    filter_classes: tuple[jax.Array, ...]
    projection: rep.OrbitProjection
    pca: reduction.PCA
    blocks: reduction.Blocks
    classifier: classifiers.ClassifierParams

    @property
    def group(self) -> groups.Group:
        return groups.get(self.config.group)


def layer_names(depth: int) -> tuple[str, ...]:
    """The names of the lifted layers in ``layers``: lift, gconv2, ..., gconvL."""
    return ("lift",) + tuple(f"gconv{i}" for i in range(2, depth + 1))


def _lifted(config: DeepGlassBoxConfig, filters, biases, x: jax.Array, depth: int) -> list[jax.Array]:
    maps, out = x, []
    for l, (psi, bias) in enumerate(zip(filters[:depth], biases[:depth])):
        maps = lifted.lifted_layer(config.group, psi, bias, maps, rho=config.rho, downsample=config.downsample[l])
        out.append(maps)
    return out


def lifted_maps(params: DeepGlassBoxParams, x: jax.Array) -> list[jax.Array]:
    """x (N, H, H, C) -> every lifted layer's maps (N, h_l, h_l, |G| C_l), group-major channels."""
    return _lifted(params.config, params.filters, params.biases, x, len(params.filters))


def _top(config: DeepGlassBoxConfig, maps: list[jax.Array]) -> jax.Array:
    """Every lifted layer's maps -> E (N, |G|, D): the last layer's, or (multiscale) every layer's concatenated."""
    read = maps if config.multiscale else maps[-1:]
    return jnp.concatenate([lifted.canonical_responses(config.group, m, config.grid) for m in read], axis=-1)


def responses(params: DeepGlassBoxParams, x: jax.Array) -> jax.Array:
    """E: x (N, H, H, C) -> (N, |G|, grid^2 C_L) (multiscale: grid^2 sum_l C_l); E(act(u, x))[g] = E(x)[g u].
    Chunked over images."""
    return map_chunks(lambda chunk: _top(params.config, lifted_maps(params, chunk)), x, CHUNK)


def irrep_norms(group: str, z: jax.Array) -> jax.Array:
    """z (N, |G|, d) -> (N, |G|_blocks d): the norm of every irrep block of the group axis, invariant.

    In the irrep coordinates y = Q^T z (``irreps.regular_basis``) the right-regular action
    z_g -> z_{g u} moves each copy of an irrep by rho(u), orthogonal: |y| for a 1-D irrep, the
    2-norm of each copy of a 2-D one.
    """
    n, _, d = z.shape
    basis = irreps.regular_basis(group)
    y = jnp.einsum("ngk,gc->nck", z, jnp.asarray(basis.q, z.dtype), precision=jax.lax.Precision.HIGHEST)
    parts = []
    for cols in basis.columns:  # (copies, n): the coordinates of each copy
        block = jnp.take(y, jnp.asarray(cols.reshape(-1), jnp.int32), axis=1).reshape((n,) + cols.shape + (d,))
        parts.append(jnp.sqrt(jnp.sum(jnp.square(block), axis=2)).reshape(n, -1))
    return jnp.concatenate(parts, axis=-1)


def _invariant(config: DeepGlassBoxConfig, z: jax.Array) -> jax.Array:
    z = z[..., : config.pool_dim]
    parts = []
    plain = tuple(p for p in config.poolings if p != "irrep")
    if plain:
        parts.append(rep.pool_group(z, plain))
    if "irrep" in config.poolings:
        parts.append(irrep_norms(config.group, z))
    return jnp.concatenate(parts, axis=-1)


def _represent(config: DeepGlassBoxConfig, z: jax.Array) -> jax.Array:
    parts = []
    if config.representation in ("invariant", "both"):
        parts.append(_invariant(config, z))
    if config.representation in ("equivariant", "both"):
        parts.append(z[..., : config.orbit_dim].reshape(z.shape[0], -1))
    return jnp.concatenate(parts, axis=-1)


def represent(params: DeepGlassBoxParams, x: jax.Array) -> jax.Array:
    """The representation as configured: x (N, H, H, C) -> (N, D_rep)."""
    return _represent(params.config, rep.project_orbit(params.projection, responses(params, x)))


def transform(params: DeepGlassBoxParams, x: jax.Array) -> jax.Array:
    """The PCA features: x (N, H, H, C) -> (N, K)."""
    return reduction.project(params.pca, represent(params, x))


def layers(params: DeepGlassBoxParams, x: jax.Array) -> dict[str, jax.Array]:
    """Every layer in depth order from images x (N, H, H, C):

    lift, gconv2..gconvL  lifted maps, group-major channels              (N, h_l, h_l, |G| C_l)
    orbit                 the orbit projection flattened                  (N, |G| orbit_dim)
    invariant             pooled over the group: exactly invariant        (N, D_I)
    representation        layer read by the PCA, when not the invariant   (N, D_rep)
    pca                   the symmetry-adapted PCA                        (N, K)
    """
    config = params.config
    maps = lifted_maps(params, x)
    z = rep.project_orbit(params.projection, _top(config, maps))
    out = dict(zip(layer_names(len(maps)), maps))
    out["orbit"] = z[..., : config.orbit_dim].reshape(x.shape[0], -1)
    out["invariant"] = _invariant(config, z)
    representation = _represent(config, z)
    if config.representation != "invariant":
        out["representation"] = representation
    out["pca"] = reduction.project(params.pca, representation)
    return out


def scores(params: DeepGlassBoxParams, x: jax.Array) -> jax.Array:
    """Class scores (N, classes) of images x (N, H, H, C) in [0, 1]."""
    return classifiers.predict_scores(params.classifier, transform(params, x))
