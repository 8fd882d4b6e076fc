"""Symmetry checks shipped as library code, for glassjax's tests and for users' own models.

``assert_invariant`` and ``assert_equivariant`` test a function of an image batch against
every element of a group; ``assert_group_axioms`` tests a group itself. They raise
AssertionError naming the worst element and its error, like ``numpy.testing``.

The outputs may be vectors, feature maps moved by the group's pixel action, or lifted maps
(maps with a group axis, the deep glass-box's layers), on which u acts by
(L_u F)[g] = T_u F[u^-1 g] (``lifted_action``). Tolerances are elementwise
(``atol + rtol |expected|``) or, with ``norm_rtol``, on the relative norm of the error
||fn(g x) - expected|| / ||expected||.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, groups

__all__ = ["assert_invariant", "assert_equivariant", "assert_group_axioms", "lifted_action"]


def _leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(leaf, np.float64) for leaf in jax.tree.leaves(tree)]


def _mismatch(actual: Any, expected: Any, rtol: float, atol: float) -> tuple[float, float, float]:
    """(worst |a - e| / (atol + rtol |e|), max |a - e|, ||a - e|| / ||e||) over all leaves."""
    a_leaves, e_leaves = _leaves(actual), _leaves(expected)
    if jax.tree.structure(actual) != jax.tree.structure(expected) or [a.shape for a in a_leaves] != [
        e.shape for e in e_leaves
    ]:
        shapes = [a.shape for a in a_leaves], [e.shape for e in e_leaves]
        raise AssertionError(f"outputs differ in structure or shape: {shapes[0]} vs {shapes[1]}")
    ratio, max_abs, diff_sq, ref_sq = 0.0, 0.0, 0.0, 0.0
    for a, e in zip(a_leaves, e_leaves):
        if a.size == 0:
            continue
        diff = np.abs(a - e)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(diff == 0, 0.0, diff / (atol + rtol * np.abs(e)))
        ratio = max(ratio, float(np.max(excess)))
        max_abs = max(max_abs, float(np.max(diff)))
        diff_sq += float(np.sum(diff**2))
        ref_sq += float(np.sum(e**2))
    relative = np.sqrt(diff_sq / ref_sq) if ref_sq > 0 else (0.0 if diff_sq == 0 else np.inf)
    return ratio, max_abs, float(relative)


def _check_batch(x: Any, group: groups.Group, where: str) -> jax.Array:
    x = jnp.asarray(arrays.as_images(x, where))
    group.check_image(x.shape, where)
    return x


def _check_tolerances(rtol: float, atol: float, norm_rtol: float | None, where: str) -> None:
    arrays.as_float(rtol, where, "rtol", positive=False)
    arrays.as_float(atol, where, "atol", positive=False)
    if norm_rtol is not None:
        arrays.as_float(norm_rtol, where, "norm_rtol", positive=False)


def _check_all(
    fn: Callable, group: groups.Group, x: jax.Array, expected_of: Callable[[int], Any], rtol: float, atol: float, what: str,
    norm_rtol: float | None = None,
) -> None:
    """Compare fn(g x) with expected_of(g) for every g; raise naming the worst element.

    Elementwise within atol + rtol |expected|, or (``norm_rtol`` given) by the relative norm error alone.
    """
    failures = []
    for g in range(group.order):
        moved = groups.act_batch(group, jnp.full((x.shape[0],), g, jnp.int32), x)
        ratio, max_abs, relative = _mismatch(fn(moved), expected_of(g), rtol, atol)
        if norm_rtol is not None:
            ratio = relative / norm_rtol if norm_rtol > 0 else (np.inf if relative > 0 else 0.0)
        if ratio > 1.0:
            failures.append((ratio, g, max_abs, relative))
    if failures:
        _, g, max_abs, relative = max(failures)
        name = getattr(fn, "__name__", type(fn).__name__)
        bound = f"norm_rtol={norm_rtol}" if norm_rtol is not None else f"atol={atol} + rtol={rtol} * |expected|"
        raise AssertionError(
            f"{name} is not {what} under group {group.name!r}: worst element g={g} {group.elements[g]} "
            f"has max abs error {max_abs:.3g} (relative norm error {relative:.3g}) > {bound}; "
            f"failing elements: {sorted(f[1] for f in failures)} of {group.order}"
        )


def assert_invariant(
    fn: Callable[[jax.Array], Any], group: groups.Group | str, x: jax.Array, *, rtol: float = 1e-5, atol: float = 1e-6,
    norm_rtol: float | None = None,
) -> None:
    """Assert fn(g x) == fn(x) elementwise within atol + rtol * |fn(x)| for every g in group, or (with
    ``norm_rtol``) ||fn(g x) - fn(x)|| <= norm_rtol ||fn(x)|| over all the outputs together.

    fn maps images (N, H, W, C) to an array or pytree of arrays; x (N, H, W, C).
    """
    group = groups.get(group)
    x = _check_batch(x, group, "assert_invariant")
    _check_tolerances(rtol, atol, norm_rtol, "assert_invariant")
    reference = fn(x)
    _check_all(fn, group, x, lambda g: reference, rtol, atol, "invariant", norm_rtol)


def assert_equivariant(
    fn: Callable[[jax.Array], Any],
    group: groups.Group | str,
    x: jax.Array,
    *,
    act_output: Callable[[int, Any], Any] | None = None,
    feature_action: Callable[[int], Any] | Any = None,
    lifted: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    norm_rtol: float | None = None,
) -> None:
    """Assert fn(g x) == act_output(g, fn(x)) within atol + rtol * |expected| for every g in group
    (with ``norm_rtol``: ||fn(g x) - expected|| <= norm_rtol ||expected|| instead).

    fn maps images (N, H, W, C) to an output batch. Say how g acts on it in one of three ways:
    ``act_output(g, y)`` applies element index g to the whole output batch (for a feature map
    batch (N, h, w, c) under an image group this is ``groups.act_batch(group, jnp.full((N,), g), y)``);
    or, for features (N, K) on which g acts linearly, ``feature_action``: g -> M_g (K, K) (such as
    ``GlassBox.feature_action``) or an array (|G|, K, K), so that fn(g x) == fn(x) @ M_g.T;
    or ``lifted=True`` for lifted maps (N, h, w, |G| C) (group-major channels) or (N, h, w, |G|, C):
    fn(u x) == L_u fn(x), (L_u F)[g] = T_u F[u^-1 g] (``lifted_action``).
    """
    given = [name for name, v in (("act_output", act_output), ("feature_action", feature_action),
                                  ("lifted", lifted or None)) if v is not None]
    if len(given) != 1:
        raise TypeError("assert_equivariant: expected exactly one of act_output(g, y), feature_action and lifted=True, "
                        f"got {' and '.join(given) if given else 'neither'}")
    group = groups.get(group)
    if feature_action is not None:
        act_output = _linear_action(feature_action)
    if lifted:
        act_output = lifted_action(group)
    if not callable(act_output):
        raise TypeError(f"assert_equivariant: expected a callable act_output(g, y), got {type(act_output).__name__}")
    x = _check_batch(x, group, "assert_equivariant")
    _check_tolerances(rtol, atol, norm_rtol, "assert_equivariant")
    reference = fn(x)
    _check_all(fn, group, x, lambda g: act_output(g, reference), rtol, atol, "equivariant", norm_rtol)


def lifted_action(group: groups.Group | str) -> Callable[[int, Any], jax.Array]:
    """act_output(u, y) for lifted maps y (N, h, w, |G| C) (group-major channels) or (N, h, w, |G|, C):
    (L_u F)[g] = T_u F[u^-1 g] on every map of the batch, T_u the group's pixel action."""
    from glassjax.systems.glassbox_deep.lifted import act_lifted  # analysis reads systems; not the other way

    group = groups.get(group)

    def act(u: int, y: Any) -> jax.Array:
        y = jnp.asarray(y)
        if y.ndim not in (4, 5) or (y.ndim == 5 and y.shape[3] != group.order) or (y.ndim == 4 and y.shape[3] % group.order):
            raise ValueError(f"lifted_action: expected lifted maps (N, h, w, |G| C) or (N, h, w, |G|, C) with "
                             f"|G| = {group.order}, got shape {y.shape}")
        flat = y.reshape(y.shape[:3] + (group.order, -1))
        moved = jax.vmap(lambda f: act_lifted(group, u, f))(flat)
        return moved.reshape(y.shape)

    return act


