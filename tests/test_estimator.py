"""GlassBox as a scikit-learn estimator: parameters, labels of any type, clone, pickle, and use in
cross_val_score, GridSearchCV and Pipeline, on tiny digit images (8x8, 2-3 classes).

scikit-learn's own checks (``sklearn.utils.estimator_checks``, 1.9) that are run as they are:
check_estimator_cloneable, check_estimator_repr, check_estimator_tags_renamed,
check_valid_tag_types, check_mixin_order, check_no_attributes_set_in_init,
check_parameters_default_constructible, check_get_params_invariance, check_set_params,
check_do_not_raise_errors_in_init_or_set_params (none of these feed data), and
check_estimators_unfitted, check_requires_y_none (they feed 2-D X, but the estimator must
answer before it reads X: NotFittedError, and the "y is None" message).

Every other check does not apply as it is: it makes its own 2-D tabular X (make_blobs, uniform
(n, 3), iris) and GlassBox takes images (N, H, W[, C]) in [0, 1] (its tags say
two_d_array=False, so ``check_estimator`` skips everything). The properties that matter are
tested below on images instead: dont_overwrite_parameters, estimators_overwrite_params,
estimators_fit_returns_self, fit_check_is_fitted (``test_fit_sets_only_fitted_attributes``),
dict_unchanged, fit_idempotent, methods_subset_invariance, methods_sample_order_invariance,
estimators_pickle, classifiers_one_label, classifiers_regression_target, classifiers_classes,
pipeline_consistency. scikit-learn's sample-weight checks feed tabular X too; their properties
(integer weights = repeated rows, weight 0 = removal, errors) are tested on images in
tests/test_sample_weight.py. Not applicable at all:
sparse and array-API input, pandas / NotAnArray / dtype-object input, n_features_in (images
have a shape, ``image_shape_``, not a feature count), check_supervised_y_2d (a column y is
refused, not raveled with a warning), fit1d / fit2d_1sample / fit2d_1feature, partial_fit,
multilabel and multioutput, n_iter (no max_iter parameter), decision_proba_consistency (no
predict_proba).
"""
import copy
import dataclasses
import inspect
import pickle
import re
import warnings

import jax
import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks, get_tags
from sklearn.utils.validation import check_is_fitted

from glassjax import data
from glassjax.data import sources
from glassjax.systems.glassbox import GlassBox, GlassBoxConfig

# Small enough that a fit takes well under a second once compiled. Every fit below keeps these
# settings, the 8x8 images and batch_size, so most fits reuse the compiled passes.
TINY = dict(components=10, filters_per_class=2, pool_dim=4, orbit_dim=4, classifier="ridge", batch_size=16)
NAMES = np.array(["three", "seven", "eight"])


@pytest.fixture(scope="module")
def digits():
    """60 train images of digits 3, 7, 8 (labels 0..2) and 60 test images."""
    d = data.load("digits", classes=["3", "7", "8"])
    return d.x_train[:60], d.y_train[:60], d.x_test[:60], d.y_test[:60]


@pytest.fixture(scope="module")
def fitted(digits):
    """A GlassBox fitted on string labels."""
    x, y, _, _ = digits
    return GlassBox(**TINY).fit(x, NAMES[y])


# --- parameters ---------------------------------------------------------------------------------


def test_init_parameters_are_the_config_fields_with_their_defaults():
    params = inspect.signature(GlassBox.__init__).parameters
    fields = {f.name: f.default for f in dataclasses.fields(GlassBoxConfig)}
    assert list(params)[1:] == list(fields) + ["seed", "devices"]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "self")
    assert {name: params[name].default for name in fields} == fields
    assert GlassBox().get_params() == dict(fields, seed=0, devices=None)
    assert GlassBox().config == GlassBoxConfig().validated()


