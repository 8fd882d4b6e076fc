"""The differentiable glass-box fit: equal to ``fit``, gradients equal to finite differences in
float64, eigen-derivatives refused at a closed gap, weights as repeated images."""
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data
from glassjax.core import classifiers, reduction
from glassjax.core.eigen_grad import separated, top_eigh
from glassjax.systems.glassbox import GlassBoxConfig, apply, differentiable, fit, transform

N_TRAIN = 200


@pytest.fixture(scope="module")
def digits():
    ds = data.load("digits")
    return ds.x_train[:N_TRAIN], ds.y_train[:N_TRAIN], ds.x_test[:40], ds.y_test[:40]


def _ce(scores, labels):
    return jnp.mean(jax.nn.logsumexp(scores, axis=1) - jnp.take_along_axis(scores, labels[:, None], axis=1)[:, 0])


@pytest.fixture(scope="module")
def fitted(digits):
    """fit and the differentiable fit (float64) of the subset, seed 0."""
    x, y, _, _ = digits
    key = jax.random.PRNGKey(0)
    ref = fit(GlassBoxConfig(), x, y, key=key)  # outside float64(), as GlassBox.fit runs
    with reduction.float64():
        return ref, differentiable.differentiable_fit(GlassBoxConfig(), x, y, key=key)


def test_differentiable_fit_equals_fit(digits, fitted):
    _, _, xt, _ = digits
    ref, got = fitted
    with reduction.float64():
        xt64 = jnp.asarray(xt, jnp.float64)
        # Everything before the classifier is float64 eigen-solves of the same statistics: float32 agreement.
        np.testing.assert_allclose(got.patches.filters, ref.patches.filters, atol=1e-4)
        np.testing.assert_allclose(transform(got, xt64), transform(ref, xt), rtol=1e-3, atol=1e-3)
        scores, expected = np.asarray(apply(got, xt64)), np.asarray(apply(ref, xt))
    # The fit's float32 L-BFGS stops at gradient norm 1e-5, the differentiable fit solves to float64
    # precision: their scores differ by about 3e-4 of the score scale on this subset.
    np.testing.assert_allclose(scores, expected, atol=2e-3 * np.abs(expected).max())
    np.testing.assert_array_equal(scores.argmax(1), expected.argmax(1))
    assert jax.tree.structure(got) == jax.tree.structure(ref)


