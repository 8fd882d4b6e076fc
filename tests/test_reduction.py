"""PCA and LDA from streaming statistics against scikit-learn (float64 references)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from glassjax.core import reduction as R


@pytest.fixture(scope="module")
def pixels():
    """Digits scaled to [0, 1]: real pixels with a mean offset, float64 and float32."""
    x = load_digits().data / 16.0
    return x, x.astype(np.float32)


@pytest.fixture(scope="module")
def gaussian_classes():
    """4 well-separated Gaussian classes in 10-D, shared covariance with condition number ~30, mean offset 3."""
    rng = np.random.default_rng(1)
    d, c, n = 10, 4, 600
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    mix = basis * np.linspace(1.0, 0.18, d)[None, :]
    y = rng.integers(0, c, n)
    x = 3.0 + 2.0 * rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)) @ mix.T
    return x, x.astype(np.float32), y


def aligned(a, ref, axis):
    """a with each component (row if axis=1, column if axis=0) flipped to best match ref's sign."""
    signs = np.sign(np.sum(np.asarray(a, np.float64) * ref, axis=axis, keepdims=True))
    return np.asarray(a, np.float64) * signs


def assert_pca_close(pca, ref, *, var_rtol, comp_atol):
    np.testing.assert_allclose(pca.mean, ref.mean_, atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance, ref.explained_variance_, rtol=var_rtol)
    np.testing.assert_allclose(pca.explained_variance_ratio, ref.explained_variance_ratio_, rtol=var_rtol)
    np.testing.assert_allclose(aligned(pca.components, ref.components_, 1), ref.components_, atol=comp_atol)


def test_pca_matches_sklearn(pixels):
    x64, x32 = pixels
    ref = SkPCA(10, svd_solver="full").fit(x64)
    pca = R.fit_pca_array(x32, 10)
    # float32 eigh: variances to ~1e-6 relative; components to eps * |C| / eigengap (smallest gap ~2%).
    assert_pca_close(pca, ref, var_rtol=1e-4, comp_atol=1e-4)
    assert pca.components.dtype == jnp.float32
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(10), atol=1e-5)
    # Deterministic sign: each component's largest-magnitude entry is positive.
    comps = np.asarray(pca.components)
    assert np.all(comps[np.arange(10), np.abs(comps).argmax(1)] > 0)


def test_pca_whiten_matches_sklearn(pixels):
    x64, x32 = pixels
    ref = SkPCA(6, svd_solver="full", whiten=True).fit(x64)
    z = np.asarray(R.project(R.fit_pca_array(x32, 6, whiten=True), x32))
    zref = ref.transform(x64)
    # Whitened coordinates are O(1); float32 rounding of the projection is ~1e-6.
    np.testing.assert_allclose(aligned(z, zref, 0), zref, atol=1e-4)
    np.testing.assert_allclose(np.var(z, axis=0, ddof=1), 1.0, rtol=1e-4)


def test_shifted_sums_keep_float32_precision():
    """Pixels near 0.5 with std 0.01: E[x x^T] - m m^T cancels ~2500x, the shifted sums do not."""
    rng = np.random.default_rng(2)
    x64 = 0.5 + 0.01 * rng.normal(size=(4000, 8)) @ np.diag(np.linspace(1.0, 0.3, 8))
    x32 = x64.astype(np.float32)
    ref = np.linalg.eigvalsh(np.cov(x32.astype(np.float64), rowvar=False))[::-1]

    def variances(m):
        for batch in np.split(x32, 8):
            m = R.moments_update(m, batch)
        return np.asarray(R.fit_pca(m, 8).explained_variance)

    shifted_err = np.max(np.abs(variances(R.moments_init(8)) / ref - 1))
    raw_err = np.max(np.abs(variances(R.moments_init(8, center=0.0)) / ref - 1))
    assert shifted_err < 1e-4
    assert raw_err > 10 * shifted_err


