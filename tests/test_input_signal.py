"""The input-signal probe (glassjax.probes.input_signal): max-unpooling exact against numpy, the
autoencoder's shapes, decoder-only fine-tuning, NMI against scikit-image, the matrix and its order
on toy classifiers, the gradient check, the command at tiny sizes, and one-line errors."""
import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import cli, systems
from glassjax.core import modelfile
from glassjax.data import Dataset
from glassjax.probes import input_signal as ins


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("GLASSJAX_QUIET", "1")


TINY = ins.AutoencoderConfig(widths=(2, 3), convs=1, pretrain_epochs=1, finetune_epochs=1, batch_size=8)


def _bars(n=40, seed=0) -> Dataset:
    """Two classes of noisy 7x6 images (odd, not square: every pooling rounds up): a bright left half
    (0) or a bright right half (1)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0, 0.3, (n, 7, 6, 1)).astype(np.float32)
    x[y == 0, :, :3] += 0.6
    x[y == 1, :, 3:] += 0.6
    return Dataset("bars", x[: n * 3 // 4], y[: n * 3 // 4].astype(np.int32), x[n * 3 // 4 :],
                   y[n * 3 // 4 :].astype(np.int32), ("left", "right"))


# --- max pooling with argmax, max unpooling: exact against numpy loops ----------------------------


def _numpy_pool_unpool(x, k):
    n, height, width, c = x.shape
    h, w = -(-height // k), -(-width // k)
    pooled = np.zeros((n, h, w, c), x.dtype)
    argmax = np.zeros((n, h, w, c), np.int64)
    unpooled = np.zeros_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    best, where = -np.inf, (0, 0)
                    for di in range(k):  # row-major inside the window, first maximum wins
                        for dj in range(k):
                            r, s = i * k + di, j * k + dj
                            if r < height and s < width and x[b, r, s, ch] > best:
                                best, where = x[b, r, s, ch], (di, dj)
                    pooled[b, i, j, ch] = best
                    argmax[b, i, j, ch] = where[0] * k + where[1]
                    unpooled[b, i * k + where[0], j * k + where[1], ch] = best
    return pooled, argmax, unpooled


@pytest.mark.parametrize("shape,k", [((2, 6, 8, 3), 2), ((1, 7, 5, 2), 2), ((2, 9, 9, 1), 3)])
def test_max_pool_and_unpool_match_numpy_exactly(shape, k):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie: the first position wins
    pooled, argmax = ins.max_pool_with_argmax(jnp.asarray(x), k)
    unpooled = ins.max_unpool(pooled, argmax, shape[1:3], k)
    ref_pooled, ref_argmax, ref_unpooled = _numpy_pool_unpool(x, k)
    np.testing.assert_array_equal(np.asarray(pooled), ref_pooled)
    np.testing.assert_array_equal(np.asarray(argmax), ref_argmax)
    np.testing.assert_array_equal(np.asarray(unpooled), ref_unpooled)
    assert argmax.dtype == jnp.int8


def test_pool_gradient_reaches_the_maxima_only():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 4, 4, 1)).astype(np.float32))
    grad = jax.grad(lambda v: jnp.sum(ins.max_pool_with_argmax(v, 2)[0]))(x)
    _, _, ref_unpooled = _numpy_pool_unpool(np.asarray(x), 2)
    np.testing.assert_array_equal(np.asarray(grad), (ref_unpooled != 0).astype(np.float32))


# --- the autoencoder and its two trainings ---------------------------------------------------------


def test_autoencoder_shapes_and_no_output_activation():
    ae = ins.init(TINY, (7, 6, 1), key=jax.random.key(0))
    x = _bars().x_train[:5]
    code = ins.encode(ae, x)
    assert code.maps.shape == (5, 2, 2, 3) and [a.shape for a in code.argmax] == [(5, 4, 3, 2), (5, 2, 2, 3)]
    r = ins.reconstruct(ae, x)
    assert r.shape == x.shape and r.dtype == np.float32
    assert r.min() < 0  # a linear 1x1 conv at the end: nothing squashes the output


def test_pretraining_is_seeded_and_lowers_the_loss():
    d = _bars()
    config = dataclasses.replace(TINY, pretrain_epochs=2)
    runs = [ins.pretrain(ins.init(config, (7, 6, 1), key=jax.random.key(0)), d.x_train, key=jax.random.key(1))
            for _ in range(2)]
    assert runs[0].losses == runs[1].losses and len(runs[0].losses) == 2
    assert runs[0].losses[-1] < runs[0].losses[0]


def _linear_scores(w, x):
    return x.reshape(x.shape[0], -1) @ w


def test_finetuning_moves_the_decoder_only():
    d = _bars()
    ae = ins.pretrain(ins.init(TINY, (7, 6, 1), key=jax.random.key(0)), d.x_train, key=jax.random.key(1))
    w = jnp.asarray(np.random.default_rng(4).normal(size=(42, 2)).astype(np.float32))
    tuned = ins.finetune(ae, d.x_train, d.y_train, _linear_scores, w, key=jax.random.key(2))
    same = jax.tree.map(lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), ae.encoder, tuned.encoder)
    assert all(jax.tree.leaves(same))  # encoder weights and batch-norm statistics bit-identical
    moved = jax.tree.map(lambda a, b: not np.array_equal(np.asarray(a), np.asarray(b)), ae.decoder["params"],
                         tuned.decoder["params"])
    assert all(jax.tree.leaves(moved))  # every decoder weight received a gradient
    assert len(tuned.losses) == len(ae.losses) + 1


# --- NMI: scikit-image's definition --------------------------------------------------------------


@pytest.mark.parametrize("bins", [2, 8, 32, 100])
def test_nmi_matches_scikit_image(bins):
    from skimage.metrics import normalized_mutual_information

    rng = np.random.default_rng(5)
    a = rng.uniform(size=(4, 9, 7, 1)).astype(np.float32)
    b = (0.5 * a + 0.5 * rng.uniform(size=a.shape)).astype(np.float32)
    b[3] = 0.25  # a constant image: one bin, entropy 0, NMI 1
    ours = ins.nmi(a, b, bins)
    ref = [normalized_mutual_information(a[i], b[i], bins=bins) for i in range(4)]
    # float32 binning here, float64 in scikit-image: a value on a bin edge could land apart; none does here.
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    assert ours[3] == pytest.approx(1.0)


def test_intra_beats_inter_and_the_derangement_has_no_fixed_point():
    p = ins.derangement(50, seed=3)
    assert sorted(p) == list(range(50)) and not np.any(p == np.arange(50))
    np.testing.assert_array_equal(p, ins.derangement(50, seed=3))
    x = _bars().x_test
    out = ins.intra_inter(x, x, bins=16)
    assert out["intra"] == pytest.approx(2.0) and out["inter"] < out["intra"]


def test_orientation_kept_counts_the_right_orientation():
    x = np.random.default_rng(6).uniform(size=(6, 6, 6, 1)).astype(np.float32)  # d4 needs square images
    same, mirrored = ins.orientation_kept(x, x), ins.orientation_kept(x, x[:, :, ::-1])
    assert same["kept"] == 1.0 and same["margin"] > 0
    assert mirrored["kept"] == 0.0 and mirrored["margin"] < 0  # closer to the mirrored original


# --- the matrix, the order, accuracy on toy classifiers --------------------------------------------


def test_cross_matrix_divides_by_the_accuracy_on_originals():
    m = ins.cross_matrix({"untuned": {"a": 0.4, "b": 0.9}, "a": {"a": 0.8, "b": 0.45}}, {"a": 0.8, "b": 0.9})
    assert m == {"untuned": {"a": 0.5, "b": 1.0}, "a": {"a": 1.0, "b": 0.5}}


def test_order_is_total_for_a_hierarchy_and_finds_a_cycle():
    # a's reconstructions serve everyone; c's serve no one: a > b > c.
    m = {"a": {"a": 1, "b": 0.9, "c": 0.95}, "b": {"a": 0.7, "b": 1, "c": 0.9}, "c": {"a": 0.5, "b": 0.6, "c": 1}}
    out = ins.order({"untuned": {"a": 0.1, "b": 0.1, "c": 0.1}, **m}, untuned="untuned")
    assert out["order"] == ["a", "b", "c"] and out["total"] and out["cycle"] is None
    assert out["row_mean"]["a"] == pytest.approx(0.925) and out["column_mean"]["c"] == pytest.approx(0.925)
    cyclic = {"a": {"a": 1, "b": 0.9, "c": 0.1}, "b": {"a": 0.1, "b": 1, "c": 0.9}, "c": {"a": 0.9, "b": 0.1, "c": 1}}
    out = ins.order(cyclic)
    assert not out["total"] and len(out["cycle"]) == 4
    assert ins.rank_correlation(["a", "b", "c"], {"a": 3.0, "b": 2.0, "c": 1.0}) == pytest.approx(1.0)


def _left_scores(params, x):
    half = x.shape[2] // 2
    s = params * (jnp.mean(x[:, :, :half], axis=(1, 2, 3)) - jnp.mean(x[:, :, half:], axis=(1, 2, 3)))
    return jnp.stack([s, -s], axis=1)


def _hard_scores(params, x):
    return jax.nn.one_hot(jnp.argmax(_left_scores(params, x), axis=1), 2)


def _host_scores(params, x):
    return jnp.asarray(np.asarray(x).reshape(x.shape[0], -1)[:, :2])


def test_gradient_check_rules_out_what_cannot_steer_a_decoder():
    x = _bars().x_train[:4]
    assert ins.gradient_problem(ins.Probed("left", _left_scores, jnp.float32(10.0), 1), x) is None
    assert "zero" in ins.gradient_problem(ins.Probed("hard", _hard_scores, jnp.float32(10.0), 1), x)
    assert "cannot be differentiated" in ins.gradient_problem(ins.Probed("host", _host_scores, None, 0), x)


def test_accuracy_on_several_image_sets():
    d = _bars()
    probed = ins.Probed("left", _left_scores, jnp.float32(10.0), 1)
    assert ins.accuracy(probed, {"x": d.x_test, "mirrored": d.x_test[:, :, ::-1]}, d.y_test) == \
        {"x": 1.0, "mirrored": 0.0}


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: ins.max_pool_with_argmax(jnp.zeros((4, 4, 1)), 2), r"expected maps of shape \(N, H, W, C\)"),
    (lambda: ins.max_unpool(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 2), jnp.int8), (4, 4)),
     "argmax of the pooled"),
    (lambda: ins.max_unpool(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1), jnp.int8), (6, 4)), "pools to"),
    (lambda: ins.init(ins.AutoencoderConfig(widths=()), (8, 8, 1), key=jax.random.key(0)), "widths a non-empty"),
    (lambda: ins.init(ins.AutoencoderConfig(convs=0), (8, 8, 1), key=jax.random.key(0)), "convs an int >= 1"),
    (lambda: ins.init(TINY, (3, 8, 1), key=jax.random.key(0)), "H, W >= 4"),
    (lambda: ins.reconstruct(ins.init(TINY, (7, 6, 1), key=jax.random.key(0)), np.zeros((2, 9, 8, 1), np.float32)),
     "like the autoencoder's"),
    (lambda: ins.nmi(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 5, 1))), "of one shape"),
    (lambda: ins.cross_matrix({"a": {"a": 1.0}}, {"a": 1.0, "b": 1.0}), "missing b"),
    (lambda: ins.order({"a": {"a": 1.0}}), "at least 2 classifiers"),
    (lambda: ins.prepare(["lenet9"], _bars()), "unknown system 'lenet9'"),
    (lambda: ins.prepare(["untuned"], _bars()), "untuned autoencoder's row"),
    (lambda: ins.run(_bars(), [], TINY), "at least one differentiable classifier"),
])
def test_bad_input_is_a_one_line_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# --- the command, at tiny sizes, with a toy system registered here -----------------------------------


@dataclasses.dataclass(frozen=True)
class _ToyConfig:
    """A toy linear classifier on pixel means.

    sharpness  multiplies the scores
    """

    sharpness: float = 10.0


class _ToyParams(eqx.Module):
    scale: jax.Array
    names: tuple = eqx.field(static=True)


def _toy_system(name, scores):
    def fit(config, dataset, *, key, mesh=None):
        return _ToyParams(jnp.float32(config.sharpness), tuple(dataset.class_names))

    def features(params, x):
        return {"scores": scores(params.scale, x)}

    def save(params, path):
        modelfile.write(path, {"system": name, "names": list(params.names)}, {"scale": params.scale})

    def load(path):
        meta, arrays = modelfile.read(path)
        return _ToyParams(jnp.asarray(arrays["scale"]), tuple(meta["names"]))

    return systems.System(name=name, title=name, description=f"toy {name}", config=_ToyConfig(), fit=fit,
                          features=features, scores=lambda params, x: scores(params.scale, x), save=save, load=load,
                          representation=lambda params: "scores", class_names=lambda params: params.names)


@pytest.fixture
def toys():
    made = [systems.register(_toy_system("toy_left", _left_scores)),
            systems.register(_toy_system("toy_hard", _hard_scores))]
    yield
    for system in made:
        systems.unregister(system.name)


def test_command_quick_writes_everything_and_lists_skipped(toys, tmp_path, capsys):
    argv = ["probe-signal", "--dataset", "digits", "--classes", "0,1", "--systems", "toy_left,toy_hard,logistic",
            "--quick", "--out", str(tmp_path), "--json"]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["classifiers"] == ["toy_left", "logistic"] and "zero" in result["skipped"]["toy_hard"]
    assert set(result["matrix"]) == {"untuned", "toy_left", "logistic"} and set(result["matrix"]["untuned"]) == \
        {"toy_left", "logistic"}
    assert set(result["accuracy"]) == {"toy_left", "logistic"} and set(result["nmi"]["logistic"]) == {"intra", "inter"}
    assert sorted(result["order"]) == ["logistic", "toy_left"]
    for row, accs in result["reconstruction_accuracy"].items():
        for b, acc in accs.items():
            assert result["matrix"][row][b] == pytest.approx(acc / result["accuracy"][b])
    for name in ("input_signal.json", "input_signal.html", "input_signal_matrix.png",
                 "input_signal_reconstructions.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("argv,match", [
    (["probe-signal", "--systems", "lenet9"], "unknown system 'lenet9'"),
    (["probe-input", "--systems", "logistic,logistic"], "--systems: expected distinct"),
    (["probe-signal", "--ae-widths", "8,x"], "--ae-widths: expected comma-separated ints"),
    (["probe-signal", "--pretrain-epochs", "-1"], "pretrain_epochs an int >= 0"),
    (["probe-signal", "--nmi-bins", "1"], "--nmi-bins: expected at least 2"),
])
def test_command_bad_input_is_one_line_and_exit_2(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "Traceback" not in err[0]
