"""AlexNet in Flax: shapes, torchvision's layout, adaptive pooling bins, dropout, input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from glassjax.systems import alexnet

TINY = dict(widths=(4, 8, 8, 8, 8), hidden=(16, 16))


@pytest.fixture(scope="module")
def tiny_params():
    return alexnet.init(jax.random.key(0), 5, **TINY)


def test_full_width_matches_torchvision_parameter_count():
    shapes = jax.eval_shape(lambda k: alexnet.init(k, 1000), jax.random.key(0))
    # torchvision.models.alexnet() has 61,100,840 parameters.
    assert sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(shapes)) == 61_100_840
    assert shapes["conv1"]["kernel"].shape == (11, 11, 3, 64)
    assert shapes["fc6"]["kernel"].shape == (256 * 6 * 6, 4096)
    assert shapes["fc8"]["kernel"].shape == (4096, 1000)


def test_width_multiplier_scales_channels():
    shapes = jax.eval_shape(lambda k: alexnet.init(k, 3, width=0.5), jax.random.key(0))
    assert [shapes[n]["bias"].shape[0] for n in alexnet.LAYER_NAMES] == [32, 96, 192, 128, 128, 2048, 2048, 3]


@pytest.mark.parametrize(
    "shape, spatial",
    [
        ((2, 224, 224, 3), [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]),
        ((1, 63, 70, 3), [(15, 16), (7, 7), (3, 3), (3, 3), (3, 3)]),
    ],
)
def test_activation_shapes(tiny_params, shape, spatial):
    acts = alexnet.activations(tiny_params, jnp.zeros(shape, jnp.float32))
    assert list(acts) == list(alexnet.LAYER_NAMES)
    for name, hw, width in zip(alexnet.CONV_NAMES, spatial, TINY["widths"]):
        assert acts[name].shape == (shape[0], *hw, width)
        assert float(acts[name].min()) >= 0.0  # after ReLU
    assert acts["fc6"].shape == acts["fc7"].shape == (shape[0], 16)
    assert acts["fc8"].shape == (shape[0], 5)
    np.testing.assert_array_equal(acts["fc8"], alexnet.apply(tiny_params, jnp.zeros(shape, jnp.float32)))


def _adaptive_pool_loop(x, size):
    """torch's adaptive average pooling written as its definition: NHWC numpy."""
    n, h, w, c = x.shape
    out = np.zeros((n, size, size, c), np.float64)
    for i in range(size):
        h0, h1 = (i * h) // size, -((-(i + 1) * h) // size)
        for j in range(size):
            w0, w1 = (j * w) // size, -((-(j + 1) * w) // size)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("h, w", [(1, 1), (3, 5), (6, 6), (7, 13), (12, 11), (20, 9)])
def test_adaptive_pool_bins(h, w):
    x = np.random.default_rng(h * 100 + w).standard_normal((2, h, w, 3)).astype(np.float32)
    got = alexnet.adaptive_avg_pool(jnp.asarray(x))
    # float32 averaging against a float64 loop: a few ulps.
    np.testing.assert_allclose(got, _adaptive_pool_loop(x, 6), rtol=1e-6, atol=1e-6)


def test_dropout_only_when_training(tiny_params):
    x = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))
    eval_logits = alexnet.apply(tiny_params, x)
    a = alexnet.apply(tiny_params, x, train=True, key=jax.random.key(2))
    b = alexnet.apply(tiny_params, x, train=True, key=jax.random.key(2))
    c = alexnet.apply(tiny_params, x, train=True, key=jax.random.key(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, eval_logits)
    np.testing.assert_array_equal(eval_logits, alexnet.apply(tiny_params, x))


def test_bad_inputs_raise(tiny_params):
    with pytest.raises(ValueError, match="H, W >= 63"):
        alexnet.apply(tiny_params, jnp.zeros((1, 62, 100, 3)))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, H, W, 3\)"):
        alexnet.apply(tiny_params, jnp.zeros((1, 64, 64, 1)))
    with pytest.raises(ValueError, match="dropout key"):
        alexnet.apply(tiny_params, jnp.zeros((1, 64, 64, 3)), train=True)
    with pytest.raises(TypeError, match="floating-point"):
        alexnet.activations(tiny_params, jnp.zeros((1, 64, 64, 3), jnp.int32))


def test_params_are_checked(tiny_params):
    broken = dict(tiny_params, conv2={"kernel": jnp.zeros((5, 5, 3, 8)), "bias": jnp.zeros(8)})
    with pytest.raises(ValueError, match=r"conv2.*\(5, 5, 4, C\)"):
        alexnet.apply(broken, jnp.zeros((1, 64, 64, 3)))
    missing = {k: v for k, v in tiny_params.items() if k != "fc7"}
    with pytest.raises(ValueError, match="missing layers.*fc7"):
        alexnet.apply(missing, jnp.zeros((1, 64, 64, 3)))
    with pytest.raises(ValueError, match="expected num_classes"):
        alexnet.init(jax.random.key(0), 0)


def test_preprocess_grey_to_rgb_and_normalises():
    x = np.full((2, 25, 25, 1), 0.5, np.float32)
    out = alexnet.preprocess(x, 64)
    assert out.shape == (2, 64, 64, 3) and out.dtype == jnp.float32
    expected = (0.5 - np.array(alexnet.IMAGENET_MEAN)) / np.array(alexnet.IMAGENET_STD)
    np.testing.assert_allclose(out[0, 10, 10], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="size an int >= 63"):
        alexnet.preprocess(x, 32)
    with pytest.raises(ValueError, match="1 or 3"):
        alexnet.preprocess(np.zeros((2, 8, 8, 2), np.float32), 64)


def test_sharded_batch_equals_one_device(tiny_params):
    devices = np.array(jax.devices())
    x = jax.random.normal(jax.random.key(4), (len(devices), 64, 64, 3))
    expected = alexnet.apply(tiny_params, x)
    mesh = Mesh(devices, ("batch",))
    x_sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
    params = jax.device_put(tiny_params, NamedSharding(mesh, PartitionSpec()))
    got = jax.jit(alexnet.apply)(params, x_sharded)
    # Per-device convolutions may block their sums differently: float32 rounding only.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