def test_streaming_with_masked_padding_equals_one_shot(pixels):
    _, x32 = pixels
    x = x32[:500]
    one_shot = R.fit_pca_array(x, 5)
    m = R.moments_init(64)
    for start in range(0, 480, 120):
        m = R.moments_update(m, x[start : start + 120])
    # The last 20 rows padded to a full batch of 120 with junk rows that the mask drops.
    padded = np.concatenate([x[480:], np.full((100, 64), 7.0, np.float32)])
    mask = np.arange(120) < 20
    m_before_padding = m
    m = R.moments_update(m, padded, mask)
    assert float(m.count) == 500
    streamed = R.fit_pca(m, 5)
    scanned = R.fit_pca_array(x, 5, batch_size=64)
    # Under jit (no eager value check) even NaN junk in masked rows stays out.
    nan_padded = np.where(mask[:, None], padded, np.nan).astype(np.float32)
    m_nan = jax.jit(R.moments_update)(m_before_padding, nan_padded, mask)
    np.testing.assert_allclose(m_nan.outer, m.outer, rtol=1e-6, atol=1e-6)
    for pca in (streamed, scanned):
        np.testing.assert_allclose(pca.mean, one_shot.mean, atol=1e-6)
        np.testing.assert_allclose(pca.explained_variance, one_shot.explained_variance, rtol=1e-5)
        np.testing.assert_allclose(pca.components, one_shot.components, atol=1e-5)


def test_merges_equal_the_whole(pixels):
    _, x32 = pixels
    a, b = x32[:700], x32[700:1400]
    whole = R.moments_update(R.moments_init(64), x32[:1400])
    expected = R.fit_pca(whole, 5)

    def check(m):
        pca = R.fit_pca(m, 5)
        np.testing.assert_allclose(pca.explained_variance, expected.explained_variance, rtol=1e-5)
        np.testing.assert_allclose(pca.components, expected.components, atol=1e-5)

    # Halves that set their own centre lazily: moments_merge moves one onto the other's.
    ma, mb = R.moments_update(R.moments_init(64), a), R.moments_update(R.moments_init(64), b)
    assert not np.array_equal(R._center_of(ma), R._center_of(mb))
    check(R.moments_merge(ma, mb))
    # Empty states merge as the identity, and stay lazily centred.
    empty = R.moments_merge(R.moments_init(64), R.moments_init(64))
    assert float(empty.copies) == 0
    check(R.moments_merge(empty, R.moments_merge(ma, mb)))

    # Sharing a centre, states are a plain pytree sum: over a stacked device axis, and by psum.
    shards = [R.moments_update(R.moments_init(64, center=0.5), part) for part in np.split(x32[:1400], 4)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *shards)
    summed = jax.tree.map(lambda leaf: jnp.sum(leaf, axis=0), stacked)
    check(summed)
    psummed = jax.vmap(lambda m: jax.lax.psum(m, "devices"), axis_name="devices")(stacked)
    check(jax.tree.map(lambda leaf: leaf[0], psummed))
    # moments_merge of states sharing a centre is exactly the leaf-by-leaf sum.
    merged = R.moments_merge(shards[0], shards[1])
    for got, want in zip(merged, jax.tree.map(jnp.add, shards[0], shards[1])):
        np.testing.assert_array_equal(got, want)
    # Recentring lazily-centred shards onto a common point makes them summable too.
    lazy = [R.moments_update(R.moments_init(64), part) for part in np.split(x32[:1400], 4)]
    common = [R.moments_recenter(m, 0.5) for m in lazy]
    check(jax.tree.map(lambda *leaves: sum(leaves[1:], leaves[0]), *common))


def test_exact_and_randomized_pca_of_wide_features_match_sklearn():
    """Wide features (D > N) with an 8-dimensional signal over small noise."""
    rng = np.random.default_rng(3)
    n, d, k = 150, 600, 5
    signal = rng.normal(size=(n, 8)) * np.linspace(6.0, 2.0, 8)[None, :]
    x64 = 0.5 + (signal @ np.linalg.qr(rng.normal(size=(d, 8)))[0].T + 0.05 * rng.normal(size=(n, d))) / 10
    x32 = x64.astype(np.float32)
    ref = SkPCA(k, svd_solver="full").fit(x64)
    m = R.moments_update(R.moments_init(d), x32)
    # The eigh path is exact up to float32 eigh.
    assert_pca_close(R.fit_pca(m, k), ref, var_rtol=1e-4, comp_atol=1e-4)
    # Randomized subspace iteration: 4 products over a spectral gap of >10x leave ~1e-6 of subspace error.
    rand = R.fit_pca(m, k, key=jax.random.key(0))
    assert_pca_close(rand, ref, var_rtol=1e-4, comp_atol=1e-3)
    whitened = R.project(R.fit_pca(m, k, key=jax.random.key(0), whiten=True), x32)
    np.testing.assert_allclose(np.var(np.asarray(whitened), axis=0, ddof=1), 1.0, rtol=1e-3)
    with pytest.raises(TypeError, match="fit_pca: expected key a jax.random key or None, got int"):
        R.fit_pca(m, k, key=0)


