"""Per-image weights in the glass-box fit (scikit-learn's convention): integer weights fit the model
of the rows repeated, weight 0 removes a row, every stage weighs its statistics, and bad weights
are refused before any work. Tiny digit images (8x8, 3 classes)."""
import numpy as np
import pytest
from sklearn.decomposition import PCA

from glassjax import data
from glassjax.core import reduction
from glassjax.systems.glassbox import GlassBox
from glassjax.systems.glassbox.filters import patch_filters

import jax


@pytest.fixture(scope="module")
def digits3():
    d = data.load("digits", classes=["0", "1", "2"])
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, d.x_train.shape[0])  # 0 (removed) to 3 (three copies)
    return d.x_train, d.y_train, d.x_test, weights


def _scores(model, x):
    return np.asarray(model.decision_function(x), np.float64)


@pytest.mark.parametrize("classifier", ["ridge", "logistic"])
def test_integer_weights_equal_repeated_rows(digits3, classifier):
    # Prototype filters: no seeded draw, so every stage can be compared; the patch draw is tested below.
    x, y, x_test, w = digits3
    options = dict(filters="prototype", classifier=classifier, components=20)
    weighted = GlassBox(**options).fit(x, y, sample_weight=w)
    repeated = GlassBox(**options).fit(np.repeat(x, w, axis=0), np.repeat(y, w))
    a, b = _scores(weighted, x_test), _scores(repeated, x_test)
    # float32 rows, float64 statistics; the logistic fit stops at its gradient tolerance
    tol = 1e-4 if classifier == "ridge" else 2e-3
    assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), np.max(np.abs(a - b))
    assert (weighted.predict(x_test) == repeated.predict(x_test)).all()


def test_weights_change_the_model_and_ones_do_not(digits3):
    x, y, x_test, w = digits3
    options = dict(filters="prototype", classifier="ridge", components=20)
    plain = _scores(GlassBox(**options).fit(x, y), x_test)
    ones = _scores(GlassBox(**options).fit(x, y, sample_weight=np.ones(len(y))), x_test)
    weighted = _scores(GlassBox(**options).fit(x, y, sample_weight=w), x_test)
    np.testing.assert_allclose(ones, plain, rtol=0, atol=1e-5 * np.abs(plain).max())
    assert np.abs(weighted - plain).max() > 1e-2 * np.abs(plain).max()


def test_weighted_patch_filters_are_the_pca_of_the_drawn_patches_repeated(digits3):
    # Reference: scikit-learn's PCA of the same seeded patches, each repeated as often as its image weighs.
    from glassjax.systems.glassbox import filters

    x, y, _, w = digits3
    key = jax.random.PRNGKey(3)
    bank = patch_filters(x, y, 3, size=3, per_class=4, patches_per_class=500, key=key, sample_weight=w)
    for cls, cls_key in zip(range(3), jax.random.split(key, 3)):
        members = np.flatnonzero(y == cls)
        patches, image = filters._sample_patches(x[members], 500, 3, cls_key)
        patches = np.asarray(patches, np.float64)
        patches -= patches.mean(axis=1, keepdims=True)
        reference = PCA(4, svd_solver="full").fit(np.repeat(patches, w[members][np.asarray(image)], axis=0))
        ours = np.asarray(bank.filters[cls * 4:(cls + 1) * 4]).reshape(4, -1)
        overlap = np.abs(np.sum(ours * reference.components_, axis=1))  # sign-free: |cos| per component
        np.testing.assert_allclose(overlap, 1.0, atol=1e-4)


def test_fit_pca_array_weights_equal_repeats():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)
    w = rng.integers(0, 3, 60)
    pca = reduction.fit_pca_array(x, 3, sample_weight=w, batch_size=16)
    reference = PCA(3, svd_solver="full").fit(np.repeat(x.astype(np.float64), w, axis=0))
    np.testing.assert_allclose(np.asarray(pca.mean), reference.mean_, atol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(pca.components) * reference.components_, axis=1)), 1.0, atol=1e-5)


@pytest.mark.parametrize("weights, message", [
    (lambda n: -np.ones(n), ">= 0"),
    (lambda n: np.ones(n + 1), "one weight per row"),
    (lambda n: np.full(n, np.nan), "finite"),
    (lambda n: np.zeros(n), "positive sum"),
    (lambda n: ["a"] * n, "numeric sample_weight"),
])
def test_bad_weights_are_refused(digits3, weights, message):
    x, y, _, _ = digits3
    with pytest.raises((ValueError, TypeError), match=message):
        GlassBox().fit(x, y, sample_weight=weights(len(y)))


def test_a_class_of_weight_zero_is_refused(digits3):
    x, y, _, _ = digits3
    with pytest.raises(ValueError, match=r"classes \[1\] have total weight 0"):
        GlassBox().fit(x, y, sample_weight=(y != 1).astype(np.float32))


def test_a_batch_source_refuses_weights(digits3):
    from glassjax.data import sources

    x, y, _, _ = digits3
    with pytest.raises(ValueError, match="sample_weight is for images in memory"):
        GlassBox().fit(sources.ArraySource(x, y, 64), sample_weight=np.ones(len(y)))
