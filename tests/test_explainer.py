"""The explainer probe (Zhang et al. 2018) and the ICNN filter loss, at tiny shapes."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data, systems
from glassjax.probes.explainer import (
    ExplainerConfig,
    Performer,
    encode,
    filter_loss,
    fit,
    icnn,
    instability,
    landmarks,
    mask,
    receptive,
)
from glassjax.probes.explainer.filter_maps import bank_maps
from glassjax.probes.explainer.heads import head
from glassjax.probes.explainer.templates import log_priors, template_shapes, templates
from glassjax.systems.alexnet import model as alexnet
from glassjax.systems.alexnet.system import AlexNetConfig, AlexNetParams


def _reference_loss(x, beta=4.0):
    """-MI(X; Omega) per filter, float64 numpy, written from the paper's formulas directly."""
    n, h, w, f = x.shape
    size, p = max(h, w), h * w
    tau, alpha = 0.5 / p, p / (1.0 + p)
    temps, priors = [], []
    for mi in range(h):
        for mj in range(w):
            t = np.array([[tau * max(1 - beta * (abs(i - mi) + abs(j - mj)) / size, -1) for j in range(w)]
                          for i in range(h)])
            temps.append(t)
            priors.append(alpha / p)
    temps.append(np.full((h, w), -tau))
    priors.append(1 - alpha)
    out = []
    for k in range(f):
        px_t = np.array([[np.exp(np.trace(x[i, :, :, k].T @ t)) for i in range(n)] for t in temps])  # (T, N)
        px_t /= px_t.sum(axis=1, keepdims=True)
        px = (np.array(priors)[:, None] * px_t).sum(axis=0)
        mi = sum(priors[t] * np.sum(px_t[t] * np.log(px_t[t] / px)) for t in range(len(temps)))
        out.append(-mi)
    return np.array(out)


@pytest.fixture(scope="module")
def faces():
    d = data.load("lfw_faces", seed=0)
    return d._replace(x_train=d.x_train[::4], y_train=d.y_train[::4], x_test=d.x_test[::4], y_test=d.y_test[::4])


@pytest.fixture(scope="module")
def performer():
    """A tiny, untrained AlexNet (widths 4..8, 64 px): the explainer only needs its layers."""
    weights = alexnet.init(jax.random.key(1), 2, widths=(4, 8, 8, 8, 8), hidden=(16, 16))
    return Performer(systems.get("alexnet"), AlexNetParams(AlexNetConfig(width=0.05), ("face", "non-face"), weights))


TINY = ExplainerConfig(filters=4, interpretable_layers=1, hidden=8, epochs=2, batch_size=8)


# --- templates, the filter loss, the mask --------------------------------------------------------


def test_templates_follow_the_paper():
    t = templates(3, 3)
    tau = 0.5 / 9
    assert t.shape == (10, 3, 3) and t.dtype == np.float32
    # centre template: 1 at the centre, 1 - 4/3 one step away, max(1 - 8/3, -1) = -1 two steps away
    np.testing.assert_allclose(t[4] / tau, [[-1, -1 / 3, -1], [-1 / 3, 1, -1 / 3], [-1, -1 / 3, -1]], rtol=1e-6)
    np.testing.assert_allclose(t[-1], -tau)
    assert np.argmax(t[5]) == 5  # template mu peaks at mu (row-major)
    np.testing.assert_allclose(np.exp(log_priors(3, 3).astype(np.float64)).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(log_priors(3, 3)[-1]), 1 / 10, rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 3, 3, 2), (4, 3, 4, 3)])
def test_filter_loss_matches_float64_reference(shape):
    x = np.abs(np.random.default_rng(0).normal(size=shape)).astype(np.float32) * 20  # large enough to matter
    got = np.asarray(filter_loss(jnp.asarray(x)))
    np.testing.assert_allclose(got, _reference_loss(x.astype(np.float64)), rtol=2e-4, atol=1e-6)  # float32 sums


def test_filter_loss_rewards_one_sharp_part_per_map():
    """-MI is lower when each map is one peak (a template explains it) than when its mass is spread evenly."""
    n, rng = 6, np.random.default_rng(1)
    sharp = np.zeros((n, 3, 3, 1), np.float32)
    sharp[np.arange(n), rng.integers(0, 3, n), rng.integers(0, 3, n), 0] = 90.0
    even = np.full_like(sharp, 10.0)
    loss_sharp, loss_even = float(filter_loss(jnp.asarray(sharp))[0]), float(filter_loss(jnp.asarray(even))[0])
    assert loss_sharp < loss_even
    assert abs(loss_even) < 1e-6  # identical maps carry no information about the template
    assert -loss_sharp <= np.log(10) + 1e-5  # MI <= H(Omega), 10 templates of a 3 x 3 map


