"""The whole probe (Palacio et al. 2018): pretrain once, fine-tune the decoder for each classifier,
and read every classifier on every autoencoder's reconstructions of the test split.

  prepare(names, dataset, *, seed, overrides)  -> (probed [Probed], skipped {name: reason}, fit_seconds)
  run(dataset, probed, config, *, seed, ...)   -> (result, samples)

result (JSON-ready): accuracy {B: on originals}, reconstruction_accuracy {row: {B: acc}}, matrix
{row: {B: ratio}} (rows: ``UNTUNED`` and every classifier), order (names, best first) with
order_detail, nmi {row: {intra, inter}}, orientation_kept {row: {kept, margin}} (D4, square
images; with its ceiling, the originals' own score), mse {row}, parameters {B}, losses {row}, seconds.
samples: {"index": (k,) test rows, one per class, "original": (k, H, W, C), row: (k, H, W, C)}.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Mapping, Sequence

import jax
import numpy as np

from glassjax import systems
from glassjax.core import arrays
from glassjax.core.batching import map_batches
from glassjax.core.progress import progress
from glassjax.probes.input_signal import classifiers, matrix, training
from glassjax.probes.input_signal.autoencoder import AutoencoderConfig
from glassjax.probes.input_signal.classifiers import ANCHOR, Probed
from glassjax.probes.input_signal.mutual_information import intra_inter
from glassjax.probes.input_signal.orientation import orientation_kept

__all__ = ["UNTUNED", "prepare", "accuracy", "run"]

UNTUNED = "untuned"
_GRADIENT_IMAGES = 4  # images the gradient check traces; a handful decides it


def prepare(names: Sequence[str], dataset, *, seed: int = 0, overrides: Mapping[str, Mapping] | None = None
            ) -> tuple[list[Probed], dict[str, str], dict[str, float]]:
    """Fit each named classifier (registered systems with their config ``overrides``; ``ANCHOR``
    the pixel logistic regression) on ``dataset``'s train split, keyed by ``seed``, and keep those
    whose scores have a usable input gradient. Returns (probed, skipped {name: reason}, fit seconds)."""
    names = list(names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"input_signal: expected distinct classifier names, got {names!r}")
    if UNTUNED in names:
        raise ValueError(f"input_signal: {UNTUNED!r} names the untuned autoencoder's row, not a classifier")
    for name in names:
        if name != ANCHOR:
            systems.get(name)  # unknown names fail before any fit
    overrides = dict(overrides or {})
    probe_images = np.asarray(dataset.x_train[:_GRADIENT_IMAGES], np.float32)
    probed, skipped, seconds = [], {}, {}
    for name in progress(names, total=len(names), desc="classifiers", unit="system"):
        start = time.perf_counter()
        if name == ANCHOR:
            p = classifiers.fit_logistic(dataset)
        else:
            system = systems.get(name)
            params = system.fit(system.configure(**overrides.get(name, {})), dataset, key=jax.random.key(seed))
            p = classifiers.from_system(system, jax.device_put(params, jax.devices()[0]))
        jax.block_until_ready(p.params)
        seconds[name] = time.perf_counter() - start
        problem = classifiers.gradient_problem(p, probe_images)
        if problem is None:
            probed.append(p)
        else:
            skipped[name] = problem
    return probed, skipped, seconds


def accuracy(probed: Probed, images: Mapping[str, np.ndarray], y: np.ndarray, *, batch_size: int = 250
             ) -> dict[str, float]:
    """{key: accuracy of ``probed`` on images[key] (N, H, W, C) against y (N,)}: one compile for all."""
    predict = jax.jit(lambda params, b: probed.scores(params, b).argmax(axis=-1))
    out = {}
    for key, x in images.items():
        predicted = map_batches(lambda b: predict(probed.params, b), x, batch_size)
        out[key] = float(np.mean(predicted == y))
    return out


def _samples(y: np.ndarray, count: int) -> np.ndarray:
    """Test rows for the figure: the first image of each class, up to ``count`` images."""
    firsts = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)]
    return np.asarray(firsts[:count], np.int64)


def run(dataset, probed: Sequence[Probed], config: AutoencoderConfig | None = None, *, seed: int = 0,
        bins: int = 32, samples: int = 10) -> tuple[dict, dict]:
    """The probe on ``dataset`` (train split: autoencoder training; test split: every measure); ``config``
    None: ``AutoencoderConfig()``."""
    config = (AutoencoderConfig() if config is None else config).validated()
    seed = arrays.as_seed(seed, "input_signal.run")
    bins = arrays.as_int(bins, "input_signal.run", "bins", 2)
    samples = arrays.as_int(samples, "input_signal.run", "samples", 1)
    probed = list(probed)
    if not probed:
        raise ValueError("input_signal.run: expected at least one differentiable classifier, got none")
    names = [p.name for p in probed]
    if len(set(names)) != len(names) or UNTUNED in names:
        raise ValueError(f"input_signal.run: expected distinct classifier names other than {UNTUNED!r}, got {names}")
    x_train = np.asarray(arrays.as_images(dataset.x_train, "input_signal.run"), np.float32)
    x_test = np.asarray(arrays.as_images(dataset.x_test, "input_signal.run"), np.float32)
    y_train, y_test = np.asarray(dataset.y_train, np.int32), np.asarray(dataset.y_test, np.int32)
    seconds = {}
    key_init, key_pretrain, key_tune = jax.random.split(jax.random.key(seed), 3)

    start = time.perf_counter()
    base = training.pretrain(training.init(config, x_train.shape[1:], key=key_init), x_train, key=key_pretrain)
    seconds["pretrain"] = time.perf_counter() - start
    recon = {UNTUNED: training.reconstruct(base, x_test)}
    losses = {UNTUNED: list(base.losses)}
    for i, p in enumerate(probed):
        start = time.perf_counter()
        tuned = training.finetune(base, x_train, y_train, p.scores, p.params, key=jax.random.fold_in(key_tune, i),
                                  desc=f"fine-tune {p.name}")
        recon[p.name] = training.reconstruct(tuned, x_test)
        losses[p.name] = list(tuned.losses[len(base.losses):])
        seconds[f"finetune_{p.name}"] = time.perf_counter() - start

    start = time.perf_counter()
    on_originals, on_recon = {}, {row: {} for row in recon}
    for p in progress(probed, total=len(probed), desc="accuracy", unit="classifier"):
        accs = accuracy(p, {"original": x_test, **recon}, y_test)
        on_originals[p.name] = accs.pop("original")
        for row, acc in accs.items():
            on_recon[row][p.name] = acc
    m = matrix.cross_matrix(on_recon, on_originals)
    seconds["accuracy"] = time.perf_counter() - start

    start = time.perf_counter()
    nmis = {row: intra_inter(x_test, r, bins=bins, seed=seed) for row, r in recon.items()}
    seconds["nmi"] = time.perf_counter() - start
    square = x_test.shape[1] == x_test.shape[2]
    orientation = {row: orientation_kept(x_test, r) for row, r in recon.items()} if square else None

    parameters = {p.name: p.parameters for p in probed}
    ordered = matrix.order(m, untuned=UNTUNED) if len(probed) >= 2 else None
    ranked = ordered["order"] if ordered else names
    index = _samples(y_test, samples)
    result = {
        "dataset": dataset.name, "n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]),
        "classifiers": names, "autoencoder": dict(dataclasses.asdict(config), widths=list(config.widths),
                                                   parameters=training.parameter_count(base)),
        "accuracy": on_originals, "reconstruction_accuracy": on_recon, "matrix": m, "order": ranked,
        "order_detail": ordered, "nmi": nmis, "nmi_bins": bins,
        "nmi_definition": "(H(A) + H(B)) / H(A, B), skimage.metrics.normalized_mutual_information",
        "mse": {row: float(np.mean(np.square(r - x_test))) for row, r in recon.items()},
        "orientation_kept": orientation,
        "orientation_ceiling": orientation_kept(x_test, x_test) if square else None,
        "parameters": parameters, "losses": losses, "seconds": seconds,
        "order_vs_accuracy": matrix.rank_correlation(ranked, on_originals),
        "order_vs_parameters": matrix.rank_correlation(ranked, parameters),
    }
    figure_samples = {"index": index, "original": x_test[index], **{row: r[index] for row, r in recon.items()}}
    return result, figure_samples
