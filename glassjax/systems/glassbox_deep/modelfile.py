"""Saving and loading a fitted deep glass-box as one .npz model file (bit-exact round trip)."""
from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from glassjax.core import classifiers, modelfile, reduction
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox_deep.config import DeepGlassBoxConfig
from glassjax.systems.glassbox_deep.model import DeepGlassBoxParams
from glassjax.systems.saab import files

__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "glassjax.DeepGlassBox"
FORMAT_VERSION = 1
_PARTS = {"projection": rep.OrbitProjection, "pca": reduction.PCA, "blocks": reduction.Blocks}


def save(params: DeepGlassBoxParams, path: str | os.PathLike) -> None:
    """Write params atomically: per layer its filters, biases and filter classes; the top's arrays; meta."""
    arrays = {}
    for l, (psi, bias, classes) in enumerate(zip(params.filters, params.biases, params.filter_classes)):
        arrays.update({f"layer{l}.filters": np.asarray(psi), f"layer{l}.bias": np.asarray(bias),
                       f"layer{l}.classes": np.asarray(classes)})
    for name in _PARTS:
        arrays.update({f"{name}.{k}": np.asarray(v) for k, v in getattr(params, name)._asdict().items()})
    arrays.update({f"classifier.{k}": v for k, v in classifiers.classifier_to_arrays(params.classifier).items()})
    meta = {"format": FORMAT, "system": "glassbox_deep", "version": FORMAT_VERSION, "config": files.asdict(params.config),
            "image_shape": list(params.image_shape), "class_names": list(params.class_names)}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> DeepGlassBoxParams:
    """Params written by ``save``; a one-line ValueError for any other file."""
    meta, arrays = files.read(path, FORMAT, FORMAT_VERSION)
    config = files.config_from_meta(DeepGlassBoxConfig, meta.get("config"), path)
    try:
        layers = [tuple(jnp.asarray(arrays[f"layer{l}.{k}"]) for k in ("filters", "bias", "classes"))
                  for l in range(len(config.widths))]
        parts = {name: kind(**{f: jnp.asarray(arrays[f"{name}.{f}"]) for f in kind._fields}) for name, kind in _PARTS.items()}
    except KeyError as err:
        raise ValueError(f"{path}: a glassbox_deep model file without its array {err}") from None
    clf = classifiers.classifier_from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("classifier.")})
    filters, biases, classes = (tuple(part) for part in zip(*layers))
    return DeepGlassBoxParams(config, tuple(meta["image_shape"]), tuple(meta["class_names"]), filters, biases, classes,
                              parts["projection"], parts["pca"], parts["blocks"], clf)
