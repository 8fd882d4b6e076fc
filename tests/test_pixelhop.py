"""PixelHop++ on tiny images: the energy tree (TH1, TH2), channel-wise Saab, cross-entropy selection, files."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data
from glassjax.systems.pixelhop import model as ph
from glassjax.systems.pixelhop import system as ph_system
from glassjax.systems.saab import geometry
from glassjax.systems.saab import transform as st

SMALL = ph.PixelHopConfig(size=16, pools=(2, 1), th1=0.01, th2=0.002, features=200)


@pytest.fixture(scope="module")
def digits():
    """300 train / 100 test scikit-learn digits (8x8) on a 16x16 canvas."""
    ds = data.load("digits")
    return ds._replace(x_train=ds.x_train[:300], y_train=ds.y_train[:300], x_test=ds.x_test[:100],
                       y_test=ds.y_test[:100])


@pytest.fixture(scope="module")
def fitted(digits):
    return ph.fit(SMALL, digits, key=jax.random.key(0))


def _entropy_reference(v, y, num_classes, bins):
    """H(class | bin) in nats by its definition, float64 loops."""
    out = []
    for column in v.T.astype(np.float64):
        lo, hi = column.min(), column.max()
        b = np.zeros(len(column), int) if hi == lo else np.clip(((column - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)
        h = 0.0
        for k in np.unique(b):
            counts = np.bincount(y[b == k], minlength=num_classes)
            p = counts[counts > 0] / counts.sum()
            h -= counts.sum() / len(y) * np.sum(p * np.log(p))
        out.append(h)
    return np.asarray(out)


def test_cross_entropy_matches_its_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    informative = y + 0.3 * rng.standard_normal(200)
    v = np.stack([informative, rng.standard_normal(200), np.full(200, 2.0), -informative], axis=1).astype(np.float32)
    ce = ph.cross_entropy(v, y, num_classes=3, bins=8, chunk=3)  # two chunks
    np.testing.assert_allclose(ce, _entropy_reference(v, y, 3, 8), rtol=1e-5, atol=1e-6)
    assert ce[0] < ce[1] and ce[2] == pytest.approx(_entropy_reference(v[:, 2:3], y, 3, 8)[0], rel=1e-6)


def test_energy_tree_follows_th1_and_th2(fitted):
    hop1, hop2 = fitted.hops
    # hop 1's energies are shares of the patch variance; kept nodes are those >= TH2.
    assert np.all(np.asarray(hop1.energy) >= SMALL.th2) and float(jnp.sum(hop1.energy)) <= 1 + 1e-6
    assert np.all(np.asarray(hop1.energy)[np.asarray(hop1.grow)] > SMALL.th1)
    assert np.all(np.asarray(hop1.energy)[np.asarray(hop1.leaf)] <= SMALL.th1)
    assert hop2.mean.shape[0] == hop1.grow.shape[0]  # one channel-wise Saab per grown node
    assert hop2.grow.shape[0] == 0  # the last hop grows nothing
    # A child's energy is its parent's times its share of the parent's patch variance: at most the parent's.
    parent_energy = np.asarray(hop1.energy)[np.asarray(hop1.grow)]
    child_sums = np.bincount(np.asarray(hop2.parent), weights=np.asarray(hop2.energy), minlength=len(parent_energy))
    assert np.all(child_sums <= parent_energy * (1 + 1e-5))


def test_with_nothing_discarded_children_share_their_parent_energy(fitted, digits):
    config = ph.PixelHopConfig(size=16, pools=(2, 1), th1=SMALL.th1, th2=0.0, features=50)
    hops, _ = ph.fit_hops(config, digits.x_train)
    parent_energy = np.asarray(hops[0].energy)[np.asarray(hops[0].grow)]
    child_sums = np.bincount(np.asarray(hops[1].parent), weights=np.asarray(hops[1].energy))
    np.testing.assert_allclose(child_sums, parent_energy, rtol=1e-4)  # float32 shares of 25 kernels
    assert hops[1].kernels.shape[0] == 25 * len(parent_energy)
    # A higher TH2 (SMALL's) discards nodes: a smaller model from the same statistics.
    assert sum(h.kernels.shape[0] for h in fitted.hops) < sum(h.kernels.shape[0] for h in hops)
    assert ph.saab_parameter_count(fitted) < sum(int(np.prod(h.kernels.shape)) for h in hops)


def test_hop_two_is_each_channels_own_saab(fitted, digits):
    hop1, hop2 = fitted.hops
    maps = ph.hop_features(fitted.hops, fitted.config, jnp.asarray(digits.x_train))
    inputs = jnp.take(maps["hop1"], hop1.grow, axis=3)
    responses = ph._responses(hop2, inputs, 1, 5)
    assert float(jnp.min(responses)) >= 0  # the bias: non-negative on the training set
    for c in (0, int(hop1.grow.shape[0]) - 1):
        alone = st.fit_array(geometry.patches(inputs[..., c : c + 1], 5), bias=True)
        mine = np.asarray(hop2.parent) == c
        kernels = np.asarray(alone.kernels)[np.asarray(hop2.slot)[mine]]
        # float32 statistics of 300 images; the low-energy kernels are the sensitive ones.
        np.testing.assert_allclose(np.abs(np.sum(kernels * np.asarray(hop2.kernels)[mine], axis=1)), 1, atol=2e-3)
        np.testing.assert_allclose(float(hop2.bias[c]), float(alone.bias), rtol=1e-4)


def test_features_selection_and_accuracy(fitted, digits):
    out = ph.features(fitted, jnp.asarray(digits.x_test))
    assert list(out) == ["hop1", "hop2", "selected", "scores"]
    assert out["hop1"].shape[:3] == (100, 6, 6) and out["hop2"].shape[:3] == (100, 2, 2)
    assert out["selected"].shape == (100, 200) and out["scores"].shape == (100, 10)
    # The selected features are the lowest-entropy candidates, recomputed from scratch.
    candidates = ph.leaf_features(fitted.hops, ph.hop_features(fitted.hops, fitted.config, jnp.asarray(digits.x_train)))
    ce = ph.cross_entropy(np.asarray(candidates), digits.y_train, num_classes=10, bins=SMALL.bins)
    assert set(np.asarray(fitted.selected)) == set(np.argsort(ce, kind="stable")[:200])
    accuracy = float(np.mean(np.argmax(np.asarray(out["scores"]), axis=1) == digits.y_test))
    assert accuracy > 0.8, accuracy  # 300 training digits; 0.93 measured


def test_scores_jit_equals_eager_and_file_round_trip(fitted, digits, tmp_path):
    x = jnp.asarray(digits.x_test[:8])
    eager = ph.scores(fitted, x)
    np.testing.assert_allclose(np.asarray(jax.jit(ph.scores)(fitted, x)), np.asarray(eager), rtol=1e-5, atol=1e-5)
    path = tmp_path / "ph.npz"
    ph_system.save(fitted, path)
    loaded = ph_system.load(path)
    assert loaded.config == fitted.config and loaded.candidates == fitted.candidates
    assert type(loaded.classifier) is type(fitted.classifier)
    for a, b in zip(jax.tree.leaves(fitted), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(ph.scores(loaded, x)), np.asarray(eager))


def test_config_errors():
    with pytest.raises(ValueError, match="th2 <= th1"):
        ph.PixelHopConfig(th1=0.001, th2=0.01).validated()
    with pytest.raises(ValueError, match="th1 a float in"):
        ph.PixelHopConfig(th1=1.5).validated()
    with pytest.raises(ValueError, match="no 5x5 neighbourhood at hop 3"):
        ph.PixelHopConfig(size=16).validated()
    with pytest.raises(ValueError, match="classifier one of"):
        ph.PixelHopConfig(classifier="xgboost").validated()
    with pytest.raises(ValueError, match="expected bins >= 2, got 1"):
        ph.PixelHopConfig(bins=1).validated()
    assert ph.PixelHopConfig(pools="2,2,1").validated().pools == (2, 2, 1)
