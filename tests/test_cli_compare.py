"""`glassjax equivariance` and `glassjax compare` end to end, on digits 6 vs 9 with tiny settings."""
import functools
import json
import os
import re

import jax
import pytest

from glassjax import alexnet, cli, comparison, report

WEIGHTS = "tests/fixtures/alexnet_small.safetensors"  # reduced widths, 10 classes
DATA = ["--dataset", "digits", "--classes", "6,9", "--images", "12"]
REQUIRED = {"name", "invariance_error", "equivariance_error", "lie_derivative", "fisher_ratio"}


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("GLASSJAX_QUIET", "1")


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_equivariance_alexnet_rows_beside_glassbox(capsys):
    assert cli.main(["equivariance", "--model", "alexnet", "--weights", WEIGHTS, *DATA, "--json"]) == 0
    result = _last_json(capsys)
    names = [row["name"] for row in result["layers"]]
    assert names == ["glassbox_response", "glassbox_orbit", "glassbox_invariant", "glassbox_pca", *alexnet.LAYER_NAMES]
    for row in result["layers"]:
        assert REQUIRED <= set(row), row["name"]
    rows = {row["name"]: row for row in result["layers"]}
    assert rows["glassbox_invariant"]["invariance_error"] < 1e-5  # exact up to float32 rounding
    # The fixture's 10 logits are not one per class of a 6-vs-9 task: its accuracy is not scored.
    assert result["accuracy"]["alexnet"] is None
    assert 0.0 <= result["accuracy"]["glassbox"]["accuracy"] <= 1.0
    assert result["models"]["alexnet"]["source"] == "weights"


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert cli.main(["equivariance", "--model", "glassbox", "--weights", WEIGHTS, *DATA]) == 2
    assert "expected only with --model alexnet" in capsys.readouterr().err
    assert cli.main(["equivariance", "--model", "glassbox", "--dataset", "digits", "--images", "1"]) == 2
    assert "--images: expected at least 2" in capsys.readouterr().err
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

    for name in ("fit_glassbox", "load_or_train_alexnet", "run"):
        monkeypatch.setattr(comparison, name, recording(name, getattr(comparison, name)))
    # Eight emulated devices on a small CPU make the invariant + orbit fit several times slower
    # than one; sharded fitting is tested with the glass-box itself.
    monkeypatch.setattr(comparison, "fit_glassbox", functools.partial(comparison.fit_glassbox, devices=jax.devices()[:1]))
    argv = ["compare", *DATA, "--epochs", "1", "--width", "0.0625", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    result = _last_json(capsys)
    files = set(os.listdir(out))
    assert {"index.html", "metrics.json", "filters.png", "orbit.png", "scatter.png", "layers.png", "accuracy.png",
            "confusion.png"} == files
    names = [row["name"] for row in result["layers"]]
    assert names[:6] == ["glassbox_response", "glassbox_orbit", "glassbox_invariant", "glassbox_pca",
                         "glassbox_both_representation", "glassbox_both_pca"]
    assert names[6:] == list(alexnet.LAYER_NAMES)
    assert set(result["accuracy"]) == {"glassbox", "glassbox_both", "alexnet"}
    assert result["models"]["alexnet"]["source"] == "trained"
    # fc6 and fc7 (256 wide) have more columns than their 96 fit rows: their ridge is scaled up.
    ridges = {row["name"]: row["ridge"] for row in result["layers"]}
    assert ridges["fc6"] > ridges["conv1"] == pytest.approx(1e-3)
    page = (out / "index.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(files) - 2
    assert "http://" not in page and "https://" not in page
    assert "the turn that makes a 6 a 9" in page
    assert json.loads((out / "metrics.json").read_text())["format"] == report.FORMAT

    # Run again from the recorded models, with a figure that fails: the old report stays whole.
    before = {name: (out / name).read_bytes() for name in files}
    for name in ("fit_glassbox", "load_or_train_alexnet", "run"):
        monkeypatch.setattr(comparison, name, lambda *a, _values=iter(recorded[name]), **k: next(_values))

    def broken(*_args, **_kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "scatter_figure", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        cli.main(argv)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before
    assert os.listdir(tmp_path) == ["report"]
