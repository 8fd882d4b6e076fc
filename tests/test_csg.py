"""Class-specific gates (glassjax.systems.csg): the gate's algebra against numpy float64, the small
CNN and AlexNet's gated conv5 against independent computations, the schedule against the
reference's rule, and training: seeded, bit-reproducible, resumable, standard = gates off."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data, systems
from glassjax.core import parallel
from glassjax.systems.alexnet import model as alexnet
from glassjax.systems.csg import cnn, gates, networks, training
from glassjax.systems.csg.config import AlexNetCSGConfig, CNNCSGConfig, is_csg_epoch
from glassjax.systems.csg.system import CSGParams, load, save


@pytest.fixture(scope="module")
def tiny():
    """Digits 0, 1, 2 (8x8): 48 train and 24 test images."""
    d = data.load("digits", classes=["0", "1", "2"])
    return d._replace(x_train=d.x_train[:48], y_train=d.y_train[:48], x_test=d.x_test[:24], y_test=d.y_test[:24])


# A schedule with every kind of epoch in 3 epochs: standard (warm-up), CSG, standard.
TINY = dict(channels=8, epochs=3, batch_size=16, warmup_epochs=1, gate_period=2, gate_phase=1, gate_learning_rate=0.05,
            gate_sparsity=0.05)


@pytest.fixture(scope="module")
def trained(tiny):
    config = CNNCSGConfig(**TINY)
    return config, training.train(config, tiny, key=jax.random.key(3), mesh=parallel.make_mesh(jax.devices()[:1]))


# --- the gate -------------------------------------------------------------------------------


def test_gate_init_and_bad_arguments():
    g = gates.init(5, 3)
    assert g.shape == (5, 3) and g.dtype == jnp.float32 and np.all(np.asarray(g) == 0.5)
    with pytest.raises(ValueError, match="expected channels a positive int"):
        gates.init(0, 3)
    with pytest.raises(ValueError, match=r"expected value in \(0, 1\]"):
        gates.init(2, 3, value=1.5)
    with pytest.raises(ValueError, match=r"expected a gate of shape \(4, 3\)"):
        gates.check(np.zeros((5, 3)), "here", channels=4, num_classes=3)


def test_gate_rows_apply_sparsity_density_against_numpy():
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 1, (6, 4))
    y = np.array([2, 0, 3])
    a = rng.normal(size=(3, 2, 2, 6))
    rows = np.asarray(gates.rows(jnp.asarray(g, jnp.float32), jnp.asarray(y)))
    np.testing.assert_allclose(rows, g[:, y].T, rtol=1e-6)
    gated = np.asarray(gates.apply(jnp.asarray(a, jnp.float32), jnp.asarray(rows)))
    np.testing.assert_allclose(gated, a * g[:, y].T[:, None, None, :], rtol=1e-5, atol=1e-6)
    for d in (0.2, 0.9):  # active (||G||_1 = 12 > d K C = 4.8) and inactive (21.6)
        want = max(np.abs(g).sum() - d * g.size, 0.0)
        np.testing.assert_allclose(float(gates.sparsity(jnp.asarray(g, jnp.float32), d)), want, rtol=1e-5, atol=1e-5)
    assert gates.density(g) == pytest.approx(np.abs(g).sum() / g.size, rel=1e-12)


def test_sparsity_gradient_matches_finite_differences():
    g = np.random.default_rng(1).uniform(0.1, 1, (4, 3)).astype(np.float32)
    grad = np.asarray(jax.grad(lambda x: gates.sparsity(x, 0.2))(jnp.asarray(g)))
    eps = 1e-2  # the loss is linear where it is active: central differences are exact up to rounding
    fd = np.zeros_like(g)
    for i in np.ndindex(g.shape):
        up, down = g.copy(), g.copy()
        up[i] += eps
        down[i] -= eps
        fd[i] = (float(gates.sparsity(jnp.asarray(up), 0.2)) - float(gates.sparsity(jnp.asarray(down), 0.2))) / (2 * eps)
    np.testing.assert_allclose(grad, fd, atol=1e-3)
    np.testing.assert_array_equal(grad, np.ones_like(g))  # d||G||_1 / dG = sign(G) = 1 for positive entries


def test_renormalise_against_numpy():
    g = np.array([[0.2, 0.4, 0.1], [1.3, -0.2, 0.65], [-0.1, -0.3, -0.2], [0.0, 0.0, 0.0]], np.float32)
    out = np.asarray(gates.renormalise(jnp.asarray(g)))
    ref = np.clip(g[:2].astype(np.float64) / g[:2].max(axis=1, keepdims=True), 0, 1)
    np.testing.assert_allclose(out[:2], ref, rtol=1e-6)
    np.testing.assert_array_equal(out[2:], np.ones((2, 3)))  # every class closed: reopened, never NaN
    np.testing.assert_array_equal(out.max(axis=1), np.ones(4))  # every filter fully open for some class
    np.testing.assert_array_equal(np.asarray(gates.renormalise(jnp.asarray(out))), out)  # idempotent


# --- the networks ---------------------------------------------------------------------------


def _numpy_conv_relu(x, kernel, bias):
    """3x3 'same' correlation + bias + ReLU in float64 loops: x (N, H, W, C), kernel (3, 3, C, F)."""
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = np.einsum("nabc,abcf->nf", padded[:, i:i + 3, j:j + 3], kernel)
    return np.maximum(out + bias, 0)


def test_cnn_forward_against_numpy_and_gating_is_linear_before_the_pool():
    params = cnn.init(jax.random.key(0), 3, 1, channels=6)
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    logits, acts = cnn.forward(params, jnp.asarray(x))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    a1 = _numpy_conv_relu(x.astype(np.float64) - 0.5, p["conv1"]["kernel"], p["conv1"]["bias"])
    np.testing.assert_allclose(np.asarray(acts["conv1"]), a1, rtol=1e-4, atol=1e-5)
    pool = np.asarray(acts["pool"], np.float64)
    np.testing.assert_allclose(pool, np.asarray(acts["conv3"], np.float64).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(logits), pool @ p["fc"]["kernel"] + p["fc"]["bias"], rtol=1e-4, atol=1e-5)
    # The gate multiplies conv3 before the average pool, so the gated logits are (pool * g) W + b.
    g = np.random.default_rng(1).uniform(size=(2, 6))
    gated, _ = cnn.forward(params, jnp.asarray(x), jnp.asarray(g, jnp.float32))
    np.testing.assert_allclose(np.asarray(gated), (pool * g) @ p["fc"]["kernel"] + p["fc"]["bias"], rtol=1e-4, atol=1e-5)
    assert acts["conv1"].shape == (2, 8, 8, 3) and acts["conv3"].shape == (2, 2, 2, 6)


def test_cnn_check_params():
    params = cnn.init(jax.random.key(0), 3, 1, channels=4)
    cnn.check_params(params)
    bad = dict(params, fc={"kernel": jnp.zeros((5, 3)), "bias": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"expected kernel \(4, C\)"):
        cnn.check_params(bad)
    with pytest.raises(ValueError, match="expected layers"):
        cnn.check_params({"conv1": params["conv1"]})


@pytest.fixture(scope="module")
def alexnet_weights():
    """A narrow AlexNet (conv5: 13 filters) for 3 classes, drawn once: its initialisers compile slowly."""
    return networks.ALEXNET.init(jax.random.key(0), 3, (8, 8, 1), AlexNetCSGConfig(width=0.05))


def test_alexnet_gate_on_conv5_equals_scaling_fc6_inputs(alexnet_weights):
    """Max pooling commutes with a non-negative per-channel scale and the adaptive pool is linear, so
    gating conv5 equals scaling fc6's input rows (NHWC flatten: channel fastest) by the gate."""
    weights = alexnet_weights
    x = alexnet.preprocess(np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32), 64)
    k = networks.channels(networks.ALEXNET, weights)
    g = np.random.default_rng(1).uniform(size=(k,)).astype(np.float32)
    gated = jax.jit(lambda w, rows: networks.ALEXNET.logits(w, x, rows, False, None))(weights, jnp.asarray(np.stack([g, g])))
    scaled = dict(weights, fc6={"kernel": weights["fc6"]["kernel"] * jnp.asarray(np.tile(g, 36))[:, None],
                                "bias": weights["fc6"]["bias"]})
    np.testing.assert_allclose(np.asarray(gated), np.asarray(alexnet.apply(scaled, x)), rtol=1e-4, atol=1e-5)
    ungated = jax.jit(lambda w: networks.ALEXNET.logits(w, x, None, False, None))(weights)
    np.testing.assert_allclose(np.asarray(ungated), np.asarray(alexnet.apply(weights, x)), rtol=1e-6, atol=1e-6)