def test_parameters_are_stored_as_given_and_checked_by_fit(digits):
    x, y, _, _ = digits
    poolings = ["mean", "max"]
    model = GlassBox(poolings=poolings, representation="equi", seed=1.5)
    assert model.poolings is poolings and model.get_params()["representation"] == "equi"
    with pytest.raises(ValueError, match=re.escape("expected representation in invariant|equivariant|both, got 'equi'")):
        model.fit(x, y)
    model.set_params(representation="both")
    assert model.config.poolings == ("mean", "max") and model.config.representation == "both"
    for seed, kind in ((2**70, ValueError), (-1, ValueError), ("abc", TypeError)):
        with pytest.raises(kind, match=r"GlassBox: expected seed an int in 0\.\.4294967295"):
            GlassBox(seed=seed).fit(x, y)
    with pytest.raises(TypeError, match="expected seed an int in 0..4294967295, got 1.5"):
        model.fit(x, y)
    assert not hasattr(model, "params_")
    with pytest.raises(ValueError, match="unknown group"):
        GlassBox(group="d5").fit(x, y)
    with pytest.raises(ValueError, match="expected components a positive int or None, got 0"):
        GlassBox(components=0).fit(x, y)


def test_tags_say_images_not_tables():
    tags = get_tags(GlassBox())
    assert tags.estimator_type == "classifier"
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array


DATA_FREE_CHECKS = [
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_estimator_tags_renamed,
    estimator_checks.check_valid_tag_types,
    estimator_checks.check_mixin_order,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_estimators_unfitted,
    estimator_checks.check_requires_y_none,
]


# With devices given as well, except check_set_params: it deep-copies the parameters, and jax
# devices cannot be copied (clone shares them instead).
CHECK_CASES = [pytest.param(check, devices, id=f"{check.__name__}-{devices}")
               for devices in (None, "one") for check in DATA_FREE_CHECKS
               if not (devices and check is estimator_checks.check_set_params)]


@pytest.mark.parametrize("check,devices", CHECK_CASES)
def test_sklearn_check(check, devices):
    estimator = GlassBox(**TINY, devices=None if devices is None else jax.devices()[:1])
    with warnings.catch_warnings():
        # check_set_params only warns when set_params raises; here that is a failure
        warnings.simplefilter("error", UserWarning)
        check("GlassBox", estimator)


def test_clone_copies_parameters_not_fit_and_shares_devices(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "params_")
    devices = jax.devices()[:2]
    twin = clone(GlassBox(devices=devices, components=7))
    assert twin.devices is devices and twin.components == 7


# --- fitting and the sklearn contract, on images ------------------------------------------------


def test_fit_sets_only_fitted_attributes(digits):
    x, y, _, _ = digits
    model = GlassBox(**TINY, poolings=["mean", "max"])
    before = dict(vars(model))
    hashes = {k: joblib.hash(v) for k, v in model.get_params().items()}
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert model.fit(x, y) is model
    check_is_fitted(model)
    added = set(vars(model)) - set(before)
    assert {"classes_", "params_", "image_shape_", "fit_seconds_", "mesh_"} <= added
    assert all(k.endswith("_") or k.startswith("_") for k in added), added
    assert all(vars(model)[k] is v for k, v in before.items())  # no parameter replaced
    assert {k: joblib.hash(v) for k, v in model.get_params().items()} == hashes  # nor mutated


def test_predict_leaves_the_estimator_unchanged(fitted, digits):
    before = {k: id(v) for k, v in vars(fitted).items()}
    for method in (fitted.predict, fitted.transform, fitted.decision_function, fitted.represent):
        method(digits[2][:5])
    assert {k: id(v) for k, v in vars(fitted).items()} == before


def test_fit_is_idempotent_and_seeded(fitted, digits):
    x, y, x_test, _ = digits
    again = clone(fitted).fit(x, NAMES[y]).fit(x, NAMES[y])
    np.testing.assert_array_equal(again.decision_function(x_test), fitted.decision_function(x_test))
    np.testing.assert_array_equal(again.predict(x_test), fitted.predict(x_test))


def test_outputs_do_not_depend_on_batching_or_order(fitted, digits):
    x_test = digits[2][:20]
    whole = fitted.decision_function(x_test)
    # float32 sums in batches of other sizes (other compiled shapes) may differ in the last bits
    pieces = np.concatenate([fitted.decision_function(x_test[i : i + 3]) for i in range(0, 20, 3)])
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5)
    order = np.random.default_rng(0).permutation(20)
    np.testing.assert_allclose(fitted.decision_function(x_test[order]), whole[order], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(x_test[order]), fitted.predict(x_test)[order])


