"""The side-by-side comparison: layer names, exact symmetries of the glass-box rows, ridges, scores."""
import jax
import numpy as np
import pytest

from glassjax import data
from glassjax.analysis import comparison, scoring
from glassjax.systems import alexnet, glassbox

ROW_KEYS = {"name", "system", "layer", "shape", "invariance_error", "equivariance_error", "equivariance_error_identity", "lie_derivative",
            "intra_class_distance", "inter_class_distance", "fisher_ratio", "linear_probe_accuracy", "ridge", "fit_rows"}
WEIGHTS = "tests/fixtures/alexnet_small.safetensors"


def _squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 12x12 grey images: a bright bar along the top row or in the centre column."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.3, (n, 12, 12, 1)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int32)
    x[y == 0, 1:3, 2:10] += 0.6
    x[y == 1, 3:9, 5:7] += 0.6
    return x, y


@pytest.fixture(scope="module")
def dataset():
    x_train, y_train = _squares(24, 0)
    x_test, y_test = _squares(10, 1)
    return data.Dataset("bars", x_train, y_train, x_test, y_test, ("top", "centre"))


@pytest.fixture(scope="module")
def model(dataset):
    """A glass-box with both parts of layer 1, small enough that every layer is at most 96 wide."""
    return comparison.fit("glassbox", dataset, seed=0, group="d4", representation="both", filters_per_class=4,
                          pool_dim=4, orbit_dim=4, components=6, classifier="ridge")


@pytest.fixture(scope="module")
def invariant(dataset):
    """The invariant glass-box, as small."""
    return comparison.fit("glassbox", dataset, seed=0, filters_per_class=4, pool_dim=4, components=6, classifier="ridge")


@pytest.fixture(scope="module")
def compared(dataset, model):
    """The glass-box's rows and scores (AlexNet's rows beside them: tests/test_cli_compare.py).

    With 12 fit images x 8 group elements = 96 rows and no layer wider, one ridge serves every
    layer and the metrics make one pass.
    """
    return comparison.run(dataset, {"glassbox": model}, images=12)


def test_rows_are_named_and_complete(compared):
    names = [row["name"] for row in compared["layers"]]
    assert names == ["glassbox_response", "glassbox_orbit", "glassbox_invariant", "glassbox_representation",
                     "glassbox_pca"]
    for row in compared["layers"]:
        assert ROW_KEYS <= set(row), row["name"]
        assert row["fit_rows"] == 12 * 8  # 12 fit images and their D4 orbits
        assert row["ridge"] == comparison.DEFAULT_RIDGE
        assert row["system"] == "glassbox" and row["name"] == f"glassbox_{row['layer']}"
    assert compared["n_fit_images"] == 12 and compared["n_eval_images"] == 10


def test_glassbox_rows_are_exact(compared):
    rows = {row["name"]: row for row in compared["layers"]}
    # Pooling over the group is exactly invariant; the 1e-5 allows float32 summation order.
    assert rows["glassbox_invariant"]["invariance_error"] < 1e-5
    # The group permutes the orbit blocks, so an exact linear map exists. The held-out residual
    # is what the ridge (1e-3 of the mean eigenvalue) shrinks away from it: the identity's floor.
    orbit = rows["glassbox_orbit"]
    assert orbit["equivariance_error"] < 1e-3
    assert orbit["equivariance_error"] < 2 * orbit["equivariance_error_identity"] + 1e-6
    # Layer 1 holds the orbit part as well: equivariant like it, and not invariant.
    assert rows["glassbox_representation"]["equivariance_error"] < 1e-3
    # The responses at the identity move with the image: not invariant.
    for name in ("glassbox_response", "glassbox_representation"):
        assert rows[name]["invariance_error"] > 0.05


def test_accuracy_per_model(compared, dataset):
    assert set(compared["accuracy"]) == {"glassbox"}
    for scores in compared["accuracy"].values():
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["accuracy_transformed"] <= 1.0
        assert np.asarray(scores["confusion"]).sum() == len(dataset.y_test)
        assert np.asarray(scores["confusion_transformed"]).sum() == len(dataset.y_test)


def test_an_invariant_system_never_changes_its_mind_under_a_half_turn(dataset, invariant):
    compared = comparison.run(dataset, {"glassbox": invariant}, images=12)
    # Exactly invariant to D4, so a half turn never changes the invariant glass-box's prediction.
    assert compared["accuracy"]["glassbox"]["turned_changed"] == 0
    assert compared["accuracy"]["glassbox"]["accuracy"] == compared["accuracy"]["glassbox"]["accuracy_transformed"]


