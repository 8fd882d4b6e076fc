"""Every failure a hostile probe found (issue 9, items 1-11), each pinned by a test.

Files and models (1-6), input limits checked before the work (7-10), big images in bounded
memory (11; the 512 x 512 measurements are in benchmarks/bench_image_size.py).
"""
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from glassjax import cli, data, systems
from glassjax.core import arrays, files, modelfile
from glassjax.data import sources
from glassjax.systems.alexnet import weights
from glassjax.systems.glassbox import filters
from glassjax.systems.glassbox.config import GlassBoxConfig

WEIGHTS = "tests/fixtures/alexnet_small.safetensors"


def one_line_error(capsys, match: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small glass-box saved by its system: 40 digits 0 and 1, every layer narrow."""
    from glassjax.analysis import comparison

    dataset = data.load("digits", classes=["0", "1"])
    dataset = dataset._replace(x_train=dataset.x_train[:40], y_train=dataset.y_train[:40])
    fitted = comparison.fit("glassbox", dataset, filters_per_class=2, pool_dim=4, orbit_dim=4, components=4,
                            classifier="ridge")
    path = tmp_path_factory.mktemp("model") / "model.npz"
    fitted.system.save(fitted.params, path)
    return path


def _entries(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


# --- 1. special files are never replaced ---------------------------------------------------------


def test_atomic_write_refuses_a_fifo_and_a_folder(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="expected path to be a regular file or a new file, got a FIFO"):
        files.write_bytes_atomic(fifo, b"x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ValueError, match="got a folder"):
        modelfile.write(tmp_path, {"system": "x"}, {})
    # /dev/null is refused before anything is written (as root, os.replace would replace it).
    with pytest.raises(ValueError, match="got a character device"):
        files.writable_target("/dev/null")
    assert list(tmp_path.iterdir()) == [fifo]


def test_atomic_write_follows_a_symlink(tmp_path):
    target, link = tmp_path / "real.bin", tmp_path / "link.bin"
    target.write_bytes(b"old")
    link.symlink_to(target)
    files.write_bytes_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


# --- 2. modes follow the umask; an existing file keeps its own ------------------------------------


def test_new_files_follow_the_umask_and_old_ones_keep_their_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "a.npz"
        modelfile.write(path, {"system": "x"}, {"a": np.zeros(2)})
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o640)
        modelfile.write(path, {"system": "x"}, {"a": np.ones(2)})
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        os.umask(0o077)
        files.write_bytes_atomic(tmp_path / "b.bin", b"x")
        assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o600
    finally:
        os.umask(old)


# --- 3. SIGTERM cleans up; SIGKILL's leftovers go on the next write ---------------------------------


def test_sigterm_removes_the_temporary_file(tmp_path):
    child = textwrap.dedent("""
        import sys, time
        from glassjax.cli import Terminated, _sigterm_unwinds
        from glassjax.core.files import atomic_write
        try:
            with _sigterm_unwinds(), atomic_write(sys.argv[1]) as tmp:
                tmp.write_bytes(b"half of a model")
                print("writing", flush=True)
                time.sleep(120)
        except Terminated:
            sys.exit(143)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child, str(tmp_path / "model.npz")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
    assert list(tmp_path.iterdir()) == []


def test_main_reports_sigterm_in_one_line(monkeypatch, capsys):
    from glassjax.cli import datasets

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(datasets, "run", terminated)
    assert cli.main(["datasets"]) == 143
    one_line_error(capsys, "glassjax datasets: terminated")
    assert signal.getsignal(signal.SIGTERM) is before


def test_leftovers_of_killed_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = files._host()
    stale = tmp_path / f".model.npz.{host}.{dead.pid}.abc123de.tmp.npz"
    alive = tmp_path / f".model.npz.{host}.1.abc123de.tmp.npz"  # pid 1 is always alive
    other = tmp_path / f".model.npz.elsewhere.{dead.pid}.abc123de.tmp.npz"  # another host's: unknown
    for p in (stale, alive, other):
        p.write_bytes(b"x" * 1000)
    files.write_bytes_atomic(tmp_path / "model.npz", b"new")
    assert not stale.exists() and alive.exists() and other.exists()


# --- 4. damaged files: one line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize("damage", ["half", "cut10", "flip", "npy_header", "zip_method", "zeros", "npy"])
def test_damaged_model_files_are_one_line_errors(model_file, tmp_path, damage, capsys):
    raw = model_file.read_bytes()
    bad = tmp_path / "bad.npz"
    if damage == "half":
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "cut10":
        bad.write_bytes(raw[:-10])
    elif damage in ("flip", "npy_header", "zip_method"):
        where = {"flip": len(raw) // 2,  # array data: a bad CRC
                 "npy_header": raw.index(b"{", raw.index(b"\x93NUMPY")),  # numpy's header parser: TokenError
                 "zip_method": raw.index(b"PK\x01\x02") + 10}[damage]  # zipfile: NotImplementedError
        bad.write_bytes(raw[:where] + bytes([raw[where] ^ 0xFF]) + raw[where + 1:])
    elif damage == "zeros":
        bad.write_bytes(bytes(len(raw)))
    else:
        np.save(bad.with_suffix(".npy"), np.zeros(3))
        bad.with_suffix(".npy").rename(bad)
    assert cli.main(["evaluate", "--model", str(bad), "--dataset", "digits", "--classes", "0,1"]) == 2
    one_line_error(capsys, str(bad))


def test_special_files_are_not_read_as_models(tmp_path, capsys):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)  # np.load would wait for a writer forever
    assert cli.main(["evaluate", "--model", str(fifo), "--dataset", "digits"]) == 2
    one_line_error(capsys, "expected a regular file, got a FIFO")
    assert cli.main(["evaluate", "--model", str(tmp_path), "--dataset", "digits"]) == 2
    one_line_error(capsys, "expected a regular file, got a folder")