def test_pickle_and_deepcopy_round_trip(fitted, digits):
    x_test = digits[2]
    for twin in (pickle.loads(pickle.dumps(fitted)), copy.deepcopy(fitted)):
        np.testing.assert_array_equal(twin.decision_function(x_test), fitted.decision_function(x_test))
        np.testing.assert_array_equal(twin.predict(x_test), fitted.predict(x_test))
        assert twin.get_params() == fitted.get_params()
    assert pickle.loads(pickle.dumps(GlassBox(components=3))).components == 3


# --- labels -------------------------------------------------------------------------------------


def test_string_labels(fitted, digits):
    x, y, x_test, y_test = digits
    np.testing.assert_array_equal(fitted.classes_, ["eight", "seven", "three"])  # sorted
    assert fitted.params_.class_names == ("eight", "seven", "three")
    predicted = fitted.predict(x_test)
    assert predicted.dtype == NAMES.dtype and set(predicted) <= set(NAMES)
    assert fitted.score(x_test, NAMES[y_test]) > 0.8
    # object arrays and lists of strings are labels too, with the same model
    as_object = clone(fitted).fit(x, NAMES[y].astype(object))
    np.testing.assert_array_equal(as_object.decision_function(x_test), fitted.decision_function(x_test))
    assert as_object.score(x_test, list(NAMES[y_test])) == fitted.score(x_test, NAMES[y_test])


@pytest.mark.parametrize("labels", [[3, 7, 9], [-1, 5, 2], ["b", "c", "a"]])
def test_any_labels_give_the_model_of_their_codes_0_to_c_minus_1(digits, labels):
    x, y, x_test, y_test = digits
    labels = np.array(labels)
    codes = np.argsort(np.argsort(labels))  # labels[i] is class classes_[codes[i]]: classes_ is sorted
    base = GlassBox(**TINY).fit(x, codes[y])
    model = GlassBox(**TINY).fit(x, labels[y])
    np.testing.assert_array_equal(model.classes_, np.sort(labels))
    np.testing.assert_array_equal(model.decision_function(x_test), base.decision_function(x_test))
    np.testing.assert_array_equal(model.predict(x_test), np.sort(labels)[base.predict(x_test)])
    assert model.score(x_test, labels[y_test]) == base.score(x_test, codes[y_test]) > 0.8
    assert model.params_.class_names == tuple(str(c) for c in np.sort(labels))


def test_class_names(digits):
    x, y, _, _ = digits
    model = GlassBox(**TINY).fit(x, y + 10, class_names=["three", "seven", "eight"])
    np.testing.assert_array_equal(model.classes_, [10, 11, 12])
    assert model.params_.class_names == ("three", "seven", "eight")
    with pytest.raises(ValueError, match="expected 3 class names"):
        GlassBox(**TINY).fit(x, y, class_names=["three", "seven"])


@pytest.mark.parametrize("labels,match", [
    (np.ones(60), "expected at least 2 classes"),                          # check_classifiers_one_label
    (np.linspace(0, 1, 60), "continuous"),                                 # check_classifiers_regression_target
    (np.zeros((60, 1), int), r"expected labels of shape \(N,\)"),         # a column y is refused
    (np.array([0.0, np.nan] * 30), "expected finite class labels, got 30 NaN or inf"),
    (np.array([1, "a"] * 30, dtype=object), "expected class labels of one type"),
    (np.arange(59) % 2, "one label per image"),
])
def test_bad_labels_raise(digits, labels, match):
    with pytest.raises(ValueError, match=match):
        GlassBox(**TINY).fit(digits[0], labels)


def test_image_shape_is_checked_on_every_method(fitted, digits):
    assert fitted.image_shape_ == (8, 8, 1)
    np.testing.assert_array_equal(fitted.predict(digits[2][:4, :, :, 0]), fitted.predict(digits[2][:4]))
    for method in ("predict", "transform", "decision_function", "represent", "score"):
        args = (np.zeros((2, 9, 9), np.float32),) + (("three", "seven"),) * (method == "score")
        with pytest.raises(ValueError, match=r"^GlassBox\.\w+: expected images of shape \(N, 8, 8, 1\), got \(2, 9, 9, 1\)$"):
            getattr(fitted, method)(*args)
    with pytest.raises(ValueError, match=r"expected labels of shape \(4,\), got shape \(3,\)"):
        fitted.score(digits[2][:4], NAMES[:3])


