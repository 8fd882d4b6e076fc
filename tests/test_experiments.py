"""Smoke tests: every experiment script runs end to end on tiny settings (--quick).

The numbers of a --quick run are not meaningful; these tests check that each script runs,
writes its JSON and figures atomically into --out, and keeps each figure small.
"""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SCRIPTS = {
    "separation": ["separation.json", "separation_lfw_faces.png"],
    "equivariance": ["equivariance.json", "equivariance_lfw_faces.png"],
    "accuracy": ["accuracy.json", "accuracy_pairs.png", "accuracy_confusion.png"],
    "sensitivity": ["sensitivity.json", "sensitivity.png"],
    "ablations": ["ablations.json", "ablations.png"],
}
EXTRA_ARGS = {"sensitivity": ["--datasets", "lfw_faces"]}


def _load(name):
    sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_quick(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSJAX_QUIET", "1")
    module = _load(name)
    assert "Command:" in module.__doc__ and "Runtime:" in module.__doc__ and "Expected:" in module.__doc__
    result = module.main(["--quick", "--out", str(tmp_path), *EXTRA_ARGS.get(name, [])])
    assert result["quick"] is True
    for filename in SCRIPTS[name]:
        path = tmp_path / filename
        assert path.is_file(), filename
        assert path.stat().st_size < 200_000, f"{filename} is {path.stat().st_size} bytes"
    stored = json.loads((tmp_path / SCRIPTS[name][0]).read_text())
    assert stored["environment"]["jax"] and stored["seconds"] > 0
    # Nothing half-written is left beside the outputs.
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert "|---|" in capsys.readouterr().out  # the printed table