def test_layer_ridge_scales_only_underdetermined_layers():
    assert comparison.layer_ridge((256,), 128, 1e-3) == pytest.approx(2e-3)
    assert comparison.layer_ridge((64,), 128, 1e-3) == 1e-3
    # A feature map has a row per position: 15 * 15 * 128 rows for 32 channels.
    assert comparison.layer_ridge((15, 15, 32), 128, 1e-3) == 1e-3


@pytest.fixture(scope="module")
def cnn(dataset):
    # The committed torch fixture: reading it is much quicker than training or alexnet.init.
    return comparison.fit("alexnet", dataset, weights=WEIGHTS, size=64)


def test_feature_sets(dataset, cnn):
    features = comparison.system_features(cnn, (12, 12, 1))
    assert features.names == tuple(f"alexnet_{name}" for name in alexnet.LAYER_NAMES)  # depth order
    shapes = jax.eval_shape(features.fn, jax.ShapeDtypeStruct((3, 12, 12, 1), np.float32))
    assert shapes["alexnet_fc8"].shape == (3, 10) and shapes["alexnet_conv1"].shape == (3, 15, 15, 8)
    with pytest.raises(ValueError, match="expected distinct layer names"):
        comparison.combine(features, features)


def test_glassbox_features_in_depth_order(dataset, model, invariant):
    default = comparison.system_features(model, (12, 12, 1), prefix="gb")
    assert default.names == ("gb_response", "gb_orbit", "gb_invariant", "gb_representation", "gb_pca")
    shapes = jax.eval_shape(default.fn, jax.ShapeDtypeStruct((2, 12, 12, 1), np.float32))
    assert shapes["gb_orbit"].shape == (2, 8 * 4)
    assert shapes["gb_representation"].shape[1] == shapes["gb_invariant"].shape[1] + shapes["gb_orbit"].shape[1]
    # The features assemble layers 1 and 2 from one orbit pass; they must equal the model's own.
    x = dataset.x_test[:3]
    out = default.fn(x)
    np.testing.assert_allclose(out["gb_representation"], glassbox.represent(model.params, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["gb_pca"], glassbox.transform(model.params, x), rtol=1e-5, atol=1e-5)
    # The invariant model reads its invariant layer, and has no separate "representation" layer.
    assert "gb_representation" not in comparison.system_features(invariant, (12, 12, 1), prefix="gb").names
    assert invariant.system.representation(invariant.params) == "invariant"


def test_metric_images_subsets_with_a_seed():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10, dtype=np.int32)
    same_x, same_y = comparison.metric_images(x, y, 20, seed=0)
    assert same_x is x and same_y is y
    sub_x, sub_y = comparison.metric_images(x, y, 4, seed=0)
    assert sub_x.shape == (4, 1, 1, 1) and np.array_equal(sub_x[:, 0, 0, 0], sub_y)
    assert np.array_equal(sub_y, comparison.metric_images(x, y, 4, seed=0)[1])
    with pytest.raises(ValueError, match="expected count an int >= 2"):
        comparison.metric_images(x, y, 1, seed=0)


def test_model_scores_counts_what_moves():
    x, y = _squares(8, 2)

    def top_heavy(images):
        """Class 0 when rows 1-2 are brighter than rows 9-10: right for upright images, wrong for a turned top bar."""
        top, bottom = images[:, 1:3].mean(axis=(1, 2, 3)), images[:, 9:11].mean(axis=(1, 2, 3))
        return (top <= bottom + 0.2).astype(np.int32)

    scores = scoring.scores(top_heavy, x, y, group="d4", seed=0, num_classes=2)
    assert scores["accuracy"] == 1.0
    assert scores["turned_changed"] == int(np.sum(y == 0))  # the top bar moves to the bottom
    assert np.array_equal(np.asarray(scores["confusion"]), [[4, 0], [0, 4]])
    assert scores["n_test"] == 8


def test_alexnet_from_weights(dataset, cnn):
    settings = cnn.system.settings(cnn.params)
    assert settings["source"] == "weights" and settings["widths"][-1] == 10
    assert cnn.params.weights["fc8"]["kernel"].shape == (64, 10)
    # Ten outputs for a two-class data set: its classes are the outputs', and it is not scored.
    assert cnn.system.class_names(cnn.params) == tuple(map(str, range(10)))
    assert comparison.num_outputs(cnn, (12, 12, 1)) == 10
    with pytest.raises(ValueError, match="expected size an int >= 63, got 32"):
        comparison.fit("alexnet", dataset, weights=WEIGHTS, size=32)


def test_unknown_systems_and_fields_are_named(dataset):
    with pytest.raises(ValueError, match="unknown system 'lenet9'; registered: glassbox, glassbox_both, alexnet"):
        comparison.fit("lenet9", dataset)
    with pytest.raises(ValueError, match="system alexnet: its config has no field grid"):
        comparison.fit("alexnet", dataset, grid=2)
