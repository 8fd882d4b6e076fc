"""The glass-box as registered systems: ``glassbox`` (invariant layer 1) and ``glassbox_both``
(invariant + orbit), one config type, two defaults."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax

from glassjax.data import sources
from glassjax.systems.glassbox.config import GlassBoxConfig
from glassjax.systems.glassbox.filters import filter_images
from glassjax.systems.glassbox.fit import fit as fit_params
from glassjax.systems.glassbox.model import GlassBoxParams, apply, irrep_summary, layers
from glassjax.systems.glassbox.modelfile import load_params, save_params
from glassjax.systems.protocol import System

__all__ = ["SYSTEMS", "fit"]


def fit(config: GlassBoxConfig, dataset, *, key: jax.Array, mesh=None) -> GlassBoxParams:
    """The glass-box fitted on ``dataset``'s train split (arrays, or a batch source as ``x_train``)."""
    if sources.is_source(dataset.x_train):
        return fit_params(config, dataset.x_train, key=key, class_names=dataset.class_names, mesh=mesh)
    return fit_params(config, dataset.x_train, dataset.y_train, key=key, class_names=dataset.class_names, mesh=mesh)


def _representation(params: GlassBoxParams) -> str:
    return "invariant" if params.config.representation == "invariant" else "representation"


def _settings(params: GlassBoxParams) -> dict:
    # irrep_blocks: per irrep of the group, the isotypic component's share of the variance and the
    # layer-2 components it keeps (layer 2 is cut in whole irrep blocks).
    return dict(dataclasses.asdict(params.config), feature_dim=int(params.pca.mean.shape[0]),
                components=int(params.pca.components.shape[0]), irrep_blocks=irrep_summary(params))


def _filter_images(params: GlassBoxParams, class_names: Sequence[str]):
    banks = []
    if params.patches is not None:
        banks.append(("patch filters", filter_images(params.patches, tuple(class_names))))
    if params.prototypes is not None:
        banks.append(("class prototypes", filter_images(params.prototypes, tuple(class_names))))
    return banks


def _system(name: str, description: str, title: str, config: GlassBoxConfig) -> System:
    return System(
        name=name, description=description, title=title, config=config, fit=fit, features=layers, scores=apply,
        save=lambda params, path: save_params(params, path, system=name), load=load_params,
        representation=_representation, class_names=lambda params: params.class_names, settings=_settings,
        filter_images=_filter_images, streams=True, processes=True,
    )


SYSTEMS = (
    _system("glassbox", "the one-layer glass-box: D4 orbit x class-informed filters, invariant pooling, PCA, "
            "classifier; every parameter in closed form", "glass-box (invariant)", GlassBoxConfig()),
    _system("glassbox_both", "the one-layer glass-box with layer 1 invariant + orbit (keeps orientation: tells "
            "a 6 from a 9)", "glass-box (invariant + orbit)", GlassBoxConfig(representation="both")),
)
