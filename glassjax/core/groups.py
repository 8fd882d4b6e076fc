"""Groups acting on images: pure functions on one NHWC image, batched with ``vmap``.

A group element is an integer index ``g`` in ``range(group.order)``; ``group.act(g, x)``
transforms one image ``x`` of shape (H, W, C) and works with a traced ``g``, so the whole
orbit is ``vmap(group.act, (0, None))(arange(order), x)``.

Exact groups (D4 and its subgroups, cyclic translations) permute pixels: they are applied as
a gather with a pixel-index table built once per image shape. Rotations by 360/n degrees
(``rot:N``) resample bilinearly and are approximate.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Group",
    "d4",
    "c4",
    "flip",
    "trivial",
    "rotations",
    "translations",
    "get",
    "GROUP_NAMES",
    "orbit",
    "rotate",
    "random_elements",
    "act_batch",
]


@dataclasses.dataclass(frozen=True, eq=False)
class Group:
    """A finite group acting on (H, W, C) images.

    Two groups are equal (and hash alike) when their spec and elements are: ``get("d4") ==
    get("d4")``, so a group serves as a dict key or a static ``jax.jit`` argument.

    Attributes:
      name: the spec string that builds it (``"d4"``, ``"rot:8"``, ...).
      elements: one hashable parameter tuple per element; ``elements[0]`` is the identity.
      compose: ``compose(a, b)`` -> parameters of ``a * b`` (apply ``b`` first, then ``a``).
      transform: ``transform(params, x)`` -> ``x`` acted on; ``params`` is a float array row
        of ``element_table``, possibly traced.
      exact: whether the action is an exact pixel permutation.
      square_only: whether the action needs H == W.
    """

    name: str
    elements: tuple[tuple, ...]
    compose: Callable[[tuple, tuple], tuple]
    transform: Callable[[jax.Array, jax.Array], jax.Array]
    exact: bool
    square_only: bool

    @property
    def order(self) -> int:
        return len(self.elements)

    @functools.cached_property
    def element_table(self) -> np.ndarray:
        """(order, P) float32 parameters, one row per element."""
        return np.asarray(self.elements, dtype=np.float32).reshape(self.order, -1)

    @functools.cached_property
    def cayley_table(self) -> np.ndarray:
        """(order, order) int table: ``table[i, j]`` is the index of ``g_i * g_j``."""
        index = {self._key(e): i for i, e in enumerate(self.elements)}
        table = np.empty((self.order, self.order), dtype=np.int32)
        for i, a in enumerate(self.elements):
            for j, b in enumerate(self.elements):
                table[i, j] = index[self._key(self.compose(a, b))]
        return table

    @functools.cached_property
    def inverse(self) -> np.ndarray:
        """(order,) int: ``inverse[i]`` is the index of ``g_i^-1``."""
        return np.argmax(self.cayley_table == 0, axis=1).astype(np.int32)

    @staticmethod
    def _key(params: tuple) -> tuple:
        return tuple(round(float(p), 6) for p in params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return (self.name, self.elements) == (other.name, other.elements)

    def __hash__(self) -> int:
        return hash((self.name, self.elements))

    def check_image(self, x_shape: Sequence[int], where: str) -> None:
        """Raise ValueError if images of ``x_shape`` (..., H, W, C) cannot be acted on."""
        if len(x_shape) < 3:
            raise ValueError(f"{where}: expected images of shape (..., H, W, C), got shape {tuple(x_shape)}")
        h, w = x_shape[-3], x_shape[-2]
        if self.square_only and h != w:
            raise ValueError(
                f"{where}: group {self.name!r} needs square images, got shape {tuple(x_shape)}; "
                "expected H == W: crop or resize, or use the group 'flip' or 'none'"
            )

    def act(self, g: jax.Array | int, x: jax.Array) -> jax.Array:
        """Act with element index ``g`` (int, possibly traced) on one image ``x`` (H, W, C)."""
        params = jnp.asarray(self.element_table)[g]
        return self.transform(params, x)

    def __repr__(self) -> str:
        return f"Group({self.name!r}, order={self.order})"


# --- exact pixel-permutation groups -------------------------------------------------------


def _d4_compose(a: tuple, b: tuple) -> tuple:
    # Element (r, f) acts as R^r F^f: flip horizontally f times, then rotate r quarter turns.
    # F R = R^-1 F, so R^r1 F^f1 R^r2 F^f2 = R^(r1 + (-1)^f1 r2) F^(f1 + f2).
    r1, f1 = a
    r2, f2 = b
    return ((r1 + (-r2 if f1 else r2)) % 4, (f1 + f2) % 2)


@functools.lru_cache(maxsize=64)
def _d4_pixel_index(h: int, w: int) -> np.ndarray:
    """(8, H*W) int32: source pixel of each output pixel for every (r, f), r-major."""
    grid = np.arange(h * w, dtype=np.int32).reshape(h, w)
    rows = []
    for r in range(4):
        for f in range(2):
            moved = np.rot90(grid[:, ::-1] if f else grid, k=r)
            # On non-square images odd quarter turns change the shape; square_only groups
            # never reach them, flip and none never use them: keep the identity there.
            rows.append(moved.reshape(-1) if moved.shape == (h, w) else grid.reshape(-1))
    return np.stack(rows)


def _gather_pixels(index: np.ndarray, x: jax.Array) -> jax.Array:
    h, w, c = x.shape
    return x.reshape(h * w, c)[index].reshape(h, w, c)


def _d4_transform(params: jax.Array, x: jax.Array) -> jax.Array:
    h, w, _ = x.shape
    row = (params[0] * 2 + params[1]).astype(jnp.int32)
    return _gather_pixels(jnp.asarray(_d4_pixel_index(h, w))[row], x)


def _dihedral_subgroup(name: str, elements: tuple[tuple, ...], square_only: bool) -> Group:
    return Group(name, elements, _d4_compose, _d4_transform, exact=True, square_only=square_only)


def d4() -> Group:
    """The dihedral group of the square: 4 quarter turns x horizontal flip (order 8)."""
    return _dihedral_subgroup("d4", tuple((r, f) for r in range(4) for f in range(2)), True)


def c4() -> Group:
    """Rotations by multiples of 90 degrees (order 4)."""
    return _dihedral_subgroup("c4", tuple((r, 0) for r in range(4)), True)


def flip() -> Group:
    """Identity and the horizontal (left-right) flip (order 2); any image shape."""
    return _dihedral_subgroup("flip", ((0, 0), (0, 1)), False)


def trivial() -> Group:
    """The one-element group: no symmetry (spec ``"none"``)."""
    return _dihedral_subgroup("none", ((0, 0),), False)


def translations(n: int) -> Group:
    """Cyclic translations by multiples of (H/n, W/n) pixels: Z_n x Z_n (order n^2)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"translations: expected a positive integer n, got {n!r}")

    def compose(a, b):
        return ((a[0] + b[0]) % n, (a[1] + b[1]) % n)

    def transform(params, x):
        h, w, _ = x.shape
        if h % n or w % n:
            raise ValueError(f"translations({n}): expected H and W divisible by {n}, got shape {x.shape}")
        dy = params[0].astype(jnp.int32) * (h // n)
        dx = params[1].astype(jnp.int32) * (w // n)
        return jnp.roll(x, (dy, dx), axis=(0, 1))

    elements = tuple((i, j) for i in range(n) for j in range(n))
    return Group(f"trans:{n}", elements, compose, transform, exact=True, square_only=False)


# --- approximate continuous rotations ------------------------------------------------------


def rotate(x: jax.Array, angle: jax.Array | float) -> jax.Array:
    """Rotate one image (H, W, C) by ``angle`` radians counter-clockwise about its centre.

    Bilinear interpolation, zero outside the image; differentiable in ``angle`` and ``x``
    (the Lie derivative uses ``jax.jvp`` through it). At multiples of 90 degrees on square
    images it agrees with ``np.rot90`` to float rounding.
    """
    h, w, c = x.shape
    angle = jnp.asarray(angle, dtype=x.dtype)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=x.dtype), jnp.arange(w, dtype=x.dtype), indexing="ij")
    # Output pixel (y, x) samples the input at the inverse-rotated location. Rows grow
    # downwards, so a counter-clockwise turn on screen uses this sign convention.
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = cy + cos * (yy - cy) + sin * (xx - cx)
    src_x = cx - sin * (yy - cy) + cos * (xx - cx)
    sample = functools.partial(jax.scipy.ndimage.map_coordinates, coordinates=[src_y, src_x], order=1, mode="constant", cval=0.0)
    return jax.vmap(sample, in_axes=2, out_axes=2)(x)


