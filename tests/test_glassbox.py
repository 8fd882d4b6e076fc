
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import data
from glassjax.systems import glassbox
from glassjax.core import groups
from glassjax.analysis import testing
from glassjax.systems.glassbox import GlassBox

SMALL = dict(filters_per_class=4, pool_dim=8, orbit_dim=8, components=20, classifier="ridge", batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", classes=["0", "1", "6", "9"])


@pytest.fixture(scope="module")
def fitted(digits):
    return GlassBox(representation="both", **SMALL).fit(digits.x_train, digits.y_train, class_names=digits.class_names)


def test_fit_predict_score(fitted, digits):
    assert fitted.score(digits.x_test, digits.y_test) > 0.9
    # components=20, cut between whole irrep blocks of d4 (dimensions 1 and 2): 19 or 20 features
    assert fitted.transform(digits.x_test).shape[0] == digits.x_test.shape[0]
    assert fitted.transform(digits.x_test).shape[1] in (19, 20)
    assert fitted.predict(digits.x_test).dtype == np.int32


def test_pure_apply_is_jittable_and_equals_eager(fitted, digits):
    x = jnp.asarray(digits.x_test[:16])
    eager = glassbox.apply(fitted.params_, x)
    np.testing.assert_allclose(jax.jit(glassbox.apply)(fitted.params_, x), eager, rtol=1e-5, atol=1e-5)
    assert eager.shape == (16, 4)


@pytest.mark.parametrize("representation", ["invariant", "both", "equivariant"])
def test_representation_symmetry(digits, representation):
    model = GlassBox(representation=representation, **SMALL).fit(digits.x_train[:80], digits.y_train[:80])
    x = jnp.asarray(digits.x_test[:8])
    rep = lambda images: glassbox.represent(model.params_, images)
    if representation == "invariant":
        testing.assert_invariant(rep, "d4", x, rtol=1e-5, atol=1e-5)
    else:
        # the orbit block (last |G| * orbit_dim columns) permutes its group axis exactly
        group = groups.d4()
        width = group.order * model.config.orbit_dim
        for h in range(group.order):
            moved = np.asarray(rep(jax.vmap(group.act, (None, 0))(h, x)))[:, -width:].reshape(8, group.order, -1)
            base = np.asarray(rep(x))[:, -width:].reshape(8, group.order, -1)
            np.testing.assert_allclose(moved, base[:, group.cayley_table[:, h]], rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_is_bit_exact(fitted, digits, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = GlassBox.load(path)
    assert loaded.params_.class_names == digits.class_names
    assert loaded.params_.config == fitted.params_.config
    for a, b in zip(jax.tree_util.tree_leaves(fitted.params_), jax.tree_util.tree_leaves(loaded.params_)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.decision_function(digits.x_test), fitted.decision_function(digits.x_test))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_failed_save_leaves_nothing(fitted, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError):
        fitted.save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_loading_a_non_model_file_raises(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a (readable )?glassjax model file"):
        GlassBox.load(bad)
    with pytest.raises(FileNotFoundError):
        GlassBox.load(tmp_path / "missing.npz")


def test_prototype_filters_and_uint8_input(digits):
    x = np.round(digits.x_train * 255).astype(np.uint8)
    model = GlassBox(filters="both", **SMALL).fit(x, digits.y_train)
    assert model.params_.prototypes.filters.shape == (4, 8, 8, 1)
    assert model.score(digits.x_test, digits.y_test) > 0.9


@pytest.mark.parametrize("x,y,exc,match", [
    (np.full((4, 8, 8), np.nan, np.float32), np.array([0, 1, 0, 1]), ValueError, "NaN or inf"),
    (np.zeros((4, 8), np.float32), np.array([0, 1, 0, 1]), ValueError, "expected images of shape"),
    (np.zeros((4, 8, 8), np.float32), np.zeros(4, int), ValueError, "at least 2 classes"),
    (np.zeros((4, 8, 8), np.float32), np.array([0, 1, 0]), ValueError, "one label per image"),
    (np.zeros((4, 8, 6), np.float32), np.array([0, 1, 0, 1]), ValueError, "needs square images"),
    (np.zeros((0, 8, 8), np.float32), np.zeros(0, int), ValueError, "at least one non-empty image"),
    ("images", np.array([0, 1]), TypeError, "expected a numpy or JAX array"),
])
def test_bad_input_raises(x, y, exc, match):
    with pytest.raises(exc, match=match):
        GlassBox(**SMALL).fit(x, y)


def test_bad_config_and_unfitted_use_raise(fitted, digits):
    x, y = digits.x_train[:8], digits.y_train[:8]
    # parameters are checked by fit, not by the constructor (scikit-learn's convention)
    with pytest.raises(ValueError, match="expected representation in"):
        GlassBox(representation="equi").fit(x, y)
    with pytest.raises(ValueError, match="expected poolings"):
        GlassBox(poolings=("median",)).fit(x, y)
    with pytest.raises(ValueError, match="unknown group"):
        GlassBox(group="d5").fit(x, y)
    with pytest.raises(ValueError, match="not fitted"):
        GlassBox().predict(digits.x_test)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 8, 8, 1\)"):
        fitted.predict(np.zeros((2, 9, 9), np.float32))
