"""AlexNet training: the loss falls, runs are deterministic, resuming equals not stopping, checkpoints are atomic."""
import json
import os

import jax
import numpy as np
import pytest

from glassjax.systems import alexnet
from glassjax.systems.alexnet import training as alexnet_training
from glassjax import cli
from glassjax import data
from glassjax.core import files

WIDTH = 1 / 16  # conv 4/12/24/16/16, fc 256/256: a few milliseconds a step
SETTINGS = dict(size=64, batch_size=8, learning_rate=1e-3, width=WIDTH)


@pytest.fixture(scope="module")
def dataset():
    """Two separable classes of 12x12 grey images: a bright square top-left or bottom-right."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.2, (24, 12, 12, 1)).astype(np.float32)
    y = np.arange(24, dtype=np.int32) % 2
    x[y == 0, :6, :6] += 0.7
    x[y == 1, 6:, 6:] += 0.7
    return data.Dataset("squares", x[:20], y[:20], x[20:], y[20:], ("top-left", "bottom-right"))


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_loss_falls_and_runs_are_deterministic(dataset):
    params, history = alexnet_training.train(dataset, epochs=3, key=jax.random.key(0), **SETTINGS)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    again, history_again = alexnet_training.train(dataset, epochs=3, key=jax.random.key(0), **SETTINGS)
    assert history_again == history and _same(params, again)
    other, _ = alexnet_training.train(dataset, epochs=1, key=jax.random.key(1), **SETTINGS)
    assert not _same(params, other)


@pytest.mark.parametrize("augment", ["none", "d4"])
def test_resume_equals_uninterrupted(dataset, tmp_path, augment):
    straight, history = alexnet_training.train(dataset, epochs=2, augment=augment, key=jax.random.key(2), **SETTINGS)
    path = tmp_path / "ckpt.msgpack"
    alexnet_training.train(dataset, epochs=1, augment=augment, key=jax.random.key(2), checkpoint=path, **SETTINGS)
    resumed, history_resumed = alexnet_training.train(
        dataset, epochs=2, augment=augment, key=jax.random.key(2), checkpoint=path, **SETTINGS
    )
    assert history_resumed == history
    assert _same(straight, resumed)
    with pytest.raises(ValueError, match="already past epochs=1"):
        alexnet_training.train(dataset, epochs=1, augment=augment, key=jax.random.key(2), checkpoint=path, **SETTINGS)
    with pytest.raises(ValueError, match="checkpoint .* was made with"):
        alexnet_training.train(dataset, epochs=3, key=jax.random.key(2), checkpoint=path, **dict(SETTINGS, learning_rate=1e-2))


def test_checkpoint_is_written_atomically(dataset, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.msgpack"
    alexnet_training.train(dataset, epochs=1, key=jax.random.key(3), checkpoint=path, **SETTINGS)
    before = path.read_bytes()
    assert os.listdir(tmp_path) == [path.name]

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        alexnet_training.train(dataset, epochs=2, key=jax.random.key(3), checkpoint=path, **SETTINGS)
    assert path.read_bytes() == before  # the old checkpoint survives a failed write
    assert os.listdir(tmp_path) == [path.name]  # and no temporary is left behind


def test_evaluate_and_bad_arguments(dataset):
    params, _ = alexnet_training.train(dataset, epochs=0, key=jax.random.key(4), **SETTINGS)
    x = alexnet.preprocess(dataset.x_test, 64)
    accuracy = alexnet_training.evaluate(params, x, dataset.y_test)
    assert accuracy in (0.0, 0.25, 0.5, 0.75, 1.0)
    scores = alexnet_training.evaluate_dataset(params, dataset, size=64, key=jax.random.key(5))
    assert scores["accuracy"] == accuracy and 0.0 <= scores["accuracy_transformed"] <= 1.0
    with pytest.raises(ValueError, match="expected a key"):
        alexnet_training.evaluate(params, x, dataset.y_test, group="d4")
    with pytest.raises(ValueError, match="size an int >= 64"):
        alexnet_training.train(dataset, epochs=1, key=jax.random.key(0), size=32)
    with pytest.raises(ValueError, match="augment one of"):
        alexnet_training.train(dataset, epochs=1, key=jax.random.key(0), augment="c4")


def test_command_prints_json(tmp_path, capsys):
    out = tmp_path / "alexnet.safetensors"
    # The same batch size, width and learning rate as above reuse the compiled training step.
    argv = ["train-alexnet", "--dataset", "lfw_faces", "--epochs", "1", "--width", str(WIDTH), "--batch-size", "8",
            "--learning-rate", "1e-3", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "lfw_faces" and result["size"] == 64 and result["augment"] == "none"
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["accuracy_transformed"] <= 1.0
    assert result["out"] == str(out)
    assert alexnet.model_for(alexnet.load_torchvision(out)).num_classes == 2
    assert cli.main(["train-alexnet", "--dataset", "lfw_faces", "--size", "32"]) == 2