def rotations(n: int) -> Group:
    """C_n: rotations by multiples of 360/n degrees, bilinear (approximate unless n divides 4)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"rotations: expected a positive integer n, got {n!r}")

    def compose(a, b):
        return ((a[0] + b[0]) % n,)

    def transform(params, x):
        return rotate(x, params[0] * (2.0 * np.pi / n))

    return Group(f"rot:{n}", tuple((k,) for k in range(n)), compose, transform, exact=False, square_only=True)


GROUP_NAMES = ("d4", "c4", "flip", "none", "rot:N", "trans:N")


def get(spec: str | Group) -> Group:
    """Build a group from its spec: ``d4``, ``c4``, ``flip``, ``none``, ``rot:N``, ``trans:N``."""
    if isinstance(spec, Group):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"groups.get: expected a group spec (str) or a Group, got {type(spec).__name__}")
    simple = {"d4": d4, "c4": c4, "flip": flip, "none": trivial}
    if spec in simple:
        return simple[spec]()
    kind, _, count = spec.partition(":")
    if kind in ("rot", "trans") and count.isdigit() and int(count) > 0:
        return (rotations if kind == "rot" else translations)(int(count))
    raise ValueError(f"groups.get: expected a group spec, one of {', '.join(GROUP_NAMES)} (N a positive integer), got unknown group {spec!r}")


# --- batched helpers -------------------------------------------------------------------------


def orbit(group: Group | str, x: jax.Array) -> jax.Array:
    """The orbit of a batch: x (N, H, W, C) -> (N, |G|, H, W, C), element order as ``group.elements``."""
    group = get(group)
    group.check_image(x.shape, "orbit")
    elements = jnp.arange(group.order)
    per_image = jax.vmap(group.act, in_axes=(0, None))
    return jax.vmap(per_image, in_axes=(None, 0))(elements, x)


def act_batch(group: Group | str, g: jax.Array, x: jax.Array) -> jax.Array:
    """Act with one element per image: g (N,) int, x (N, H, W, C) -> (N, H, W, C)."""
    group = get(group)
    group.check_image(x.shape, "act_batch")
    return jax.vmap(group.act)(g, x)


def random_elements(group: Group | str, n: int, *, key: jax.Array) -> jax.Array:
    """(n,) int32 element indices drawn uniformly from the group."""
    group = get(group)
    return jax.random.randint(key, (n,), 0, group.order, dtype=jnp.int32)
