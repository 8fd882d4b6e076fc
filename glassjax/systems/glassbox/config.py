"""The glass-box's configuration: every choice of its three layers, validated and resolved."""
from __future__ import annotations

import dataclasses

import numpy as np

from glassjax.core import arrays, classifiers, groups
from glassjax.systems.glassbox import representation as rep

__all__ = ["GlassBoxConfig", "REPRESENTATIONS", "FILTER_KINDS", "REDUCTIONS", "SMALL_TRAINING_SET", "REGULARIZATION_OPTION",
           "MAX_RESPONSE_FEATURES"]

REPRESENTATIONS = ("invariant", "equivariant", "both")
FILTER_KINDS = ("patch", "prototype", "both")
REDUCTIONS = ("pca", "lda")
SMALL_TRAINING_SET = 1000  # below this many training images, the defaults favour fewer features
# The orbit projection is fitted from the D x D moments of the responses: at most this many
# features (a 1 GiB float32 matrix), so a large grid is refused before it allocates.
MAX_RESPONSE_FEATURES = 2**14
REGULARIZATION_OPTION = {"ridge": "alpha", "lda": "shrinkage", "logistic": "l2", "svm": "l2", "mlp": "l2"}


@dataclasses.dataclass(frozen=True)
class GlassBoxConfig:
    """Every choice of the three layers. ``None`` means: chosen from the image size at fit time.

    group           group spec: d4, c4, flip, none, rot:N, trans:N
    representation  invariant (pooled over the group), equivariant (the projected orbit), both
    filters         patch (class-wise patch PCA), prototype (G-averaged class means), both
    patch_size      k of the k x k patch filters (5, or 3 for images under 16 pixels)
    filters_per_class  patch filters per class
    grid            spatial pooling grid of the responses (4; 2 for images under 16 pixels
                    or fewer than 1000 training images)
    rho             fixed nonlinearity: relu_pair or abs
    poolings        invariant poolings over the group axis from mean, max, bilinear
                    (all three; mean and max alone for small training sets, where the
                    pool_dim^2 / 2 bilinear features would outnumber the images)
    pool_dim        width d of the orbit projection that is pooled
    orbit_dim       width per group element of the equivariant part
    reduction       layer 2: pca (unsupervised, from the moments of the representation) or lda
                    (supervised, from its class scatter; at most C - 1 discriminants; the
                    within-class covariance shrunk by fit.LDA_SHRINKAGE)
    components      components of layer 2 (200; 300 for both, the widest representation, whose
                    symmetry-adapted reduction spreads the orbit's variance over every orientation;
                    30 for small training sets); capped by the data
    whiten          whiten the PCA output (LDA's output is whitened within classes already)
    classifier      ridge, lda, logistic, svm, mlp (layer 3)
    regularization  the classifier's penalty (ridge alpha, LDA shrinkage, logistic/SVM/MLP l2);
                    None keeps the classifier's default
    batch_size      images per batch in every pass
    """

    group: str = "d4"
    representation: str = "invariant"
    filters: str = "patch"
    patch_size: int | None = None
    filters_per_class: int = 8
    grid: int | None = None
    rho: str = "relu_pair"
    poolings: tuple[str, ...] | None = None
    pool_dim: int = 32
    orbit_dim: int = 128
    reduction: str = "pca"
    components: int | None = None
    whiten: bool = True
    classifier: str = "logistic"
    regularization: float | None = None
    batch_size: int = 256

    def validated(self) -> "GlassBoxConfig":
        """The config with its choices checked (ValueError / TypeError naming the field otherwise)
        and its numbers as plain Python ints, floats and bools (numpy's are accepted)."""
        groups.get(self.group)
        choices = {"representation": REPRESENTATIONS, "filters": FILTER_KINDS, "rho": rep.RHOS, "reduction": REDUCTIONS,
                   "classifier": classifiers.KINDS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(f"GlassBox: expected {name} in {'|'.join(allowed)}, got {value!r}")
        poolings = self.poolings
        if poolings is not None:
            if isinstance(poolings, str) or not hasattr(poolings, "__iter__"):
                raise ValueError(f"GlassBox: expected poolings from {'|'.join(rep.POOLINGS)} as a sequence, got {poolings!r}")
            poolings = tuple(poolings)
            if not poolings or any(not isinstance(p, str) or p not in rep.POOLINGS for p in poolings):
                raise ValueError(f"GlassBox: expected poolings from {'|'.join(rep.POOLINGS)}, got {self.poolings!r}")
        numbers = {}
        for name in ("filters_per_class", "pool_dim", "orbit_dim", "batch_size", "patch_size", "grid", "components"):
            numbers[name] = _positive_int(getattr(self, name), name, optional=name in ("patch_size", "grid", "components"))
        numbers["whiten"] = arrays.as_bool(self.whiten, "GlassBox", "whiten")
        if self.regularization is not None:
            if isinstance(self.regularization, (bool, np.bool_)) or not isinstance(self.regularization, (int, float, np.number)):
                raise TypeError(f"GlassBox: expected regularization a float > 0 or None, got {self.regularization!r}"[:200])
            if not (np.isfinite(self.regularization) and self.regularization > 0):
                raise ValueError(f"GlassBox: expected regularization a float > 0 or None, got {self.regularization!r}")
            numbers["regularization"] = float(self.regularization)
        return dataclasses.replace(self, poolings=poolings, **numbers)

    def resolved(self, image_shape: tuple[int, int, int], n_train: int, num_classes: int = 2) -> "GlassBoxConfig":
        """The config with the defaults that depend on the images (H, W, C) and their count filled in,
        and checked against the image size (ValueError naming the field): patch_size <= min(H, W),
        grid <= the side of the response maps, patches of at least 2 values, and at most
        MAX_RESPONSE_FEATURES response features (their D x D moments are held in memory).
        ``num_classes`` (default: 2, the fewest) counts the filter banks for that bound.
        filters_per_class is capped at patch_size^2 C - 1, the components a patch PCA can have.
        """
        config = self.validated()
        h, w, c = (int(v) for v in image_shape)
        side = min(h, w)
        tiny_images = side < 16
        few_images = n_train < SMALL_TRAINING_SET
        patch_size = config.patch_size or min(3 if tiny_images else 5, side)
        grid = config.grid or min(2 if tiny_images or few_images else 4, max(side - patch_size + 1, 1))
        filters_per_class = config.filters_per_class
        features = 0
        if config.filters in ("patch", "both"):
            if patch_size > side:
                raise ValueError(f"GlassBox: expected patch_size <= {side} for {h}x{w} images, got {patch_size}")
            map_side = side - patch_size + 1
            if grid > map_side:
                raise ValueError(f"GlassBox: expected grid <= {map_side} (the side of the response maps of "
                                 f"{patch_size}x{patch_size} filters on {h}x{w} images), got {grid}")
            values = patch_size * patch_size * c
            if values < 2:
                raise ValueError(f"GlassBox: expected patches of at least 2 values for patch filters "
                                 f"(patch_size^2 x channels), got {patch_size}x{patch_size}x{c}; "
                                 "use filters='prototype' or larger images")
            filters_per_class = min(filters_per_class, values - 1)
            features += grid * grid * filters_per_class * num_classes
        if config.filters in ("prototype", "both"):
            features += num_classes
        features *= 2 if config.rho == "relu_pair" else 1
        if features > MAX_RESPONSE_FEATURES:
            raise ValueError(f"GlassBox: expected at most {MAX_RESPONSE_FEATURES} response features (their D x D "
                             f"moments are held in memory), got {features} from grid={grid}, "
                             f"filters_per_class={filters_per_class}, {num_classes} classes; lower grid or filters_per_class")
        return dataclasses.replace(
            config,
            patch_size=patch_size,
            grid=grid,
            filters_per_class=filters_per_class,
            poolings=config.poolings or (("mean", "max") if few_images else ("mean", "max", "bilinear")),
            components=config.components or (30 if few_images else 300 if config.representation == "both" else 200),
        )


def _positive_int(value, name: str, *, optional: bool) -> int | None:
    """``value`` as a plain int >= 1 (None too when ``optional``); ValueError naming the field otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"GlassBox: expected {name} a positive int{' or None' if optional else ''}, got {value!r}"[:200])
    return int(value)
