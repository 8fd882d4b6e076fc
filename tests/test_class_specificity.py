"""Class-specificity metrics (glassjax.analysis.class_specificity) against independent references:
the kNN mutual information of Ross (2014) in numpy float64, analytic gradients of tiny systems,
numpy Gaussian blur and bilinear resize, scikit-learn's ROC AUC, and the glass-box's own filters."""
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma

from glassjax import data, report
from glassjax.analysis import class_specificity as cs
from glassjax.analysis import comparison
from glassjax.systems import System, get
from glassjax.systems.csg import cnn, gates
from glassjax.systems.csg.config import CNNCSGConfig
from glassjax.systems.csg.system import CSGParams


@dataclasses.dataclass(frozen=True)
class _NoConfig:
    """No settings."""


def _fake(features, scores, classes=("a", "b", "c")) -> System:
    return System(name="fake", description="a test system", title="fake", config=_NoConfig(), fit=lambda *a, **k: None,
                  features=features, scores=scores, save=lambda p, path: None, load=lambda path: None,
                  representation=lambda p: "maps", class_names=lambda p: classes)


def _conv_features(params, x):
    maps = jax.lax.conv_general_dilated(x, params["kernel"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision="highest")
    return {"maps": jax.nn.relu(maps + params["bias"].reshape(1, 1, 1, -1)), "flat": x.reshape(x.shape[0], -1)}


def _linear_scores(params, x):
    return jnp.dot(x.reshape(x.shape[0], -1), params["matrix"], precision="highest")


@pytest.fixture(scope="module")
def fake():
    rng = np.random.default_rng(0)
    params = {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32),
              "bias": jnp.asarray(rng.normal(size=(4,)) * 0.3, jnp.float32),
              "matrix": jnp.asarray(rng.normal(size=(6 * 6 * 2, 3)), jnp.float32)}
    return comparison.Fitted(_fake(_conv_features, _linear_scores), params, 0.0)


@pytest.fixture(scope="module")
def tiny():
    d = data.load("digits", classes=["0", "1", "2"])
    return d._replace(x_train=d.x_train[:60], y_train=d.y_train[:60], x_test=d.x_test[:30], y_test=d.y_test[:30])


def _untrained(tiny, gate):
    """A cnn_csg network with its initial weights (no training: the metrics need only a network)."""
    weights = cnn.init(jax.random.key(0), 3, 1, channels=8)
    history = [{"epoch": e + 1, "path": p, "loss": 1.0, "sparsity": 0.0, "density": 0.5, "accuracy_gate_off": 0.5,
                "accuracy_gate_true": 0.6 if gate is not None else float("nan"), "seconds": 1.0}
               for e, p in enumerate(("standard", "csg", "standard"))]
    params = CSGParams(CNNCSGConfig(channels=8, gates=gate is not None), "cnn_csg", tiny.class_names, weights, gate,
                       {"history": history, "train_seconds": 3.0})
    return comparison.Fitted(get("cnn_csg"), params, 3.0)


@pytest.fixture(scope="module")
def csg(tiny):
    return _untrained(tiny, gates.renormalise(jax.random.uniform(jax.random.key(1), (8, 3))))


# --- mutual information ---------------------------------------------------------------------


