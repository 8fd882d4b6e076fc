"""The CSG networks as registered systems: ``cnn_csg`` (the small CNN, for 28x28 digits) and
``alexnet_csg`` (AlexNet with its conv5 gated). ``gates=false`` trains either the standard way."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import modelfile
from glassjax.systems.csg import gates, networks, training
from glassjax.systems.csg.config import AlexNetCSGConfig, CNNCSGConfig
from glassjax.systems.protocol import System

__all__ = ["CSGParams", "SYSTEMS", "fit", "features", "scores", "save", "load"]

FORMAT_VERSION = 1
_CONFIGS = {"cnn": CNNCSGConfig, "alexnet": AlexNetCSGConfig}


class CSGParams(eqx.Module):
    """A trained CSG network: its weights (a dict of layers), the gate (K, C) or None when it was
    trained without gates, its config and classes, and ``info`` (the training history, one row
    per epoch, and the seconds it took)."""

    config: CNNCSGConfig | AlexNetCSGConfig = eqx.field(static=True)
    system: str = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    weights: dict
    gate: jax.Array | None
    info: dict = eqx.field(static=True, default_factory=dict)

    @property
    def network(self) -> networks.Network:
        return networks.get(self.config.network)

    @property
    def gated_layer(self) -> str:
        """The layer whose filters the gate opens and closes (conv3 of the CNN, conv5 of AlexNet)."""
        return self.network.gated_layer

    def class_specific_filters(self) -> tuple[str, np.ndarray] | None:
        """(the gated layer, the gate G (K, C)): how much filter k may speak for class c; None without gates."""
        return None if self.gate is None else (self.gated_layer, np.asarray(self.gate))

    def class_activation_maps(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Grad-CAM (N, h, w) of images x (N, H, W, C) in [0, 1] for classes y (N,) on the gated
        layer, gate off (``networks.grad_cam``; CAM itself for the small CNN). Jittable."""
        return networks.grad_cam(self.network, self.weights, self.network.prepare(x, self.config), y)


def fit(config, dataset, *, key: jax.Array, mesh=None, checkpoint: str | os.PathLike | None = None,
        system: str | None = None) -> CSGParams:
    """The network of ``config`` trained on ``dataset``'s train split (CSG, or the standard way with
    gates=false); ``checkpoint``: resumed from and rewritten after every epoch (``training.train``)."""
    config = config.validated()
    start = time.perf_counter()
    weights, gate, history = training.train(config, dataset, key=key, mesh=mesh, checkpoint=checkpoint)
    info = {"history": history, "train_seconds": time.perf_counter() - start}
    name = system or f"{config.network}_csg"
    return CSGParams(config, name, tuple(dataset.class_names), weights, gate, info)


def features(params: CSGParams, x: jax.Array) -> dict[str, jax.Array]:
    """Every layer of images x (N, H, W, C) in [0, 1], gate off. cnn: conv1..conv3 (N, h, w, c),
    pool (N, K), logits (N, C); alexnet: conv1..conv5, fc6..fc8 as the ``alexnet`` system."""
    return params.network.activations(params.weights, x, params.config)


def scores(params: CSGParams, x: jax.Array) -> jax.Array:
    """Class scores (N, C) of images x (N, H, W, C) in [0, 1], gate off (how the network is used)."""
    return params.network.logits(params.weights, params.network.prepare(x, params.config), None, False, None)


def save(params: CSGParams, path: str | os.PathLike) -> None:
    """An .npz model file: the layers' arrays, the gate, the config, classes and training history."""
    arrays = {f"{layer}.{part}": np.asarray(v) for layer, parts in params.weights.items() for part, v in parts.items()}
    if params.gate is not None:
        arrays["gate"] = np.asarray(params.gate)
    meta = {"format": "glassjax.CSG", "system": params.system, "version": FORMAT_VERSION,
            "network": params.config.network, "config": dataclasses.asdict(params.config),
            "class_names": list(params.class_names), "info": json.loads(json.dumps(params.info, allow_nan=True))}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> CSGParams:
    """Params written by ``save``."""
    meta, arrays = modelfile.read(path)
    if meta.get("format") != "glassjax.CSG" or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: expected a glassjax.CSG model of version {FORMAT_VERSION}, "
                         f"got {meta.get('format')} {meta.get('version')}")
    try:
        config = _CONFIGS[meta["network"]](**meta["config"]).validated()
        names = tuple(meta["class_names"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: its meta entry is not a CSG network's ({type(err).__name__}: {err})") from None
    gate = arrays.pop("gate", None)
    weights: dict[str, dict[str, jax.Array]] = {}
    for key, value in arrays.items():
        layer, _, part = key.partition(".")
        weights.setdefault(layer, {})[part] = jnp.asarray(value)
    network = networks.get(config.network)
    network.check(weights)
    if gate is not None:
        gates.check(gate, f"{path}: gate", channels=networks.channels(network, weights), num_classes=len(names))
        gate = jnp.asarray(gate)
    return CSGParams(config, meta["system"], names, weights, gate, dict(meta.get("info") or {}))


def _settings(params: CSGParams) -> dict:
    history = params.info.get("history") or []
    last = history[-1] if history else {}
    out = dict(dataclasses.asdict(params.config), network=params.config.network, gated_layer=params.gated_layer,
               channels=networks.channels(params.network, params.weights),
               csg_epochs=[e + 1 for e in params.config.csg_epochs()],
               train_seconds=params.info.get("train_seconds"))
    if params.gate is not None:
        out["gate_density"] = gates.density(params.gate)
        out["accuracy_gate_true"] = last.get("accuracy_gate_true")
    out["accuracy_gate_off"] = last.get("accuracy_gate_off")
    return out


def _system(name: str, title: str, description: str, config, representation: str) -> System:
    return System(
        name=name, title=title, description=description, config=config,
        fit=lambda config, dataset, *, key, mesh=None: fit(config, dataset, key=key, mesh=mesh, system=name),
        features=features, scores=scores, save=save, load=load, representation=lambda params: representation,
        class_names=lambda params: params.class_names, settings=_settings,
    )


SYSTEMS = (
    _system("cnn_csg", "small CNN with class-specific gates",
            "a small CNN (3 convs, global average pool, linear head) trained with class-specific gates on its last "
            "conv (Liang et al. 2020); gates=false trains it the standard way", CNNCSGConfig(), "pool"),
    _system("alexnet_csg", "AlexNet with class-specific gates",
            "AlexNet (torchvision layout) trained from scratch with class-specific gates on conv5 "
            "(Liang et al. 2020); gates=false trains it the standard way", AlexNetCSGConfig(), "fc7"),
)
