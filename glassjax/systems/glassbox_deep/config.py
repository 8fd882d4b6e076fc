"""The deep glass-box's configuration: depth, widths and pooling per layer, and the top, validated."""
from __future__ import annotations

import dataclasses

import numpy as np

from glassjax.core import arrays, classifiers
from glassjax.systems.glassbox import representation as rep

__all__ = ["DeepGlassBoxConfig", "GROUPS", "CRITERIA", "REPRESENTATIONS", "POOLINGS", "SMALL_TRAINING_SET"]

# Exact pixel permutations of square images, under which zero-padded odd-kernel correlation and
# area pooling commute with the action.
GROUPS = ("d4", "c4", "flip", "none")
CRITERIA = ("pca", "class_pca", "fisher")
REPRESENTATIONS = ("invariant", "equivariant", "both")
# rep.POOLINGS plus "irrep": the norm of every irrep block of the group axis (|y| for 1-D irreps).
POOLINGS = rep.POOLINGS + ("irrep",)
SMALL_TRAINING_SET = 1000  # below this many training images the top keeps fewer features
GRID_SIDE = 12  # top maps under this side are pooled to a 3 x 3 grid, larger ones to 4 x 4 (measured)


@dataclasses.dataclass(frozen=True)
class DeepGlassBoxConfig:
    """Every choice of the deep glass-box. ``None`` means: chosen from the images at fit time.

    group           exact group acting on the images: d4, c4, flip, none
    representation  invariant (pooled over the group), equivariant (the projected orbit), both
    criterion       how each layer's filters are fitted from lifted k x k x |G| x C patches:
                    pca (symmetrised PCA), class_pca (the same per class), fisher (per class,
                    generalized eigenvectors of the class's scatter against the pooled
                    within-class scatter: class-discriminative)
    widths          filters per layer, the lifting layer first; the depth is its length (default
                    depth 1: one lifting layer; depth 2 measured worse on digits and mnist5k, see
                    docs/deep_glassbox.md)
    kernel_sizes    odd k of each layer's k x k filters (zero padding (k - 1) / 2 keeps the size)
    downsample      per layer, 1 (keep the side) or 2 (area pooling to ceil(side / 2), exact for
                    every side); (2, 2, ...), or (1, 2, ...) for images under 16 pixels
    rho             fixed nonlinearity after every layer: abs or relu_pair
    grid            spatial grid the top layer's maps are pooled to (3 for maps under 12 pixels, 4
                    otherwise, 2 for small training sets; at most the side of the maps)
    multiscale      the top reads every layer's maps, each pooled to the grid, not only the last's
    poolings        invariant poolings over the group axis from mean, max, bilinear, irrep
                    (mean, max, bilinear; mean and max for small training sets)
    pool_dim        width d of the orbit projection that is pooled
    orbit_dim       width per group element of the equivariant part
    components      PCA components of the representation (200, or 30 for small training sets)
    whiten          whiten the PCA output
    classifier      ridge, lda, logistic, svm, mlp
    regularization  the classifier's penalty (ridge alpha, LDA shrinkage, logistic/SVM/MLP l2);
                    None keeps the classifier's default
    shrinkage       fisher criterion: the pooled within-class scatter shrunk this far towards
                    tr / D * I
    filter_images   training images per class whose lifted patches fit the filters
    patches_per_image  lifted patches sampled per image and layer for the filters
    batch_size      images per batch in every pass
    """

    group: str = "d4"
    representation: str = "invariant"
    criterion: str = "fisher"
    widths: tuple[int, ...] = (16,)
    kernel_sizes: tuple[int, ...] = (5,)
    downsample: tuple[int, ...] | None = None
    rho: str = "abs"
    grid: int | None = None
    multiscale: bool = False
    poolings: tuple[str, ...] | None = None
    pool_dim: int = 32
    orbit_dim: int = 32
    components: int | None = None
    whiten: bool = True
    classifier: str = "logistic"
    regularization: float | None = None
    shrinkage: float = 0.1
    filter_images: int = 300
    patches_per_image: int = 16
    batch_size: int = 128

    @property
    def depth(self) -> int:
        return len(self.widths)

    def validated(self) -> "DeepGlassBoxConfig":
        """The config checked (a one-line ValueError / TypeError naming the field) with plain Python
        numbers; tuples given as strings (the command line's) are read as ints."""
        choices = {"group": GROUPS, "representation": REPRESENTATIONS, "criterion": CRITERIA, "rho": rep.RHOS,
                   "classifier": classifiers.KINDS}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(f"DeepGlassBox: expected {name} in {'|'.join(allowed)}, got {value!r}")
        layers = {name: _int_tuple(getattr(self, name), name) for name in ("widths", "kernel_sizes")}
        layers["downsample"] = None if self.downsample is None else _int_tuple(self.downsample, "downsample")
        if len({len(v) for v in layers.values() if v is not None}) != 1:
            raise ValueError(f"DeepGlassBox: expected widths, kernel_sizes and downsample of one length (the depth), "
                             f"got {len(layers['widths'])}, {len(layers['kernel_sizes'])}, {len(layers['downsample'] or layers['widths'])}")
        if any(k % 2 == 0 for k in layers["kernel_sizes"]):
            raise ValueError(f"DeepGlassBox: expected odd kernel_sizes (symmetric zero padding keeps the layers exact), "
                             f"got {layers['kernel_sizes']}")
        if any(f not in (1, 2) for f in layers["downsample"] or ()):
            raise ValueError(f"DeepGlassBox: expected downsample factors 1 or 2, got {layers['downsample']}")
        poolings = self.poolings
        if poolings is not None:
            if isinstance(poolings, str) or not hasattr(poolings, "__iter__") or not tuple(poolings) \
                    or any(p not in POOLINGS for p in poolings):
                raise ValueError(f"DeepGlassBox: expected poolings from {'|'.join(POOLINGS)} as a sequence, got {poolings!r}")
            poolings = tuple(poolings)
        numbers = {name: None if getattr(self, name) is None and name in ("grid", "components")
                   else arrays.as_int(getattr(self, name), "DeepGlassBox", name)
                   for name in ("grid", "pool_dim", "orbit_dim", "components", "filter_images", "patches_per_image",
                                "batch_size")}
        numbers["whiten"] = arrays.as_bool(self.whiten, "DeepGlassBox", "whiten")
        numbers["multiscale"] = arrays.as_bool(self.multiscale, "DeepGlassBox", "multiscale")
        if self.regularization is not None:
            numbers["regularization"] = arrays.as_float(self.regularization, "DeepGlassBox", "regularization", positive=True)
        shrinkage = arrays.as_float(self.shrinkage, "DeepGlassBox", "shrinkage", positive=False)
        if shrinkage > 1:
            raise ValueError(f"DeepGlassBox: expected shrinkage in [0, 1], got {shrinkage}")
        return dataclasses.replace(self, poolings=poolings, shrinkage=shrinkage, **layers, **numbers)

    def resolved(self, image_shape: tuple[int, int, int], n_train: int) -> "DeepGlassBoxConfig":
        """The config with the data-dependent defaults filled in, checked against the images (H, W, C)."""
        config = self.validated()
        h, w, _ = (int(v) for v in image_shape)
        if h != w:
            raise ValueError(f"DeepGlassBox: expected square images (the group acts on the lifted maps), got {h}x{w}")
        downsample = config.downsample or ((1,) if h < 16 else (2,)) + (2,) * (config.depth - 1)
        side = top_side(h, downsample)
        for k in config.kernel_sizes:
            if k > h:
                raise ValueError(f"DeepGlassBox: expected kernel_sizes <= {h} for {h}x{w} images, got {k}")
        few = n_train < SMALL_TRAINING_SET
        grid = config.grid or min(2 if few else 3 if side < GRID_SIDE else 4, side)
        if grid > side:
            raise ValueError(f"DeepGlassBox: expected grid <= {side} (the side of the top maps), got {grid}")
        return dataclasses.replace(config, grid=grid, downsample=downsample,
                                   poolings=config.poolings or (("mean", "max") if few else ("mean", "max", "bilinear")),
                                   components=config.components or (30 if few else 200))


def top_side(side: int, downsample: tuple[int, ...]) -> int:
    """The side of the top layer's maps on side x side images."""
    for factor in downsample:
        side = -(-side // factor)
    return side


def _int_tuple(value, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"DeepGlassBox: expected {name} a sequence of positive ints, got {value!r}"[:200])
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"DeepGlassBox: expected {name} a sequence of positive ints, got {value!r}"[:200]) from None
    if not out or min(out) < 1 or any(isinstance(v, (bool, np.bool_, float)) for v in value):
        raise ValueError(f"DeepGlassBox: expected {name} a non-empty sequence of positive ints, got {value!r}"[:200])
    return out

