"""Real irreducible representations of glassjax's groups, and the group axis split into them.

Moving an image by h permutes the group axis of an equivariant representation: z(act(h, x))[g]
= z(x)[g h] (the Cayley table; the right regular representation, P_h). The regular
representation splits into the group's real irreducible representations (irreps):

  irreps(group)         the real irreps rho: name, dimension n, type, matrices rho(g) (|G|, n, n)
  regular_basis(group)  Q (|G|, |G|) orthonormal; y = Q^T z (over the group axis) has one block
                        y[rho, i] (n coordinates) per copy i of each irrep, and P_h acts on every
                        block by rho(h): y[rho, i](act(h, x)) = rho(h) y[rho, i](x)
  action(group, irrep, coordinate)  the (K, K) matrices by which every element acts on K
                        features labelled with their irrep and their coordinate in it

The irreps are tabulated: d4 (Mulliken names A1, A2, B1, B2 and the 2-D E, the square's
symmetries with R = [[0, -1], [1, 0]] and F = diag(1, -1)); the abelian groups (c4, flip,
none, trans:N, rot:N) by their characters, a conjugate pair of complex characters
exp(+-i theta) joined into one real 2-D rotation block [[cos, -sin], [sin, cos]].

Type: an irrep is of *real* type when only multiples of the identity commute with it (E of d4,
every 1-D irrep); then the regular representation holds n copies of it, and symmetric
statistics on its isotypic component are I_n (x) A. A rotation block of a cyclic group is of
*complex* type: rotations commute with it too, the regular representation holds one copy, and
symmetric statistics are Hermitian on C^M (the block's two coordinates as a complex number).
All tables are float64 numpy, checked against the Cayley table when built.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from glassjax.core import groups

__all__ = ["Irrep", "RegularBasis", "irreps", "regular_basis", "action", "SUPPORTED"]

SUPPORTED = ("d4", "c4", "flip", "none", "trans:N", "rot:N")


class Irrep(NamedTuple):
    """A real irreducible representation: ``matrices[g]`` (n, n) orthogonal, float64; ``kind``
    "real" (commutant R) or "complex" (a rotation block: commutant C)."""

    name: str
    dim: int
    kind: str
    matrices: np.ndarray

    @property
    def copies(self) -> int:
        """How many times the regular representation holds it: n for real type, n / 2 for complex."""
        return self.dim if self.kind == "real" else self.dim // 2


class RegularBasis(NamedTuple):
    """Q (|G|, |G|) orthonormal and, per irrep, ``columns[r]`` (copies, n): Q's columns of copy i, coordinate j."""

    q: np.ndarray
    columns: tuple[np.ndarray, ...]