def test_mask_keeps_the_peak_and_its_gradient_ignores_the_position():
    x = jnp.asarray(np.abs(np.random.default_rng(2).normal(size=(3, 3, 3, 2))).astype(np.float32))
    out = mask(x)
    flat = np.asarray(x).reshape(3, 9, 2)
    peak = flat.argmax(axis=1)
    np.testing.assert_array_equal(np.asarray(out).reshape(3, 9, 2).max(axis=1), flat.max(axis=1))
    assert np.all(np.asarray(out) >= 0)
    w = jnp.asarray(np.random.default_rng(3).normal(size=x.shape).astype(np.float32))
    grad = np.asarray(jax.grad(lambda a: jnp.sum(w * mask(a)))(x))
    shapes = template_shapes(3, 3)
    chosen = np.transpose(shapes[peak], (0, 2, 3, 1))  # (N, h, w, F): the template at each argmax
    expected = np.asarray(w) * chosen * (np.asarray(x) * chosen > 0)  # mu a constant: no term from moving it
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


# --- the explainer -----------------------------------------------------------------------------


def test_fit_keeps_the_performer_frozen_and_is_reproducible(performer, faces):
    before = jax.tree.map(lambda a: np.array(a, copy=True), performer.params.weights)
    a = fit(performer, faces.x_train, TINY, key=jax.random.key(0))
    for old, new in zip(jax.tree.leaves(before), jax.tree.leaves(performer.params.weights)):
        np.testing.assert_array_equal(old, np.asarray(new))  # bit-identical
    b = fit(performer, faces.x_train, TINY, key=jax.random.key(0))
    for u, v in zip(jax.tree.leaves(a.weights), jax.tree.leaves(b.weights)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert [t.name for t in a.targets] == ["conv5", "fc7"]
    maps = performer.system.features(performer.params, faces.x_test)["conv4"]
    enc = encode(a, maps)
    assert 0.0 <= float(enc.p) <= 1.0
    assert enc.interpretable[-1].shape == maps.shape[:3] + (TINY.filters,)
    assert enc.reconstructed["fc7"].shape == (faces.x_test.shape[0], 16)
    assert len(a.info["history"]) == TINY.epochs


def test_eta_pushes_p_up(performer, faces):
    low = fit(performer, faces.x_train, dataclasses.replace(TINY, eta=0.0, epochs=3), key=jax.random.key(0))
    high = fit(performer, faces.x_train, dataclasses.replace(TINY, eta=5.0, epochs=3), key=jax.random.key(0))
    maps = performer.system.features(performer.params, faces.x_test)["conv4"]
    assert float(encode(high, maps).p) > float(encode(low, maps).p)


def test_alexnet_head_reproduces_the_scores(performer, faces):
    feats = performer.system.features(performer.params, faces.x_test)
    scores = np.asarray(performer.system.scores(performer.params, faces.x_test))
    for layer in ("conv5", "fc7"):
        np.testing.assert_allclose(np.asarray(head(performer, layer, faces.x_test[:2])(feats[layer])), scores,
                                   rtol=1e-4, atol=1e-5)


def test_icnn_training_runs_and_masks(faces):
    config = AlexNetConfig(epochs=1, width=0.05, batch_size=16)
    params = icnn.train(faces, layer="conv4", config=config, key=jax.random.key(0))
    assert params.info["icnn_layer"] == "conv4" and len(params.info["history"]) == 1
    pred = icnn.scores(params, faces.x_test, "conv4")
    assert pred.shape == (faces.x_test.shape[0],) and set(np.unique(pred)) <= {0, 1}


# --- location instability ------------------------------------------------------------------------


def test_instability_is_zero_for_a_fixed_part_and_matches_a_hand_computation():
    rng = np.random.default_rng(4)
    n = 6
    values = rng.uniform(1, 2, (n, 2))
    positions = np.stack([np.full(n, 4), rng.integers(0, 9, n)], axis=1)
    centres = receptive.grid_centres(3, 3, (30, 40))
    marks = np.broadcast_to(np.array([[5.0, 5.0], [20.0, 30.0]]), (n, 2, 2))
    got = instability.filter_instability(values, positions, centres, marks, (30, 40), top=4)
    assert got[0] == 0.0
    top = np.argsort(-values[:, 1])[:4]
    pts = centres.reshape(-1, 2)[positions[top, 1]]
    d = np.linalg.norm(pts[:, None] - marks[top], axis=-1) / 50.0
    np.testing.assert_allclose(got[1], d.std(axis=0).mean())
    values[:, 0] = 0.0  # a filter that never fires is not measured
    assert np.isnan(instability.filter_instability(values, positions, centres, marks, (30, 40), top=4)[0])


def test_alexnet_centres_follow_its_geometry():
    c = receptive.alexnet_centres("conv4", 3, 3, 64, (25, 25))
    np.testing.assert_allclose(c[:, 0, 0], (np.array([15.0, 31.0, 47.0]) + 0.5) * 25 / 64 - 0.5)
    c2 = receptive.alexnet_centres("conv1", 15, 15, 64, (64, 64))
    np.testing.assert_allclose(c2[:3, 0, 0], [3.0, 7.0, 11.0])  # 4 i - 2 + 5


def test_face_landmarks_and_bank_maps():
    pts = landmarks.face_landmarks(2, (25, 25, 1))
    assert pts.shape == (2, 4, 2)
    np.testing.assert_allclose(pts[0, 0], landmarks.FACE_LANDMARKS["left eye"])
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 2, 3, 0] = 1.0
    maps = bank_maps(np.ones((1, 3, 3, 1), np.float32), x)
    assert maps.shape == (1, 4, 4, 2) and maps[..., 1].max() == 0.0
    _, pos = instability.peaks(maps[..., :1])
    assert receptive.window_centres(4, 4, 3).reshape(-1, 2)[pos[0, 0]].tolist() == [1.0, 2.0]  # window (0, 1), the first holding it