def test_meta_that_breaks_the_conventions_is_one_line(model_file, tmp_path, capsys):
    entries = _entries(model_file)
    meta = json.loads(str(entries.pop("meta")))
    entries.pop(modelfile.HASH_ENTRY)
    bad = tmp_path / "bad.npz"

    def save_with_hash(meta_text):
        # A hash that matches: the file is consistent, only its meta is wrong.
        digest = modelfile.content_hash(meta_text, entries)
        np.savez(bad, meta=np.asarray(meta_text), **{modelfile.HASH_ENTRY: np.asarray(digest)}, **entries)

    for meta_text, match in [
        (json.dumps([1, 2]), "expected its 'meta' entry to be a JSON object, got list"),
        (json.dumps({k: v for k, v in meta.items() if k != "config"}), "expected a glass-box's meta entry"),
        (json.dumps(dict(meta, config=[1])), "expected its meta's config to be a JSON object, got list"),
        (json.dumps(dict(meta, class_names="ab")), "expected its meta's class_names to be a list of strings"),
        (json.dumps(dict(meta, image_shape=[8, 8])), "expected its meta's image_shape to be [H, W, C]"),
    ]:
        save_with_hash(meta_text)
        assert cli.main(["evaluate", "--model", str(bad), "--dataset", "digits", "--classes", "0,1"]) == 2
        one_line_error(capsys, match)


# --- 5. a model file loads exactly as saved or not at all ------------------------------------------


def test_edited_model_files_are_refused(model_file, tmp_path):
    system, params = systems.load(model_file)  # as saved: loads
    assert params.config.group == "d4"
    entries = _entries(model_file)
    meta = json.loads(str(entries["meta"]))
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **dict(entries, meta=np.asarray(json.dumps(dict(meta, config=dict(meta["config"], group="flip"))))))
    with pytest.raises(ValueError, match="expected its content to match the hash stored when it was written"):
        systems.load(tampered)
    name = next(k for k in entries if k.startswith("patches.filters"))
    np.savez(tampered, **dict(entries, **{name: entries[name] * 1.001}))
    with pytest.raises(ValueError, match="edited or damaged after it was saved"):
        systems.load(tampered)
    del entries[modelfile.HASH_ENTRY]
    np.savez(tampered, **entries)
    with pytest.raises(ValueError, match="expected a content hash"):
        systems.load(tampered)