def _rotation(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _d4(elements: tuple[tuple, ...]) -> list[Irrep]:
    r = np.array([e[0] for e in elements])
    f = np.array([e[1] for e in elements])
    one = lambda v: v.astype(np.float64).reshape(-1, 1, 1)  # noqa: E731
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    mirror = np.diag([1.0, -1.0])
    e = np.stack([np.linalg.matrix_power(quarter, int(a)) @ np.linalg.matrix_power(mirror, int(b)) for a, b in zip(r, f)])
    return [
        Irrep("A1", 1, "real", one(np.ones_like(r))),
        Irrep("A2", 1, "real", one((-1) ** f)),
        Irrep("B1", 1, "real", one((-1) ** r)),
        Irrep("B2", 1, "real", one((-1) ** (r + f))),
        Irrep("E", 2, "real", np.round(e)),
    ]


def _abelian(coords: np.ndarray, moduli: tuple[int, ...]) -> list[Irrep]:
    """The real irreps of Z_m1 x ... from each element's coordinates (|G|, k): characters
    exp(2 pi i <a, c / m>), a real character (2a = 0) as one 1-D irrep, a conjugate pair as one rotation block."""
    moduli_arr = np.asarray(moduli)
    out = []
    for a in np.ndindex(*moduli):
        a = np.asarray(a)
        neg = tuple((-a) % moduli_arr)
        if tuple(a) > neg:
            continue  # the pair is listed under its smaller member
        theta = 2 * np.pi * (coords * (a / moduli_arr)).sum(axis=1)
        label = ",".join(map(str, a.tolist()))
        if tuple(a) == neg:
            out.append(Irrep(f"k={label}", 1, "real", np.round(np.cos(theta)).reshape(-1, 1, 1)))
        else:
            out.append(Irrep(f"k=±{label}" if len(moduli) == 1 else f"k=±({label})", 2, "complex", _rotation(theta)))
    return out


def _tabulate(group: groups.Group) -> list[Irrep]:
    elements = group.elements
    name = group.name
    if name == "d4":
        return _d4(elements)
    if name in ("c4", "flip", "none"):
        # dihedral subgroups: (r, f) with f = 0 (c4), r = 0 (flip), or the identity alone
        coords = np.array([[e[0] + e[1]] for e in elements])
        return _abelian(coords, (group.order,))
    kind, _, n = name.partition(":")
    if kind == "trans":
        return _abelian(np.array(elements), (int(n), int(n)))
    if kind == "rot":
        return _abelian(np.array(elements), (int(n),))
    raise ValueError(f"irreps: expected a group of {', '.join(SUPPORTED)}, got {name!r} (its real irreps are not tabulated)")


def _check(group: groups.Group, table: list[Irrep]) -> None:
    """Each irrep a homomorphism (rho(a) rho(b) = rho(ab)) by orthogonal matrices; dimensions adding up to |G|."""
    cayley = group.cayley_table
    for rho in table:
        m = rho.matrices
        if not np.allclose(np.einsum("aij,bjk->abik", m, m), m[cayley], atol=1e-9):
            raise AssertionError(f"irreps: {rho.name} of {group.name!r} does not follow the Cayley table")
        if not np.allclose(np.einsum("gji,gjk->gik", m, m), np.eye(rho.dim), atol=1e-9):
            raise AssertionError(f"irreps: {rho.name} of {group.name!r} is not orthogonal")
    if sum(rho.copies * rho.dim for rho in table) != group.order:
        raise AssertionError(f"irreps: the irreps of {group.name!r} do not fill the regular representation")


@functools.lru_cache(maxsize=32)
def _irreps(group: groups.Group) -> tuple[Irrep, ...]:
    table = _tabulate(group)
    _check(group, table)
    return tuple(table)


def irreps(group: groups.Group | str) -> tuple[Irrep, ...]:
    """The real irreps of ``group``, the trivial one first (ValueError for a group not in SUPPORTED)."""
    return _irreps(groups.get(group))


@functools.lru_cache(maxsize=32)
def _regular_basis(group: groups.Group) -> RegularBasis:
    columns, vectors = [], []
    for rho in irreps(group):
        # Column (i, j) is sqrt(n / |G|) rho(g)[i, j] over g: Schur orthogonality makes them orthonormal,
        # and (P_h q)(g) = q(g h) = sum_k rho(g)[i, k] rho(h)[k, j] puts copy i's block under rho(h).
        scale = np.sqrt(rho.dim / group.order)
        index = np.arange(len(vectors), len(vectors) + rho.copies * rho.dim).reshape(rho.copies, rho.dim)
        vectors.extend(scale * rho.matrices[:, i, j] for i in range(rho.copies) for j in range(rho.dim))
        columns.append(index)
    q = np.stack(vectors, axis=1)
    if not np.allclose(q.T @ q, np.eye(group.order), atol=1e-9):
        raise AssertionError(f"regular_basis: the irrep coordinates of {group.name!r} are not orthonormal")
    return RegularBasis(q, tuple(columns))


def regular_basis(group: groups.Group | str) -> RegularBasis:
    """Q (|G|, |G|) with y = Q^T z: the group axis in irrep coordinates (see the module docstring)."""
    return _regular_basis(groups.get(group))


def action(group: groups.Group | str, irrep: np.ndarray, coordinate: np.ndarray, *, element: int | None = None) -> np.ndarray:
    """(|G|, K, K) float64, or (K, K) for one ``element``: how the elements act on K features,
    feature k being coordinate ``coordinate[k]`` of a block of irrep ``irrep[k]`` (an index
    into ``irreps(group)``). A block is a run of one irrep's coordinates 0..n-1 in order; element
    g acts on it by rho(g): the matrix is block-diagonal.
    """
    table = irreps(group)
    irrep = np.asarray(irrep, np.int64)
    coordinate = np.asarray(coordinate, np.int64)
    k = irrep.shape[0]
    order = groups.get(group).order
    elements = np.arange(order) if element is None else np.asarray([element])
    out = np.zeros((elements.size, k, k))
    start = 0
    while start < k:
        rho = table[irrep[start]]
        stop = start + rho.dim
        whole = np.all(irrep[start:stop] == irrep[start]) and np.array_equal(coordinate[start:stop], np.arange(rho.dim))
        if stop > k or not whole:
            raise ValueError(f"action: expected whole blocks of irrep {rho.name} (coordinates 0..{rho.dim - 1}) from feature "
                             f"{start}, got irreps {irrep[start:stop].tolist()} coordinates {coordinate[start:stop].tolist()}")
        out[:, start:stop, start:stop] = rho.matrices[elements]
        start = stop
    return out if element is None else out[0]
