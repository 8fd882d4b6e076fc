"""The Saab transform against its published definition (numpy float64, scikit-learn PCA), the FF-CNN and the
BP LeNet-5 on tiny images."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import PCA

from glassjax import data
from glassjax.systems.lenet import system as lenet
from glassjax.systems.saab import ffcnn, geometry, passes
from glassjax.systems.saab import system as saab_system
from glassjax.systems.saab import transform as st

# float32 statistics of a few hundred patches: kernels and energies agree with float64 to ~1e-6;
# 1e-4 leaves room for the eigenvectors' sensitivity to close eigenvalues.
TOL = 1e-4


def _patches(seed=0, n=12, side=8, channels=2, size=3):
    rng = np.random.default_rng(seed)
    # Correlated pixels (a smoothed field plus noise) give well-separated eigenvalues, as images do.
    x = rng.random((n, side, side, channels)) + 0.5 * rng.random((n, 1, 1, channels))
    x = np.cumsum(x, axis=1) / side
    return np.asarray(geometry.patches(jnp.asarray(x, jnp.float32), size))


def _reference(p):
    """Saab by its definition in float64: feature mean out, patch mean out, PCA of the AC part."""
    rows = p.reshape(-1, p.shape[-1]).astype(np.float64)
    d = rows.shape[1]
    centred = rows - rows.mean(axis=0)
    ac = centred - centred.mean(axis=1, keepdims=True)
    pca = PCA(n_components=d - 1, svd_solver="full").fit(ac)
    dc = centred @ (np.ones(d) / np.sqrt(d))
    total = centred.var(axis=0, ddof=1).sum()
    energy = np.concatenate([[dc.var(ddof=1)], pca.explained_variance_]) / total
    return rows.mean(axis=0), pca.components_, energy, np.linalg.norm(centred, axis=1).max()


def test_patches_are_the_windows_a_convolution_reads():
    rng = np.random.default_rng(1)
    x = rng.random((2, 7, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3)).astype(np.float32)
    out = np.asarray(geometry.patches(jnp.asarray(x), 3) @ kernel.reshape(-1))
    expected = np.zeros((2, 5, 4))
    for i in range(5):
        for j in range(4):
            expected[:, i, j] = np.einsum("nhwc,hwc->n", x[:, i : i + 3, j : j + 3], kernel)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    strided = geometry.patches(jnp.asarray(x), 3, stride=2)
    np.testing.assert_array_equal(np.asarray(strided), np.asarray(geometry.patches(jnp.asarray(x), 3))[:, ::2, ::2])


def test_saab_matches_its_definition_in_float64():
    p = _patches()
    saab = st.fit_array(p)
    mean, ac_components, energy, _ = _reference(p)
    kernels = np.asarray(saab.kernels, np.float64)
    np.testing.assert_allclose(np.asarray(saab.mean), mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(kernels[1:] * ac_components, axis=1)), 1.0, atol=TOL)  # up to sign
    np.testing.assert_allclose(np.asarray(saab.energy), energy, rtol=TOL, atol=1e-7)


def test_dc_kernel_is_exact_and_kernels_orthonormal():
    p = _patches(seed=2)
    saab = st.fit_array(p)
    d = p.shape[-1]
    kernels = np.asarray(saab.kernels, np.float64)
    np.testing.assert_array_equal(np.asarray(saab.kernels[0]), np.full(d, np.float32(1 / np.sqrt(d))))
    # float32 QR: orthonormal to a few float32 eps times sqrt(D).
    np.testing.assert_allclose(kernels @ kernels.T, np.eye(d), atol=1e-5)
    np.testing.assert_allclose(kernels[1:].sum(axis=1), 0.0, atol=1e-5)  # AC kernels have zero mean


def test_energies_sum_to_one_and_descend():
    saab = st.fit_array(_patches(seed=3))
    energy = np.asarray(saab.energy, np.float64)
    assert abs(energy.sum() - 1) < 1e-5  # float32 sums of 18 shares
    assert np.all(np.diff(energy[1:]) <= 0) and np.all(energy >= 0)
    fewer = st.fit_array(_patches(seed=3), 4)
    assert fewer.kernels.shape == (4, 18)
    np.testing.assert_allclose(np.asarray(fewer.energy), energy[:4], rtol=1e-5)


def test_bias_makes_every_training_response_non_negative():
    p = _patches(seed=4)
    saab = st.fit_array(p, bias=True)
    *_, max_norm = _reference(p)
    np.testing.assert_allclose(float(saab.bias), max_norm, rtol=1e-6)
    y = st.apply(saab, jnp.asarray(p))
    assert float(jnp.min(y)) >= 0
    np.testing.assert_array_equal(np.asarray(jax.nn.relu(y)), np.asarray(y))
    assert float(st.fit_array(p).bias) == 0.0  # a first layer has none


# Streaming and one-shot fits differ only in the order of float sums; in float64 that order costs ~1e-13,
# while float32 would move eigenvectors of nearly equal eigenvalues by ~1e-3 and hide what is compared.
EXACT = dict(rtol=1e-9, atol=1e-10)


def test_streaming_fit_equals_one_shot_fit():
    p = _patches(seed=5, n=16).astype(np.float64)
    with jax.enable_x64(True):
        one_shot = st.fit_array(p, bias=True)
        stats = st.update(st.init(p.shape[-1], jnp.float64), p[:5])
        stats = st.merge(stats, st.update(st.init(p.shape[-1], jnp.float64), p[5:11]))
        stats = st.update(stats, p[11:])
        streamed = st.fit(stats)
        running = jnp.maximum(st.norm_max(streamed, p[:7]), st.norm_max(streamed, p[7:]))
        streamed = st.with_bias(streamed, running)
        assert streamed.kernels.dtype == jnp.float64
        for a, b in zip(one_shot, streamed):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **EXACT)


def test_layer_passes_stream_padded_batches_like_one_shot():
    x = np.random.default_rng(6).random((11, 8, 8, 2))
    with jax.enable_x64(True):
        stats = passes.layer_stats(x, 3, batch_size=4)  # 4 + 4 + 3 real rows, the last batch padded and masked
        saab = st.fit(stats)
        saab = st.with_bias(saab, passes.layer_bias(saab, x, 3, batch_size=4))
        expected = st.fit_array(geometry.patches(jnp.asarray(x), 3), bias=True)
        for a, b in zip(saab, expected):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **EXACT)


def test_channel_passes_fit_each_channel_alone():
    x = np.cumsum(np.random.default_rng(7).random((9, 7, 7, 3)), axis=2)
    with jax.enable_x64(True):
        stats = passes.channel_stats(x, 3, batch_size=4)
        stacked = jax.vmap(lambda m: st.fit(m, 9))(stats)
        biases = passes.channel_bias(stacked, x, 3, batch_size=4)
        for c in range(3):
            alone = st.fit_array(geometry.patches(jnp.asarray(x[..., c : c + 1]), 3), bias=True)
            own = jax.tree.map(lambda a, c=c: a[c], stacked)
            for a, b in zip(alone._replace(bias=jnp.zeros(())), own):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), **EXACT)
            np.testing.assert_allclose(float(biases[c]), float(alone.bias), **EXACT)


def test_saab_layer_jit_equals_eager():
    x = jnp.asarray(np.random.default_rng(8).random((3, 8, 8, 1)), jnp.float32)
    saab = st.fit_array(geometry.patches(x, 5), 6)
    eager = st.layer(saab, x, 5)
    assert eager.shape == (3, 4, 4, 6)
    np.testing.assert_allclose(np.asarray(jax.jit(st.layer, static_argnums=2)(saab, x, 5)), np.asarray(eager),
                               rtol=1e-6, atol=1e-6)


def test_saab_errors_are_one_line_value_errors():
    stats = st.update(st.init(9), _patches(n=2, side=4, channels=1))
    with pytest.raises(ValueError, match="n_kernels in 1..9"):
        st.fit(stats, 10)
    with pytest.raises(ValueError, match=r"patches of shape \(\.\.\., 9\)"):
        st.update(stats, np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match="at least 2 patches"):
        st.fit(st.update(st.init(9), np.zeros((1, 9), np.float32)))


# ----------------------------------------------------------------------------- FF-CNN


@pytest.fixture(scope="module")
def digits():
    """300 train / 100 test scikit-learn digits (8x8), the FF-CNN's canvas 16x16."""
    ds = data.load("digits")
    return ds._replace(x_train=ds.x_train[:300], y_train=ds.y_train[:300], x_test=ds.x_test[:100],
                       y_test=ds.y_test[:100])


