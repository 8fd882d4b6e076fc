import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax.core import groups
from glassjax.analysis import testing


@pytest.mark.parametrize("spec", ["d4", "c4", "flip", "none", "trans:2", "trans:3"])
def test_exact_groups_satisfy_axioms(spec):
    testing.assert_group_axioms(groups.get(spec))


def test_rotations_compose_approximately_on_a_centred_blob():
    group = groups.rotations(8)
    np.testing.assert_array_equal(group.cayley_table[1], np.roll(np.arange(8), -1))
    yy, xx = np.mgrid[:15, :15] - 7.0
    blob = jnp.asarray(np.exp(-(yy**2 + (xx - 2) ** 2) / 18.0)[..., None].astype(np.float32))
    inside = (yy**2 + xx**2 <= 25)[..., None]
    # Two bilinear 45-degree turns blur a smooth blob slightly; outside the central disk zero
    # fill cuts the corners differently, so only the disk is compared. 0.05 of the peak
    # bounds the interpolation error there.
    for g, h in [(1, 1), (1, 7), (3, 6)]:
        composed = group.act(g, group.act(h, blob))
        direct = group.act(int(group.cayley_table[g, h]), blob)
        np.testing.assert_allclose(np.where(inside, composed, 0), np.where(inside, direct, 0), atol=0.05)


def test_d4_acts_as_numpy_rot90_and_flip():
    x = np.random.default_rng(0).random((2, 5, 5, 3)).astype(np.float32)
    orbit = np.asarray(groups.orbit("d4", x))
    assert orbit.shape == (2, 8, 5, 5, 3)
    for i, (r, f) in enumerate(groups.d4().elements):
        expected = np.rot90(x[:, :, ::-1] if f else x, k=r, axes=(1, 2))
        np.testing.assert_array_equal(orbit[:, i], expected)


def test_composition_matches_cayley_table_exactly():
    group = groups.d4()
    x = jnp.asarray(np.random.default_rng(1).random((6, 6, 1)).astype(np.float32))
    for i in range(group.order):
        for j in range(group.order):
            np.testing.assert_array_equal(group.act(i, group.act(j, x)), group.act(int(group.cayley_table[i, j]), x))


def test_inverse_undoes_every_element():
    group = groups.d4()
    x = jnp.asarray(np.random.default_rng(2).random((4, 4, 2)).astype(np.float32))
    for g in range(group.order):
        np.testing.assert_array_equal(group.act(int(group.inverse[g]), group.act(g, x)), x)


def test_rotate_matches_rot90_at_quarter_turns():
    x = np.random.default_rng(3).random((7, 7, 2)).astype(np.float32)
    for k in range(4):
        # bilinear sampling exactly on pixel centres: only float rounding of cos/sin remains
        np.testing.assert_allclose(groups.rotate(jnp.asarray(x), k * np.pi / 2), np.rot90(x, k), atol=1e-5)


def test_orbit_is_jittable_and_equals_eager():
    x = jnp.asarray(np.random.default_rng(4).random((3, 6, 6, 1)).astype(np.float32))
    eager = groups.orbit("c4", x)
    jitted = jax.jit(groups.orbit, static_argnums=0)("c4", x)
    np.testing.assert_array_equal(eager, jitted)


def test_translations_roll_the_image():
    x = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    group = groups.translations(2)
    np.testing.assert_array_equal(group.act(group.elements.index((1, 0)), jnp.asarray(x)), np.roll(x, 2, axis=0))


def test_groups_compare_and_hash_by_spec():
    assert groups.get("d4") == groups.get("d4") and hash(groups.get("d4")) == hash(groups.get("d4"))
    assert groups.get("rot:8") == groups.rotations(8) and groups.get("trans:2") == groups.translations(2)
    assert groups.get("d4") != groups.get("c4") and groups.get("rot:4") != groups.get("rot:8")
    assert groups.get("d4") != "d4"
    assert len({groups.get("d4"), groups.d4(), groups.get("flip")}) == 2
    # equal groups are one static argument to jit: the second call compiles nothing
    orbit = jax.jit(groups.orbit, static_argnums=0)
    x = jnp.zeros((1, 4, 4, 1))
    orbit(groups.get("d4"), x)
    before = orbit._cache_size()
    orbit(groups.get("d4"), x)
    assert orbit._cache_size() == before


def test_bad_specs_and_shapes_raise():
    with pytest.raises(ValueError, match="unknown group 'd5'"):
        groups.get("d5")
    with pytest.raises(TypeError, match=r"expected a group spec \(str\) or a Group, got int"):
        groups.get(4)
    with pytest.raises(ValueError, match="needs square images, got shape"):
        groups.orbit("d4", jnp.zeros((8, 28, 32, 1)))
    assert groups.orbit("flip", jnp.zeros((2, 28, 32, 1))).shape == (2, 2, 28, 32, 1)