def test_alexnet_load_checks_meta_against_its_arrays(tmp_path):
    from glassjax.systems.alexnet.system import AlexNetConfig, AlexNetParams

    params = AlexNetParams(AlexNetConfig(), ("a", "b"), weights.load_torchvision(WEIGHTS))  # 10 outputs, 2 names
    path = tmp_path / "alexnet.npz"
    systems.get("alexnet").save(params, path)
    with pytest.raises(ValueError, match=r"expected one class name per output of fc8 \(10\), got 2 class names"):
        systems.load(path)


# --- 6. non-finite weights ---------------------------------------------------------------------


def test_weights_with_nan_or_inf_are_refused_naming_the_tensor(tmp_path):
    state = load_file(WEIGHTS)
    for value, match in [(np.nan, "got 1 NaN and 0 inf"), (np.inf, "got 0 NaN and 1 inf")]:
        bad = dict(state)
        bad["features.3.weight"] = bad["features.3.weight"].copy()
        bad["features.3.weight"].flat[5] = value
        with pytest.raises(ValueError, match=f"'features.3.weight': expected finite values, {match}"):
            weights.from_state_dict(bad)
        path = tmp_path / "bad.safetensors"
        save_file(bad, path)
        with pytest.raises(ValueError, match="'features.3.weight': expected finite values"):
            weights.check_file(path)


# --- 7. sizes checked against the image ---------------------------------------------------------


def test_config_is_checked_against_the_image_size():
    with pytest.raises(ValueError, match=r"expected grid <= 6 \(the side of the response maps of 3x3 filters on 8x8"):
        GlassBoxConfig(grid=50).resolved((8, 8, 1), 100)
    with pytest.raises(ValueError, match="expected patch_size <= 8 for 8x8 images, got 9"):
        GlassBoxConfig(patch_size=9).resolved((8, 8, 1), 100)
    with pytest.raises(ValueError, match="expected patches of at least 2 values for patch filters"):
        GlassBoxConfig().resolved((1, 1, 1), 100)
    with pytest.raises(ValueError, match="expected at most 16384 response features"):
        GlassBoxConfig(grid=100).resolved((512, 512, 1), 100, num_classes=10)
    tiny = GlassBoxConfig().resolved((2, 2, 1), 100)  # defaults that fit: 2x2 patches, 1x1 grid
    assert (tiny.patch_size, tiny.grid, tiny.filters_per_class) == (2, 1, 3)
    assert GlassBoxConfig(filters="prototype").resolved((1, 1, 1), 100).grid == 1


def test_cli_grid_too_big_is_one_line_before_the_fit(capsys):
    assert cli.main(["fit", "--dataset", "digits", "--grid", "50"]) == 2
    one_line_error(capsys, "expected grid <= 6")


# --- 8. one seed rule, one message --------------------------------------------------------------


