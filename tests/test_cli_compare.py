"""`glassjax equivariance`, `compare` and `systems` end to end, on digits 6 vs 9 with tiny settings;
a toy system registered here shows the commands iterate over the registry."""
import dataclasses
import functools
import json
import os
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassjax import cli, report, systems
from glassjax.analysis import comparison
from glassjax.core import modelfile, parallel
from glassjax.systems import alexnet

WEIGHTS = "tests/fixtures/alexnet_small.safetensors"  # reduced widths, 10 classes
DATA = ["--dataset", "digits", "--classes", "6,9", "--images", "12"]
REQUIRED = {"name", "system", "layer", "invariance_error", "equivariance_error", "lie_derivative", "fisher_ratio"}
GLASSBOX = ["glassbox_response", "glassbox_orbit", "glassbox_invariant", "glassbox_pca"]


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("GLASSJAX_QUIET", "1")


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_systems_lists_the_registry(capsys):
    assert cli.main(["systems", "--json"]) == 0
    listed = _last_json(capsys)["systems"]
    assert ["glassbox", "glassbox_both", "alexnet"] == list(listed)[:3]
    assert all(info["description"] and "\n" not in info["description"] for info in listed.values())
    assert listed["glassbox_both"]["config"]["representation"] == "both"


# --- a system defined here, in the test, and nowhere in the library ----------------------------


@dataclasses.dataclass(frozen=True)
class CentroidConfig:
    """A nearest-class-mean classifier on pixels.

    temperature  divides the negative squared distances that serve as scores
    """

    temperature: float = 1.0


class CentroidParams(eqx.Module):
    means: jax.Array  # (C, H * W * channels)
    temperature: jax.Array
    names: tuple = eqx.field(static=True)


def _centroid_fit(config, dataset, *, key, mesh=None):
    x = dataset.x_train.reshape(dataset.x_train.shape[0], -1)
    means = np.stack([x[dataset.y_train == c].mean(axis=0) for c in range(len(dataset.class_names))])
    return CentroidParams(jnp.asarray(means), jnp.float32(config.temperature), tuple(dataset.class_names))


def _centroid_features(params, x):
    pixels = x.reshape(x.shape[0], -1)
    return {"pixels": pixels, "distances": -jnp.sum((pixels[:, None] - params.means[None]) ** 2, axis=-1)}


def _centroid_save(params, path):
    modelfile.write(path, {"system": "centroids", "names": list(params.names)},
                    {"means": params.means, "temperature": params.temperature})


def _centroid_load(path):
    meta, arrays = modelfile.read(path)
    return CentroidParams(jnp.asarray(arrays["means"]), jnp.asarray(arrays["temperature"]), tuple(meta["names"]))


CENTROIDS = systems.System(
    name="centroids", description="nearest class mean on pixels (a test's own system)", title="class means",
    config=CentroidConfig(), fit=_centroid_fit, features=_centroid_features,
    scores=lambda params, x: _centroid_features(params, x)["distances"] / params.temperature,
    save=_centroid_save, load=_centroid_load, representation=lambda params: "pixels",
    class_names=lambda params: params.names)


@pytest.fixture
def centroids():
    systems.register(CENTROIDS)
    yield CENTROIDS
    systems.unregister(CENTROIDS.name)


def test_a_registered_system_flows_through_every_command(centroids, tmp_path, capsys):
    assert "centroids" in systems.names()
    out = tmp_path / "report"
    assert cli.main(["compare", "--systems", "centroids", *DATA, "--temperature", "2", "--influence", "2", "--out", str(out),
                     "--json"]) == 0
    result = _last_json(capsys)
    assert [row["name"] for row in result["layers"]] == ["centroids_pixels", "centroids_distances"]
    # --influence: the default glass-box's two highest-loss test images, highest first, with their training images
    losses = [entry["loss"] for entry in result["influence"]]
    assert len(losses) == 2 and losses[0] >= losses[1]
    assert all(len(entry["helpful"]) == len(entry["harmful"]) == 5 for entry in result["influence"])
    assert "influence.png" in os.listdir(out) and "Influence of the training images" in (out / "index.html").read_text()
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["systems"]["centroids"]["title"] == "class means"
    assert stored["accuracy"]["centroids"]["accuracy"] > 0.9  # 6 vs 9 by their mean images
    page = (out / "index.html").read_text()
    assert "centroids_distances" in page and "Where class means loses" in page
    assert "filters.png" not in os.listdir(out)  # it has no filters to draw
    assert "--temperature 2" in stored["command"] and "--influence 2" in stored["command"]
    # fit, save, evaluate: the same JSON keys as the glass-box's.
    model = tmp_path / "centroids.npz"
    assert cli.main(["fit", "--system", "centroids", "--dataset", "digits", "--classes", "6,9", "--out", str(model),
                     "--json"]) == 0
    fitted = _last_json(capsys)
    assert cli.main(["evaluate", "--model", str(model), "--dataset", "digits", "--classes", "6,9", "--json"]) == 0
    again = _last_json(capsys)
    assert again["accuracy"] == fitted["accuracy"] and again["system"] == "centroids"
    assert again["parameters"] == fitted["parameters"] == 2 * 64 + 1
    # A setting that belongs to no chosen system is refused before any work.
    assert cli.main(["fit", "--system", "centroids", "--dataset", "digits", "--epochs", "3"]) == 2
    assert "--epochs: applies to none of the chosen systems (centroids)" in capsys.readouterr().err