def _linear_action(feature_action: Any) -> Callable[[int, Any], np.ndarray]:
    """act_output(g, y) = y @ M_g.T, in float64, from g -> M_g or a stack of matrices (|G|, K, K)."""
    if callable(feature_action):
        matrix = feature_action
    else:
        stack = np.asarray(feature_action, np.float64)
        if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
            raise ValueError(f"assert_equivariant: expected feature_action a callable or an array (|G|, K, K), got shape {stack.shape}")
        matrix = stack.__getitem__

    def act(g: int, y: Any) -> np.ndarray:
        m = np.asarray(matrix(g), np.float64)
        y = np.asarray(y, np.float64)
        if m.shape != (y.shape[-1], y.shape[-1]):
            raise ValueError(f"assert_equivariant: expected feature_action({g}) of shape {(y.shape[-1],) * 2} for outputs "
                             f"{y.shape}, got {m.shape}")
        return y @ m.T

    return act


def assert_group_axioms(
    group: groups.Group | str, *, atol: float = 1e-5, image_shape: tuple[int, int, int] = (12, 12, 2), seed: int = 0
) -> None:
    """Assert the Cayley table is a group and the action respects it.

    Table: closure, identity at index 0 (the library's convention), the ``inverse`` array,
    associativity over all triples. Action on a random image of ``image_shape``:
    act(e, x) == x and act(g, act(h, x)) == act(g * h, x) for every pair, exactly for exact
    groups and within ``atol`` (max abs, pixels in [0, 1]) for interpolated ones.
    """
    group = groups.get(group)
    n = group.order
    table = np.asarray(group.cayley_table)
    name = repr(group.name)
    if table.shape != (n, n):
        raise AssertionError(f"group {name}: Cayley table shape {table.shape}, expected ({n}, {n})")
    if table.min() < 0 or table.max() >= n:
        raise AssertionError(f"group {name}: closure fails, table entries span [{table.min()}, {table.max()}], expected [0, {n})")
    ids = np.arange(n)
    for axis, label in ((1, "row"), (0, "column")):
        bad = np.flatnonzero(np.any(np.sort(table, axis=axis) != (ids[None] if axis == 1 else ids[:, None]), axis=axis))
        if bad.size:
            raise AssertionError(f"group {name}: {label} {bad[0]} of the Cayley table is not a permutation")
    if not (np.array_equal(table[0], ids) and np.array_equal(table[:, 0], ids)):
        raise AssertionError(f"group {name}: element 0 {group.elements[0]} is not the identity")
    inverse = np.asarray(group.inverse)
    bad = np.flatnonzero((table[ids, inverse] != 0) | (table[inverse, ids] != 0))
    if bad.size:
        raise AssertionError(f"group {name}: inverse[{bad[0]}] = {inverse[bad[0]]} is not the inverse of element {bad[0]}")
    left = table[table[:, :, None], ids[None, None, :]]  # (g h) k
    right = table[ids[:, None, None], table[None, :, :]]  # g (h k)
    bad = np.argwhere(left != right)
    if bad.size:
        g, h, k = bad[0]
        raise AssertionError(f"group {name}: associativity fails for ({g}, {h}, {k}): {left[g, h, k]} != {right[g, h, k]}")

    x = jnp.asarray(np.random.default_rng(seed).random(image_shape), jnp.float32)
    group.check_image(x.shape, "assert_group_axioms")
    elements = jnp.arange(n)
    orbit = jax.vmap(group.act, in_axes=(0, None))(elements, x)  # act(h, x): (n, H, W, C)
    twice = jax.vmap(jax.vmap(group.act, in_axes=(None, 0)), in_axes=(0, None))(elements, orbit)  # [g, h]
    composed = np.asarray(orbit)[table]  # act(g * h, x): [g, h]
    checks = (
        ("act(e, x) == x", np.asarray(orbit[0])[None, None], np.asarray(x)[None, None]),
        ("act(g, act(h, x)) == act(g * h, x)", np.asarray(twice), composed),
    )
    tolerance = 0.0 if group.exact else atol
    for law, got, want in checks:
        error = np.abs(got.astype(np.float64) - want).reshape(got.shape[0], got.shape[1], -1).max(axis=-1)
        if error.max() > tolerance:
            g, h = np.unravel_index(np.argmax(error), error.shape)
            pair = "" if law.startswith("act(e") else f" at g={g} {group.elements[g]}, h={h} {group.elements[h]}"
            raise AssertionError(
                f"group {name}: {law} fails{pair}: max abs error {error.max():.3g} > tolerance {tolerance}"
            )
