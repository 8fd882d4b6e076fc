"""Metrics on maps whose symmetry is known by construction, and against float64 numpy."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax.core import groups
from glassjax.analysis import metrics

RNG = np.random.default_rng(0)
KERNEL = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
# Averaging a kernel over the 8 symmetries of the square makes every (in, out) slice
# D4-symmetric; a 'SAME' convolution with an odd symmetric kernel then commutes with D4.
SYM_KERNEL = np.mean(
    [np.rot90(k, r, axes=(0, 1)) for r in range(4) for k in (KERNEL, KERNEL[:, ::-1])], axis=0
).astype(np.float32)
DENSE = (RNG.normal(size=(8 * 8 * 2, 12)) / 8.0).astype(np.float32)
X_FIT = jnp.asarray(RNG.random((20, 8, 8, 2)), jnp.float32)
X_EVAL = jnp.asarray(RNG.random((12, 8, 8, 2)), jnp.float32)


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, jnp.asarray(kernel), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest"
    )


def phi_symmetric(x):
    """Exactly D4-equivariant feature map and its exactly invariant global pool."""
    fmap = jnp.tanh(_conv(x, SYM_KERNEL))
    return {"map": fmap, "pool": jnp.mean(fmap, axis=(1, 2))}


def phi_generic(x):
    """A random conv (spatial) and a dense layer on flattened pixels: neither is equivariant."""
    return {"map": jnp.tanh(_conv(x, KERNEL)), "dense": jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.asarray(DENSE))}


def phi_any_size(x):
    """Smooth features defined for any image size: a conv map and its pooled energy."""
    fmap = jnp.tanh(_conv(x, KERNEL))
    return {"map": fmap, "energy": jnp.mean(jnp.square(fmap), axis=(1, 2))}


@pytest.fixture(scope="module")
def invariance():
    return {
        "symmetric": metrics.invariance_error(phi_symmetric, "d4", X_FIT, batch_size=7),
        "generic": metrics.invariance_error(phi_generic, "d4", X_FIT, batch_size=7),
    }


@pytest.fixture(scope="module")
def equivariance():
    return {
        "symmetric": metrics.equivariance_error(phi_symmetric, "d4", X_FIT, X_EVAL, batch_size=7),
        "generic": metrics.equivariance_error(phi_generic, "d4", X_FIT, X_EVAL, batch_size=7),
    }


def test_invariance_error_zero_for_invariant_pool(invariance):
    inv = invariance["symmetric"]
    assert inv["pool"].shape == (8,)
    # Exact symmetry: only float32 summation order differs between x and g x (~1e-7 relative).
    np.testing.assert_array_less(np.asarray(inv["pool"]), 1e-5)
    # The feature map is equivariant, not invariant: it moves with the image.
    assert inv["map"][0] == 0.0
    np.testing.assert_array_less(0.1, np.asarray(inv["map"][1:]))


def test_invariance_error_positive_for_generic_map(invariance):
    inv = invariance["generic"]
    for name in ("map", "dense"):
        assert inv[name][0] == 0.0
        np.testing.assert_array_less(0.1, np.asarray(inv[name][1:]))


def test_invariance_error_matches_direct_formula():
    x = X_EVAL[:5]
    got = metrics.invariance_error(phi_generic, "d4", x, batch_size=2)
    base = np.asarray(phi_generic(x)["dense"], np.float64)
    for g in range(8):
        moved = np.asarray(phi_generic(groups.act_batch("d4", jnp.full((5,), g), x))["dense"], np.float64)
        want = np.mean(np.linalg.norm(moved - base, axis=1) / np.linalg.norm(base, axis=1))
        np.testing.assert_allclose(float(got["dense"][g]), want, rtol=1e-5)


def test_equivariance_error_zero_for_equivariant_map(equivariance):
    eq = equivariance["symmetric"]
    assert eq.per_element["map"].shape == (8,)
    # M_g = identity is exact; the only residual is ridge shrinkage towards 0. With the
    # penalty at 1e-3 of the mean eigenvalue it is ~(1e-3)^2 x condition spread: ~1e-4 at most here.
    for name in ("map", "pool"):
        np.testing.assert_array_less(np.asarray(eq.per_element[name]), 1e-3)
        assert float(eq.mean[name]) < 1e-3


def test_equivariance_error_shrinks_with_ridge():
    eq = metrics.equivariance_error(phi_symmetric, "c4", X_FIT, X_EVAL, ridge=1e-7)
    # Shrinkage ~ridge^2 vanishes; what remains is float32 rounding of the fit.
    for name in ("map", "pool"):
        np.testing.assert_array_less(np.asarray(eq.per_element[name]), 1e-5)


def test_equivariance_error_positive_for_generic_map(equivariance):
    eq = equivariance["generic"]
    for name in ("map", "dense"):
        np.testing.assert_array_less(0.1, np.asarray(eq.per_element[name][1:]))
        assert float(eq.mean[name]) > 0.1
    # The identity element is fitted by M = I up to shrinkage.
    assert float(eq.per_element["map"][0]) < 1e-3


def test_trivial_group_means_are_zero():
    eq = metrics.equivariance_error(phi_generic, "none", X_FIT, X_EVAL)
    assert eq.per_element["map"].shape == (1,)
    assert float(eq.mean["map"]) == 0.0


def _central_difference(phi, x, h):
    rotate = jax.vmap(groups.rotate, in_axes=(0, None))
    plus, minus, base = phi(rotate(x, h)), phi(rotate(x, -h)), phi(x)
    out = {}
    for name in base:
        deriv = (np.asarray(plus[name], np.float64) - np.asarray(minus[name], np.float64)) / (2 * h)
        deriv = deriv.reshape(len(x), -1)
        norm = np.linalg.norm(np.asarray(base[name], np.float64).reshape(len(x), -1), axis=1)
        out[name] = np.mean(np.linalg.norm(deriv, axis=1) / norm)
    return out


@pytest.mark.parametrize("shape", [(5, 8, 8, 2), (3, 7, 9, 2)], ids=["square", "non-square"])
def test_invariance_rate_matches_central_difference(shape):
    # The quantity lie_derivative measured before it followed Gruver et al.: nothing rotated back.
    x = jnp.asarray(np.random.default_rng(1).random(shape), jnp.float32)
    got = metrics.invariance_rate(phi_any_size, x, batch_size=2)
    # h = 1e-3: bilinear sampling switches cells between +h and -h, so the central
    # difference is off by O(h) (~2e-3 relative, measured); float32 rounding adds ~1e-7 / h.
    want = _central_difference(phi_any_size, x, 1e-3)
    for name in ("map", "energy"):
        np.testing.assert_allclose(float(got[name]), want[name], rtol=1e-2)


def test_lie_derivative_small_for_rotation_invariant_pool():
    # A radially symmetric image blob, pooled: rotation only moves mass by interpolation.
    yy, xx = np.mgrid[:9, :9] - 4.0
    blob = np.exp(-(yy**2 + xx**2) / 4.0).astype(np.float32)
    x = jnp.asarray(np.repeat(blob[None, :, :, None], 2, axis=-1))
    lie = metrics.lie_derivative(lambda v: {"sum": jnp.sum(v, axis=(1, 2))}, x)
    assert float(lie["sum"]) < 1e-4
    assert float(metrics.invariance_rate(lambda v: {"sum": jnp.sum(v, axis=(1, 2))}, x)["sum"]) < 1e-4


def _separability_reference(f, y):
    f = np.asarray(f, np.float64).reshape(len(f), -1)
    classes = np.unique(y)
    mu = f.mean(0)
    centroids = np.stack([f[y == c].mean(0) for c in classes])
    counts = np.array([(y == c).sum() for c in classes])
    intra = np.mean([np.linalg.norm(f[i] - centroids[np.searchsorted(classes, y[i])]) for i in range(len(f))])
    pairs = [np.linalg.norm(centroids[a] - centroids[b]) for a in range(len(classes)) for b in range(a + 1, len(classes))]
    s_b = sum(n * np.outer(c - mu, c - mu) for n, c in zip(counts, centroids))
    s_w = sum(np.outer(f[i] - centroids[np.searchsorted(classes, y[i])], f[i] - centroids[np.searchsorted(classes, y[i])]) for i in range(len(f)))
    return {"intra_class_distance": intra, "inter_class_distance": np.mean(pairs), "fisher_ratio": np.trace(s_b) / np.trace(s_w)}


def test_separability_matches_float64_numpy():
    rng = np.random.default_rng(2)
    y = rng.choice([2, 5, 9], size=30)
    f = rng.normal(size=(30, 3, 2)).astype(np.float32) + 10.0 + y[:, None, None].astype(np.float32)
    got = metrics.separability(jnp.asarray(f), jnp.asarray(y))
    want = _separability_reference(f, y)
    for key, value in want.items():
        np.testing.assert_allclose(float(got[key]), value, rtol=1e-5, err_msg=key)


def test_separability_jit_equals_eager_with_absent_class():
    rng = np.random.default_rng(3)
    y = jnp.asarray(rng.choice([0, 1, 3], size=20), jnp.int32)  # class 2 of 4 absent
    f = jnp.asarray(rng.normal(size=(20, 5)), jnp.float32)
    eager = metrics.separability(f, y, num_classes=4)
    jitted = jax.jit(functools.partial(metrics.separability, num_classes=4))(f, y)
    renumbered = metrics.separability(f, y)
    for key in eager:
        np.testing.assert_allclose(float(jitted[key]), float(eager[key]), rtol=1e-6)
        np.testing.assert_allclose(float(renumbered[key]), float(eager[key]), rtol=1e-6)


def test_linear_probe_matches_sklearn_ridge_classifier():
    from sklearn.linear_model import RidgeClassifier

    rng = np.random.default_rng(4)
    for n, d in ((60, 5), (30, 50)):
        y = rng.integers(0, 3, size=n + 40)
        f = (rng.normal(size=(n + 40, d)) + 0.8 * np.eye(3, d)[y]).astype(np.float32)
        centred = f[:n] - f[:n].mean(0)
        alpha = 1e-2 * np.trace(centred.T @ centred) / d
        want = RidgeClassifier(alpha=alpha).fit(f[:n], y[:n]).score(f[n:], y[n:])
        got = metrics.linear_probe_accuracy(f[:n], y[:n], f[n:], y[n:], ridge=1e-2)
        assert float(got) == pytest.approx(want, abs=1e-6)


def test_jit_equals_eager():
    inv = jax.jit(lambda x: metrics.invariance_error(phi_generic, "d4", x, batch_size=5))(X_EVAL)
    eq = jax.jit(lambda a, b: metrics.equivariance_error(phi_generic, "d4", a, b, batch_size=5))(X_FIT, X_EVAL)
    lie = jax.jit(lambda x: metrics.lie_derivative(phi_generic, x, batch_size=5))(X_EVAL)
    inv_eager = metrics.invariance_error(phi_generic, "d4", X_EVAL, batch_size=5)
    eq_eager = metrics.equivariance_error(phi_generic, "d4", X_FIT, X_EVAL, batch_size=5)
    lie_eager = metrics.lie_derivative(phi_generic, X_EVAL, batch_size=5)
    for name in ("map", "dense"):
        np.testing.assert_allclose(np.asarray(inv[name]), np.asarray(inv_eager[name]), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(eq.per_element[name]), np.asarray(eq_eager.per_element[name]), rtol=1e-4)
        np.testing.assert_allclose(float(lie[name]), float(lie_eager[name]), rtol=1e-5)


def test_layer_report_rows():
    y_fit = np.arange(20) % 2
    y_eval = np.arange(12) % 2
    rows = metrics.layer_report(phi_symmetric, "d4", X_FIT, X_EVAL, y_eval, y_fit=y_fit, batch_size=8)
    assert [row["name"] for row in rows] == ["map", "pool"]
    for row in rows:
        for key in ("invariance_error", "equivariance_error", "lie_derivative", "invariance_rate", "intra_class_distance",
                    "inter_class_distance", "fisher_ratio", "linear_probe_accuracy"):
            assert isinstance(row[key], float) and np.isfinite(row[key]), key
        assert len(row["invariance_per_element"]) == 8
    pool = rows[1]
    assert pool["invariance_error"] < 1e-5 and pool["equivariance_error"] < 1e-3
    sep = metrics.separability(phi_symmetric(X_EVAL)["map"], y_eval)
    assert rows[0]["fisher_ratio"] == pytest.approx(float(sep["fisher_ratio"]), rel=1e-5)


def test_bad_input():
    y = np.arange(12) % 2
    f = np.zeros((12, 3), np.float32)
    with pytest.raises(ValueError, match="expected labels of shape \\(12,\\)"):
        metrics.separability(f, y[:10])
    with pytest.raises(ValueError, match="at least two classes, got one class"):
        metrics.separability(f, np.zeros(12, np.int32))
    with pytest.raises(ValueError, match="at least two classes"):
        metrics.linear_probe_accuracy(f, np.ones(12, np.int32), f, y)
    with pytest.raises(ValueError, match="layer_report: expected at least two classes"):
        metrics.layer_report(phi_symmetric, "d4", X_FIT, X_EVAL, np.ones(12, np.int32))
    with pytest.raises(TypeError, match="expected integer labels"):
        metrics.separability(f, y.astype(np.float32))
    with pytest.raises(ValueError, match="expected num_classes when labels are traced"):
        jax.jit(metrics.separability)(f, y)
    non_square = jnp.zeros((4, 8, 6, 2), jnp.float32)
    with pytest.raises(ValueError, match="needs square images, got shape \\(4, 8, 6, 2\\)"):
        metrics.invariance_error(phi_symmetric, "d4", non_square)
    crop = lambda x: {"map": phi_symmetric(x)["map"][:, :, 1:]}  # square input, (8, 7) map
    with pytest.raises(ValueError, match="acts only on square feature maps, got layer 'map'"):
        metrics.equivariance_error(crop, "d4", X_FIT, X_EVAL)
    with pytest.raises(ValueError, match="expected images of shape \\(N, H, W, C\\)"):
        metrics.lie_derivative(phi_symmetric, X_FIT[0])
    with pytest.raises(ValueError, match="invariance_error: expected batch_size >= 1, got 0"):
        metrics.invariance_error(phi_symmetric, "d4", X_FIT, batch_size=0)
    with pytest.raises(TypeError, match="non-empty dict of layer activations"):
        metrics.lie_derivative(lambda x: x, X_FIT)
    with pytest.raises(ValueError, match="same image shape"):
        metrics.equivariance_error(phi_symmetric, "d4", X_FIT, X_EVAL[:, :4, :4])