def _ross_mi(x: np.ndarray, labels: np.ndarray, k: int = 3) -> float:
    """Ross (2014), MI between a continuous x (N,) and discrete labels (N,): psi(N) - <psi(N_x)> +
    psi(k) - <psi(m)>, m counting every point closer than the k-th same-label neighbour (self included)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    m = np.zeros(n)
    n_label = np.zeros(n)
    for i in range(n):
        same = labels == labels[i]
        d_same = np.sort(np.abs(x[same] - x[i]))  # d_same[0] = 0 is the point itself
        radius = d_same[k]
        m[i] = np.sum(np.abs(x - x[i]) < radius)
        n_label[i] = same.sum()
    return max(0.0, digamma(n) - np.mean(digamma(n_label)) + digamma(k) - np.mean(digamma(m)))


def test_mutual_information_matches_ross_estimator_and_scikit_learn():
    from sklearn.feature_selection import mutual_info_classif

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    features = np.stack([y + rng.normal(0, 0.7, 150), rng.normal(size=150), (y == 2) * 2.0 + rng.normal(0, 1, 150),
                         np.zeros(150), np.round(np.maximum(y + rng.normal(0, 1, 150), 0), 1)], 1)
    mi = cs.mutual_information(features, y, 3, seed=4)
    # The reference's own call; the last two features, dead and heavily tied, depend on its tie-breaking noise.
    sklearn = np.stack([mutual_info_classif(features, y == c, random_state=4) for c in range(3)])
    np.testing.assert_allclose(mi, sklearn, rtol=1e-10, atol=1e-12)
    # Ross (2014) written out, on the tie-free features: the noise of 1e-10 changes no count.
    want = np.array([[_ross_mi(features[:, k], y == c) for k in range(3)] for c in range(3)])
    np.testing.assert_allclose(mi[:, :3], want, atol=1e-9)
    # The noise feature: near 0 (the kNN estimate of 150 samples is biased by a few hundredths).
    assert mi[:, 1].max() < 0.1 < mi[:, 0].max() and mi[2, 2] > mi[0, 2] and mi[:, 3].max() < 0.05


def test_mis_is_mean_over_filters_of_max_over_classes():
    mi = np.array([[0.1, 0.5, 0.0], [0.3, 0.2, 0.0]])
    assert cs.mis(mi) == pytest.approx((0.3 + 0.5 + 0.0) / 3, abs=1e-15)
    with pytest.raises(ValueError, match=r"expected an MI matrix \(C, K\)"):
        cs.mis(np.zeros(3))
    with pytest.raises(ValueError, match="expected features"):
        cs.mutual_information(np.zeros((4, 2)), np.zeros(3), 2)


def test_pooled_features_and_filter_layer(fake):
    x = np.random.default_rng(1).uniform(size=(5, 6, 6, 2)).astype(np.float32)
    pooled = cs.pooled_features(fake, x, "maps", batch_size=2)
    maps = np.asarray(_conv_features(fake.params, jnp.asarray(x))["maps"], np.float64)
    np.testing.assert_allclose(pooled, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert cs.filter_layer(fake, (6, 6, 2)) == "maps"  # the deepest spatial layer, not the later vector
    assert cs.filter_classes(fake, (6, 6, 2)) is None


def test_top_filters_and_gate_density():
    pooled = np.array([[1.0, 5, 3], [3, 1, 2], [2, 2, 9]])
    y = np.array([0, 1, 0])
    np.testing.assert_array_equal(cs.top_filters(pooled, y, 2, 2), [[2, 1], [0, 2]])  # class means (1.5, 3.5, 6), (3, 1, 2)
    np.testing.assert_array_equal(cs.preferred_classes(pooled, y, 2), [[0, 1], [1, 0], [1, 0]])  # 1.5 < 3; 3.5, 6 > 1, 2
    assert cs.gate_density(np.array([[1.0, 0.0], [0.5, 0.5]])) == 0.5


@pytest.mark.slow
def test_glassbox_filter_classes_are_its_filters_classes(tiny):
    """Zeroing one filter of the glass-box changes exactly the response features of that filter:
    every one of them must be labelled with the filter's class."""
    fitted = comparison.fit("glassbox", tiny, seed=0, group="flip", filters_per_class=3, filters="both")
    layer, onehot = cs.filter_classes(fitted, tiny.x_test.shape[1:])
    assert layer == "response" and np.all(onehot.sum(axis=1) == 1)
    respond = jax.jit(lambda p, x: fitted.system.features(p, x)["response"])
    base = np.asarray(respond(fitted.params, tiny.x_test[:8]))
    labelled = np.zeros(onehot.shape[0], bool)
    for name in ("patches", "prototypes"):  # both banks: patch filters, then class prototypes
        bank = getattr(fitted.params, name)
        for f in range(bank.filters.shape[0]):
            zeroed = eqx.tree_at(lambda p, name=name: getattr(p, name), fitted.params,
                                 bank._replace(filters=bank.filters.at[f].set(0)))
            changed = np.flatnonzero(np.any(np.asarray(respond(zeroed, tiny.x_test[:8])) != base, axis=0))
            assert changed.size and np.all(onehot[changed].argmax(axis=1) == int(bank.classes[f]))
            labelled[changed] = True
    # Every feature that responds at all belongs to a filter (a prototype's negative half is 0 on
    # images of non-negative pixels, whose correlation with a non-negative prototype is never negative).
    live = np.any(base != 0, axis=0)
    assert labelled[live].all() and live.sum() > 0.8 * live.size


# --- localization ---------------------------------------------------------------------------