SMALL = ffcnn.FFCNNConfig(size=16, ac_kernels=(5, 11), clusters=(30, 20), kmeans_init=1)


@pytest.fixture(scope="module")
def fitted(digits):
    return ffcnn.fit(SMALL, digits, key=jax.random.key(0))


def test_least_squares_is_the_pseudo_inverse_solution():
    rng = np.random.default_rng(9)
    f = rng.standard_normal((50, 6))
    targets = rng.standard_normal((50, 3))
    a = np.concatenate([np.ones((50, 1)), f], axis=1)
    expected = np.linalg.lstsq(a, targets, rcond=None)[0]
    w = ffcnn.least_squares(jnp.asarray(f, jnp.float32), jnp.asarray(targets, jnp.float32))
    np.testing.assert_allclose(np.asarray(w), expected, rtol=1e-4, atol=1e-4)  # float32 pinv of a 50 x 7 system


def test_pseudo_labels_give_each_image_a_cluster_of_its_own_class():
    rng = np.random.default_rng(10)
    y = np.repeat(np.arange(3), 20)
    f = rng.standard_normal((60, 4)) + 3.0 * y[:, None]
    labels, purity = ffcnn.pseudo_labels(f, y, 6, 3, seed=0, n_init=1)
    counts = np.zeros((6, 3), int)
    np.add.at(counts, (labels, y), 1)
    # After moving, every cluster holds images of one class only, and purity is a share.
    assert np.all((counts > 0).sum(axis=1) <= 1) and 0 < purity <= 1
    with pytest.raises(ValueError, match="at least 70 training images"):
        ffcnn.pseudo_labels(f, y, 70, 3, seed=0)


