"""Classifiers against scikit-learn, binary and multi-class, determinism and save/load."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from glassjax.core import classifiers as C
from glassjax.core import reduction as R


@pytest.fixture(scope="module")
def digits():
    """scikit-learn digits in [0, 1], seeded stratified 70/30 split: float64 and float32 copies."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    return xtr, xte, ytr, yte, xtr.astype(np.float32), xte.astype(np.float32)


@pytest.fixture(scope="module")
def blobs():
    """Two overlapping Gaussian classes in 6-D with a shared covariance: train and test."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6)) / 2 + np.eye(6)
    means = np.array([np.zeros(6), np.full(6, 0.8)])

    def draw(n):
        y = rng.integers(0, 2, n)
        return (means[y] + rng.normal(size=(n, 6)) @ mix.T + 0.5).astype(np.float32), y

    return draw(300), draw(1000)


def accuracy(params, x, y):
    return float(np.mean(np.asarray(C.predict(params, x)) == y))


def test_ridge_coefficients_equal_sklearn(digits):
    xtr, _, ytr, _, xtr32, _ = digits
    ref = Ridge(alpha=1.0).fit(xtr, np.eye(10)[ytr])
    params = C.fit_classifier("ridge", xtr32, ytr, num_classes=10, alpha=1.0)
    # float32 normal equations, condition number ~1e3 with alpha=1: ~1e-5 relative error.
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(np.asarray(params.weights).T, ref.coef_, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(params.bias, ref.intercept_, rtol=1e-4, atol=1e-4 * scale)


def test_streaming_ridge_with_masked_padding_equals_one_shot(digits):
    _, _, ytr, _, xtr32, _ = digits
    x, y = xtr32[:600], ytr[:600]
    one_shot = C.fit_ridge(x, y, num_classes=10, alpha=0.5)
    stats = R.scatter_init(64, 10)
    for start in range(0, 500, 250):
        stats = R.scatter_update(stats, x[start : start + 250], y[start : start + 250])
    padded_x = np.concatenate([x[500:], np.full((150, 64), 3.0, np.float32)])
    padded_y = np.concatenate([y[500:], np.full(150, 9)])
    stats = R.scatter_update(stats, padded_x, padded_y, np.arange(250) < 100)
    streamed = C.fit_ridge_stats(stats, alpha=0.5)
    scanned = C.fit_ridge(x, y, num_classes=10, alpha=0.5, batch_size=128)
    # Batching changes float32 summation order: ~1e-5 of the largest weight after the solve.
    scale = float(jnp.abs(one_shot.weights).max())
    for params in (streamed, scanned):
        np.testing.assert_allclose(params.weights, one_shot.weights, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(params.bias, one_shot.bias, rtol=1e-4, atol=1e-4 * scale)


def _ridge_reference(a_fit, b_fit, a_eval, ridge):
    a_fit, b_fit, a_eval = (np.asarray(v, np.float64) for v in (a_fit, b_fit, a_eval))
    a = a_fit - a_fit.mean(0)
    lam = ridge * np.trace(a.T @ a) / a.shape[1]
    coef = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (b_fit - b_fit.mean(0)))
    return (a_eval - a_fit.mean(0)) @ coef + b_fit.mean(0)


@pytest.mark.parametrize("n, d", [(40, 6), (10, 30)], ids=["primal", "dual"])
def test_ridge_predict_primal_and_dual_match_float64(n, d):
    rng = np.random.default_rng(n)
    a_fit = rng.normal(size=(n, d)).astype(np.float32) + 3.0
    b_fit = rng.normal(size=(n, 3)).astype(np.float32)
    a_eval = rng.normal(size=(7, d)).astype(np.float32) + 3.0
    got = C.ridge_predict(jnp.asarray(a_fit), jnp.asarray(b_fit), jnp.asarray(a_eval), alpha=1e-2, relative=True)
    np.testing.assert_allclose(np.asarray(got), _ridge_reference(a_fit, b_fit, a_eval, 1e-2), rtol=1e-4, atol=1e-4)


def test_ridge_predict_is_the_ridge_classifier_on_one_hot_targets(digits):
    """One solver: ridge_predict on one-hot targets gives fit_ridge's scores."""
    _, _, ytr, _, xtr32, xte32 = digits
    params = C.fit_ridge(xtr32, ytr, num_classes=10, alpha=1.0)
    scores = C.ridge_predict(jnp.asarray(xtr32), jnp.eye(10, dtype=jnp.float32)[ytr], jnp.asarray(xte32), alpha=1.0)
    expected = np.asarray(C.predict_scores(params, xte32))
    np.testing.assert_allclose(np.asarray(scores), expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("shrinkage", [None, 0.2])
def test_lda_agrees_with_sklearn(shrinkage):
    rng = np.random.default_rng(4)
    means = 1.5 * rng.normal(size=(3, 5))
    mix = rng.normal(size=(5, 5)) / 2 + np.eye(5)

    def draw(n):
        y = rng.integers(0, 3, n)
        return means[y] + rng.normal(size=(n, 5)) @ mix.T + 2.0, y

    (xtr, ytr), (xte, yte) = draw(300), draw(2000)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage).fit(xtr, ytr)
    params = C.fit_classifier("lda", xtr.astype(np.float32), ytr, num_classes=3, shrinkage=shrinkage)
    agreement = np.mean(np.asarray(C.predict(params, xte.astype(np.float32))) == ref.predict(xte))
    # Same model; float32 can flip only points within ~1e-5 of a decision boundary.
    assert agreement >= 0.99
    assert accuracy(params, xte.astype(np.float32), yte) > 0.8


