"""The glass-box's layer 2 as configured: LDA instead of PCA, and randomized PCA for wide features."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from glassjax import data
from glassjax.core import groups, reduction
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


def test_lda_reduction_matches_sklearn_on_the_augmented_representation(digits, lda_model):
    # Layer 2 is symmetry-adapted: its LDA is scikit-learn's LDA of the representation of every
    # image moved by every element of d4, each (class, element) pair a class of its own.
    lda = lda_model.pca
    group = groups.d4()
    assert isinstance(lda, reduction.LDA)
    represent = jax.jit(glassbox.represent)
    n = digits.x_train.shape[0]
    moved = [np.asarray(represent(lda_model, groups.act_batch(group, jnp.full((n,), h), jnp.asarray(digits.x_train))), np.float64)
             for h in range(group.order)]
    labels = np.concatenate([digits.y_train * group.order + h for h in range(group.order)])
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=fit_module.LDA_SHRINKAGE).fit(np.concatenate(moved), labels)
    k = lda.components.shape[0]
    assert k in (29, 30)  # components=30 (< 4 x 8 - 1), cut between whole irrep blocks
    # float32 representation rows through a generalized eigensolve: 1e-4 relative
    np.testing.assert_allclose(lda.explained_variance_ratio, ref.explained_variance_ratio_[:k], rtol=1e-4, atol=1e-6)
    # the leading discriminants span what scikit-learn's span, block by block of equal ratios
    z = np.asarray(jax.jit(glassbox.transform)(lda_model, digits.x_test), np.float64)
    zref = ref.transform(np.asarray(represent(lda_model, digits.x_test), np.float64))[:, :k]
    z, zref = z - z.mean(0), zref - zref.mean(0)
    ratios = np.asarray(lda.explained_variance_ratio)
    start = 0
    while start < 6:
        stop = start + int(np.sum(np.isclose(ratios[start:], ratios[start], rtol=1e-5)))
        sol = np.linalg.lstsq(zref[:, start:stop], z[:, start:stop], rcond=None)[0]
        assert np.linalg.norm(z[:, start:stop] - zref[:, start:stop] @ sol) < 1e-3 * np.linalg.norm(z[:, start:stop])
        start = stop
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
