"""What every experiment script shares: the command line, timing, JSON and PNG output, tables.

Each script measures one claim; this module only moves numbers around, so that no two
scripts format, time or write results differently.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

import glassjax
from glassjax import evaluation
from glassjax.files import write_bytes_atomic

__all__ = [
    "parser",
    "environment",
    "Stopwatch",
    "fit_scored",
    "write_json",
    "save_figure",
    "figure",
    "table",
    "log",
    "confusion",
    "shrink",
    "done",
]


def parser(doc: str | None, default_out: str) -> argparse.ArgumentParser:
    """The shared options: --out DIR, --quick (tiny settings for the smoke test), --seed."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=default_out, help=f"folder for the JSON and PNG outputs (default {default_out})")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for the smoke test; numbers are not meaningful")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, the models and the test-set transforms")
    return p


def environment() -> dict:
    """Where the numbers were measured: versions, device, cores."""
    return {
        "glassjax": glassjax.__version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        **_library_version(),
    }


def _library_version() -> dict:
    """The commit of the glassjax checkout, and whether glassjax/ had uncommitted changes."""
    root = Path(glassjax.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "glassjax"], cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit or None, "glassjax_dirty": bool(dirty.strip())}


class Stopwatch:
    """Seconds since creation (``elapsed``), for the runtime every script reports."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def log(message: str) -> None:
    """One line of progress on stderr (silent with GLASSJAX_QUIET, like the bars)."""
    if not os.environ.get("GLASSJAX_QUIET"):
        print(message, file=sys.stderr, flush=True)


def fit_scored(dataset, *, seed: int, test_group: str = "d4", **config) -> tuple[glassjax.GlassBox, dict]:
    """A GlassBox(**config) fitted on the train split, scored on the test split clean and moved.

    "Moved" is ``evaluation.transformed_test_set``: every test image acted on by its own
    seeded random element of ``test_group`` (the same images for every model with one seed).
    Returns the model and {accuracy, accuracy_transformed, fit_seconds, confusion,
    confusion_transformed, predictions}.
    """
    model = glassjax.GlassBox(seed=seed, **config).fit(dataset.x_train, dataset.y_train, class_names=dataset.class_names)
    moved = evaluation.transformed_test_set(dataset.x_test, test_group, seed=seed)
    clean_pred = model.predict(dataset.x_test)
    moved_pred = model.predict(moved)
    k = dataset.num_classes
    return model, {
        "accuracy": float(np.mean(clean_pred == dataset.y_test)),
        "accuracy_transformed": float(np.mean(moved_pred == dataset.y_test)),
        "fit_seconds": float(model.fit_seconds_),
        "n_train": int(dataset.x_train.shape[0]),
        "n_test": int(dataset.x_test.shape[0]),
        "confusion": confusion(dataset.y_test, clean_pred, k),
        "confusion_transformed": confusion(dataset.y_test, moved_pred, k),
    }


def confusion(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts (num_classes, num_classes): rows true class, columns predicted."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(y), np.asarray(predicted)), 1)
    return counts.tolist()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    return value


def write_json(out: str | os.PathLike, name: str, payload: Mapping) -> Path:
    """Write ``payload`` (numpy/JAX values made plain) to out/name atomically; returns the path."""
    path = Path(out) / name
    write_bytes_atomic(path, (json.dumps(_plain(payload), indent=1, allow_nan=True) + "\n").encode())
    return path


def figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def save_figure(fig, out: str | os.PathLike, name: str) -> Path:
    """The figure as PNG at out/name, atomically, without date metadata (same numbers, same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    path = Path(out) / name
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        if value != 0 and abs(value) < 10.0**-digits:
            return f"{value:.0e}"
        if abs(value) >= 1e4:
            return f"{value:.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: Iterable[Mapping], columns: Sequence[str], *, digits: int = 3, title: str | None = None) -> str:
    """A Markdown table of ``columns`` from ``rows``; printed to stdout and returned."""
    lines = [] if title is None else [f"\n### {title}\n"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in columns) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def done(clock: Stopwatch, written: Sequence[Path]) -> None:
    """The closing line: runtime and what was written."""
    names = ", ".join(str(p) for p in written)
    print(f"\nwrote {names} in {clock.elapsed:.0f} s", flush=True)


def finish(clock: Stopwatch, out: str | os.PathLike, result: dict, json_name: str, fig, figure_name: str) -> dict:
    """Record the runtime in ``result``, write it as JSON and ``fig`` as PNG under ``out``; returns result."""
    result["seconds"] = clock.elapsed
    done(clock, [write_json(out, json_name, result), save_figure(fig, out, figure_name)])
    return result




def shrink(dataset, *, train_per_class: int, test_per_class: int):
    """The first ``train_per_class`` / ``test_per_class`` images of each class (for --quick)."""

    def keep(y, count):
        return np.sort(np.concatenate([np.flatnonzero(y == c)[:count] for c in range(dataset.num_classes)]))

    tr, te = keep(dataset.y_train, train_per_class), keep(dataset.y_test, test_per_class)
    return dataset._replace(x_train=dataset.x_train[tr], y_train=dataset.y_train[tr], x_test=dataset.x_test[te], y_test=dataset.y_test[te])


def layer_features(features, x: np.ndarray, *, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every layer of a ``comparison.Features`` on images x (N, H, W, C), flattened to (N, D).

    One jitted call per fixed-size batch (the last one padded), so it compiles once.
    """
    fn = jax.jit(features.fn)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in features.names}
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        real = chunk.shape[0]
        if real < batch_size and x.shape[0] > batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, axis=0)])
        out = fn(chunk)
        for name in features.names:
            parts[name].append(np.asarray(out[name])[:real].reshape(real, -1))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