def test_grad_cam_of_the_small_cnn_is_cam():
    """With global average pooling and a linear head, Grad-CAM = sum_k W[k, y] A_k / (h w) (CAM)."""
    params = cnn.init(jax.random.key(2), 3, 1, channels=6)
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(3, 12, 12, 1)), jnp.float32)
    y = jnp.asarray([0, 2, 1])
    cams = np.asarray(networks.grad_cam(networks.CNN, params, x, y))
    maps = np.asarray(cnn.forward(params, x)[1]["conv3"], np.float64)
    w = np.asarray(params["fc"]["kernel"], np.float64)[:, np.asarray(y)].T  # (N, K)
    want = np.einsum("nhwk,nk->nhw", maps, w) / (maps.shape[1] * maps.shape[2])
    np.testing.assert_allclose(cams, want, rtol=1e-4, atol=1e-6)


def test_grad_cam_of_alexnet_against_finite_differences(alexnet_weights):
    """Grad-CAM's weight of channel k is the spatial mean of d score / dA_k: shifting the whole of
    A_k by eps changes the score by eps h w times it."""
    weights = alexnet_weights
    x = alexnet.preprocess(np.random.default_rng(3).uniform(size=(1, 8, 8, 1)).astype(np.float32), 64)
    y = jnp.asarray([1])
    cams = np.asarray(jax.jit(lambda w: networks.grad_cam(networks.ALEXNET, w, x, y))(weights))
    logits, maps = jax.jit(lambda w: networks.ALEXNET.gated_map(w, x, None))(weights)
    maps = np.asarray(maps, np.float64)
    h, w, k = maps.shape[1:]
    score = jax.jit(lambda shift: networks.ALEXNET.gated_map(weights, x, shift)[0][0, 1])
    # Central differences of a piecewise-linear function (ReLUs in fc6, fc7): a small eps stays on
    # one piece; float32 scores keep ~5 significant digits of their differences.
    eps = 1e-3
    weight = np.zeros(k)
    for c in range(k):
        shift = np.zeros((1, h, w, k), np.float32)
        shift[..., c] = eps
        weight[c] = (float(score(jnp.asarray(shift))) - float(score(jnp.asarray(-shift)))) / (2 * eps) / (h * w)
    # Each weight carries the float32 rounding of a logit difference (~1e-4 relative): compare on
    # the map's own scale.
    want = np.einsum("hwk,k->hw", maps[0], weight)
    np.testing.assert_allclose(cams[0], want, rtol=0, atol=2e-3 * np.abs(want).max())
    assert cams.shape == (1, h, w) and np.asarray(logits).shape == (1, 3)


