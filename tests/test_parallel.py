"""Data parallelism: 8 emulated devices give the numbers of one; padded rows never count.

Also the fast CPU path of ``representation.respond`` against the textbook formula.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax.core import classifiers
from glassjax import data
from glassjax.systems.glassbox import filters
from glassjax.core import groups
from glassjax.core import arrays, batching, parallel
from glassjax.core import reduction
from glassjax.systems.glassbox import representation
from glassjax.systems.glassbox import GlassBox

SMALL = dict(filters_per_class=4, pool_dim=8, orbit_dim=8, components=20, batch_size=50)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", classes=["0", "1", "6", "9"])


def test_conftest_gives_eight_devices():
    assert len(jax.devices()) == 8
    assert parallel.make_mesh().devices.shape == (8,)


def test_shard_batch_pads_with_the_last_row_and_masks_it():
    mesh = parallel.make_mesh()
    x = np.arange(26, dtype=np.float32).reshape(13, 2)
    xs, ys, mask = parallel.shard_batch(mesh, x, np.arange(13))
    assert xs.shape == (16, 2) and ys.shape == (16,) and mask.shape == (16,)
    assert xs.sharding.spec == jax.sharding.PartitionSpec("batch")
    np.testing.assert_array_equal(np.asarray(xs)[13:], np.repeat(x[-1:], 3, axis=0))
    np.testing.assert_array_equal(np.asarray(mask), (np.arange(16) < 13).astype(np.float32))
    np.testing.assert_array_equal(parallel.local_rows(xs)[:13], x)
    with pytest.raises(ValueError, match="multiple of 8 devices"):
        parallel.shard_batch(mesh, x, size=20)
    with pytest.raises(TypeError, match="expected a 1-D Mesh"):
        parallel.shard_batch("mesh", x)


def test_one_padding_helper_for_host_and_traced_arrays():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(arrays.pad_rows(x, 8), np.concatenate([x, np.repeat(x[-1:], 3, axis=0)]))
    assert arrays.pad_rows(x, 5) is x
    padded = jax.jit(arrays.pad_rows, static_argnums=1)(jnp.asarray(x), 8)
    np.testing.assert_array_equal(padded, arrays.pad_rows(x, 8))
    with pytest.raises(ValueError, match=r"pad_rows: expected 1 to 4 rows, got shape \(5, 2\)"):
        arrays.pad_rows(x, 4)
    # map_chunks: fn over chunks of 2 rows (the last padded) is fn over all rows, under jit too
    fn = lambda c: {"sum": c.sum(axis=1), "rows": c}  # noqa: E731
    for run in (batching.map_chunks, jax.jit(batching.map_chunks, static_argnums=(0, 2))):
        out = run(fn, jnp.asarray(x), 2)
        np.testing.assert_array_equal(out["sum"], x.sum(axis=1))
        np.testing.assert_array_equal(out["rows"], x)
    # map_batches: host loop, one shape per call, pytree outputs
    out = batching.map_batches(jax.jit(fn), x, 2)
    np.testing.assert_array_equal(out["rows"], x)


def test_padded_sharded_moments_equal_unpadded_moments_on_one_device():
    mesh = parallel.make_mesh()
    rows = np.random.default_rng(0).normal(3.0, 2.0, (13, 5)).astype(np.float32)
    xs, mask = parallel.shard_batch(mesh, rows)
    sharded = jax.jit(reduction.moments_update)(parallel.replicate(mesh, reduction.moments_init(5)), xs, mask)
    single = reduction.moments_update(reduction.moments_init(5), rows)
    assert float(sharded.count) == 13.0
    for m in (sharded, single):
        mean, scatter, _ = reduction._mean_and_scatter(m)
        np.testing.assert_allclose(mean, rows.mean(0), rtol=1e-5)
        np.testing.assert_allclose(scatter / 12, np.cov(rows.T), rtol=1e-4, atol=1e-5)
    # the class statistics of ridge and LDA: per-class sums across devices, padding left out
    labels = np.arange(13) % 3
    xs, ys, mask = parallel.shard_batch(mesh, rows, labels)
    stats = jax.jit(reduction.scatter_update)(parallel.replicate(mesh, reduction.scatter_init(5, 3)), xs, ys, mask)
    one = reduction.scatter_update(reduction.scatter_init(5, 3), rows, labels)
    np.testing.assert_array_equal(stats.class_count, [5, 4, 4])
    for a, b in zip(classifiers.fit_ridge_stats(stats), classifiers.fit_ridge_stats(one)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_eight_devices_give_the_features_and_predictions_of_one(digits):
    # batch_size 50 is padded to 56 rows on 8 devices: the padding must not change any statistic.
    one = GlassBox(representation="both", classifier="logistic", devices=jax.devices()[:1], **SMALL)
    eight = GlassBox(representation="both", classifier="logistic", **SMALL)
    x, y = digits.x_train[:300], digits.y_train[:300]
    one.fit(x, y)
    eight.fit(x, y)
    assert eight.mesh_.devices.size == 8 and one.mesh_.devices.size == 1
    f1, f8 = one.transform(digits.x_test), eight.transform(digits.x_test)
    np.testing.assert_allclose(f8, f1, rtol=1e-4, atol=1e-4 * np.abs(f1).max())
    np.testing.assert_array_equal(eight.predict(digits.x_test), one.predict(digits.x_test))


def _reference_respond(bank, orbit, rho, grid):
    """E(x)[g] straight from its definition: full maps, rho, area-weighted pooling."""
    n, g, h, w, c = orbit.shape
    kernel = jnp.transpose(bank.filters, (1, 2, 3, 0))
    maps = jax.lax.conv_general_dilated(orbit.reshape(n * g, h, w, c), kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
    maps = jnp.abs(maps) if rho == "abs" else jnp.concatenate([jax.nn.relu(maps), jax.nn.relu(-maps)], axis=-1)
    rows = representation.area_pool_matrix(maps.shape[1], grid)
    cols = representation.area_pool_matrix(maps.shape[2], grid)
    return jnp.einsum("ih,nhwf,jw->nijf", rows, maps, cols, precision="highest").reshape(n, g, -1)


@pytest.mark.parametrize("shape, k, grid, rho", [
    ((12, 12, 1), 5, 4, "relu_pair"),  # 8 x 8 maps: whole-pixel bins
    ((11, 11, 3), 3, 4, "relu_pair"),  # 9 x 9 maps: fractional bins
    ((10, 10, 2), 3, 2, "abs"),
    ((9, 9, 1), 9, 1, "relu_pair"),    # a full-size (prototype) filter
])
def test_fast_respond_equals_the_definition(monkeypatch, shape, k, grid, rho):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(0, 1, (5,) + shape).astype(np.float32))
    bank = filters.FilterBank(jnp.asarray(rng.normal(size=(6, k, k, shape[2])).astype(np.float32)), jnp.zeros(6, jnp.int32))
    orbit = groups.orbit("d4", x)
    want = _reference_respond(bank, orbit, rho, grid)
    # a tiny chunk budget forces the CPU loop over several chunks, with a padded last one
    monkeypatch.setattr(representation, "_CPU_CHUNK_BYTES", 3 * 4 * (shape[0] - k + 1) ** 2 * 6)
    got = jax.jit(lambda o: representation.respond(bank, o, rho=rho, grid=grid))(orbit)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))
    assert float(jnp.min(got)) >= 0.0
