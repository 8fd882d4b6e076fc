"""The deep glass-box as the registered system ``glassbox_deep``."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from glassjax.systems.glassbox_deep import modelfile
from glassjax.systems.glassbox_deep.config import DeepGlassBoxConfig
from glassjax.systems.glassbox_deep.fit import fit as fit_params
from glassjax.systems.glassbox_deep.model import DeepGlassBoxParams, layers, scores
from glassjax.systems.protocol import System

__all__ = ["SYSTEMS", "fit"]


def fit(config: DeepGlassBoxConfig, dataset, *, key: jax.Array, mesh=None) -> DeepGlassBoxParams:
    """The deep glass-box fitted on ``dataset``'s train split."""
    return fit_params(config, dataset.x_train, dataset.y_train, key=key, class_names=dataset.class_names, mesh=mesh)


def _representation(params: DeepGlassBoxParams) -> str:
    return "invariant" if params.config.representation == "invariant" else "representation"


def _settings(params: DeepGlassBoxParams) -> dict:
    return dict(dataclasses.asdict(params.config), filters_per_layer=[int(f.shape[0]) for f in params.filters],
                feature_dim=int(params.pca.mean.shape[0]), components=int(params.pca.components.shape[0]))


def _filter_images(params: DeepGlassBoxParams, class_names: Sequence[str]):
    # The lifting layer only: deeper filters have a k x k slice per group element and channel, not one image.
    out = []
    for psi, cls in zip(np.asarray(params.filters[0]), np.asarray(params.filter_classes[0])):
        image = psi[:, :, 0, :]
        scale = float(np.abs(image).max()) or 1.0
        out.append((0.5 + 0.5 * image / scale, "all" if cls < 0 else class_names[int(cls)]))
    return [("lifting-layer filters", out)]


SYSTEMS = (
    System(
        name="glassbox_deep", title="deep glass-box",
        description="stacked D4-exact analytic layers: lifting, group convolutions on the lifted domain with filters "
                    "fitted in closed form, invariants at the top, PCA, classifier",
        config=DeepGlassBoxConfig(), fit=fit, features=layers, scores=scores, save=modelfile.save, load=modelfile.load,
        representation=_representation, class_names=lambda params: params.class_names, settings=_settings,
        filter_images=_filter_images,
    ),
)
