"""A user's own data: image folders, .npz, Hugging Face and parquet sets, read in batches and sharded.

Every set is written into tmp_path by the test itself; each test compares what glassjax reads
with a numpy reference of the same pixels.
"""
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from glassjax import cli, data
from glassjax.data import sources, user


def _write(path, pixels, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)


def _pixels(rng, shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """root/<class>/ with 6 grey PNG/BMP images per class (8x8), 3 classes; returns (root, x uint8, y, names)."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for c, name in enumerate(["ant", "bee", "cow"]):
        for i in range(6):
            pixels = _pixels(rng, (8, 8))
            _write(str(tmp_path / "set" / name / f"{i:02d}.{'png' if i % 2 else 'bmp'}"), pixels)
            xs.append(pixels)
            ys.append(c)
    return str(tmp_path / "set"), np.stack(xs)[..., None], np.asarray(ys), ("ant", "bee", "cow")


def test_image_folder_with_train_and_test_equals_the_pixels_written(tmp_path):
    rng = np.random.default_rng(1)
    expected = {"train": ([], []), "test": ([], [])}
    for split, count in (("train", 4), ("test", 2)):
        for c, name in enumerate(["a", "b"]):
            for i in range(count):
                path = str(tmp_path / split / name / f"{i}.{('png', 'bmp', 'jpg')[i % 3]}")
                _write(path, _pixels(rng, (5, 7)))
                # the reference: the pixels as stored (lossless PNG/BMP; JPEG as Pillow decodes it)
                expected[split][0].append(np.asarray(Image.open(path).convert("L")))
                expected[split][1].append(c)
    dataset = data.load(str(tmp_path))
    assert dataset.class_names == ("a", "b") and dataset.x_train.dtype == np.float32
    np.testing.assert_array_equal(dataset.x_train, np.stack(expected["train"][0])[..., None] / np.float32(255))
    np.testing.assert_array_equal(dataset.x_test, np.stack(expected["test"][0])[..., None] / np.float32(255))
    np.testing.assert_array_equal(dataset.y_train, expected["train"][1])
    np.testing.assert_array_equal(dataset.y_test, expected["test"][1])


def test_folder_without_splits_gets_the_seeded_stratified_split(folder):
    root, x, y, names = folder
    dataset = data.load(root, seed=3)
    train, test = data.stratified_split(y, round(0.3 * y.size), seed=3)
    np.testing.assert_array_equal(dataset.x_train, x[train] / np.float32(255))
    np.testing.assert_array_equal(dataset.x_test, x[test] / np.float32(255))
    counts = np.bincount(dataset.y_test)  # stratified: 30% of 18 is 5, 1.8 of each class's 6
    assert counts.sum() == 5 and set(counts) == {1, 2}
    assert dataset.class_names == names
    again, other = data.load(root, seed=3), data.load(root, seed=4)
    np.testing.assert_array_equal(again.x_test, dataset.x_test)
    assert not np.array_equal(other.x_test, dataset.x_test)


def test_streamed_batches_equal_the_arrays_and_shards_cover_every_row_once(folder):
    root = folder[0]
    opened = user.open_path(root, batch_size=4)
    in_memory = data.load(root)
    batches = list(opened.train)
    assert [b[0].shape[0] for b in batches] == [4, 4, 4, 1] and batches[0][0].dtype == np.uint8
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]) / np.float32(255), in_memory.x_train)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), in_memory.y_train)
    np.testing.assert_array_equal(opened.train.labels, in_memory.y_train)
    for contiguous in (True, False):
        shares = [opened.train.shard(i, 3, contiguous=contiguous) for i in range(3)]
        assert sorted(len(s) for s in shares) == [4, 4, 5]
        rows = np.concatenate([s.indices for s in shares])
        if contiguous:  # in process order, the shares are the source itself
            np.testing.assert_array_equal(rows, opened.train.indices)
        assert sorted(rows) == sorted(opened.train.indices)
        pixels = np.concatenate([xb for s in shares for xb, _ in s])
        streamed = np.concatenate([b[0] for b in batches])
        np.testing.assert_array_equal(np.sort(pixels.reshape(13, -1), 0), np.sort(streamed.reshape(13, -1), 0))
    np.testing.assert_array_equal(opened.train.shard(1, 3, contiguous=False).indices, opened.train.indices[1::3])
    with pytest.raises(ValueError, match="process_index in 0..2"):
        opened.train.shard(3, 3)


def test_other_sources_shard_the_same_way(tfds_digits):
    x, y = np.arange(10 * 4, dtype=np.float32).reshape(10, 2, 2, 1) / 40, np.arange(10) % 2
    whole = sources.ArraySource(x, y, 3)
    parts = [sources.shard(whole, i, 3) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate([b[0] for p in parts for b in p]), x)
    synthetic = sources.SyntheticSource(10, (4, 4, 1), batch_size=3)
    shares = [synthetic.shard(i, 2) for i in range(2)]
    assert [len(s) for s in shares] == [6, 4]
    np.testing.assert_array_equal(np.concatenate([b[0] for s in shares for b in s]), np.concatenate([b[0] for b in synthetic]))
    data_dir, _ = tfds_digits
    records = sources.TFDSSource("tiny_digits", "train", data_dir=data_dir, batch_size=32)
    halves = [records.shard(i, 2, contiguous=False) for i in range(2)]
    full = np.concatenate([b[0] for b in records])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in halves[1]]), full[1::2])
    with pytest.raises(TypeError, match="shard method"):
        sources.shard([(x, y)], 0, 2)


def test_grey_and_rgb_mixed_are_read_as_rgb_grey_repeated(tmp_path):
    rng = np.random.default_rng(2)
    grey, colour = _pixels(rng, (4, 4)), _pixels(rng, (4, 4, 3))
    rgba = _pixels(rng, (4, 4, 4))
    _write(str(tmp_path / "a" / "grey.png"), grey)
    _write(str(tmp_path / "a" / "rgba.png"), rgba)
    _write(str(tmp_path / "b" / "colour.png"), colour)
    _write(str(tmp_path / "b" / "grey.bmp"), grey)
    opened = user.open_path(str(tmp_path), batch_size=8)
    x, _ = opened.train.reader.read(np.arange(4))
    expected = np.stack([np.repeat(grey[..., None], 3, -1), rgba[..., :3], colour, np.repeat(grey[..., None], 3, -1)])
    np.testing.assert_array_equal(x, expected)  # alpha dropped, not composited


def test_different_sizes_name_two_files_unless_resized(tmp_path):
    rng = np.random.default_rng(3)
    small, large = _pixels(rng, (6, 6)), _pixels(rng, (9, 12))
    _write(str(tmp_path / "a" / "0.png"), small)
    _write(str(tmp_path / "a" / "1.png"), small)
    _write(str(tmp_path / "b" / "0.png"), large)
    with pytest.raises(ValueError, match=r"differ in size: .*a/0\.png is 6x6, .*b/0\.png is 9x12 .*--image-size"):
        data.load(str(tmp_path))
    dataset = data.load(str(tmp_path), image_size=(6, 8))
    x = np.concatenate([dataset.x_train, dataset.x_test])
    assert x.shape[1:] == (6, 8, 1)
    reference = np.asarray(Image.fromarray(large).resize((8, 6), Image.Resampling.BILINEAR))
    position = np.flatnonzero(np.concatenate([dataset.y_train, dataset.y_test]) == 1)[0]
    np.testing.assert_array_equal(x[position, ..., 0], reference / np.float32(255))


def test_npz_stored_and_compressed_load_and_stream_the_same_rows(tmp_path):
    rng = np.random.default_rng(4)
    x_train, y_train = _pixels(rng, (30, 5, 5, 3)), np.arange(30) % 3
    x_test, y_test = _pixels(rng, (9, 5, 5, 3)), np.arange(9) % 3
    names = np.asarray(["red", "green", "blue"])
    np.savez(tmp_path / "stored.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=names)
    np.savez_compressed(tmp_path / "packed.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                        class_names=names)
    for name in ("stored.npz", "packed.npz"):
        dataset = data.load(str(tmp_path / name))
        np.testing.assert_array_equal(dataset.x_train, x_train / np.float32(255))
        np.testing.assert_array_equal(dataset.x_test, x_test / np.float32(255))
        np.testing.assert_array_equal(dataset.y_train, y_train)
        assert dataset.class_names == ("red", "green", "blue")
        share = user.open_path(str(tmp_path / name), batch_size=4).train.shard(1, 2, contiguous=False)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in share]), x_train[1::2])
    grey = rng.random((20, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "xy.npz", x=grey, y=np.arange(20) % 2)
    dataset = data.load(str(tmp_path / "xy.npz"), seed=5)
    train, test = data.stratified_split(np.arange(20) % 2, 6, seed=5)
    np.testing.assert_array_equal(dataset.x_train[..., 0], grey[train])
    np.testing.assert_array_equal(dataset.x_test[..., 0], grey[test])


def _png_bytes(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_parquet_with_image_and_label_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(5)
    written = {}
    for split, n in (("train", 12), ("test", 4)):
        pixels = _pixels(rng, (n, 6, 6, 3))
        labels = ["cat" if i % 2 else "dog" for i in range(n)]
        table = pa.table({"image": [{"bytes": _png_bytes(p), "path": None} for p in pixels], "label": labels})
        os.makedirs(tmp_path / "pq" / "data", exist_ok=True)
        pq.write_table(table, tmp_path / "pq" / "data" / f"{split}-00000-of-00001.parquet", row_group_size=5)
        written[split] = (pixels, np.asarray([0 if v == "cat" else 1 for v in labels]))
    dataset = data.load(str(tmp_path / "pq"))
    assert dataset.class_names == ("cat", "dog")
    np.testing.assert_array_equal(dataset.x_train, written["train"][0] / np.float32(255))
    np.testing.assert_array_equal(dataset.y_train, written["train"][1])
    np.testing.assert_array_equal(dataset.x_test, written["test"][0] / np.float32(255))
    # row groups of 5: a strided share reads across them
    share = user.open_path(str(tmp_path / "pq"), batch_size=3).train.shard(0, 2, contiguous=False)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in share]), written["train"][0][0::2])
    # one file with integer labels and Hugging Face ClassLabel names in its metadata
    meta = {"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["no", "yes"], "_type": "ClassLabel"}}}}
    table = pa.table({"image": [_png_bytes(p) for p in written["train"][0]], "label": written["train"][1]})
    table = table.replace_schema_metadata({"huggingface": json.dumps(meta)})
    pq.write_table(table, tmp_path / "one.parquet")
    single = data.load(str(tmp_path / "one.parquet"), seed=1)
    assert single.class_names == ("no", "yes") and single.x_train.shape == (8, 6, 6, 3)
    with pytest.raises(ValueError, match="unknown class names .*'eel'"):
        pq.write_table(pa.table({"image": [_png_bytes(written["test"][0][0])], "label": ["eel"]}),
                       tmp_path / "pq" / "data" / "test-00001-of-00001.parquet")
        data.load(str(tmp_path / "pq"))


def test_hugging_face_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the optional extra glassjax[hf] is not installed")
    rng = np.random.default_rng(6)
    pixels = _pixels(rng, (10, 5, 5))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["x", "o"])})
    table = datasets.Dataset.from_dict({"image": [Image.fromarray(p) for p in pixels], "label": [i % 2 for i in range(10)]},
                                       features=features)
    datasets.DatasetDict(train=table.select(range(7)), test=table.select(range(7, 10))).save_to_disk(str(tmp_path / "hf"))
    dataset = data.load(str(tmp_path / "hf"))
    assert dataset.class_names == ("x", "o")
    np.testing.assert_array_equal(dataset.x_train[..., 0], pixels[:7] / np.float32(255))
    np.testing.assert_array_equal(dataset.x_test[..., 0], pixels[7:] / np.float32(255))
    np.testing.assert_array_equal(dataset.y_test, [1, 0, 1])


def test_hugging_face_folder_without_datasets_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # as if not installed
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(ValueError, match=r"needs the datasets package: pip install glassjax\[hf\]"):
        data.load(str(tmp_path / "hf"))


@pytest.mark.parametrize("layout, match", [
    ({"loose.png": 1, "a/0.png": 1}, "got 1 image files directly in it"),
    ({"train/a/0.png": 1, "train/b/0.png": 1, "extra/a/0.png": 1}, r"wrong layout .*\['extra'\]"),
    ({"test/a/0.png": 1, "test/b/0.png": 1}, "wrong layout .*test/ without train/"),
    ({"a/0.png": 1, "b/notes.txt": 1}, r"no images: class folder .*b has no PNG/JPEG/BMP"),
    ({"a/0.png": 1}, "at least 2 class folders"),
    ({"train/a/0.png": 1, "train/b/0.png": 1, "test/a/0.png": 1, "test/z/0.png": 1}, r"unknown class names .*\['z'\]"),
    ({"a/0.png": 1, "b/0.png": "garbage"}, r"cannot read image .*b/0\.png"),
])
def test_layout_and_file_errors_are_one_line_and_early(tmp_path, layout, match):
    for name, content in layout.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png") and content == 1:
            _write(str(path), np.zeros((4, 4), np.uint8))
        else:
            path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=match) as err:
        user.open_path(str(tmp_path))
    assert "\n" not in str(err.value)


def test_damaged_pixels_and_unsupported_images_name_the_file(tmp_path):
    _write(str(tmp_path / "a" / "0.png"), np.zeros((6, 6), np.uint8))
    good = _png_bytes(np.full((6, 6), 9, np.uint8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "0.png").write_bytes(good[: len(good) // 2])  # header fine, pixels cut off
    with pytest.raises(ValueError, match=r"cannot read image .*b/0\.png"):
        data.load(str(tmp_path))
    Image.fromarray(np.zeros((6, 6), np.uint16)).save(tmp_path / "b" / "0.png")
    with pytest.raises(ValueError, match=r"8-bit .*mode I;16 in .*b/0\.png"):
        data.load(str(tmp_path))


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "keys.npz", images=np.zeros((4, 3, 3)), labels=np.zeros(4))
    with pytest.raises(ValueError, match=r"expected arrays x_train, y_train, x_test, y_test \(or x, y\) .*\['images', 'labels'\]"):
        data.load(str(tmp_path / "keys.npz"))
    np.savez(tmp_path / "short.npz", x=np.zeros((4, 3, 3)), y=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"y int labels \(4,\)"):
        data.load(str(tmp_path / "short.npz"))
    np.savez(tmp_path / "sizes.npz", x_train=np.zeros((4, 3, 3)), y_train=np.arange(4) % 2,
             x_test=np.zeros((2, 5, 5)), y_test=np.arange(2))
    with pytest.raises(ValueError, match=r"differ in shape: .*x_train is \(3, 3, 1\), .*x_test is \(5, 5, 1\)"):
        data.load(str(tmp_path / "sizes.npz"))
    assert data.load(str(tmp_path / "sizes.npz"), image_size=4).x_test.shape == (2, 4, 4, 1)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="expected an .npz archive"):
        data.load(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="no such file or folder"):
        data.load(str(tmp_path / "missing.npz"))


def test_tfrecord_set_without_tensorflow_says_how_to_prepare_array_record(tfds_digits, tmp_path, monkeypatch):
    import importlib.util

    data_dir, _ = tfds_digits
    copy = tmp_path / "tfds"
    shutil.copytree(data_dir, copy)
    (info,) = [os.path.join(p, "dataset_info.json") for p, _, names in os.walk(copy) if "dataset_info.json" in names]
    with open(info) as f:
        meta = json.load(f)
    meta["fileFormat"] = "tfrecord"
    with open(info, "w") as f:
        json.dump(meta, f)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(ValueError, match=r"prepared as tfrecord, which needs TensorFlow.*--file_format array_record"):
        data.load("tiny_digits", data_dir=str(copy))


def test_cli_lists_and_fits_a_folder_streamed(tmp_path, capsys):
    digits = data.load("digits", classes=["0", "1"])
    for split, x, y in (("train", digits.x_train[:80], digits.y_train[:80]), ("test", digits.x_test[:30], digits.y_test[:30])):
        for i, (image, label) in enumerate(zip(x, y)):
            _write(str(tmp_path / "digits" / split / f"d{label}" / f"{i:03d}.png"), np.round(image[..., 0] * 255).astype(np.uint8))
    np.savez(tmp_path / "tiny.npz", x=np.zeros((4, 2, 2), np.uint8), y=np.arange(4) % 2)
    assert cli.main(["datasets", "--path", str(tmp_path), "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["datasets"]
    assert found[str(tmp_path / "digits")].startswith("image folder: 110 images, 2 classes (d0, d1), train 80, test 30")
    assert found[str(tmp_path / "tiny.npz")].startswith(".npz: x (4, 2, 2) uint8")
    status = cli.main(["fit", "--dataset", str(tmp_path / "digits"), "--image-size", "8", "--components", "10",
                       "--filters-per-class", "4", "--pool-dim", "8", "--orbit-dim", "8", "--classifier", "ridge", "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and report["streamed"] and report["n_train"] == 80 and report["n_test"] == 30
    assert report["classes"] == ["d0", "d1"] and report["accuracy"] > 0.9
    with pytest.raises(SystemExit):  # argparse: usage and exit 2
        cli.main(["fit", "--dataset", str(tmp_path / "digits"), "--image-size", "8,x"])
    assert "--image-size: expected H or H,W" in capsys.readouterr().err