# --- bad input -----------------------------------------------------------------------------------


def test_bad_input_gives_one_line_errors(performer, faces):
    with pytest.raises(ValueError, match="filters >= 1"):
        ExplainerConfig(filters=0).validated()
    with pytest.raises(ValueError, match="batch_size >= 2"):
        ExplainerConfig(batch_size=1).validated()
    with pytest.raises(ValueError, match="expected a spatial"):
        fit(performer, faces.x_train, ExplainerConfig(layer="fc6"), key=jax.random.key(0))
    with pytest.raises(ValueError, match="expected layer one of"):
        fit(performer, faces.x_train, ExplainerConfig(layer="conv9"), key=jax.random.key(0))
    with pytest.raises(ValueError, match="expected targets among the layers after conv4"):
        fit(performer, faces.x_train, ExplainerConfig(targets=("conv2",)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="N >= 2"):
        filter_loss(jnp.ones((1, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"expected maps \(N, h, w, F\)"):
        mask(jnp.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="expected top in 2..3"):
        instability.filter_instability(np.ones((3, 1)), np.zeros((3, 1), int), receptive.grid_centres(1, 1, (4, 4)),
                                       np.zeros((3, 1, 2)), (4, 4), top=5)
    with pytest.raises(ValueError, match="stated landmarks"):
        landmarks.for_dataset("cifar10", np.zeros((1, 4, 4, 1)), np.zeros(1), ("a",))


# --- the command ---------------------------------------------------------------------------------


def test_explain_command_smoke(performer, tmp_path, capsys):
    from glassjax import cli

    model = tmp_path / "alexnet.npz"
    systems.get("alexnet").save(performer.params, model)
    out = tmp_path / "out"
    code = cli.main(["explain", "--model", str(model), "--quick", "--no-icnn", "--no-glassbox", "--filters", "4",
                     "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("instability_performer", "instability_explainer", "instability_glassbox", "p", "reconstruction_error",
              "head_accuracy", "head_accuracy_reconstructed", "train_seconds"):
        assert k in summary
    assert 0 <= summary["p"] <= 1 and summary["instability_glassbox"] is None
    assert (out / "explain.json").is_file() and (out / "explain.html").is_file()
    assert (out / "explainer_top_explainer.png").stat().st_size > 0
    assert cli.main(["explain", "--model", str(model), "--top", "1", "--out", str(out)]) == 2
    assert "--top: expected at least 2" in capsys.readouterr().err