def test_gradient_maps_match_the_analytic_gradient(fake):
    """Pooled filter k = mean_ij relu(sum x[i+a, j+b, c] w[a, b, c, k] + b_k): its gradient at x[p, q, c]
    is sum over active (i, j) of w[p-i, q-j, c, k] / (h w)."""
    x = np.random.default_rng(2).uniform(size=(2, 6, 6, 2))
    filters = np.array([[0, 3], [2, 1]])
    maps = cs.gradient_maps(fake, "maps", x.astype(np.float32), filters, batch_size=1)
    w, b = np.asarray(fake.params["kernel"], np.float64), np.asarray(fake.params["bias"], np.float64)
    for n in range(2):
        for slot, k in enumerate(filters[n]):
            grad = np.zeros((6, 6, 2))
            for i in range(4):
                for j in range(4):
                    if np.sum(x[n, i:i + 3, j:j + 3] * w[..., k]) + b[k] > 0:
                        grad[i:i + 3, j:j + 3] += w[..., k] / 16
            np.testing.assert_allclose(maps[n, slot], np.sqrt((grad ** 2).sum(-1)), rtol=1e-4, atol=1e-7)


def _numpy_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian (truncated at 4 sigma), half-sample symmetric borders, float64."""
    radius = int(4 * sigma + 0.5)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-t ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    padded = np.pad(image, radius, mode="symmetric")
    rows = np.stack([np.convolve(r, kernel, mode="valid") for r in padded])
    return np.stack([np.convolve(c, kernel, mode="valid") for c in rows.T]).T


def test_binarise_gradient_maps_against_numpy():
    maps = np.random.default_rng(3).gamma(1.0, size=(2, 3, 12, 10))
    got = cs.binarise_gradient_maps(maps, 1.3)
    for i in np.ndindex(2, 3):
        m = maps[i] / np.sqrt(np.mean(maps[i] ** 2))
        np.testing.assert_array_equal(got[i], _numpy_blur(m, 1.3) > 1)
    np.testing.assert_array_equal(cs.binarise_gradient_maps(7 * maps, 1.3), got)  # scale-free
    assert not cs.binarise_gradient_maps(np.zeros((1, 4, 4)), 1.0).any()  # a dead filter marks nothing


def test_binarise_top_iou_and_masks():
    maps = np.random.default_rng(4).permutation(100).reshape(1, 10, 10).astype(float)
    top = cs.binarise_top(maps, 0.3)
    assert top.sum() == 30 and np.all(maps[top] >= 70)
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, :2] = True  # 8 pixels
    b[0, 1:3] = True  # 8 pixels, 4 shared
    assert cs.iou(a, b)[0] == pytest.approx(4 / 12) and cs.iou(b[:, :0], b[:, :0]).shape == (1,)
    x = np.zeros((3, 25, 25, 1), np.float32)
    x[0, 3, 4] = 0.7
    strokes, index, kind = cs.object_masks("mnist5k", x, np.zeros(3), tuple("0123456789"))
    assert strokes.sum() == 1 and strokes[0, 3, 4] and kind.startswith("stroke") and index.tolist() == [0, 1, 2]
    faces, index, _ = cs.object_masks("lfw_faces", x, np.array([0, 1, 0]), ("face", "non-face"))
    assert index.tolist() == [0, 2] and faces[0, 12, 12] and not faces[0, 0, 0] and not faces[0, 12, 2]
    assert faces[0].sum() == pytest.approx(np.pi * 0.42 * 25 * 0.32 * 25, rel=0.03)  # the ellipse's area
    assert cs.object_masks("cifar10", x, np.zeros(3), ("a",)) is None


def _numpy_bilinear(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling with half-pixel centres and clamped borders (torch align_corners=False)."""
    def axis(n_in, n_out):
        pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        return np.clip(lo, 0, n_in - 1), np.clip(lo + 1, 0, n_in - 1), frac

    r0, r1, fr = axis(image.shape[0], h)
    c0, c1, fc = axis(image.shape[1], w)
    rows = image[r0] * (1 - fr)[:, None] + image[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def test_cam_maps_are_upsampled_cam(csg, tiny):
    x, y = tiny.x_test[:4], tiny.y_test[:4]
    cams = cs.cam_maps(csg, x, y, batch_size=3)
    acts = csg.system.features(csg.params, x)
    w = np.asarray(csg.params.weights["fc"]["kernel"], np.float64)
    a = np.asarray(acts["conv3"], np.float64)
    for n in range(4):
        cam = np.einsum("hwk,k->hw", a[n], w[:, y[n]]) / (a.shape[1] * a.shape[2])
        np.testing.assert_allclose(cams[n], _numpy_bilinear(cam, 8, 8), rtol=1e-4, atol=1e-6)
    assert cs.cam_maps(comparison.Fitted(csg.system, {"no": jnp.zeros(1)}, 0.0), x, y) is None


# --- adversarial images and detection ------------------------------------------------------


def test_fgsm_is_the_sign_of_the_analytic_gradient(fake):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.8, (6, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    moved = cs.fgsm(fake, x, y, 0.05, batch_size=4)
    m = np.asarray(fake.params["matrix"], np.float64)
    s = x.reshape(6, -1).astype(np.float64) @ m
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = ((p - np.eye(3)[y]) @ m.T).reshape(x.shape)  # d CE / dx of a linear softmax model
    clear = np.abs(grad) > 1e-5  # where float32 could not tell the sign, skip
    np.testing.assert_allclose(moved[clear], (x + 0.05 * np.sign(grad))[clear], atol=1e-6)


def test_pgd_stays_in_the_ball_and_raises_the_loss(fake):
    rng = np.random.default_rng(6)
    x = rng.uniform(size=(5, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    moved = cs.pgd(fake, x, y, 0.1, steps=5, key=jax.random.key(0), batch_size=2)
    assert np.all(np.abs(moved - x) <= 0.1 + 1e-6) and moved.min() >= 0 and moved.max() <= 1
    np.testing.assert_array_equal(moved, cs.pgd(fake, x, y, 0.1, steps=5, key=jax.random.key(0), batch_size=2))

    def loss(images):
        s = np.asarray(_linear_scores(fake.params, jnp.asarray(images)), np.float64)
        return -(s[np.arange(5), y] - np.log(np.exp(s).sum(1)))

    assert np.all(loss(moved) > loss(x))


def test_evidence_ratio_and_logistic_auc():
    a = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    g = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    r = cs.evidence_ratio(a, g, np.array([0, 1, 1]))
    np.testing.assert_allclose(r, [(1 + 1.5) / 4, 0.0, (1 + 4) / 8])
    with pytest.raises(ValueError, match=r"expected pooled \(N, K\) and a gate \(K, C\)"):
        cs.evidence_ratio(a, g.T, np.zeros(3, int))
    rng = np.random.default_rng(7)
    clean = rng.normal(size=(40, 3))
    assert cs._logistic_auc(clean, clean + 5.0, np.arange(40), seed=0) == 1.0
    same = cs._logistic_auc(clean, rng.normal(size=(40, 3)), np.arange(40), seed=0)
    assert 0.25 < same < 0.75  # no signal: chance, give or take 40 pairs' noise


# --- one system, the section, the figures ---------------------------------------------------


def test_evaluate_run_and_figures(csg, tiny):
    standard = _untrained(tiny, None)
    section = cs.run(tiny, {"cnn_csg": csg, "standard": standard}, seed=0, images=30, localization_images=6,
                     detection_images=12, top=2)
    result = section["systems"]["cnn_csg"]
    assert result["layer"] == "conv3" and result["filters"] == 8 and np.shape(result["mi_matrix"]) == (3, 8)
    assert result["mis"] == pytest.approx(cs.mis(np.asarray(result["mi_matrix"])), abs=1e-6)  # stored to 1e-6
    assert result["gate_density"] == pytest.approx(cs.gate_density(np.asarray(csg.params.gate)), rel=1e-6)
    loc, det = result["localization"], result["detection"]
    assert loc["images"] == 6 and 0 <= loc["gradient_ap"] <= 1 and 0 <= loc["cam_ap"] <= 1
    assert set(det) >= {"fgsm", "pgd"} and 0 <= det["pgd"]["success_rate"] <= 1
    assert len(result["history"]) == 3 and section["systems"]["standard"]["gate_density"] is None
    summary = cs.csg_summary(result, section["systems"]["standard"])
    for key in ("accuracy", "accuracy_standard", "mis", "mis_standard", "gate_density", "localization_ap",
                "localization_ap_standard", "detection_auc", "detection_auc_standard"):
        assert key in summary
    assert [row["system"] for row in cs.table_rows(section)] == ["cnn_csg", "standard"]
    figures = report.class_specificity_figures(section)
    assert set(figures) == {"class_specificity_matrix.png", "class_specificity_summary.png",
                            "class_specificity_leakage.png"}
    assert all(png.startswith(b"\x89PNG") for png in figures.values())
