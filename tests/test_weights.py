"""torchvision weights in and out, against a committed torch reference (tests/fixtures/make_alexnet_fixture.py)."""
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from glassjax.systems import alexnet
from glassjax.systems.alexnet import weights

FIXTURES = Path(__file__).parent / "fixtures"
WEIGHTS = FIXTURES / "alexnet_small.safetensors"


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "alexnet_reference.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def params():
    return alexnet.load_torchvision(WEIGHTS)


def _nhwc(a):
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def test_widths_and_classes_inferred(params):
    model = alexnet.model_for(params)
    assert model.widths == (8, 16, 24, 16, 16) and model.hidden == (64, 64) and model.num_classes == 10


@pytest.mark.parametrize("tag", ["224", "small"])
def test_logits_and_activations_match_torch(params, reference, tag):
    acts = alexnet.activations(params, jnp.asarray(_nhwc(reference[f"x_{tag}"])))
    for name in alexnet.LAYER_NAMES:
        expected = _nhwc(reference[f"{tag}_{name}"])
        got = np.asarray(acts[name])
        assert got.shape == expected.shape, name
        # Relative to the layer's largest value: the two frameworks sum in different orders.
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), name
    logits = np.asarray(alexnet.apply(params, jnp.asarray(_nhwc(reference[f"x_{tag}"]))))
    np.testing.assert_array_equal(logits, np.asarray(acts["fc8"]))


def test_adaptive_pool_matches_torch(reference):
    got = alexnet.adaptive_avg_pool(jnp.asarray(_nhwc(reference["pool_in"])))
    np.testing.assert_allclose(got, _nhwc(reference["pool_out"]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_round_trip_is_bit_exact(params, tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    weights.save_torchvision(params, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    # The saved state dict is the fixture's, bit for bit, and loads back to the same params.
    original = load_file(WEIGHTS)
    saved = weights.read_state_dict(path)
    assert set(saved) == set(original)
    for key, value in original.items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)
    again = weights.load_torchvision(path)
    for name in alexnet.LAYER_NAMES:
        for part in ("kernel", "bias"):
            np.testing.assert_array_equal(again[name][part], params[name][part])


def _write(state, path):
    if path.suffix == ".npz":
        np.savez(path, **state)
    else:
        save_file(state, str(path))
    return path


def test_missing_and_unexpected_keys(tmp_path):
    state = load_file(WEIGHTS)
    missing = {k: v for k, v in state.items() if k != "classifier.6.bias"}
    with pytest.raises(ValueError, match="missing key 'classifier.6.bias'"):
        alexnet.load_torchvision(_write(missing, tmp_path / "missing.npz"))
    extra = dict(state, **{"features.1.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="unexpected keys.*features.1.weight"):
        alexnet.load_torchvision(_write(extra, tmp_path / "extra.safetensors"))


def test_wrong_shapes(tmp_path):
    state = load_file(WEIGHTS)
    bad_conv = dict(state, **{"features.3.weight": np.zeros((16, 7, 5, 5), np.float32)})
    with pytest.raises(ValueError, match=r"features.3.weight: expected shape \(C, 8, 5, 5\)"):
        alexnet.load_torchvision(_write(bad_conv, tmp_path / "conv.safetensors"))
    bad_fc = dict(state, **{"classifier.1.weight": np.zeros((64, 100), np.float32)})
    with pytest.raises(ValueError, match=r"classifier.1.weight: expected shape \(F, 576\)"):
        alexnet.load_torchvision(_write(bad_fc, tmp_path / "fc.npz"))
    bad_bias = dict(state, **{"classifier.6.bias": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"classifier.6.bias: expected shape \(10,\)"):
        alexnet.load_torchvision(_write(bad_bias, tmp_path / "bias.npz"))


def test_other_num_classes(tmp_path):
    state = load_file(WEIGHTS)
    state["classifier.6.weight"] = np.ones((3, 64), np.float32)
    state["classifier.6.bias"] = np.zeros(3, np.float32)
    params = alexnet.load_torchvision(_write(state, tmp_path / "three.safetensors"))
    assert alexnet.apply(params, jnp.zeros((1, 63, 63, 3))).shape == (1, 3)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_truncated_and_garbage_files(tmp_path, suffix):
    good = weights.save_torchvision(alexnet.load_torchvision(WEIGHTS), tmp_path / f"good{suffix}")
    data = good.read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        alexnet.load_torchvision(truncated)
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_text("this is not a weights file\n")
    with pytest.raises(ValueError, match="not a readable"):
        alexnet.load_torchvision(garbage)


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected a .safetensors, .npz or .pth file"):
        alexnet.load_torchvision(tmp_path / "w.bin")
    with pytest.raises(FileNotFoundError):
        alexnet.load_torchvision(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="expected a .safetensors or .npz path"):
        weights.save_torchvision(alexnet.load_torchvision(WEIGHTS), tmp_path / "w.pth")


def test_pth_without_torch_says_convert(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    path = tmp_path / "w.pth"
    path.write_bytes(b"not read")
    with pytest.raises(ValueError, match="torch is not installed.*safetensors"):
        alexnet.load_torchvision(path)


def test_pth_through_torch_weights_only(tmp_path):
    torch = pytest.importorskip("torch")  # torch is optional: this runs only where it is installed
    path = tmp_path / "w.pth"
    torch.save({k: torch.from_numpy(v) for k, v in load_file(WEIGHTS).items()}, path)
    params = alexnet.load_torchvision(path)
    expected = alexnet.load_torchvision(WEIGHTS)
    for name in alexnet.LAYER_NAMES:
        np.testing.assert_array_equal(params[name]["kernel"], expected[name]["kernel"])
    path.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(ValueError, match="cannot read"):
        alexnet.load_torchvision(path)
