"""The symmetry assertions pass on maps symmetric by construction and fail, informatively, otherwise."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax.core import groups
from glassjax.analysis.testing import assert_equivariant, assert_group_axioms, assert_invariant, lifted_action

RNG = np.random.default_rng(0)
KERNEL = RNG.normal(size=(3, 3, 2, 3)).astype(np.float32)
SYM_KERNEL = np.mean(
    [np.rot90(k, r, axes=(0, 1)) for r in range(4) for k in (KERNEL, KERNEL[:, ::-1])], axis=0
).astype(np.float32)
X = jnp.asarray(RNG.random((3, 6, 6, 2)), jnp.float32)


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, jnp.asarray(kernel), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest"
    )


def symmetric_map(x):
    return jnp.tanh(_conv(x, SYM_KERNEL))


def generic_map(x):
    return jnp.tanh(_conv(x, KERNEL))


def act_maps(g, y):
    return groups.act_batch("d4", jnp.full((y.shape[0],), g), y)


@pytest.mark.parametrize("spec", ["d4", "c4", "flip", "none", "trans:2"])
def test_group_axioms_exact(spec):
    assert_group_axioms(spec)


def test_group_axioms_rotations():
    # Quarter turns by bilinear resampling land on the pixel grid: equal up to float32
    # rounding of cos/sin (~1e-7 per sample), far below 1e-5 on pixels in [0, 1].
    assert_group_axioms("rot:4", atol=1e-5)


def test_group_axioms_catch_an_action_that_breaks_the_table():
    d4 = groups.d4()

    def rotate_then_flip(params, x):  # R^r then F^f: the table assumes F^f first
        flipped = d4.transform(jnp.asarray([0.0, params[1]]), x)
        turned = d4.transform(jnp.asarray([params[0], 0.0]), x)
        return jnp.where(params[1] > 0, d4.transform(jnp.asarray([0.0, 1.0]), turned), flipped)

    broken = dataclasses.replace(d4, name="broken", transform=rotate_then_flip)
    with pytest.raises(AssertionError, match=r"act\(g, act\(h, x\)\) == act\(g \* h, x\) fails at g="):
        assert_group_axioms(broken)


def test_assert_invariant_passes_on_pooled_symmetric_map():
    assert_invariant(lambda x: jnp.mean(symmetric_map(x), axis=(1, 2)), "d4", X)
    # pytree outputs are compared leaf by leaf
    assert_invariant(lambda x: {"sum": jnp.sum(x, axis=(1, 2)), "max": jnp.max(x, axis=(1, 2))}, "d4", X)


def test_assert_invariant_fails_on_generic_map():
    def pooled_generic(x):
        return jnp.max(generic_map(x), axis=(1, 2))

    with pytest.raises(AssertionError, match=r"pooled_generic is not invariant under group 'd4': worst element g=\d"):
        assert_invariant(pooled_generic, "d4", X)


def test_assert_equivariant():
    assert_equivariant(symmetric_map, "d4", X, act_output=act_maps)
    with pytest.raises(AssertionError, match=r"generic_map is not equivariant under group 'd4'.*relative norm error"):
        assert_equivariant(generic_map, "d4", X, act_output=act_maps)


def mass_and_tilt(x):
    """(N, 2): total mass (flip-invariant) and its left-right moment (the flip negates it)."""
    w = jnp.arange(x.shape[2], dtype=x.dtype) - (x.shape[2] - 1) / 2
    return jnp.stack([jnp.sum(x, axis=(1, 2, 3)), jnp.einsum("nhwc,w->n", x, w)], axis=-1)


def test_assert_equivariant_accepts_a_feature_action():
    action = lambda g: np.diag([1.0, -1.0 if g else 1.0])  # noqa: E731  the flip acts by diag(1, -1)
    assert_equivariant(mass_and_tilt, "flip", X, feature_action=action, atol=1e-5)
    assert_equivariant(mass_and_tilt, "flip", X, feature_action=np.stack([action(0), action(1)]), atol=1e-5)
    with pytest.raises(AssertionError, match=r"mass_and_tilt is not equivariant under group 'flip': worst element g=1"):
        assert_equivariant(mass_and_tilt, "flip", X, feature_action=lambda g: np.eye(2), atol=1e-5)
    with pytest.raises(TypeError, match="expected exactly one of act_output"):
        assert_equivariant(mass_and_tilt, "flip", X, act_output=act_maps, feature_action=action)
    with pytest.raises(ValueError, match=r"expected feature_action\(0\) of shape \(2, 2\)"):
        assert_equivariant(mass_and_tilt, "flip", X, feature_action=lambda g: np.eye(3))


def test_assert_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="needs square images"):
        assert_invariant(symmetric_map, "d4", jnp.zeros((2, 6, 4, 2)))
    with pytest.raises(ValueError, match="expected rtol >= 0"):
        assert_invariant(symmetric_map, "d4", X, rtol=-1.0)
    with pytest.raises(TypeError, match="expected a callable act_output"):
        assert_equivariant(symmetric_map, "d4", X, act_output="rot90")
    with pytest.raises(TypeError, match="expected exactly one of act_output"):
        assert_equivariant(symmetric_map, "d4", X)


# --- lifted maps (N, h, w, |G| C): (L_u F)[g] = T_u F[u^-1 g] ----------------------------------

D4 = groups.d4()
PSI = jnp.asarray(RNG.normal(size=(3, 3, 2, 2)), jnp.float32)  # a generic kernel: no symmetry of its own


def _moved(g, x):
    return groups.act_batch(D4, jnp.full((x.shape[0],), g, jnp.int32), x)


def lifted_by_orbit(x):
    """F[g] = T_g (T_g^-1 x * psi), built from the orbit alone (no lifted-layer code): obeys the law."""
    maps = [_moved(g, jnp.tanh(_conv(_moved(int(D4.inverse[g]), x), PSI))) for g in range(D4.order)]
    return jnp.stack(maps, axis=3)  # (N, h, w, |G|, C)


def right_regular(x):
    """F[g] = T_g^-1 (T_g x * psi): F(u x)[g] = T_u F(x)[g u], the wrong side for D4 (not abelian)."""
    maps = [_moved(int(D4.inverse[g]), jnp.tanh(_conv(_moved(g, x), PSI))) for g in range(D4.order)]
    return jnp.stack(maps, axis=3)


def unpermuted(x):
    """Every F[g] the same generic map: the pixels move, the group axis is never permuted."""
    return jnp.tile(jnp.tanh(_conv(x, PSI)), (1, 1, 1, D4.order))


def test_assert_equivariant_knows_the_lifted_action():
    assert_equivariant(lifted_by_orbit, "d4", X, lifted=True, norm_rtol=1e-6)  # float32 rounding only: ~1e-7
    flat = lambda x: lifted_by_orbit(x).reshape(x.shape[:3] + (-1,))  # noqa: E731  group-major channels
    assert_equivariant(flat, "d4", X, lifted=True)
    # The action itself against numpy: T_u on each map, then g reads u^-1 g.
    y = np.asarray(lifted_by_orbit(X))
    for u in range(D4.order):
        r, f = (int(v) for v in D4.elements[u])
        moved = np.rot90(y[:, :, ::-1] if f else y, k=r, axes=(1, 2))[:, :, :, D4.cayley_table[D4.inverse[u]]]
        np.testing.assert_array_equal(np.asarray(lifted_action(D4)(u, y)), moved)


@pytest.mark.parametrize("fn", [right_regular, unpermuted])
def test_assert_equivariant_lifted_fails_on_a_map_that_breaks_the_law(fn):
    with pytest.raises(AssertionError, match=rf"{fn.__name__} is not equivariant under group 'd4'.*norm_rtol=1e-06"):
        assert_equivariant(fn, "d4", X, lifted=True, norm_rtol=1e-6)
    with pytest.raises(AssertionError, match=rf"{fn.__name__} is not equivariant"):
        assert_equivariant(fn, "d4", X, lifted=True)


def test_norm_rtol_and_lifted_reject_bad_input():
    with pytest.raises(AssertionError, match=r"not invariant.*norm_rtol=1e-06"):
        assert_invariant(lambda x: jnp.max(generic_map(x), axis=(1, 2)), "d4", X, norm_rtol=1e-6)
    assert_invariant(lambda x: jnp.mean(symmetric_map(x), axis=(1, 2)), "d4", X, norm_rtol=1e-6)
    with pytest.raises(ValueError, match="expected norm_rtol >= 0"):
        assert_invariant(symmetric_map, "d4", X, norm_rtol=-1.0)
    with pytest.raises(TypeError, match="expected exactly one of act_output.*got act_output and lifted"):
        assert_equivariant(symmetric_map, "d4", X, act_output=act_maps, lifted=True)
    with pytest.raises(ValueError, match=r"lifted_action: expected lifted maps .* \|G\| = 8, got shape \(3, 6, 6, 3\)"):
        assert_equivariant(generic_map, "d4", X, lifted=True)
