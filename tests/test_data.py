import numpy as np
import pytest

from glassjax import data


@pytest.mark.parametrize("name,n_train,n_test,shape,classes", [
    ("lfw_faces", 140, 60, (25, 25, 1), 2),
    ("digits", 1257, 540, (8, 8, 1), 10),
    ("mnist5k", 4000, 1000, (28, 28, 1), 10),
])
def test_bundled_sets_load_offline_with_fixed_splits(name, n_train, n_test, shape, classes):
    d = data.load(name)
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert d.num_classes == classes
    # stratified: every class's test share within one image of proportional
    counts = np.bincount(d.y_test, minlength=classes)
    total = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=classes)
    assert np.all(np.abs(counts - total * n_test / total.sum()) <= 1)
    again = data.load(name)
    np.testing.assert_array_equal(d.y_test, again.y_test)
    np.testing.assert_array_equal(d.x_test, again.x_test)


def test_split_depends_on_seed():
    a, b = data.load("lfw_faces", seed=0), data.load("lfw_faces", seed=1)
    assert not np.array_equal(a.x_test, b.x_test)


def test_select_classes_relabels_in_given_order():
    d = data.load("digits", classes=["9", "6"])
    assert d.class_names == ("9", "6")
    full = data.load("digits")
    assert d.x_train.shape[0] == np.isin(full.y_train, [6, 9]).sum()
    np.testing.assert_array_equal(d.y_train, np.where(full.y_train[np.isin(full.y_train, [6, 9])] == 9, 0, 1))


def test_lfw_is_faces_then_non_faces():
    d = data.load("lfw_faces")
    assert d.class_names == ("face", "non-face")
    assert np.bincount(d.y_train).tolist() == [70, 70]


@pytest.mark.parametrize("bad,exc,match", [
    (np.full((2, 4, 4), np.nan, np.float32), ValueError, "NaN or inf"),
    (np.zeros((0, 4, 4), np.float32), ValueError, "at least one non-empty image"),
    (np.zeros((4, 4), np.float32), ValueError, r"expected images of shape \(N, H, W\)"),
    (np.full((2, 4, 4), 2.0, np.float32), ValueError, r"in \[0, 1\]"),
    (np.zeros((2, 4, 4), np.int64), TypeError, "expected floating-point or uint8 images, got dtype int64"),
    ([[0.0]], ValueError, r"expected images as an array \(N, H, W\[, C\]\) or a list of \(H, W\[, C\]\) arrays"),
    ("abc", TypeError, "expected a numpy or JAX array"),
])
def test_bad_images_raise(bad, exc, match):
    with pytest.raises(exc, match=match):
        data.as_images(bad)


def test_uint8_is_scaled_to_unit_range():
    x = data.as_images(np.array([[[0, 255]]], np.uint8))
    np.testing.assert_array_equal(x[..., 0], [[[0.0, 1.0]]])


def test_bad_labels_and_names_raise():
    with pytest.raises(ValueError, match="at least 2 classes"):
        data.as_labels(np.zeros(3, int), 3)
    with pytest.raises(ValueError, match="one label per row"):
        data.as_labels(np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="unknown class '7'"):
        data.load("lfw_faces", classes=["face", "7"])
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        data.load("nope")


def test_tfds_data_set_built_on_disk_reads_back_through_the_loader(tfds_digits):
    data_dir, reference = tfds_digits
    assert "tiny_digits" in data.available(data_dir)
    d = data.load("tiny_digits", data_dir=data_dir)
    assert d.x_train.shape == (120, 8, 8, 1) and d.x_test.shape == (20, 8, 8, 1)
    assert d.class_names == ("0", "1")
    # uint8 quantisation of x/16 (exact multiples of 1/16) loses at most half a grey level
    np.testing.assert_allclose(d.x_train, reference.x_train, atol=0.5 / 255 + 1e-7)
    np.testing.assert_array_equal(d.y_test, reference.y_test)
    with pytest.raises(ValueError, match="not prepared"):
        data.load("mnist", data_dir=data_dir)
