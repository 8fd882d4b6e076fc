import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data
from glassjax.systems.glassbox import filters
from glassjax.core import groups
from glassjax.core import reduction
from glassjax.systems.glassbox import representation
from glassjax.analysis import testing


@pytest.fixture(scope="module")
def digits():
    d = data.load("digits", classes=["3", "8", "9"])
    return d.x_train[:90], d.y_train[:90]


@pytest.fixture(scope="module")
def bank(digits):
    x, y = digits
    return filters.patch_filters(x, y, 3, size=3, per_class=4, key=jax.random.PRNGKey(0))


def test_patch_filters_are_class_wise_principal_components(digits, bank):
    assert bank.filters.shape == (12, 3, 3, 1)
    np.testing.assert_array_equal(bank.classes, np.repeat(np.arange(3), 4))
    # unit norm and orthogonal within a class, zero mean (patch means removed)
    f = np.asarray(bank.filters).reshape(3, 4, 9)
    for c in range(3):
        np.testing.assert_allclose(f[c] @ f[c].T, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(f.sum(-1), 0.0, atol=1e-5)


def test_class_prototypes_are_group_invariant_class_means(digits):
    x, y = digits
    bank = filters.class_prototypes(x, y, 3, "d4")
    means = np.stack([x[y == c].mean(0) for c in range(3)])
    expected = np.mean(np.asarray(groups.orbit("d4", means)), axis=1)
    np.testing.assert_allclose(bank.filters, expected, rtol=1e-5, atol=1e-6)
    for g in range(8):
        np.testing.assert_allclose(jax.vmap(groups.d4().act, (None, 0))(g, bank.filters), bank.filters, atol=1e-6)


def test_every_filter_is_an_image_with_its_class(bank):
    images = filters.filter_images(bank, ("3", "8", "9"))
    assert len(images) == 12 and images[0][1] == "3" and images[-1][1] == "9"
    assert all(im.shape == (3, 3, 1) and im.min() >= 0 and im.max() <= 1 for im, _ in images)


def test_responses_permute_exactly_as_the_cayley_table_says(digits, bank):
    x = jnp.asarray(digits[0][:6])
    group = groups.d4()
    e = representation.respond(bank, groups.orbit(group, x), grid=2)
    assert e.shape == (6, 8, 2 * 2 * 24)
    for h in range(group.order):
        moved = representation.respond(bank, groups.orbit(group, jax.vmap(group.act, (None, 0))(h, x)), grid=2)
        # E(act(h, x))[g] = E(x)[g h]
        np.testing.assert_array_equal(moved, e[:, group.cayley_table[:, h]])


def test_pool_group_matches_numpy(digits, bank):
    z = np.random.default_rng(0).standard_normal((5, 8, 4)).astype(np.float32)
    pooled = np.asarray(representation.pool_group(jnp.asarray(z), ("mean", "max", "bilinear")))
    rows, cols = np.triu_indices(4)
    second = np.einsum("ngi,ngj->nij", z.astype(np.float64), z) / 8
    expected = np.concatenate([z.mean(1), z.max(1), second[:, rows, cols]], 1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert pooled.shape[1] == 4 + 4 + 4 * 5 // 2  # mean d, max d, bilinear d (d + 1) / 2


@pytest.mark.parametrize("poolings", [("mean",), ("max",), ("bilinear",), ("mean", "max", "bilinear")])
def test_invariant_part_is_d4_invariant(digits, bank, poolings):
    x = jnp.asarray(digits[0][:8])
    e = representation.respond(bank, groups.orbit("d4", x), grid=2)
    proj = representation.fit_orbit_projection(reduction.moments_update(reduction.moments_init(e.shape[-1]), e.reshape(-1, e.shape[-1])), 6)

    def invariant(images):
        z = representation.project_orbit(proj, representation.respond(bank, groups.orbit("d4", images), grid=2))
        return representation.pool_group(z, poolings)

    testing.assert_invariant(invariant, "d4", x, rtol=1e-5, atol=1e-5)


def test_pool_grid_weights_cover_every_pixel_once():
    for n, grid in [(24, 4), (21, 2), (5, 3)]:
        m = representation.area_pool_matrix(n, grid)
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-6)
        np.testing.assert_allclose(m.sum(0) * n / grid, 1.0, atol=1e-5)
        np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-7)


def test_bad_arguments_raise(digits, bank):
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        representation.respond(bank, groups.orbit("d4", jnp.asarray(digits[0][:2])), rho="tanh")
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        representation.pool_group(jnp.zeros((1, 8, 3)), ("median",))
    with pytest.raises(ValueError, match="expected 1 <= size"):
        filters.patch_filters(*digits, 3, size=9, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="missing"):
        filters.patch_filters(digits[0], np.zeros(90, np.int32), 3, key=jax.random.PRNGKey(0))
