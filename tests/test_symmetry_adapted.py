"""Layer 2 stays equivariant: the irreps, the symmetrised statistics and the law of the features.

References are independent of the code under test: irreps are checked against the Cayley table
and character theory, the symmetrised statistics against numpy float64 on explicitly augmented
rows (every row acted on by every group element), and the law of the features against images
actually moved by ``groups.act_batch``.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from glassjax import data
from glassjax.analysis import testing
from glassjax.core import groups, irreps, parallel, reduction
from glassjax.systems import glassbox
from glassjax.systems.glassbox import GlassBox


TINY = dict(filters_per_class=2, pool_dim=4, orbit_dim=4, components=12, classifier="ridge", batch_size=32)
GROUPS = ["d4", "c4", "flip", "none", "trans:2", "trans:3", "trans:4", "rot:5"]


@pytest.fixture(scope="module")
def digits():
    d = data.load("digits", classes=["0", "1", "6", "9"])
    return d.x_train[:96], d.y_train[:96], d.x_test[:24]


def _permutation(group, h):
    """P_h (|G|, |G|) straight from the Cayley table: (P_h z)[g] = z[g h]."""
    table = group.cayley_table
    p = np.zeros((group.order, group.order))
    p[np.arange(group.order), table[:, h]] = 1
    return p


def _augmented(layout, rows):
    """Every row acted on by every element: (|G| N, D), in numpy float64."""
    group = groups.get(layout.group)
    inv, eq = rows[:, : layout.invariant], rows[:, layout.invariant :].reshape(rows.shape[0], group.order, -1)
    return np.concatenate([np.concatenate([inv, eq[:, group.cayley_table[:, h]].reshape(rows.shape[0], -1)], 1)
                           for h in range(group.order)])


# --- irreps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", GROUPS)
def test_irreps_are_the_groups_real_irreps(spec):
    group = groups.get(spec)
    table = irreps.irreps(group)
    assert table[0].dim == 1 and np.all(table[0].matrices == 1)  # trivial first
    for rho in table:
        m = rho.matrices
        np.testing.assert_allclose(np.einsum("aij,bjk->abik", m, m), m[group.cayley_table], atol=1e-12)
        chi = np.trace(m, axis1=1, axis2=2)
        # Character theory: <chi, chi> = 1 for an absolutely irreducible (real-type) irrep, 2 for a
        # rotation block (two complex-conjugate characters); Frobenius-Schur indicator 1 and 0.
        norm = np.mean(chi**2)
        indicator = np.mean(chi[np.diag(group.cayley_table)])  # chi(g g)
        assert (round(norm), round(indicator)) == ((1, 1) if rho.kind == "real" else (2, 0)), rho.name
    # Distinct irreps are orthogonal, and their dimensions fill the regular representation.
    chis = np.stack([np.trace(rho.matrices, axis1=1, axis2=2) for rho in table])
    gram = chis @ chis.T / group.order
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-12)
    assert sum(rho.copies * rho.dim for rho in table) == group.order
    expected = {"d4": ["A1", "A2", "B1", "B2", "E"], "c4": ["k=0", "k=±1", "k=2"], "flip": ["k=0", "k=1"], "none": ["k=0"]}
    if spec in expected:
        assert [rho.name for rho in table] == expected[spec]


@pytest.mark.parametrize("spec", GROUPS)
def test_regular_basis_splits_the_group_axis_into_irrep_blocks(spec):
    group = groups.get(spec)
    basis = irreps.regular_basis(group)
    np.testing.assert_allclose(basis.q.T @ basis.q, np.eye(group.order), atol=1e-12)
    for h in range(group.order):
        y = basis.q.T @ _permutation(group, h) @ basis.q  # P_h in irrep coordinates
        want = np.zeros_like(y)
        for rho, cols in zip(irreps.irreps(group), basis.columns):
            for copy in cols:
                want[np.ix_(copy, copy)] = rho.matrices[h]
        np.testing.assert_allclose(y, want, atol=1e-12)


def test_unknown_group_and_bad_blocks_raise():
    odd = groups.Group("odd", ((0,), (1,)), lambda a, b: ((a[0] + b[0]) % 2,), lambda p, x: x, exact=True, square_only=False)
    with pytest.raises(ValueError, match="irreps: expected a group of d4, .*got 'odd'"):
        irreps.irreps(odd)
    with pytest.raises(ValueError, match="expected whole blocks of irrep E"):
        irreps.action("d4", [4, 0], [0, 0])


# --- symmetrised statistics against explicitly augmented rows --------------------------------------


def _rows(layout, n, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(layout.dim, layout.dim))
    return (rng.normal(size=(n, layout.dim)) @ mixing + 3.0).astype(np.float32)  # correlated, far from 0


@pytest.mark.parametrize("layout", [reduction.Layout("d4", 3, 4), reduction.Layout("c4", 0, 5),
                                    reduction.Layout("trans:3", 2, 2), reduction.Layout("flip", 4, 0)])
def test_symmetric_pca_is_the_pca_of_the_augmented_rows(layout):
    rows = _rows(layout, 40)
    with reduction.float64():
        stats = reduction.symmetric_moments_update(reduction.symmetric_moments_init(layout), layout, rows)
        pca, blocks = reduction.fit_symmetric_pca(stats, layout, layout.dim)
    aug = _augmented(layout, rows.astype(np.float64))
    cov = np.cov(aug.T)  # ddof=1 over the N |G| augmented rows
    # float32 outputs of float64 statistics: 1e-6 relative to the largest variance
    tol = 1e-6 * np.abs(cov).max()
    np.testing.assert_allclose(pca.mean, aug.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.sort(np.asarray(pca.explained_variance))[::-1], np.linalg.eigvalsh(cov)[::-1], atol=tol)
    c = np.asarray(pca.components, np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(layout.dim), atol=1e-6)
    np.testing.assert_allclose(c.T @ (np.asarray(pca.explained_variance)[:, None] * c), cov, atol=tol)
    np.testing.assert_allclose(np.asarray(pca.explained_variance_ratio).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(blocks.isotypic).sum(), 1.0, rtol=1e-6)
    # every element acts on the features of the augmented rows by its block matrix
    group = groups.get(layout.group)
    actions = irreps.action(group, blocks.irrep, blocks.coordinate)
    f = np.asarray(reduction.project(pca, rows), np.float64)
    moved = np.asarray(reduction.project(pca, aug.astype(np.float32)), np.float64).reshape(group.order, 40, -1)
    for h in range(group.order):
        np.testing.assert_allclose(moved[h], f @ actions[h].T, atol=1e-4 * np.abs(f).max())


def test_streamed_masked_sharded_and_merged_statistics_agree():
    layout = reduction.Layout("d4", 2, 3)
    rows = _rows(layout, 37, seed=1)
    mesh = parallel.make_mesh()
    with reduction.float64():
        one = reduction.symmetric_moments_update(reduction.symmetric_moments_init(layout), layout, rows)
        a = reduction.symmetric_moments_update(reduction.symmetric_moments_init(layout), layout, rows[:20])
        b = reduction.symmetric_moments_update(reduction.symmetric_moments_init(layout), layout, rows[20:])
        merged = reduction.symmetric_moments_merge(a, b)
        xs, mask = parallel.shard_batch(mesh, rows)  # 40 rows on 8 devices, 3 of them padding
        state = parallel.replicate(mesh, reduction.symmetric_moments_init(layout))
        sharded = jax.jit(reduction.symmetric_moments_update, static_argnums=1)(state, layout, xs, mask)
        fits = [reduction.fit_symmetric_pca(s, layout, 10, whiten=True)[0] for s in (one, merged, sharded)]
    for other in fits[1:]:
        for x, y in zip(fits[0], other):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)  # float64 sums: equal to rounding


def test_symmetric_lda_is_sklearns_lda_of_the_augmented_rows_labelled_class_and_element():
    layout = reduction.Layout("c4", 2, 3)
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 30)
    centres = rng.normal(scale=2.0, size=(3, layout.dim))
    rows = (centres[y] + rng.normal(size=(90, layout.dim))).astype(np.float32)
    with reduction.float64():
        stats = reduction.symmetric_scatter_update(reduction.symmetric_scatter_init(layout, 3), layout, rows, y)
        lda, blocks = reduction.fit_symmetric_lda(stats, layout, 11, shrinkage=0.1)
    group = groups.get(layout.group)
    aug = _augmented(layout, rows.astype(np.float64))
    labels = np.concatenate([y * group.order + h for h in range(group.order)])  # the class (c, h)
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.1).fit(aug, labels)
    k = lda.components.shape[0]
    assert k in (10, 11)  # 11 = C |G| - 1 discriminants, cut between whole blocks
    np.testing.assert_allclose(lda.explained_variance_ratio, ref.explained_variance_ratio_[:k], rtol=1e-5, atol=1e-7)
    # Same features up to a rotation inside each block of equal ratios: each group's features
    # are a linear function of scikit-learn's for that group.
    ours = np.asarray(reduction.project(lda, aug.astype(np.float32)), np.float64)
    theirs = ref.transform(aug)[:, :k]  # the eigen solver's transform does not centre
    theirs = theirs - theirs.mean(0)
    ratios = np.asarray(lda.explained_variance_ratio)
    start = 0
    while start < k:
        stop = start + int(np.sum(np.isclose(ratios[start:], ratios[start], rtol=1e-6)))
        centred = ours[:, start:stop] - ours[:, start:stop].mean(0)  # ours centre on the (symmetric) mean
        sol = np.linalg.lstsq(theirs[:, start:stop], centred, rcond=None)[0]
        resid = centred - theirs[:, start:stop] @ sol
        assert np.linalg.norm(resid) < 1e-4 * np.linalg.norm(ours[:, start:stop]), (start, stop)
        start = stop
    actions = irreps.action(group, blocks.irrep, blocks.coordinate)
    f = ours[: rows.shape[0]]
    for h in range(group.order):
        np.testing.assert_allclose(ours[h * 90 : (h + 1) * 90], f @ actions[h].T, atol=1e-4 * np.abs(f).max())


def test_sign_rule_is_deterministic_and_breaks_float_ties_by_index():
    v = np.array([0.5, -0.5 * (1 + 1e-12), 0.1])  # a tie below float64 noise: the first entry wins
    np.testing.assert_array_equal(reduction._canonical(v), v)
    np.testing.assert_array_equal(reduction._canonical(-v), v)
    u = np.array([0.3j, 0.9 * np.exp(1.2j), 0.1])
    w = reduction._canonical(u)
    assert abs(w[1].imag) < 1e-15 and w[1].real > 0 and np.allclose(np.abs(w), np.abs(u))


# --- the glass-box: the law of the features -----------------------------------------------------
# Models are fitted on one device (8 emulated devices on 2 cores only oversubscribe them) except
# where device counts are the point; the estimator's own transform is tested in test_estimator.


def _fit(x, y, **config):
    return GlassBox(devices=jax.devices()[:1], **dict(TINY, **config)).fit(x, y)


@pytest.fixture(scope="module")
def d4_both(digits):
    x, y, _ = digits
    return _fit(x, y, representation="both")


@pytest.fixture(scope="module")
def probe_images(digits):
    """Test digits and uniform random images: the law must hold off the training distribution too."""
    return np.concatenate([digits[2], np.random.default_rng(3).uniform(size=(12, 8, 8, 1)).astype(np.float32)])


def _law_residuals(model, x):
    """Per element g: ||transform(act(g, x)) - transform(x) M_g^T|| / ||transform(x)||, one call for all g."""
    group = groups.get(model.group)
    moved = jax.vmap(lambda g: groups.act_batch(group, jnp.full((x.shape[0],), g), jnp.asarray(x)))(jnp.arange(group.order))
    f = np.asarray(jax.jit(glassbox.transform)(model.params_, moved.reshape((-1,) + x.shape[1:])), np.float64)
    f = f.reshape(group.order, x.shape[0], -1)
    return np.asarray([np.linalg.norm(f[g] - f[0] @ model.feature_action(g).T) / np.linalg.norm(f[0]) for g in range(group.order)])


def _check_law(model, images):
    # float32 features from float32 rows: 1e-5 relative for every element is the target
    assert _law_residuals(model, images).max() < 1e-5
    transform = jax.jit(glassbox.transform)
    fn = lambda im: transform(model.params_, im)  # noqa: E731
    testing.assert_equivariant(fn, model.group, images, feature_action=model.feature_action, rtol=1e-4,
                               atol=1e-4 * float(np.abs(fn(images)).max()))


@pytest.mark.parametrize("spec, representation", [("c4", "equivariant"), ("flip", "both"), ("trans:4", "both")])
def test_features_follow_the_stated_law_for_every_element(digits, probe_images, spec, representation):
    x, y, _ = digits
    _check_law(_fit(x, y, group=spec, representation=representation), probe_images)


@pytest.mark.parametrize("reduction_kind", ["pca", "lda"])
def test_d4_feature_action_is_an_orthogonal_homomorphism_that_holds(digits, d4_both, probe_images, reduction_kind):
    x, y, _ = digits
    model = d4_both if reduction_kind == "pca" else _fit(x, y, representation="both", reduction="lda")
    group = groups.d4()
    m = np.stack([model.feature_action(g) for g in range(group.order)]).astype(np.float64)
    k = m.shape[1]
    np.testing.assert_array_equal(m[0], np.eye(k))
    np.testing.assert_allclose(np.einsum("aij,bjk->abik", m, m), m[group.cayley_table], atol=1e-6)
    np.testing.assert_allclose(np.einsum("gji,gjk->gik", m, m), np.broadcast_to(np.eye(k), m.shape), atol=1e-6)
    _check_law(model, probe_images)
    summary = glassbox.irrep_summary(model.params_)
    assert list(summary) == ["A1", "A2", "B1", "B2", "E"]
    assert sum(s["components"] for s in summary.values()) == k and summary["E"]["components"] % 2 == 0
    assert abs(sum(s["variance"] for s in summary.values()) - 1) < 1e-5


def test_invariant_features_are_acted_on_by_the_identity(digits):
    x, y, x_test = digits
    model = _fit(x, y, representation="invariant")
    k = model.params_.pca.components.shape[0]
    for g in range(8):
        np.testing.assert_array_equal(model.feature_action(g), np.eye(k))
    assert _law_residuals(model, x_test).max() < 1e-5


def test_glassbox_pca_is_the_pca_of_the_explicitly_augmented_representation(digits, d4_both):
    x = digits[0]
    group = groups.d4()
    params = d4_both.params_
    represent = jax.jit(glassbox.represent)
    # the representation of every image moved by every element, in float64
    aug = np.concatenate([np.asarray(represent(params, groups.act_batch(group, jnp.full((x.shape[0],), h), jnp.asarray(x))))
                          for h in range(group.order)]).astype(np.float64)
    cov = np.cov(aug.T)
    pca = params.pca
    np.testing.assert_allclose(pca.mean, aug.mean(0), rtol=1e-5, atol=1e-5)
    top = np.linalg.eigvalsh(cov)[::-1][: pca.components.shape[0]]
    # float32 representation rows: eigenvalues to 1e-4 of the largest
    np.testing.assert_allclose(pca.explained_variance, top, atol=1e-4 * top[0])
    c = np.asarray(pca.components, np.float64)
    np.testing.assert_allclose(np.trace(c @ cov @ c.T), top.sum(), rtol=1e-5)  # the top subspace itself


def test_same_model_on_1_2_8_devices_and_any_batch_size(digits, d4_both):
    x, y, x_test = digits
    devices = jax.devices()
    # d4_both: 1 device, batches of 32; 96 is the whole set in one batch
    models = [GlassBox(representation="both", **dict(TINY, batch_size=b), devices=devices[:d]).fit(x, y) for d, b in ((2, 96), (8, 16))]
    transform = jax.jit(glassbox.transform)
    f0 = np.asarray(transform(d4_both.params_, x_test))
    p0 = np.asarray(jax.jit(glassbox.predict)(d4_both.params_, x_test))
    for model in models:
        params = jax.device_get(model.params_)
        f = np.asarray(transform(params, x_test))
        assert np.abs(f - f0).max() < 1e-4 * np.abs(f0).max()
        np.testing.assert_array_equal(jax.jit(glassbox.predict)(params, x_test), p0)
        np.testing.assert_array_equal(params.blocks.irrep, d4_both.params_.blocks.irrep)


def test_feature_action_refuses_what_does_not_hold(d4_both):
    params = d4_both.params_
    fields = [getattr(params, f) for f in ("image_shape", "class_names", "patches", "prototypes", "projection", "pca", "classifier")]
    rotated = type(params)(dataclasses.replace(params.config, group="rot:4"), *fields, params.blocks)
    with pytest.raises(ValueError, match="group 'rot:4' rotates by bilinear resampling"):
        glassbox.feature_action(rotated, 1)
    with pytest.raises(ValueError, match="expected g an element index below 8"):
        d4_both.feature_action(8)
    with pytest.raises(ValueError, match="version 1 model file"):
        glassbox.feature_action(type(params)(params.config, *fields), 1)


def test_model_files_keep_the_blocks_and_version_1_files_still_load(d4_both, digits, tmp_path):
    from glassjax.core import modelfile

    path = tmp_path / "model.npz"
    d4_both.save(path)
    loaded = GlassBox.load(path)
    for g in (1, 5):
        np.testing.assert_array_equal(loaded.feature_action(g), d4_both.feature_action(g))
    # a version 1 file: no blocks; it predicts as before and asks for a refit for feature_action
    meta, arrays = modelfile.read(path)
    modelfile.write(path, dict(meta, version=1), {k: v for k, v in arrays.items() if not k.startswith("blocks.")})
    old = GlassBox.load(path)
    assert old.params_.blocks is None
    np.testing.assert_array_equal(old.predict(digits[2]), d4_both.predict(digits[2]))
    with pytest.raises(ValueError, match="version 1 model file"):
        old.feature_action(1)