def _lda_of(x, y, num_classes, n_components=None, *, shrinkage=None, batch_size=None):
    """LDA of arrays through the streaming statistics, in batches of ``batch_size`` rows if given."""
    s = R.scatter_init(x.shape[1], num_classes)
    step = batch_size or x.shape[0]
    for start in range(0, x.shape[0], step):
        s = R.scatter_update(s, x[start : start + step], y[start : start + step])
    return R.fit_lda(s, n_components, shrinkage=shrinkage)


@pytest.mark.parametrize("shrinkage", [None, 0.3])
def test_lda_matches_sklearn_eigen(gaussian_classes, shrinkage):
    x64, x32, y = gaussian_classes
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage).fit(x64, y)
    lda = _lda_of(x32, y, 4, shrinkage=shrinkage)
    assert lda.components.shape == (3, 10)
    # Both normalise v^T S_w v = 1, so the components agree with scikit-learn's scalings (their
    # columns) up to the sign of each.
    ref_scalings = ref.scalings_[:, :3]
    scale = np.abs(ref_scalings).max()
    np.testing.assert_allclose(aligned(lda.components.T, ref_scalings, 0), ref_scalings, atol=1e-4 * scale)
    np.testing.assert_allclose(lda.explained_variance_ratio, ref.explained_variance_ratio_[:3], rtol=1e-4, atol=1e-6)
    # scikit-learn's eigen transform does not centre: compare the centred projections.
    z = np.asarray(R.project(lda, x32))
    zref = ref.transform(x64) - ref.transform(x64.mean(0, keepdims=True))
    np.testing.assert_allclose(aligned(z, zref, 0), zref, atol=1e-4 * np.abs(zref).max())


def test_lda_streaming_and_merge_equal_one_shot(gaussian_classes):
    _, x32, y = gaussian_classes
    one_shot = _lda_of(x32, y, 4)
    s = R.scatter_init(10, 4)
    s = R.scatter_update(s, x32[:250], y[:250])
    padded_x = np.concatenate([x32[250:], np.ones((50, 10), np.float32)])
    padded_y = np.concatenate([y[250:], np.zeros(50, y.dtype)])
    other = R.scatter_update(R.scatter_init(10, 4), padded_x, padded_y, np.arange(400) < 350)
    merged = R.scatter_merge(s, other)
    np.testing.assert_allclose(merged.class_count, np.bincount(y, minlength=4))
    # Batches change the float32 summation order (~1e-7); the generalized eigen-solve amplifies
    # that by about cond(S_w) times the eigengap ratio, to ~3e-5 of the largest entry.
    scale = float(jnp.abs(one_shot.components).max())
    for lda in (R.fit_lda(merged), _lda_of(x32, y, 4, batch_size=128)):
        np.testing.assert_allclose(lda.components, one_shot.components, atol=2e-4 * scale)


def test_jit_equals_eager(pixels, gaussian_classes):
    _, x32 = pixels
    m = R.moments_init(64)
    jitted = jax.jit(R.moments_update)(m, x32[:200])
    eager = R.moments_update(m, x32[:200])
    for a, b in zip(jitted, eager):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-5)
    pca = jax.jit(R.fit_pca, static_argnums=1, static_argnames="whiten")(eager, 4, whiten=True)
    np.testing.assert_allclose(pca.components, R.fit_pca(eager, 4, whiten=True).components, atol=1e-6)
    np.testing.assert_allclose(jax.jit(R.project)(pca, x32[:50]), R.project(pca, x32[:50]), atol=1e-5)
    _, xl, y = gaussian_classes
    lda = _lda_of(xl, y, 4)
    np.testing.assert_allclose(jax.jit(R.project)(lda, xl), R.project(lda, xl), atol=1e-5)


def test_keeps_float_dtype_and_promotes_integers():
    x = np.arange(60, dtype=np.float64).reshape(20, 3) ** 1.5
    m = R.moments_update(R.moments_init(3, jnp.float32), x)
    assert m.outer.dtype == jnp.float32
    assert R.fit_pca_array(np.arange(60).reshape(20, 3) ** 2, 2).mean.dtype == jnp.float32