# --- the schedule and the configs -----------------------------------------------------------


def test_schedule_is_the_reference_rule():
    config = CNNCSGConfig(epochs=30, warmup_epochs=10, gate_period=3, gate_phase=2)
    want = [e for e in range(30) if e % 3 >= 2 and e >= 10]  # train.py: epoch % 3 >= 2 and epoch >= 10
    assert list(config.csg_epochs()) == want == [11, 14, 17, 20, 23, 26, 29]
    assert not any(is_csg_epoch(e, dataclasses.replace(config, gates=False)) for e in range(30))


@pytest.mark.parametrize("field, value, message", [
    ("channels", 1, "expected channels an int >= 2"),
    ("epochs", -1, "expected epochs an int >= 0"),
    ("gate_density", 0.0, r"expected gate_density in \(0, 1\]"),
    ("gate_sparsity", -1.0, "expected gate_sparsity >= 0"),
    ("gate_learning_rate", 0.0, "expected gate_learning_rate > 0"),
    ("gate_phase", 3, "expected gate_phase < gate_period"),
    ("batch_size", 0, "expected batch_size a positive int"),
    ("gates", "yes", "expected gates true or false"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        CNNCSGConfig(**{field: value}).validated()


def test_alexnet_config_errors():
    with pytest.raises(ValueError, match="alexnet_csg: expected size an int >= 64"):
        AlexNetCSGConfig(size=32).validated()
    with pytest.raises(ValueError, match="its config has no field size"):
        systems.get("cnn_csg").configure(size=64)


# --- training -------------------------------------------------------------------------------


def test_training_history_and_gate_invariants(trained):
    _, (_, gate, history) = trained
    assert [row["path"] for row in history] == ["standard", "csg", "standard"]
    g = np.asarray(gate)
    assert g.shape == (8, 3) and g.min() >= 0 and np.all(g.max(axis=1) == 1)  # renormalised after every CSG step
    assert history[0]["density"] == 0.5 and history[1]["density"] == pytest.approx(gates.density(g))
    assert history[0]["sparsity"] == 0 and history[1]["sparsity"] > 0
    for row in history:
        assert 0 <= row["accuracy_gate_off"] <= 1 and 0 <= row["accuracy_gate_true"] <= 1 and row["seconds"] > 0


def test_training_is_bit_reproducible_and_gates_off_is_the_same_network(tiny, trained):
    config, (weights, gate, _) = trained
    one = parallel.make_mesh(jax.devices()[:1])
    again = training.train(config, tiny, key=jax.random.key(3), mesh=one)
    jax.tree.map(np.testing.assert_array_equal, (weights, gate), again[:2])
    # Gates off: every epoch standard; identical to the CSG run over the warm-up (same init, order, steps).
    warm = dataclasses.replace(config, epochs=1)
    standard = training.train(dataclasses.replace(warm, gates=False), tiny, key=jax.random.key(3), mesh=one)
    csg_warm = training.train(warm, tiny, key=jax.random.key(3), mesh=one)
    assert standard[1] is None and np.isnan(standard[2][0]["accuracy_gate_true"])
    jax.tree.map(np.testing.assert_array_equal, standard[0], csg_warm[0])


def test_checkpoint_resume_equals_uninterrupted(tiny, trained, tmp_path):
    config, (weights, gate, history) = trained
    one = parallel.make_mesh(jax.devices()[:1])
    path = tmp_path / "csg.ckpt"
    training.train(dataclasses.replace(config, epochs=2), tiny, key=jax.random.key(3), checkpoint=path, mesh=one)
    resumed = training.train(config, tiny, key=jax.random.key(3), checkpoint=path, mesh=one)
    jax.tree.map(np.testing.assert_array_equal, (weights, gate), resumed[:2])
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed[2]] == \
           [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    with pytest.raises(ValueError, match="was made with"):
        training.train(dataclasses.replace(config, gate_density=0.3), tiny, key=jax.random.key(3), checkpoint=path,
                       mesh=one)


def test_eight_devices_equal_one(tiny, trained):
    config, (weights, gate, _) = trained
    eight = training.train(config, tiny, key=jax.random.key(3), mesh=parallel.make_mesh())
    # Sums over the batch split across 8 devices are reordered: float32 rounding, compounded by Adam.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), (weights, gate), eight[:2])


# --- the systems ----------------------------------------------------------------------------


def test_system_features_scores_and_save_load(tiny, trained, tmp_path):
    config, (weights, gate, history) = trained
    params = CSGParams(config, "cnn_csg", tiny.class_names, weights, gate, {"history": history, "train_seconds": 1.0})
    system = systems.get("cnn_csg")
    feats = system.features(params, tiny.x_test)
    assert list(feats) == ["conv1", "conv2", "conv3", "pool", "logits"] and feats["pool"].shape == (24, 8)
    scores = system.scores(params, tiny.x_test)
    np.testing.assert_array_equal(np.asarray(scores), np.asarray(feats["logits"]))
    np.testing.assert_allclose(np.asarray(jax.jit(system.scores)(params, tiny.x_test)), np.asarray(scores),
                               rtol=1e-6, atol=1e-6)
    assert system.representation(params) == "pool" and system.class_names(params) == tiny.class_names
    layer, g = params.class_specific_filters()
    assert layer == "conv3" and np.array_equal(g, np.asarray(gate))
    path = tmp_path / "m.npz"
    save(params, path)
    loaded_system, loaded = systems.load(path)
    assert loaded_system.name == "cnn_csg" and loaded.config == config and loaded.info["history"] == history
    jax.tree.map(np.testing.assert_array_equal, (params.weights, params.gate), (loaded.weights, loaded.gate))
    settings = system.settings(loaded)
    assert settings["gate_density"] == pytest.approx(gates.density(gate)) and settings["csg_epochs"] == [2]


def test_load_rejects_other_files(tmp_path):
    from glassjax.core import modelfile

    path = tmp_path / "other.npz"
    modelfile.write(path, {"system": "cnn_csg", "format": "glassjax.AlexNet", "version": 1}, {"x": np.zeros(2)})
    with pytest.raises(ValueError, match="expected a glassjax.CSG model"):
        load(path)


@pytest.mark.slow
def test_alexnet_csg_fits_through_the_registry(tiny):
    system = systems.get("alexnet_csg")
    config = system.configure(size=64, width=0.05, epochs=2, batch_size=24, warmup_epochs=1, gate_period=1,
                              gate_phase=0)
    params = system.fit(config, tiny, key=jax.random.key(0), mesh=parallel.make_mesh(jax.devices()[:1]))
    assert [row["path"] for row in params.info["history"]] == ["standard", "csg"]
    assert params.gate.shape == (13, 3) and params.gated_layer == "conv5"
    assert system.scores(params, tiny.x_test[:2]).shape == (2, 3)
    assert params.class_activation_maps(tiny.x_test[:2], jnp.asarray([0, 1])).shape == (2, 3, 3)


# --- the command ----------------------------------------------------------------------------


def _command(argv):
    import argparse

    from glassjax.cli import train_csg

    parser = argparse.ArgumentParser(prog="glassjax")
    train_csg.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train-csg", *argv])
    return args.run(args)


@pytest.mark.slow
def test_train_csg_command_json(capsys, tmp_path):
    import json

    argv = ["--dataset", "digits", "--classes", "0,1,2", "--model", "cnn", "--epochs", "3", "--warmup-epochs", "1",
            "--gate-period", "2", "--gate-phase", "1", "--channels", "8", "--images", "60", "--json",
            "--out", str(tmp_path / "csg.npz")]
    assert _command(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("accuracy", "accuracy_standard", "mis", "mis_standard", "gate_density", "localization_ap",
                "localization_ap_standard", "detection_auc", "detection_auc_standard", "train_seconds"):
        assert key in result, key
    assert result["csg_epochs"] == [2] and 0 < result["gate_density"] <= 1 and result["train_seconds"] > 0
    assert systems.load(tmp_path / "csg.npz")[0].name == "cnn_csg"


def test_train_csg_command_rejects_options_of_the_other_model():
    with pytest.raises(ValueError, match="its config has no field size"):
        _command(["--dataset", "digits", "--model", "cnn", "--size", "64"])
