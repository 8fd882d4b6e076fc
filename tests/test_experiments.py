"""Smoke tests: every experiment script runs end to end on tiny settings (--quick).

The numbers of a --quick run are not meaningful; these tests check that each script runs as
its docstring's command says, writes its JSON and figures atomically into --out, keeps each
figure small and prints its table. Each script runs in its own process with one CPU device,
as a user runs it: the 8 emulated devices of conftest.py would only make its fits slower.
"""
import json
import os
import subprocess
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
    "lie_derivative": ["lie_derivative.json"],
    "input_signal": ["input_signal.json", "input_signal_matrix.png"],
    "influence": ["influence.json", "influence.png"],
}
EXTRA_ARGS = {"sensitivity": ["--datasets", "lfw_faces"]}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_quick(name, tmp_path):
    script = EXPERIMENTS / f"{name}.py"
    doc = script.read_text()
    assert "Command:" in doc and "Runtime:" in doc and "Expected:" in doc
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(GLASSJAX_QUIET="1", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path), *EXTRA_ARGS.get(name, [])],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "|---|" in done.stdout  # the printed table
    for filename in SCRIPTS[name]:
        path = tmp_path / filename
        assert path.is_file(), filename
        assert path.stat().st_size < 200_000, f"{filename} is {path.stat().st_size} bytes"
    stored = json.loads((tmp_path / SCRIPTS[name][0]).read_text())
    assert stored["quick"] is True and stored["environment"]["jax"] and stored["seconds"] > 0
    # Nothing half-written is left beside the outputs.
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