@pytest.mark.slow
def test_equivariance_alexnet_rows_beside_glassbox(capsys):
    assert cli.main(["equivariance", "--systems", "glassbox,alexnet", "--weights", WEIGHTS, *DATA, "--json"]) == 0
    result = _last_json(capsys)
    names = [row["name"] for row in result["layers"]]
    assert names == [*GLASSBOX, *(f"alexnet_{n}" for n in alexnet.LAYER_NAMES)]
    for row in result["layers"]:
        assert REQUIRED <= set(row), row["name"]
    rows = {row["name"]: row for row in result["layers"]}
    assert rows["glassbox_invariant"]["invariance_error"] < 1e-5  # exact up to float32 rounding
    # The fixture's 10 logits are not one per class of a 6-vs-9 task: its accuracy is not scored.
    assert result["accuracy"]["alexnet"] is None
    assert 0.0 <= result["accuracy"]["glassbox"]["accuracy"] <= 1.0
    assert result["systems"]["alexnet"]["settings"]["source"] == "weights"


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert cli.main(["equivariance", "--systems", "glassbox", "--weights", WEIGHTS, *DATA]) == 2
    assert "--weights: applies to none of the chosen systems (glassbox)" in capsys.readouterr().err
    assert cli.main(["equivariance", "--systems", "glassbox", "--dataset", "digits", "--images", "1"]) == 2
    assert "--images: expected at least 2" in capsys.readouterr().err
    assert cli.main(["equivariance", "--systems", "glassbox,lenet9", *DATA]) == 2
    assert "unknown system 'lenet9'" in capsys.readouterr().err
    assert cli.main(["compare", "--influence", "-1", *DATA]) == 2
    assert "expected --influence K >= 0" in capsys.readouterr().err
    assert cli.main(["compare", "--weights", "/nonexistent.safetensors", *DATA]) == 2
    assert "--weights: no file at /nonexistent.safetensors" in capsys.readouterr().err
    occupied = tmp_path / "notes"
    occupied.mkdir()
    (occupied / "todo.txt").write_text("keep me")
    assert cli.main(["compare", *DATA, "--out", str(occupied)]) == 2
    assert "expected a new or empty folder" in capsys.readouterr().err
    assert os.listdir(occupied) == ["todo.txt"]


@pytest.mark.slow
def test_compare_writes_the_report_and_a_failure_leaves_it(tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    recorded = {}

    def recording(name, fn):
        def wrapper(*args, **kwargs):
            value = fn(*args, **kwargs)
            recorded.setdefault(name, []).append(value)
            return value
        return wrapper

    # Eight emulated devices on a small CPU make the invariant + orbit fit several times slower
    # than one; sharded fitting is tested with the glass-box itself.
    one_device = functools.partial(comparison.fit, mesh=parallel.make_mesh(jax.devices()[:1]))
    monkeypatch.setattr(comparison, "fit", recording("fit", one_device))
    monkeypatch.setattr(comparison, "run", recording("run", comparison.run))
    argv = ["compare", *DATA, "--epochs", "1", "--width", "0.0625", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    result = _last_json(capsys)
    files = set(os.listdir(out))
    assert {"index.html", "metrics.json", "filters.png", "orbit.png", "scatter.png", "layers.png", "accuracy.png",
            "confusion.png"} == files
    names = [row["name"] for row in result["layers"]]
    assert names[:4] == GLASSBOX
    assert names[4:9] == ["glassbox_both_response", "glassbox_both_orbit", "glassbox_both_invariant",
                          "glassbox_both_representation", "glassbox_both_pca"]
    assert names[9:] == [f"alexnet_{n}" for n in alexnet.LAYER_NAMES]
    assert list(result["systems"]) == ["glassbox", "glassbox_both", "alexnet"]
    assert set(result["accuracy"]) == {"glassbox", "glassbox_both", "alexnet"}
    assert result["systems"]["alexnet"]["settings"]["source"] == "trained"
    # fc6 and fc7 (256 wide) have more columns than their 96 fit rows: their ridge is scaled up.
    ridges = {row["name"]: row["ridge"] for row in result["layers"]}
    assert ridges["alexnet_fc6"] > ridges["alexnet_conv1"] == pytest.approx(1e-3)
    page = (out / "index.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(files) - 2
    assert "http://" not in page and "https://" not in page
    assert "the turn that makes a 6 a 9" in page
    assert json.loads((out / "metrics.json").read_text())["format"] == report.FORMAT

    # Run again from the recorded models, with a figure that fails: the old report stays whole.
    before = {name: (out / name).read_bytes() for name in files}
    for name in ("fit", "run"):
        monkeypatch.setattr(comparison, name, lambda *a, _values=iter(recorded[name]), **k: next(_values))

    def broken(*_args, **_kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report.figures, "scatter_figure", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        cli.main(argv)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert os.listdir(tmp_path) == ["report"]
