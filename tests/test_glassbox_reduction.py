"""The glass-box's layer 2 as configured: LDA instead of PCA, and randomized PCA for wide features."""
import importlib

import jax
import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from glassjax import data
from glassjax.core import reduction
from glassjax.systems import glassbox
from glassjax.systems.glassbox import GlassBoxConfig

fit_module = importlib.import_module("glassjax.systems.glassbox.fit")  # the package exports fit, the function

SMALL = dict(filters_per_class=4, pool_dim=8, orbit_dim=8, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", classes=["0", "1", "6", "9"])


def _fit(config, d):
    return glassbox.fit(config, d.x_train, d.y_train, key=jax.random.key(0), class_names=d.class_names)


def _accuracy(params, d):
    return float(np.mean(np.asarray(jax.jit(glassbox.predict)(params, d.x_test)) == d.y_test))


@pytest.fixture(scope="module")
def lda_model(digits):
    # "both": the invariant part alone cannot tell a 6 from a 9
    return _fit(GlassBoxConfig(**SMALL, representation="both", reduction="lda", classifier="lda"), digits)


def test_lda_reduction_matches_sklearn_on_the_representation(digits, lda_model):
    lda = lda_model.pca
    assert isinstance(lda, reduction.LDA) and lda.components.shape[0] == 3  # C - 1 discriminants
    r_train = np.asarray(jax.jit(glassbox.represent)(lda_model, digits.x_train), np.float64)
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=fit_module.LDA_SHRINKAGE).fit(r_train, digits.y_train)
    # transform projects on the fitted LDA; scikit-learn's eigen transform does not centre.
    z = np.asarray(jax.jit(glassbox.transform)(lda_model, digits.x_test), np.float64)
    r_test = np.asarray(jax.jit(glassbox.represent)(lda_model, digits.x_test), np.float64)
    zref = ref.transform(r_test)[:, :3] - ref.transform(r_train.mean(0, keepdims=True))[:, :3]
    signs = np.sign(np.sum(z * zref, axis=0))
    # float32 statistics through a generalized eigensolve (cond(S_w) ~ 1e2 after shrinkage): ~1e-4 relative.
    np.testing.assert_allclose(z * signs, zref, atol=1e-3 * np.abs(zref).max())
    assert _accuracy(lda_model, digits) > 0.95


def test_lda_model_saves_and_loads_bit_exactly(digits, lda_model, tmp_path):
    glassbox.save_params(lda_model, tmp_path / "lda.npz")
    loaded = glassbox.load_params(tmp_path / "lda.npz")
    assert loaded.config.reduction == "lda" and isinstance(loaded.pca, reduction.LDA)
    for a, b in zip(jax.tree.leaves(lda_model), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(jax.jit(glassbox.apply)(loaded, digits.x_test), jax.jit(glassbox.apply)(lda_model, digits.x_test))


def test_bad_reduction_raises():
    with pytest.raises(ValueError, match=r"expected reduction in pca\|lda, got 'ica'"):
        GlassBoxConfig(reduction="ica").validated()


def test_wide_features_get_randomized_pcas_close_to_exact(digits, monkeypatch):
    exact = _fit(GlassBoxConfig(**SMALL, components=10), digits)
    monkeypatch.setattr(fit_module, "RANDOMIZED_PCA_ABOVE", 0)  # every PCA counts as wide
    randomized = _fit(GlassBoxConfig(**SMALL, components=10), digits)
    assert not np.array_equal(randomized.pca.components, exact.pca.components)
    # Subspace iteration resolves the leading variances well (they stand apart from the tail).
    np.testing.assert_allclose(randomized.pca.explained_variance[:3], exact.pca.explained_variance[:3], rtol=1e-2)
    assert _accuracy(randomized, digits) >= _accuracy(exact, digits) - 0.02