def test_ffcnn_layers_shapes_and_accuracy(fitted, digits):
    out = ffcnn.features(fitted, jnp.asarray(digits.x_test))
    assert list(out) == ["saab1", "pool1", "saab2", "pool2", "fc1", "fc2", "fc3"]
    assert out["saab1"].shape == (100, 12, 12, 6) and out["pool2"].shape == (100, 1, 1, 12)
    assert out["fc1"].shape == (100, 30) and out["fc2"].shape == (100, 20) and out["fc3"].shape == (100, 10)
    train = ffcnn.features(fitted, jnp.asarray(digits.x_train))
    assert float(jnp.min(train["saab2"])) >= 0  # stage 2's bias: non-negative on the training set
    accuracy = float(np.mean(np.argmax(np.asarray(out["fc3"]), axis=1) == digits.y_test))
    assert accuracy > 0.7, accuracy  # 300 training digits; 0.86 measured


def test_ffcnn_scores_jit_equals_eager_and_file_round_trip(fitted, digits, tmp_path):
    x = jnp.asarray(digits.x_test[:8])
    eager = ffcnn.scores(fitted, x)
    np.testing.assert_allclose(np.asarray(jax.jit(ffcnn.scores)(fitted, x)), np.asarray(eager), rtol=1e-5, atol=1e-5)
    path = tmp_path / "ff.npz"
    saab_system.save(fitted, path)
    loaded = saab_system.load(path)
    assert loaded.config == fitted.config
    for a, b in zip(jax.tree.leaves(fitted), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(ffcnn.scores(loaded, x)), np.asarray(eager))
    with pytest.raises(ValueError, match="glassjax.SaabFF"):
        lenet.load(path)


def test_a_second_fit_compiles_nothing_new(fitted, digits):
    other = ffcnn.fit(SMALL, digits, key=jax.random.key(1))  # another k-means seed, same shapes
    traces = []

    @jax.jit
    def scores(params, x):
        traces.append(1)
        return ffcnn.scores(params, x)

    x = jnp.asarray(digits.x_test[:8])
    scores(fitted, x)
    scores(other, x)
    assert len(traces) == 1