@pytest.fixture(scope="module")
def gradients(digits):
    """Value and gradient of a test loss (w.r.t. images, weights, regularization) at a generic point:
    digits plus 0.01 x U(0, 1), since on blank background a correlation is exactly 0, a kink of relu."""
    x, y, xt, yt = digits
    plan = differentiable.plan_fit(GlassBoxConfig(), x.shape, y, key=jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    with reduction.float64():
        point = (jnp.asarray(x, jnp.float64) + 0.01 * jnp.asarray(rng.random(x.shape)), jnp.ones((N_TRAIN,)),
                 jnp.asarray(differentiable.default_regularization(plan.config), jnp.float64))  # not weakly typed: one compile
        xt64, yt = jnp.asarray(xt[:20], jnp.float64), jnp.asarray(yt[:20])

        def loss(images, weights, lam):
            return _ce(apply(differentiable.refit(plan, images, weights, lam), xt64), yt)

        # One compiled function for the gradient and the finite differences (its value).
        value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
        grads = value_and_grad(*point)[1]
    return (lambda *args: value_and_grad(*args)[0]), grads, point, rng


def _directional(value, grads, point, which: int, step: float) -> tuple[float, float]:
    """(analytic, central finite difference) of value's derivative along a seeded random direction of argument ``which``."""
    with reduction.float64():
        direction = jnp.asarray(np.random.default_rng(which).normal(size=np.shape(point[which])))
        plus, minus = list(point), list(point)
        plus[which], minus[which] = point[which] + step * direction, point[which] - step * direction
        fd = (float(value(*plus)) - float(value(*minus))) / (2 * step)
        return float(jnp.sum(grads[which] * direction)), fd


@pytest.mark.parametrize("which, step", [(0, 1e-8), (1, 1e-6), (2, 1e-9)], ids=["images", "weights", "regularization"])
def test_gradient_equals_central_differences(gradients, which, step):
    value, grads, point, rng = gradients
    analytic, fd = _directional(value, grads, point, which, step)
    # float64: rounding in the loss ~ 1e-13, so ~1e-13 / step in fd; the image step is small because some of
    # the ~4.6M relu arguments lie near 0 even at a generic point, and a kink inside the step bends fd.
    assert abs(analytic - fd) <= 1e-4 * abs(fd), (analytic, fd)


def test_grad_with_respect_to_fitted_params(digits, fitted):
    """The fitted params hold int leaves (filter classes, irrep blocks): eqx.filter_grad differentiates the float ones."""
    _, _, xt, yt = digits
    params = fitted[1]
    with reduction.float64():
        xt64 = jnp.asarray(xt, jnp.float64)
        grads = eqx.filter_grad(lambda p: _ce(apply(p, xt64), jnp.asarray(yt)))(params)
        assert grads.blocks.irrep is None and grads.patches.classes is None
        # The classifier's bias gradient is the mean of softmax - onehot: an independent closed form.
        scores = apply(params, xt64)
        expected = jnp.mean(jax.nn.softmax(scores, axis=1) - jax.nn.one_hot(jnp.asarray(yt), 10, dtype=scores.dtype), axis=0)
        np.testing.assert_allclose(grads.classifier.bias, expected, atol=1e-12)
        assert float(jnp.abs(grads.patches.filters).max()) > 0


def test_top_eigh_derivative_and_refused_gap():
    rng = np.random.default_rng(0)
    with reduction.float64():
        b = rng.normal(size=(6, 6))
        a, da = jnp.asarray(b @ b.T), jnp.asarray(rng.normal(size=(6, 6)))
        c = jnp.asarray(rng.normal(size=(6, 3)))

        def f(a):
            w, v = top_eigh(a, 3)
            return jnp.sum(v * c) + jnp.sum(w**2)

        fd = (float(f(a + 1e-6 * da)) - float(f(a - 1e-6 * da))) / 2e-6
        analytic = float(jnp.sum(jax.grad(f)(a) * da))
        assert abs(analytic - fd) <= 1e-6 * abs(fd)
        degenerate = jnp.diag(jnp.asarray([3.0, 2.0, 2.0, 1.0]))
        w, _ = top_eigh(degenerate, 2)  # the value is never refused
        np.testing.assert_allclose(w, [3.0, 2.0])
        for isolated, k in ((True, 3), (False, 2)):  # inside the kept block / across the kept-dropped gap
            with pytest.raises(Exception, match="derivative refused"):
                jax.jit(jax.grad(lambda a: jnp.sum(top_eigh(a, k, isolated=isolated)[1])))(degenerate)
        # Subspace mode: a closed gap inside the kept block is a rotation the caller does not see.
        g = jax.jit(jax.grad(lambda a: jnp.sum(top_eigh(a, 3, isolated=False)[0])))(degenerate)
        np.testing.assert_allclose(g, np.diag([1.0, 1.0, 1.0, 0.0]), atol=1e-12)
        # Blocks kept across eigenproblems: the identity, its derivative refused at a closed kept/dropped gap.
        kept = jnp.asarray([3.0, 2.0])
        np.testing.assert_allclose(jax.grad(lambda k: jnp.sum(separated(k, 1.0) ** 2))(kept), [6.0, 4.0])
        with pytest.raises(Exception, match="derivative refused"):
            jax.jit(jax.grad(lambda k: jnp.sum(separated(k, 2.0))))(kept)


@pytest.mark.parametrize("kind", ["logistic", "svm"])
def test_convex_implicit_gradient_equals_finite_differences(kind):
    rng = np.random.default_rng(1)
    with reduction.float64():
        x = jnp.asarray(rng.normal(size=(40, 4)))
        y = jnp.asarray(rng.integers(0, 3, 40))
        w0 = jnp.asarray(rng.uniform(0.5, 2.0, 40))

        def f(x, w, lam):
            params = differentiable._classifier(kind, x, y, w, lam, 3)
            return jnp.sum(classifiers.predict_scores(params, x[:5]) * jnp.arange(3.0)[None, :])

        solver = classifiers.fit_svm if kind == "svm" else classifiers.fit_logistic
        ref = solver(x, y, num_classes=3, l2=0.01, sample_weight=w0, tol=1e-12, max_iter=5000)
        got = jax.jit(differentiable._classifier, static_argnums=(0, 5))(kind, x, y, w0, jnp.asarray(0.01, jnp.float64), 3)
        assert type(got) is type(ref)
        np.testing.assert_allclose(got.weights, ref.weights, rtol=1e-6, atol=1e-8)
        point = [x, w0, jnp.asarray(0.01, jnp.float64)]
        grads = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(*point)
        f = jax.jit(f)
        for i in range(3):
            d = jnp.asarray(rng.normal(size=np.shape(point[i])))
            plus, minus = list(point), list(point)
            plus[i], minus[i] = point[i] + 1e-6 * d, point[i] - 1e-6 * d
            fd = (float(f(*plus)) - float(f(*minus))) / 2e-6
            assert abs(float(jnp.sum(grads[i] * d)) - fd) <= 1e-6 * max(abs(fd), 1.0)


def test_integer_weights_equal_repeated_images(digits):
    """With prototype filters (no patch sample) integer weights are repeated images and 0 removes one."""
    x, y, xt, _ = digits
    x, y = x[:60], y[:60]
    w = np.random.default_rng(2).integers(0, 3, 60)
    w[:10] = 1  # every class keeps an image
    config = GlassBoxConfig(filters="prototype", classifier="ridge")
    key = jax.random.PRNGKey(0)
    with reduction.float64():
        weighted = differentiable.differentiable_fit(config, x, y, key=key, sample_weight=jnp.asarray(w, jnp.float64))
        repeated = differentiable.differentiable_fit(config, np.repeat(x, w, axis=0), np.repeat(y, w), key=key)
        xt64 = jnp.asarray(xt, jnp.float64)
        # float64 statistics of the same rows summed in another order: agreement to ~1e-10.
        np.testing.assert_allclose(apply(weighted, xt64), apply(repeated, xt64), rtol=1e-7, atol=1e-7)


def test_plan_rejects_what_it_does_not_differentiate(digits):
    x, y, _, _ = digits
    with pytest.raises(ValueError, match="classifier in logistic"):
        differentiable.plan_fit(GlassBoxConfig(classifier="mlp"), x.shape, y, key=jax.random.PRNGKey(0))
    # c4's rotation block is of complex type: its Hermitian eigenproblems are not differentiated
    with pytest.raises(ValueError, match="complex-type irreps"):
        differentiable.plan_fit(GlassBoxConfig(group="c4", representation="both"), x.shape, y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="expected images=x"):
        differentiable.plan_fit(GlassBoxConfig(representation="both"), x.shape, y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="one label per image"):
        differentiable.plan_fit(GlassBoxConfig(), x.shape, y[:-1], key=jax.random.PRNGKey(0))
    plan = differentiable.plan_fit(GlassBoxConfig(), x.shape, y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="expected images of shape"):
        differentiable.refit(plan, jnp.asarray(x[:10]))


def test_differentiable_fit_reads_fits_moment_sample(digits, monkeypatch):
    """Above SAMPLE_PER_CLASS images in a class, fit's orbit and PCA moments come from a seeded,
    reweighted sample; the plan holds the same sample, so the two fits stay equal, weights too."""
    import importlib

    passes = importlib.import_module("glassjax.systems.glassbox.fit")
    monkeypatch.setattr(passes, "SAMPLE_PER_CLASS", 12)
    x, y, xt, _ = digits
    w = np.random.default_rng(5).uniform(0.5, 2.0, x.shape[0]).astype(np.float32)
    config, key = GlassBoxConfig(classifier="ridge"), jax.random.PRNGKey(0)
    ref = fit(config, x, y, key=key, sample_weight=w)
    plan = differentiable.plan_fit(config, x.shape, y, key=key)
    assert plan.sampled and plan.moment_rows.shape[0] == 12 * 10
    with reduction.float64():
        got = differentiable.differentiable_fit(config, x, y, key=key, sample_weight=jnp.asarray(w, jnp.float64))
        xt64 = jnp.asarray(xt, jnp.float64)
        scores, expected = np.asarray(apply(got, xt64)), np.asarray(apply(ref, xt))
    np.testing.assert_allclose(scores, expected, atol=2e-3 * np.abs(expected).max())
    # the whole set's moments differ: without the sample the model is another one
    monkeypatch.setattr(passes, "SAMPLE_PER_CLASS", 10**6)
    whole = np.asarray(apply(fit(config, x, y, key=key, sample_weight=w), xt))
    assert np.abs(whole - expected).max() > 1e-2 * np.abs(expected).max()


# ----------------------------------------------------------------------------- a group axis, LDA, SVM
# Small configs (2 filters per class, 4 orbit channels, 12 components) on 100 images: each adds one
# piece to the differentiable fit: the irrep blocks of fit_symmetric_pca (E of d4: 2-D blocks) with
# the squared-hinge SVM, and fit_symmetric_lda of an equivariant representation with logistic.
WIDER = {
    "both-pca-svm": GlassBoxConfig(representation="both", classifier="svm", filters_per_class=2, pool_dim=6, orbit_dim=4,
                                   components=12),
    "equivariant-lda-logistic": GlassBoxConfig(representation="equivariant", reduction="lda", filters_per_class=2, orbit_dim=4,
                                               components=12),
}


@pytest.fixture(scope="module", params=list(WIDER))
def wider(request, digits):
    x, y, xt, yt = digits
    x, y = x[:100], y[:100]
    config, key = WIDER[request.param], jax.random.PRNGKey(0)
    rng = np.random.default_rng(0)
    point = (0.99 * x + 0.01 * rng.random(x.shape)).astype(np.float32)  # generic (relu kinks), in [0, 1] for fit
    ref = fit(config, point, y, key=key)
    with reduction.float64():
        point = jnp.asarray(point, jnp.float64)
        plan = differentiable.plan_fit(config, x.shape, y, key=key, images=point)
        xt64, yt = jnp.asarray(xt[:20], jnp.float64), jnp.asarray(yt[:20])

        def loss(images, weights, lam):
            params = differentiable.refit(plan, images, weights, lam)
            return _ce(apply(params, xt64), yt), params

        # One compiled function for the fitted params (equality), the gradient and the finite differences.
        value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))
        args = (point, jnp.ones((100,)), jnp.asarray(differentiable.default_regularization(plan.config), jnp.float64))
        (_, got), grads = value_and_grad(*args)
    return ref, got, (lambda *a: value_and_grad(*a)[0][0]), grads, args, plan


