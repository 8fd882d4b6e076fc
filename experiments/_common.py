"""What every experiment script shares: the command line, timing, JSON and PNG output, tables.

Each script measures one claim; this module only moves numbers around, so that no two
scripts format, time or write results differently.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

import glassjax
from glassjax.analysis import scoring
from glassjax.bench import environment  # noqa: F401  (re-exported: every script records it)
from glassjax.core.batching import map_batches
from glassjax.core.files import write_bytes_atomic

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
    """A GlassBox(**config) fitted on the train split, scored on the test split clean and moved
    (``scoring.scores``: every test image acted on by its own seeded random element of
    ``test_group``, the same images for every model with one seed).

    Returns the model and {accuracy, accuracy_transformed, turned_changed, confusion,
    confusion_transformed, fit_seconds, n_train, n_test}.
    """
    model = glassjax.GlassBox(seed=seed, **config).fit(dataset.x_train, dataset.y_train, class_names=dataset.class_names)
    scores = scoring.scores(model.predict, dataset.x_test, dataset.y_test, group=test_group, seed=seed,
                            num_classes=dataset.num_classes)
    return model, dict(scores, fit_seconds=float(model.fit_seconds_), n_train=int(dataset.x_train.shape[0]),
                       n_test=int(dataset.x_test.shape[0]))


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

    One jitted call per fixed-size batch (``map_batches``: the last one padded), so it compiles once.
    """
    fn = jax.jit(lambda chunk: {name: a.reshape(a.shape[0], -1) for name, a in features.fn(chunk).items()})
    out = map_batches(fn, x, batch_size, desc="features")
    return {name: out[name] for name in features.names}