def test_batch_source_fit_has_classes_0_to_c_minus_1(digits):
    x, y, x_test, _ = digits
    model = GlassBox(**TINY).fit(sources.ArraySource(x, y, 16), class_names=["three", "seven", "eight"])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.params_.class_names == ("three", "seven", "eight")
    np.testing.assert_array_equal(model.predict(x_test), GlassBox(**TINY).fit(x, y).predict(x_test))
    with pytest.raises(TypeError, match="expected y=None with a batch source"):
        GlassBox(**TINY).fit(sources.ArraySource(x, y, 16), y)


def test_save_load_parameters_and_classes(fitted, digits, tmp_path):
    x_test = digits[2]
    fitted.save(tmp_path / "model.npz")
    loaded = GlassBox.load(tmp_path / "model.npz")
    # the file keeps the resolved config and the class names; labels come back as indices
    assert loaded.config == fitted.params_.config == loaded.params_.config
    assert loaded.get_params() == dict(dataclasses.asdict(fitted.params_.config), seed=0, devices=None)
    assert loaded.get_params()["poolings"] == ("mean", "max") and fitted.poolings is None
    np.testing.assert_array_equal(loaded.classes_, [0, 1, 2])
    np.testing.assert_array_equal(fitted.classes_[loaded.predict(x_test)], fitted.predict(x_test))
    np.testing.assert_array_equal(loaded.decision_function(x_test), fitted.decision_function(x_test))
    assert loaded.image_shape_ == (8, 8, 1) and loaded.params_.class_names == ("eight", "seven", "three")
    # refitting a loaded model with its parameters gives the model it was loaded from
    refit = clone(loaded).fit(digits[0], NAMES[digits[1]])
    np.testing.assert_array_equal(refit.decision_function(x_test), fitted.decision_function(x_test))
    with pytest.raises(NotFittedError, match="GlassBox.save: the model is not fitted"):
        GlassBox().save(tmp_path / "unfitted.npz")


# --- model selection ----------------------------------------------------------------------------


def test_cross_val_score_matches_a_manual_loop(digits):
    x, y, _, _ = digits
    labels = NAMES[y]
    folds = StratifiedKFold(3)
    scores = cross_val_score(GlassBox(**TINY), x, labels, cv=folds, error_score="raise")
    manual = [GlassBox(**TINY).fit(x[tr], labels[tr]).score(x[te], labels[te]) for tr, te in folds.split(x, labels)]
    np.testing.assert_array_equal(scores, manual)
    assert scores.min() > 0.6  # three classes: chance is 1/3


def test_grid_search_over_components(digits):
    x, y, x_test, y_test = digits
    search = GridSearchCV(GlassBox(**TINY), {"components": [4, 10]}, cv=3, error_score="raise")
    search.fit(x, NAMES[y])
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and scores.shape == (2,)
    best = search.best_estimator_
    assert best.components == search.best_params_["components"] == [4, 10][int(np.argmax(scores))]
    assert best.transform(x_test).shape == (60, best.components)
    assert search.score(x_test, NAMES[y_test]) == best.score(x_test, NAMES[y_test])


def test_pipeline_with_an_image_transformer_and_a_grid_over_components(digits):
    x, y, x_test, y_test = digits
    halve = FunctionTransformer(lambda images: images * np.float32(0.5))
    pipeline = make_pipeline(halve, GlassBox(**TINY))
    # check_pipeline_consistency: the pipeline scores what its last step scores on the transformed images
    pipeline.fit(x, NAMES[y])
    direct = GlassBox(**TINY).fit(x * np.float32(0.5), NAMES[y])
    assert pipeline.score(x_test, NAMES[y_test]) == direct.score(x_test * np.float32(0.5), NAMES[y_test])
    np.testing.assert_array_equal(pipeline.predict(x_test), direct.predict(x_test * np.float32(0.5)))
    search = GridSearchCV(pipeline, {"glassbox__components": [4, 10]}, cv=3, error_score="raise").fit(x, NAMES[y])
    chosen = search.best_params_["glassbox__components"]
    assert search.best_estimator_[-1].transform(x_test).shape == (60, chosen)
    assert search.best_estimator_.predict(x_test).dtype == NAMES.dtype