def test_wider_configs_equal_fit(digits, wider):
    _, _, xt, _ = digits
    ref, got, *_ = wider
    # The same irrep blocks, in the same order; then float32 agreement as for the invariant config.
    np.testing.assert_array_equal(got.blocks.irrep, ref.blocks.irrep)
    np.testing.assert_array_equal(got.blocks.coordinate, ref.blocks.coordinate)
    with reduction.float64():
        scores, expected = np.asarray(apply(got, jnp.asarray(xt, jnp.float64))), np.asarray(apply(ref, xt))
    print(f"{got.config.representation}/{got.config.reduction}/{got.config.classifier}: decision functions differ by "
          f"{np.abs(scores - expected).max() / np.abs(expected).max():.1e} of their scale")
    np.testing.assert_allclose(scores, expected, atol=2e-3 * np.abs(expected).max())
    np.testing.assert_array_equal(scores.argmax(1), expected.argmax(1))
    assert jax.tree.structure(got) == jax.tree.structure(ref)


@pytest.mark.parametrize("which, step", [(0, 1e-8), (1, 1e-6), (2, 1e-9)], ids=["images", "weights", "regularization"])
def test_wider_gradients_equal_central_differences(wider, which, step):
    _, _, value, grads, point, plan = wider
    assert len({i for i, _ in plan.kept}) > 1  # several irreps' eigenproblems, cut by the data
    analytic, fd = _directional(value, grads, point, which, step)
    print(f"{plan.config.representation}/{plan.config.reduction}/{plan.config.classifier} argument {which}: "
          f"relative error {abs(analytic - fd) / abs(fd):.1e}")
    # As for the invariant config: float64 rounding ~1e-13 / step; relu kinks bend larger image steps.
    assert abs(analytic - fd) <= 1e-4 * abs(fd), (analytic, fd)