def test_logistic_within_one_point_of_sklearn(digits):
    xtr, xte, ytr, yte, xtr32, xte32 = digits
    l2 = 1e-3
    # The same objective: standardised inputs, sklearn's C = 1 / (l2 * N).
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (l2 * len(ytr)), max_iter=2000))
    ref_acc = ref.fit(xtr, ytr).score(xte, yte)
    params = C.fit_classifier("logistic", xtr32, ytr, num_classes=10, key=jax.random.key(0), l2=l2)
    assert abs(accuracy(params, xte32, yte) - ref_acc) <= 0.01


def test_svm_and_mlp_accuracy_on_digits(digits):
    _, _, ytr, yte, xtr32, xte32 = digits
    # Measured 0.948 (scikit-learn's LinearSVC on the same split: 0.952) and 0.978.
    svm = C.fit_classifier("svm", xtr32, ytr, num_classes=10, key=jax.random.key(0))
    assert accuracy(svm, xte32, yte) >= 0.94
    mlp = C.fit_classifier("mlp", xtr32, ytr, num_classes=10, key=jax.random.key(0))
    assert accuracy(mlp, xte32, yte) >= 0.965


SMALL_MLP = {"hidden": 32, "steps": 150, "batch_size": 64}


@pytest.fixture(scope="module")
def binary_models(blobs):
    (xtr, ytr), _ = blobs
    options = {kind: {} for kind in C.KINDS} | {"mlp": SMALL_MLP}
    key = jax.random.key(1)
    return {kind: C.fit_classifier(kind, xtr, ytr, num_classes=2, key=key, **options[kind]) for kind in C.KINDS}


@pytest.mark.parametrize("kind", C.KINDS)
def test_binary_every_kind(binary_models, blobs, kind):
    _, (xte, yte) = blobs
    params = binary_models[kind]
    assert C.classifier_kind(params) == kind
    scores = C.predict_scores(params, xte)
    assert scores.shape == (1000, 2) and scores.dtype == jnp.float32
    # Bayes accuracy of these blobs is ~0.85; every kind should be close.
    assert accuracy(params, xte, yte) >= 0.8
    np.testing.assert_allclose(jax.jit(C.predict_scores)(params, xte), scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", C.KINDS)
def test_save_load_round_trip_is_bit_exact(binary_models, blobs, kind, tmp_path):
    _, (xte, _) = blobs
    params = binary_models[kind]
    path = tmp_path / "model.npz"
    np.savez(path, **C.classifier_to_arrays(params))
    with np.load(path, allow_pickle=False) as f:
        loaded = C.classifier_from_arrays(dict(f))
    assert type(loaded) is type(params)
    for got, want in zip(loaded, params):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(np.asarray(got).view(np.uint32), np.asarray(want).view(np.uint32))
    np.testing.assert_array_equal(C.predict_scores(loaded, xte), C.predict_scores(params, xte))


def test_same_seed_same_params(blobs, binary_models):
    (xtr, ytr), _ = blobs
    again = C.fit_classifier("mlp", xtr, ytr, num_classes=2, key=jax.random.key(1), **SMALL_MLP)
    for a, b in zip(again, binary_models["mlp"]):
        np.testing.assert_array_equal(a, b)
    other = C.fit_classifier("mlp", xtr, ytr, num_classes=2, key=jax.random.key(2), **SMALL_MLP)
    assert not np.array_equal(other.hidden_weights, again.hidden_weights)
    logistic = C.fit_classifier("logistic", xtr, ytr, num_classes=2)
    for a, b in zip(logistic, binary_models["logistic"]):
        np.testing.assert_array_equal(a, b)


def test_bad_input(blobs):
    (x, y), _ = blobs
    with pytest.raises(ValueError, match="fit_ridge: expected num_classes >= 2, got 1"):
        C.fit_classifier("ridge", x, y, num_classes=1)
    with pytest.raises(ValueError, match=r"fit_logistic: expected labels y in 0\.\.1, got labels y in 0\.\.2"):
        C.fit_classifier("logistic", x, np.where(y == 1, 2, 0), num_classes=2)
    with pytest.raises(ValueError, match=r"fit_lda_classifier: expected labels y in 0\.\.1, got labels y in -1\.\.1"):
        C.fit_classifier("lda", x, y - 1 + (y == 1), num_classes=2)
    with pytest.raises(ValueError, match=r"fit_svm: expected labels y of shape \(300,\), one label per row, got shape \(299,\)"):
        C.fit_classifier("svm", x, y[:-1], num_classes=2)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="fit_mlp: expected finite values in x, got NaN or inf"):
        C.fit_classifier("mlp", bad, y, num_classes=2, key=jax.random.key(0))
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="fit_ridge: expected finite values in x"):
        C.fit_classifier("ridge", bad, y, num_classes=2)
    with pytest.raises(ValueError, match=r"fit_classifier: expected kind in ridge\|lda\|logistic\|svm\|mlp, got 'knn'"):
        C.fit_classifier("knn", x, y, num_classes=2)
    with pytest.raises(TypeError, match="fit_classifier: expected key= .* for kind 'mlp', got None"):
        C.fit_classifier("mlp", x, y, num_classes=2)
    with pytest.raises(TypeError, match="fit_logistic: expected integer labels y, got dtype float64"):
        C.fit_classifier("logistic", x, y.astype(np.float64), num_classes=2)
    with pytest.raises(ValueError, match=r"fit_ridge_stats: expected alpha > 0, got 0\.0"):
        C.fit_classifier("ridge", x, y, num_classes=2, alpha=0.0)
    with pytest.raises(ValueError, match=r"fit_ridge: expected x of shape \(N, D\), got shape \(300, 2, 3\)"):
        C.fit_classifier("ridge", x.reshape(300, 2, 3), y, num_classes=2)
    params = C.fit_classifier("ridge", x, y, num_classes=2)
    with pytest.raises(ValueError, match=r"predict_scores: expected x with 6 features, got shape \(5, 5\)"):
        C.predict(params, x[:5, :5])
    with pytest.raises(TypeError, match="classifier_kind: expected classifier params"):
        C.predict({"weights": params.weights}, x)
    with pytest.raises(ValueError, match="classifier_from_arrays: expected kind in"):
        C.classifier_from_arrays({**C.classifier_to_arrays(params), "kind": np.asarray("tree")})


