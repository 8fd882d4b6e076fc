"""Smoke tests: every experiment script runs end to end on tiny settings (--quick).

The numbers of a --quick run are not meaningful; these tests check that each script runs as
its docstring's command says, writes its JSON and figures atomically into --out, keeps each
figure small and prints its table. Each script runs in its own process with one CPU device,
as a user runs it: the 8 emulated devices of conftest.py would only make its fits slower. The
selected scripts run two at a time, once per session (the ``runs`` fixture).
"""
import concurrent.futures
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


def _run(name: str, out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(GLASSJAX_QUIET="1", JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, str(EXPERIMENTS / f"{name}.py"), "--quick", "--out", str(out), *EXTRA_ARGS.get(name, [])],
        capture_output=True, text=True, env=env, timeout=900,
    )


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory) -> dict:
    """{name: (out folder, finished process)} for the scripts this session selected, two at a
    time: much of each run is one core's work (imports, compilation), so two overlap on two cores."""
    selected = sorted({item.callspec.params["name"] for item in request.session.items
                       if item.module is request.module and item.originalname == "test_script_quick"})
    folders = {name: tmp_path_factory.mktemp(name) for name in selected}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = dict(zip(selected, pool.map(lambda name: _run(name, folders[name]), selected)))
    return {name: (folders[name], done[name]) for name in selected}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_quick(name, runs):
    doc = (EXPERIMENTS / f"{name}.py").read_text()
    assert "Command:" in doc and "Runtime:" in doc and "Expected:" in doc
    out, done = runs[name]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "|---|" in done.stdout  # the printed table
    for filename in SCRIPTS[name]:
        path = out / filename
        assert path.is_file(), filename
        assert path.stat().st_size < 200_000, f"{filename} is {path.stat().st_size} bytes"
    stored = json.loads((out / SCRIPTS[name][0]).read_text())
    assert stored["quick"] is True and stored["environment"]["jax"] and stored["seconds"] > 0
    # Nothing half-written is left beside the outputs.
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