def test_float64_moments_of_wide_rows_are_exact_and_symmetric(pixels):
    # 640 features: the float64 Gram matrix is summed as its upper triangle of blocks, mirrored
    x64 = np.concatenate([pixels[0], pixels[0][:, ::-1] ** 2] * 5, axis=1)[:300]
    with R.float64():
        m = R.moments_update(R.moments_init(x64.shape[1], R.stats_dtype()), x64)
        m = R.moments_update(m, x64[:17], np.arange(17) < 9)  # 9 more rows, 8 masked
        assert m.outer.dtype == jnp.float64
        np.testing.assert_array_equal(m.outer, m.outer.T)  # the mirrored upper triangle
        scatter = np.asarray(R._mean_and_scatter(m)[1])
        pca = R.fit_pca_top(m, 5)
        white = R.fit_pca_top(m, 5, whiten=True)
    rows = np.concatenate([x64, x64[:9]])
    np.testing.assert_allclose(scatter, np.cov(rows.T) * (rows.shape[0] - 1), rtol=1e-10, atol=1e-9)
    # the top 5 eigenpairs solved in float64 on the host, float32 out: scikit-learn's PCA
    ref = SkPCA(5, svd_solver="full").fit(rows)  # exact: "auto" picks the randomized solver here
    assert pca.components.dtype == jnp.float32
    assert_pca_close(pca, ref, var_rtol=1e-6, comp_atol=1e-6)
    np.testing.assert_allclose(white.scale, 1 / np.sqrt(ref.explained_variance_), rtol=1e-6)


def test_bad_input():
    x = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"fit_pca_array: expected x of shape \(N, D\), got shape \(20,\)"):
        R.fit_pca_array(x[:, 0], 2)
    with pytest.raises(ValueError, match=r"fit_pca_array: expected n_components <= 5"):
        R.fit_pca_array(x, 6)
    with pytest.raises(ValueError, match=r"fit_pca: expected n_components <= 5"):
        R.fit_pca(R.moments_update(R.moments_init(5), x), 6)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="fit_pca_array: expected finite values in x, got NaN"):
        R.fit_pca_array(bad, 2)
    with pytest.raises(ValueError, match="moments_update: expected finite values in x"):
        R.moments_update(R.moments_init(5), bad)
    # A NaN that got in under jit surfaces at the fit.
    poisoned = jax.jit(R.moments_update)(R.moments_init(5), bad)
    with pytest.raises(ValueError, match="fit_pca: expected finite values in the statistics"):
        R.fit_pca(poisoned, 2)
    with pytest.raises(ValueError, match="fit_pca: expected statistics of at least 2 rows"):
        R.fit_pca(R.moments_init(5), 2)
    with pytest.raises(ValueError, match=r"moments_update: expected x with 5 features, got shape \(20, 4\)"):
        R.moments_update(R.moments_init(5), x[:, :4])
    with pytest.raises(ValueError, match=r"moments_update: expected mask of shape \(20,\)"):
        R.moments_update(R.moments_init(5), x, np.ones(19, bool))
    with pytest.raises(ValueError, match="expected n_components >= 1, got 0"):
        R.fit_pca_array(x, 0)
    with pytest.raises(TypeError, match="fit_pca_array: expected an int n_components, got float"):
        R.fit_pca_array(x, 2.0)
    with pytest.raises(TypeError, match="fit_pca_array: expected a float array x, got str"):
        R.fit_pca_array("pixels", 2)
    y = np.arange(20) % 3
    with pytest.raises(ValueError, match=r"scatter_update: expected labels y in 0\.\.2, got labels y in 0\.\.3"):
        _lda_of(x, np.where(y == 2, 3, y), 3)
    with pytest.raises(ValueError, match=r"scatter_update: expected labels y of shape \(20,\)"):
        R.scatter_update(R.scatter_init(5, 3), x, y[:-1])
    with pytest.raises(TypeError, match="scatter_update: expected integer labels y, got dtype float32"):
        _lda_of(x, y.astype(np.float32), 3)
    with pytest.raises(ValueError, match=r"fit_lda: expected n_components <= 2 \(min\(C - 1, D\)\), got 3"):
        _lda_of(x, y, 3, 3)
    with pytest.raises(ValueError, match=r"fit_lda: expected shrinkage in \[0, 1\], got 2"):
        _lda_of(x, y, 3, shrinkage=2.0)
    with pytest.raises(ValueError, match=r"project: expected x with 5 features"):
        R.project(R.fit_pca_array(x, 2), x[:, :3])
    with pytest.raises(TypeError, match="project: expected a fitted PCA or LDA, got tuple"):
        R.project((np.zeros(5), np.eye(5)), x)