def test_seed_rule_is_the_same_in_the_api_and_the_cli(capsys):
    assert arrays.as_seed(np.uint32(7), "f") == 7 and arrays.as_seed(arrays.MAX_SEED, "f") == arrays.MAX_SEED
    for bad, kind in [(-1, ValueError), (2**70, ValueError), ("abc", TypeError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(kind, match=r"f: expected seed an int in 0\.\.4294967295, got"):
            arrays.as_seed(bad, "f")
    for text in ("-1", "99999999999999999999999", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["fit", "--seed", text])
        assert exit_info.value.code == 2
        assert "argument --seed: expected seed an int in 0..4294967295, got" in capsys.readouterr().err


def test_config_options_of_the_wrong_type_are_refused():
    with pytest.raises(TypeError, match="GlassBox: expected whiten True or False, got 'yes'"):
        GlassBoxConfig(whiten="yes").validated()
    with pytest.raises(TypeError, match="GlassBox: expected regularization a float > 0 or None, got 'abc'"):
        GlassBoxConfig(regularization="abc").validated()
    with pytest.raises(ValueError, match="expected regularization a float > 0 or None, got nan"):
        GlassBoxConfig(regularization=float("nan")).validated()
    with pytest.raises(ValueError, match="expected poolings from mean|max|bilinear as a sequence, got 'mean'"):
        GlassBoxConfig(poolings="mean").validated()
    config = GlassBoxConfig(grid=np.int64(2), whiten=np.bool_(False), regularization=np.float32(0.5)).validated()
    assert type(config.grid) is int and config.whiten is False and type(config.regularization) is float


# --- 9. paths checked before the work -------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Any data loading or fitting fails the test: the checks must come first."""
    def work(*args, **kwargs):
        raise AssertionError("the work started before the arguments were checked")

    monkeypatch.setattr(data, "load", work)
    return work


@pytest.mark.parametrize("argv,match", [
    (["fit", "--out", "{tmp}"], "--out: expected a file path to be a regular file or a new file, got a folder"),
    (["fit", "--out", "{tmp}/file.txt/model.npz"], "--out: expected a file path inside a folder"),
    (["fit", "--data-dir", "/nonexistent"], "--data-dir: expected an existing folder, got /nonexistent"),
    (["datasets", "--data-dir", "/nonexistent"], "--data-dir: expected an existing folder"),
    (["fit", "--system", "alexnet", "--weights", "{tmp}/corrupt.safetensors"], "not a readable safetensors file"),
    (["train-alexnet", "--checkpoint", "{tmp}"], "--checkpoint: expected a file path"),
])
def test_path_arguments_are_checked_before_the_work(argv, match, tmp_path, no_work, capsys):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    one_line_error(capsys, match)


def test_library_data_dir_is_checked(tmp_path):
    with pytest.raises(ValueError, match="available: expected data_dir an existing folder, got /nonexistent"):
        data.available("/nonexistent")
    with pytest.raises(ValueError, match="load: expected data_dir an existing folder"):
        data.load("digits", data_dir=str(tmp_path / "missing"))


# --- 10. lists of images ------------------------------------------------------------------------


def test_a_list_of_images_is_images_not_a_source():
    images = [np.full((5, 5), i / 10, np.float32) for i in range(4)]
    assert not sources.is_source(images) and sources.is_source([(np.zeros((2, 5, 5)), np.zeros(2, int))])
    assert data.as_images(images, "x").shape == (4, 5, 5, 1)
    with pytest.raises(ValueError, match=r"expected images as an array \(N, H, W\[, C\]\) or a list of .* of one shape, "
                                         r"got a list of 2 items of different shapes"):
        data.as_images([np.zeros((5, 5)), np.zeros((4, 4))], "x")
    with pytest.raises(TypeError, match="expected a source of \\(images, labels\\) batches, got an item of type ndarray"):
        list(sources.rebatch([np.zeros((2, 5, 5, 1))], 2, "fit"))


def test_glassbox_fits_a_list_of_images():
    from glassjax import GlassBox

    x, y = data.load("digits", classes=["0", "1"])[1:3]
    model = GlassBox(filters_per_class=2, pool_dim=4, orbit_dim=4, components=4, classifier="ridge")
    with pytest.raises(ValueError, match="requires y to be passed"):
        model.fit(list(x[:20]))
    model.fit(list(x[:20]), list(y[:20]))
    assert model.predict(list(x[:3])).shape == (3,)


# --- 11. big images: no intermediate that grows with the image area x the patches -------------------


def test_patch_sampling_never_holds_whole_images_per_patch():
    # patch_filters runs eagerly: each jaxpr equation is one materialised array. Before, vmap
    # turned x[i] into a gather of one whole image per patch (4000 x 1 MiB at 512 x 512).
    x = jnp.zeros((4, 64, 64, 3), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda x: filters._sample_patches(x, 1000, 5, jax.random.key(0)))(x)
    biggest = max(int(np.prod(v.aval.shape)) for eqn in jaxpr.eqns for v in eqn.outvars)
    assert biggest <= max(x.size, 1000 * 5 * 5 * 3)