# ----------------------------------------------------------------------------- sample_weight


@pytest.mark.parametrize("kind", ["ridge", "lda", "logistic", "svm"])
def test_integer_sample_weights_equal_repeated_rows(blobs, kind):
    (x, y), (xte, _) = blobs
    x, y = np.asarray(x[:80], np.float64), y[:80]
    w = np.random.default_rng(1).integers(0, 4, x.shape[0])  # 0 removes a row, 3 triples it
    with R.float64():
        weighted = C.fit_classifier(kind, x, y, num_classes=2, sample_weight=w.astype(np.float64), **_tight(kind))
        repeated = C.fit_classifier(kind, np.repeat(x, w, axis=0), np.repeat(y, w), num_classes=2, **_tight(kind))
        xt = np.asarray(xte[:50], np.float64)
        # Closed forms agree to float64 rounding; L-BFGS to its gradient tolerance 1e-10.
        np.testing.assert_allclose(C.predict_scores(weighted, xt), C.predict_scores(repeated, xt), rtol=1e-6, atol=1e-6)


def _tight(kind):
    return {"tol": 1e-10, "max_iter": 2000} if kind in ("logistic", "svm") else {}


@pytest.mark.parametrize("kind", C.KINDS)
def test_sample_weight_none_and_ones_agree_with_unweighted(binary_models, blobs, kind):
    (x, y), (xte, _) = blobs
    options = SMALL_MLP if kind == "mlp" else {}
    ones = C.fit_classifier(kind, x, y, num_classes=2, key=jax.random.key(1), sample_weight=np.ones(len(y)), **options)
    none = C.fit_classifier(kind, x, y, num_classes=2, key=jax.random.key(1), sample_weight=None, **options)
    for a, b in zip(none, binary_models[kind]):  # None: the unweighted code path, bit for bit
        np.testing.assert_array_equal(a, b)
    # Ones: the weighted path; the same model up to float32 rounding of the sums.
    np.testing.assert_allclose(C.predict_scores(ones, xte), C.predict_scores(none, xte), rtol=1e-4, atol=1e-4)


def test_sample_weight_bad_input(blobs):
    (x, y), _ = blobs
    with pytest.raises(ValueError, match="sample_weight of shape"):
        C.fit_logistic(x, y, num_classes=2, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight >= 0"):
        C.fit_classifier("ridge", x, y, num_classes=2, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="positive sum"):
        C.fit_svm(x, y, num_classes=2, sample_weight=np.zeros(len(y)))
    with pytest.raises(TypeError, match="sample_weight"):
        C.fit_lda_classifier(x, y, num_classes=2, sample_weight="ones")


def test_standardizer_gradient_is_finite_at_a_constant_feature():
    # A constant column keeps scale 1 and must not poison the gradient of the others (sqrt'(0) = inf).
    from glassjax.core.classifiers import _standardizer

    x = jnp.stack([jnp.arange(6.0), jnp.full(6, 2.0)], axis=1)
    grad = jax.grad(lambda x: jnp.sum(_standardizer(x)[1]))(x)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(np.asarray(_standardizer(x)[1]), [1 / np.std(np.arange(6.0)), 1.0], rtol=1e-6)
