"""Saving and loading a fitted glass-box as an .npz file (bit-exact round trip).

Version 2 adds layer 2's irrep blocks (``blocks.*``); version 1 files (before the symmetry-adapted
layer 2) still load, without blocks, so ``feature_action`` asks for a refit.
"""
from __future__ import annotations

import dataclasses
import os

import jax.numpy as jnp
import numpy as np

from glassjax.core import classifiers, reduction
from glassjax.core import modelfile
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import GlassBoxConfig
from glassjax.systems.glassbox.filters import FilterBank
from glassjax.systems.glassbox.model import GlassBoxParams

__all__ = ["save_params", "load_params", "FORMAT_VERSION"]

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_FORMAT = "glassjax.GlassBox"

_FIELDS = {"patches": FilterBank, "prototypes": FilterBank, "projection": rep.OrbitProjection, "pca": reduction.PCA,
           "blocks": reduction.Blocks}


def save_params(params: GlassBoxParams, path: str | os.PathLike, *, system: str = "glassbox") -> None:
    """Write params to an .npz file atomically; ``load_params`` reads them back bit-exactly."""
    arrays = {}
    for name in _FIELDS:
        part = getattr(params, name)
        if part is not None:
            arrays.update({f"{name}.{k}": np.asarray(v) for k, v in part._asdict().items()})
    arrays.update({f"classifier.{k}": v for k, v in classifiers.classifier_to_arrays(params.classifier).items()})
    meta = {
        "format": _FORMAT,
        "system": system,
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(params.config),
        "image_shape": list(params.image_shape),
        "class_names": list(params.class_names),
    }
    modelfile.write(path, meta, arrays)


def load_params(path: str | os.PathLike) -> GlassBoxParams:
    """Read params written by ``save_params``."""
    meta, arrays = modelfile.read(path)
    if meta.get("format") != _FORMAT or meta.get("version") not in _READABLE_VERSIONS:
        raise ValueError(f"{path}: expected a {_FORMAT} model of version {' or '.join(map(str, _READABLE_VERSIONS))}, "
                         f"got {meta.get('format')} {meta.get('version')}")
    try:
        config_fields = dict(meta["config"], poolings=tuple(meta["config"]["poolings"]))
        config = GlassBoxConfig(**config_fields)
        image_shape, class_names = tuple(meta["image_shape"]), tuple(meta["class_names"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: expected a glass-box's meta entry (config, image_shape, class_names), "
                         f"got {type(err).__name__}: {err}") from None
    kinds = dict(_FIELDS, pca=reduction.LDA if config.reduction == "lda" else reduction.PCA)
    parts = {}
    for name, kind in kinds.items():
        fields = {k.split(".", 1)[1]: jnp.asarray(v) for k, v in arrays.items() if k.startswith(name + ".")}
        try:
            parts[name] = kind(**fields) if fields else None
        except TypeError:
            raise ValueError(f"{path}: expected the fields of a {kind.__name__} under {name!r}, got {sorted(fields)}") from None
    clf = classifiers.classifier_from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("classifier.")})
    return GlassBoxParams(config, image_shape, class_names,
                          parts["patches"], parts["prototypes"], parts["projection"], parts["pca"], clf, parts["blocks"])
