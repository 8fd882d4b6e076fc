"""One explainer study: train the explainer on a performer and measure it against the baselines.

  p                       the interpretable track's share
  reconstruction_error    per target, on the test split: ||f - f_hat||^2 / ||f||^2
  head accuracy           the performer's head on its own test features and on the reconstructed ones
  location instability    (``instability``) of: the performer's layer-l filters; the explainer's
                          interpretable filters (its last interpretable layer) and its ordinary
                          filters; optionally an ICNN-trained performer's layer-l filters and a bank
                          of explicit filters (the glass-box's patch filters)

Instability is measured on every image of both splits that has landmarks (the explainer never
saw a label; for lfw_faces the face images), M = ``top`` images per filter.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import jax
import numpy as np

from glassjax.core import arrays
from glassjax.probes.explainer import (
    filter_maps,
    heads,
    instability,
    landmarks,
    receptive,
    training,
)
from glassjax.probes.explainer import performer as perf
from glassjax.probes.explainer.config import ExplainerConfig
from glassjax.probes.explainer.performer import Performer, layer_maps

__all__ = ["Baselines", "Study", "filter_set", "run"]


class Baselines(NamedTuple):
    """The filters the explainer's are set against, each optional.

    icnn       an ICNN-trained performer (``icnn.train``), measured on the same layer
    bank       explicit filters (F, k, k, C) measured on the images (the glass-box's patch filters)
    """

    icnn: Performer | None = None
    bank: np.ndarray | None = None


class Study(NamedTuple):
    """result: the JSON-able numbers; arrays: what the figures draw (top images and maps per filter set)."""

    result: dict
    arrays: dict


def filter_set(values, positions, maps, centres, marks: landmarks.Landmarks, x, *, top: int) -> dict:
    """Instability of one set of filters, and the arrays a figure needs.

    values, positions (N, F) from ``instability.peaks`` of maps (N, h, w, F) on the landmark images x.
    """
    per = instability.filter_instability(values, positions, centres, marks.points, x.shape[1:], top=top)
    order = np.argsort(-values, axis=0, kind="stable")[:top]  # (top, F)
    return {"per_filter": per, **instability.summary(per), "top_images": order, "positions": positions,
            "centres": centres, "maps": maps}


def _accuracy(pred, y) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def run(performer: Performer, dataset, config: ExplainerConfig | None = None, *, key: jax.Array,
        baselines: Baselines | None = None, top: int = 20) -> Study:
    """Train an explainer of ``performer`` on ``dataset``'s train images and measure it (see the module docstring)."""
    top = arrays.as_int(top, "explainer.run", "top", minimum=2)
    config, baselines = config or ExplainerConfig(), baselines or Baselines()
    start = time.perf_counter()
    params = training.fit(performer, dataset.x_train, config, key=key)
    train_seconds = time.perf_counter() - start
    layer, targets = config.layer, tuple(t.name for t in params.targets)

    # reconstruction and the head, on the test split
    test = layer_maps(performer, dataset.x_test, (layer,) + targets, desc="explainer: test maps")
    enc = training.encode(params, test[layer])
    recon = {t: np.asarray(enc.reconstructed[t]) for t in targets}
    error = {t: float(np.sum((test[t] - recon[t]) ** 2) / np.sum(test[t] ** 2)) for t in targets}
    y = dataset.y_test
    accuracy = _accuracy(np.argmax(np.asarray(performer.system.scores(performer.params, dataset.x_test)), -1), y)
    by_layer = {}
    for t in targets:
        fn = heads.head(performer, t, dataset.x_test[:2])
        if fn is not None:
            by_layer[t] = {"original": _accuracy(np.argmax(np.asarray(fn(test[t])), -1), y),
                           "reconstructed": _accuracy(np.argmax(np.asarray(fn(recon[t])), -1), y)}

    # location instability on every image with landmarks
    x_all = np.concatenate([dataset.x_train, dataset.x_test])
    y_all = np.concatenate([dataset.y_train, dataset.y_test])
    marks = landmarks.for_dataset(dataset.name, x_all, y_all, dataset.class_names)
    x = x_all[marks.rows]
    marks = marks._replace(points=marks.points[marks.rows], rows=marks.rows[marks.rows])
    if x.shape[0] < top:
        raise ValueError(f"explainer.run: expected at least top={top} images with landmarks, got {x.shape[0]}")
    centres, centre_method = perf.centres(performer, layer, x.shape[1:])
    own = layer_maps(performer, x, (layer,), desc="explainer: landmark images")[layer]
    enc_x = training.encode(params, own)
    sets = {"performer": own, "explainer": np.asarray(enc_x.interpretable[-1]),
            "explainer_ordinary": np.asarray(enc_x.ordinary)}
    set_centres = dict.fromkeys(sets, centres)
    if baselines.icnn is not None:
        sets["icnn"] = layer_maps(baselines.icnn, x, (layer,), desc="ICNN maps")[layer]
        set_centres["icnn"] = perf.centres(baselines.icnn, layer, x.shape[1:])[0]
    if baselines.bank is not None:
        maps = filter_maps.bank_maps(baselines.bank, x)
        sets["glassbox"] = maps
        set_centres["glassbox"] = receptive.window_centres(maps.shape[1], maps.shape[2], baselines.bank.shape[1])
    measured, figure_arrays = {}, {"images": x, "landmarks": marks.points, "landmark_names": marks.names}
    for name, maps in sets.items():
        values, positions = instability.peaks(maps)
        out = filter_set(values, positions, maps, set_centres[name], marks, x, top=top)
        measured[name] = {k: out[k] for k in ("instability", "filters", "measured")}
        measured[name]["per_filter"] = [None if not np.isfinite(v) else float(v) for v in out["per_filter"]]
        figure_arrays[name] = out

    hist = params.info["history"]
    result = {
        "dataset": dataset.name, "performer": performer.system.name, "layer": layer, "targets": list(targets),
        "config": params.info["config"], "top_images": top, "landmark_images": int(x.shape[0]),
        "landmark_names": list(marks.names), "centres": centre_method,
        "p": float(enc.p), "reconstruction_error": error,
        "head_accuracy": accuracy, "head_accuracy_by_layer": by_layer,
        "instability": measured, "train_seconds": train_seconds, "training_maps": params.info["training_maps"],
        "final_losses": hist[-1] if hist else None,
        "history": hist,
    }
    return Study(result, figure_arrays)
