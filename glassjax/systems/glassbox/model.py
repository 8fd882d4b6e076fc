"""The glass-box's forward pass, layer by layer: all pure and jittable on a ``GlassBoxParams`` pytree.

Beside it, on concrete params (host side): ``feature_action`` (how each group element acts on the
layer-2 features) and ``irrep_summary`` (what layer 2 keeps of each irrep).
"""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, classifiers, groups, irreps, reduction
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import GlassBoxConfig
from glassjax.systems.glassbox.filters import FilterBank

__all__ = ["GlassBoxParams", "responses", "represent", "transform", "layers", "apply", "predict", "feature_action", "irrep_summary"]


class GlassBoxParams(eqx.Module):
    """A fitted glass-box: a pytree of arrays; config, shapes and class names are static."""

    config: GlassBoxConfig = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    patches: FilterBank | None
    prototypes: FilterBank | None
    projection: rep.OrbitProjection
    # Layer 2 as configured (config.reduction): a reduction.PCA, or a reduction.LDA for "lda".
    pca: reduction.PCA | reduction.LDA
    classifier: classifiers.ClassifierParams
    # The irrep block of every layer-2 feature (None: a model file from before symmetry-adapted layer 2).
    blocks: reduction.Blocks | None = None

    @property
    def group(self) -> groups.Group:
        return groups.get(self.config.group)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _banks(params) -> list[tuple[FilterBank, int]]:
    out = []
    if params.patches is not None:
        out.append((params.patches, params.config.grid))
    if params.prototypes is not None:
        out.append((params.prototypes, 1))  # a full-size filter has a single position
    return out


def _responses(config: GlassBoxConfig, banks: list[tuple[FilterBank, int]], x: jax.Array) -> jax.Array:
    orbit = groups.orbit(config.group, x)
    return jnp.concatenate([rep.respond(bank, orbit, rho=config.rho, grid=grid) for bank, grid in banks], axis=-1)


def responses(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Equivariant responses E: x (N, H, W, C) -> (N, |G|, D)."""
    return _responses(params.config, _banks(params), x)


def _represent(config: GlassBoxConfig, z: jax.Array) -> jax.Array:
    parts = []
    if config.representation in ("invariant", "both"):
        parts.append(rep.pool_group(z[..., : config.pool_dim], config.poolings))
    if config.representation in ("equivariant", "both"):
        parts.append(z[..., : config.orbit_dim].reshape(z.shape[0], -1))
    return jnp.concatenate(parts, axis=-1)


def _used_projection(config: GlassBoxConfig, projection: rep.OrbitProjection) -> rep.OrbitProjection:
    """The orbit projection cut to the coordinates the representation reads (the rest would be computed and dropped)."""
    width = max(
        config.pool_dim if config.representation in ("invariant", "both") else 0,
        config.orbit_dim if config.representation in ("equivariant", "both") else 0,
    )
    return rep.OrbitProjection(projection.mean, projection.components[:width])


def represent(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Layer 1, the representation: x (N, H, W, C) -> (N, D_rep).

    invariant: pooled over the group; equivariant: the orbit projection flattened (|G| * orbit_dim);
    both: the two side by side.
    """
    z = rep.project_orbit(_used_projection(params.config, params.projection), responses(params, x))
    return _represent(params.config, z)


def transform(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Layers 1 and 2: x (N, H, W, C) -> PCA (or LDA) features (N, K)."""
    return reduction.project(params.pca, represent(params, x))


def layers(params: GlassBoxParams, x: jax.Array) -> dict[str, jax.Array]:
    """Every layer from one orbit pass, in depth order, from images x (N, H, W, C):

    response        E(x)[e], the responses at the identity element                 (N, D)
    orbit           z, the orbit projection flattened: the group permutes its blocks (N, |G| orbit_dim)
    invariant       pool_g(z): exactly invariant                                     (N, D_I)
    representation  layer 1 as configured, when it is not the invariant part alone  (N, D_rep)
    pca (or lda)    layer 2, as ``config.reduction`` names it                        (N, K)
    """
    config = params.config
    e = responses(params, x)
    z = rep.project_orbit(params.projection, e)  # the whole projection: the orbit layer reads orbit_dim of it
    representation = _represent(config, z)
    out = {
        "response": e[:, 0],  # groups.Group: elements[0] is the identity
        "orbit": z[..., : config.orbit_dim].reshape(x.shape[0], -1),
        "invariant": rep.pool_group(z[..., : config.pool_dim], config.poolings),
    }
    if config.representation != "invariant":
        out["representation"] = representation
    out[config.reduction] = reduction.project(params.pca, representation)
    return out


def apply(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """All three layers: x (N, H, W, C) float32 in [0, 1] -> class scores (N, num_classes)."""
    return classifiers.predict_scores(params.classifier, transform(params, x))


def predict(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Predicted labels (N,) int32."""
    return jnp.argmax(apply(params, x), axis=-1).astype(jnp.int32)


def feature_action(params: GlassBoxParams, g: int) -> np.ndarray:
    """M_g (K, K) float32, the matrix by which group element g acts on the layer-2 features:

        transform(act(g, x)) == transform(x) @ feature_action(params, g).T

    g is an element index of ``glassjax.groups.get(config.group)``. M_g is block-diagonal, one
    block rho(g) per irrep block of features (``irreps.action``); invariant features (the whole
    invariant representation) get the identity. Orthogonal, whitened or not, and a homomorphism:
    M_a M_b = M_(a b). Exact groups only: under rot:N the law holds only approximately.
    """
    group = params.group
    if not group.exact:
        raise ValueError(f"feature_action: group {group.name!r} rotates by bilinear resampling, so moving the image only "
                         "approximately permutes the group axis and no matrix holds exactly; expected an exact group "
                         "(d4, c4, flip, trans:N, none)")
    if params.blocks is None:
        raise ValueError("feature_action: expected a model with irrep blocks, got one from a version 1 model file "
                         "(fitted before layer 2 was symmetry-adapted); fit it again")
    g = arrays.as_int(g, "feature_action", "g", 0)
    if g >= group.order:
        raise ValueError(f"feature_action: expected g an element index below {group.order} (group {group.name!r}), got {g}")
    blocks = params.blocks
    return irreps.action(group, np.asarray(blocks.irrep), np.asarray(blocks.coordinate), element=g).astype(np.float32)


def irrep_summary(params: GlassBoxParams) -> dict[str, dict]:
    """Per irrep of the group: the share of the representation's variance (PCA; LDA: of the
    discriminant sum) in its isotypic component, how many layer-2 components it keeps, and the
    share those kept components explain. {} for a model without irrep blocks."""
    if params.blocks is None:
        return {}
    irrep = np.asarray(params.blocks.irrep)
    ratio = np.asarray(params.pca.explained_variance_ratio, np.float64)
    out = {}
    for r, (rho, share) in enumerate(zip(irreps.irreps(params.group), np.asarray(params.blocks.isotypic, np.float64))):
        kept = irrep == r
        out[rho.name] = {"dim": rho.dim, "variance": round(float(share), 6), "components": int(kept.sum()),
                         "kept_variance": round(float(ratio[kept].sum()), 6)}
    return out