def test_ffcnn_stage_two_is_the_saab_of_stage_one_output(fitted, digits):
    pool1 = ffcnn.features(fitted, jnp.asarray(digits.x_train))["pool1"]
    expected = st.fit_array(geometry.patches(pool1, 5), 12, bias=True)
    np.testing.assert_allclose(np.asarray(fitted.stages[1].kernels), np.asarray(expected.kernels), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(float(fitted.stages[1].bias), float(expected.bias), rtol=1e-5)


def test_ffcnn_config_errors():
    with pytest.raises(ValueError, match="input one of pad, resize"):
        ffcnn.FFCNNConfig(input="crop").validated()
    with pytest.raises(ValueError, match="no 5x5 window at stage 2"):
        ffcnn.FFCNNConfig(size=12).validated()
    with pytest.raises(ValueError, match="at most 149 AC kernels"):
        ffcnn.FFCNNConfig(ac_kernels=(5, 150)).validated()
    with pytest.raises(ValueError, match="clusters a non-empty tuple"):
        ffcnn.FFCNNConfig(clusters=()).validated()
    assert ffcnn.FFCNNConfig(clusters="12,8").validated().clusters == (12, 8)  # as a command line gives it
    with pytest.raises(ValueError, match="do not fit a 16x16 canvas"):
        ffcnn.fit(dataclasses.replace(SMALL), data.Dataset("big", np.zeros((4, 20, 20, 1), np.float32),
                                                           np.zeros(4, np.int32), np.zeros((1, 20, 20, 1), np.float32),
                                                           np.zeros(1, np.int32), ("a", "b")), key=jax.random.key(0))


def test_ffcnn_filter_images_are_stage_one_kernels(fitted):
    (_, images), = saab_system.SYSTEMS[0].filter_images(fitted, fitted.class_names)
    assert len(images) == 6 and images[0][1].startswith("DC")
    assert all(img.shape == (5, 5, 1) and img.min() >= 0 and img.max() <= 1 for img, _ in images)


# ----------------------------------------------------------------------------- LeNet-5


def test_lenet_trains_and_round_trips(digits, tmp_path):
    config = lenet.LeNetConfig(size=16, epochs=2, batch_size=50)
    params = lenet.fit(config, digits, key=jax.random.key(0))
    assert params.losses[1] < params.losses[0]
    out = lenet.features(params, jnp.asarray(digits.x_test[:4]))
    assert list(out) == list(lenet.LAYERS) and out["fc3"].shape == (4, 10) and out["pool2"].shape == (4, 1, 1, 16)
    assert lenet.parameter_count(params) == 6 * 26 + 16 * 151 + 120 * 17 + 84 * 121 + 10 * 85
    path = tmp_path / "lenet.npz"
    lenet.save(params, path)
    loaded = lenet.load(path)
    assert loaded.config == params.config
    np.testing.assert_array_equal(np.asarray(loaded.losses), np.asarray(params.losses))
    np.testing.assert_array_equal(np.asarray(lenet.scores(loaded, jnp.asarray(digits.x_test[:4]))),
                                  np.asarray(out["fc3"]))
    with pytest.raises(ValueError, match="size >= 16"):
        lenet.LeNetConfig(size=12).validated()


# ----------------------------------------------------------------------------- the experiment


@pytest.mark.slow
def test_analytic_cnns_experiment_quick(tmp_path):
    """experiments/analytic_cnns.py --quick end to end in its own process (about a minute on 2 cores)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "analytic_cnns.py"
    doc = script.read_text()
    assert "Command:" in doc and "Runtime:" in doc and "Expected:" in doc
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(GLASSJAX_QUIET="1", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path), "--systems",
                           "saab_ff,pixelhop,lenet5"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "|---|" in done.stdout
    stored = json.loads((tmp_path / "analytic_cnns.json").read_text())
    assert stored["quick"] is True and stored["seconds"] > 0
    assert [r["system"] for r in stored["systems"]] == ["saab_ff", "pixelhop", "lenet5"]
    assert stored["seed_study"]["summary"] and stored["pixelhop_sweep"]
    assert (tmp_path / "analytic_cnns.png").stat().st_size < 200_000
