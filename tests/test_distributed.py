"""Several processes, one model: 2 processes x 2 emulated CPU devices on 127.0.0.1 (gloo collectives)
against 1 process on 1 device, and a killed worker ending the run instead of hanging it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glassjax.data import sharding

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               GLASSJAX_QUIET="1", PYTHONPATH=str(ROOT))
    env.pop("JAX_ENABLE_X64", None)
    return env


def _glassjax(args: list[str], devices: int, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "glassjax.cli", *args], env=_env(devices), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _processes(args: list[str], n: int = 2, devices: int = 2, heartbeat: int = 10) -> list[subprocess.Popen]:
    port = _free_port()
    return [_glassjax([*args, "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id", str(i),
                       "--heartbeat-timeout", str(heartbeat)], devices) for i in range(n)]


# The characters of gloo's own connection messages ("[Gloo] Rank r is connected to n peer ranks. Expected
# number of connected peer ranks is : n"), which C++ threads write to stdout and can interleave mid-word.
_GLOO_CHARACTERS = set("[Gloo] Rank is connected to peer ranks. Expected number of connected peer ranks is : 0123456789\n")


def _not_gloo(text: str) -> set[str]:
    """The characters of a process's stdout that no gloo connection message contains (a JSON report has '{', '"')."""
    return set(text) - _GLOO_CHARACTERS


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"process did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, out, err


# --- shares, no processes needed ----------------------------------------------------------------


def test_blocks_cover_every_row_once_in_order():
    for n in (1, 7, 1257):
        for count in (1, 2, 3, 8):
            if n < count:
                continue
            rows = np.concatenate([np.arange(n)[sharding.block(n, i, count)] for i in range(count)])
            np.testing.assert_array_equal(rows, np.arange(n))
            sizes = [len(range(n)[sharding.block(n, i, count)]) for i in range(count)]
            assert max(sizes) - min(sizes) <= 1


def test_shard_dataset_keeps_the_test_split():
    from glassjax.data import loader

    x = np.random.default_rng(0).random((10, 4, 4, 1), np.float32)
    y = np.arange(10) % 2
    ds = loader.Dataset("toy", x, y, x[:3], y[:3], ("a", "b"))
    part = sharding.shard_train(ds, 1, 3)
    np.testing.assert_array_equal(part.x_train, x[3:6])
    np.testing.assert_array_equal(part.x_test, x[:3])
    assert sharding.shard_train(ds, 0, 1) is ds
    with pytest.raises(ValueError, match="process_index in 0..2"):
        sharding.block(10, 3, 3)
    with pytest.raises(ValueError, match="at least one train image per process"):
        sharding.shard_dataset(ds._replace(x_train=x[:2], y_train=y[:2]), 0, 3)


@pytest.mark.parametrize("extra, message", [
    (["--coordinator", "127.0.0.1:1"], "expected all three together"),
    (["--distributed", "--process-id", "0"], "--distributed: expected alone"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "expected coordinator HOST:PORT"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "process_id in 0..1"),
])
def test_process_options_checked_in_one_line(extra, message):
    code, _, err = _finish(_glassjax(["fit", "--dataset", "digits", *extra], 1), timeout=120)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_train_alexnet_refuses_several_processes():
    code, _, err = _finish(_glassjax(["train-alexnet", "--dataset", "digits", "--coordinator", "127.0.0.1:1",
                                      "--num-processes", "2", "--process-id", "0"], 1), timeout=120)
    assert code == 2 and "train-alexnet trains in one process" in err, err


# --- real processes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_two_devices_equal_one_device(tmp_path):
    """The glass-box fitted by 2 processes x 2 devices, each reading half the digits, is the one
    1 process on 1 device fits: identical test predictions, statistics to float32 tolerance.
    --batch-size 314 gives the processes' blocks (628 and 629 rows) 2 and 3 batches: process 0
    also runs an all-padding batch."""
    from glassjax import data

    common = ["fit", "--dataset", "digits", "--batch-size", "314", "--json"]
    one = _glassjax([*common, "--out", str(tmp_path / "one.npz")], devices=1)
    code, out_one, err = _finish(one)
    assert code == 0, err[-3000:]
    procs = _processes([*common, "--out", str(tmp_path / "two.npz")])
    results = [_finish(p) for p in procs]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert results[0][1].strip(), "process 0 prints the report"
    # gloo itself says "[Gloo] Rank r is connected to n peer ranks. ..." on stdout, from C++ threads whose
    # messages can interleave mid-line; nothing else may
    assert not _not_gloo(results[1][1]), "only process 0 prints"
    _assert_same_model(tmp_path / "one.npz", tmp_path / "two.npz", data.load("digits").x_test)


def _assert_same_model(path_a, path_b, x_test):
    """Two saved glass-boxes: identical test predictions, float parameters to float32 tolerance."""
    from glassjax import systems

    (sa, a), (sb, b) = systems.load(path_a), systems.load(path_b)
    scores_a, scores_b = np.asarray(sa.scores(a, x_test)), np.asarray(sb.scores(b, x_test))
    np.testing.assert_array_equal(scores_a.argmax(1), scores_b.argmax(1))
    saved_a, saved_b = np.load(path_a), np.load(path_b)
    assert sorted(saved_a.files) == sorted(saved_b.files)
    for name in saved_a.files:
        if saved_a[name].dtype.kind == "f":
            # Statistics: float64 sums merged in another order, then solved: float32 rounding. The
            # logistic classifier is trained by float32 gradient steps on those features, which
            # carry their ~1e-7 differences into its weights ten times over.
            tol = 1e-4 if name.startswith("classifier.") else 1e-5
            np.testing.assert_allclose(saved_a[name], saved_b[name], rtol=tol, atol=tol * np.abs(saved_a[name]).max(),
                                       err_msg=name)
        elif saved_a[name].dtype.kind in "iub":  # strings (the meta, the content hash) may differ
            np.testing.assert_array_equal(saved_a[name], saved_b[name], err_msg=name)


@pytest.mark.slow
def test_two_processes_streaming_a_sampled_source_equal_one_process(tmp_path):
    """A streamed .npz with more than SAMPLE_PER_CLASS images per class: the survey's per-class
    sample (the filters' images, the orbit and PCA moments' rows) is drawn by 2 processes, each
    from its half, exactly as 1 process draws it from the whole, so the models are the same.
    (With a per-process reservoir the filters differed.)"""
    from glassjax.systems.glassbox.fit import SAMPLE_PER_CLASS

    rng = np.random.default_rng(0)
    n = 2 * SAMPLE_PER_CLASS + 300
    y = rng.permutation(np.arange(n) % 2).astype(np.int32)
    x = rng.random((n, 9, 9, 1)).astype(np.float32) * 0.5
    x[y == 1, 2:7, 3:6] += 0.5  # class 1: a bright bar
    path = tmp_path / "bars.npz"
    np.savez(path, x_train=x[:-100], y_train=y[:-100], x_test=x[-100:], y_test=y[-100:])
    common = ["fit", "--dataset", str(path), "--classifier", "ridge", "--json"]
    code, _, err = _finish(_glassjax([*common, "--out", str(tmp_path / "one.npz")], devices=1))
    assert code == 0, err[-3000:]
    for code, _, err in [_finish(p) for p in _processes([*common, "--out", str(tmp_path / "two.npz")], devices=1)]:
        assert code == 0, err[-3000:]
    _assert_same_model(tmp_path / "one.npz", tmp_path / "two.npz", x[-100:])


@pytest.mark.slow
def test_killed_worker_ends_the_run_with_one_line(tmp_path):
    """Process 1 killed mid-fit: process 0 exits non-zero with one error line, well inside 180 s."""
    procs = _processes(["fit", "--dataset", "digits", "--batch-size", "64"], heartbeat=10)
    survivor, victim = procs
    # gloo prints on stdout once the processes have met; kill the victim a little after that.
    start = time.monotonic()
    seen = ""
    while "Gloo" not in seen and time.monotonic() - start < 300:
        line = victim.stdout.readline()
        if not line and victim.poll() is not None:
            break
        seen += line
    assert "Gloo" in seen, f"the processes never met:\n{seen[-2000:]}"
    time.sleep(3)
    victim.kill()
    victim.communicate()
    killed = time.monotonic()
    code, _, err = _finish(survivor, timeout=300)
    took = time.monotonic() - killed
    errors = [line for line in err.splitlines() if line.startswith("glassjax fit: error:")]
    assert code != 0 and took < 180, (code, took, err[-3000:])
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
