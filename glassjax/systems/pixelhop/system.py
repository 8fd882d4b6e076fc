"""PixelHop++ as the registered system ``pixelhop``: channel-wise Saab hops, cross-entropy feature selection,
a classifier."""
from __future__ import annotations

import os
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from glassjax.core import classifiers, modelfile
from glassjax.systems.pixelhop import model
from glassjax.systems.protocol import System
from glassjax.systems.saab import files

__all__ = ["SYSTEMS", "save", "load"]

FORMAT = "glassjax.PixelHop"
FORMAT_VERSION = 1


def save(params: model.PixelHopParams, path: str | os.PathLike) -> None:
    """An .npz model file: each hop's arrays, the selected features, the classifier."""
    arrays = {f"hop{i}.{name}": np.asarray(v) for i, h in enumerate(params.hops) for name, v in h._asdict().items()}
    arrays.update({"selected": np.asarray(params.selected), "selected_entropy": np.asarray(params.selected_entropy)})
    arrays.update({f"classifier.{k}": v for k, v in classifiers.classifier_to_arrays(params.classifier).items()})
    meta = {"format": FORMAT, "system": "pixelhop", "version": FORMAT_VERSION, "config": files.asdict(params.config),
            "class_names": list(params.class_names), "hops": len(params.hops), "candidates": params.candidates}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> model.PixelHopParams:
    """Params written by ``save``, bit-exact."""
    meta, arrays = files.read(path, FORMAT, FORMAT_VERSION)
    config = files.config_from_meta(model.PixelHopConfig, meta.get("config"), path)
    try:
        hops = tuple(model.Hop(*(jnp.asarray(arrays[f"hop{i}.{f}"]) for f in model.Hop._fields))
                     for i in range(int(meta["hops"])))
        selected, entropy = jnp.asarray(arrays["selected"]), jnp.asarray(arrays["selected_entropy"])
    except KeyError as err:
        raise ValueError(f"{path}: a pixelhop model file without its entry {err}") from None
    classifier = classifiers.classifier_from_arrays(
        {k.partition(".")[2]: v for k, v in arrays.items() if k.startswith("classifier.")})
    return model.PixelHopParams(config, tuple(meta.get("class_names", ())), hops, selected, entropy, classifier,
                                int(meta.get("candidates", 0)))


def _filter_images(params: model.PixelHopParams, class_names: Sequence[str]):
    hop = params.hops[0]
    size = params.config.kernel_size
    kernels, energy = np.asarray(hop.kernels), np.asarray(hop.energy)
    images = []
    for i, (kernel, e) in enumerate(zip(kernels, energy)):
        image = kernel.reshape(size, size, -1)
        scale = float(np.max(np.abs(image))) or 1.0
        images.append((0.5 + 0.5 * image / scale, f"{'DC' if int(hop.slot[i]) == 0 else f'AC{int(hop.slot[i])}'} "
                                                   f"({100 * e:.2f}%)"))
    return [("hop 1 Saab kernels (energy)", images)]


def _settings(params: model.PixelHopParams) -> dict:
    return dict(files.asdict(params.config),
                nodes=[{"kept": int(h.kernels.shape[0]), "grow": int(h.grow.shape[0]), "leaf": int(h.leaf.shape[0])}
                       for h in params.hops],
                candidates=params.candidates, selected=int(params.selected.shape[0]),
                saab_parameters=model.saab_parameter_count(params), parameters_used=model.parameter_count(params))


SYSTEMS = (
    System(
        name="pixelhop", title="PixelHop++", config=model.PixelHopConfig(),
        description="Chen et al.'s PixelHop++: channel-wise Saab hops grown by energy (TH1, TH2), leaf features "
                    "ranked by cross-entropy, a classifier; no back-propagation",
        fit=model.fit, features=model.features, scores=model.scores, save=save, load=load,
        representation=lambda params: "selected", class_names=lambda params: params.class_names,
        settings=_settings, filter_images=_filter_images,
    ),
)
