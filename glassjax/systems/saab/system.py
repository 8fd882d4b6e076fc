"""The FF-CNN as the registered system ``saab_ff``: Saab stages and least-squares fc layers, no back-propagation."""
from __future__ import annotations

import os
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from glassjax.core import modelfile
from glassjax.systems.protocol import System
from glassjax.systems.saab import ffcnn, files
from glassjax.systems.saab import transform as st

__all__ = ["SYSTEMS", "save", "load", "kernel_images"]

FORMAT = "glassjax.SaabFF"
FORMAT_VERSION = 1


def save(params: ffcnn.FFCNNParams, path: str | os.PathLike) -> None:
    """An .npz model file: each stage's Saab arrays, the fc input's standardisation, the fc weights."""
    arrays = {f"stage{i}.{name}": np.asarray(v) for i, s in enumerate(params.stages) for name, v in s._asdict().items()}
    arrays.update({"loc": np.asarray(params.loc), "inv_scale": np.asarray(params.inv_scale)})
    arrays.update({f"fc{j}": np.asarray(w) for j, w in enumerate(params.fc)})
    arrays["kmeans_purity"] = np.asarray(params.kmeans_purity)
    meta = {"format": FORMAT, "system": "saab_ff", "version": FORMAT_VERSION, "config": files.asdict(params.config),
            "class_names": list(params.class_names)}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> ffcnn.FFCNNParams:
    """Params written by ``save``, bit-exact."""
    meta, arrays = files.read(path, FORMAT, FORMAT_VERSION)
    config = files.config_from_meta(ffcnn.FFCNNConfig, meta.get("config"), path)
    try:
        stages = tuple(st.Saab(*(jnp.asarray(arrays[f"stage{i}.{f}"]) for f in st.Saab._fields))
                       for i in range(len(config.ac_kernels)))
        fc = tuple(jnp.asarray(arrays[f"fc{j}"]) for j in range(len(config.clusters) + 1))
        loc, inv_scale = jnp.asarray(arrays["loc"]), jnp.asarray(arrays["inv_scale"])
        purity = jnp.asarray(arrays["kmeans_purity"])
    except KeyError as err:
        raise ValueError(f"{path}: an saab_ff model file without its array {err}") from None
    return ffcnn.FFCNNParams(config, tuple(meta.get("class_names", ())), stages, loc, inv_scale, fc, purity)


def kernel_images(saab: st.Saab, size: int) -> list[tuple[np.ndarray, str]]:
    """Each kernel (k, k, C) scaled to [0, 1] (0.5 is zero), labelled DC / ACi with its energy."""
    kernels = np.asarray(saab.kernels)
    channels = kernels.shape[1] // (size * size)
    out = []
    for i, (kernel, energy) in enumerate(zip(kernels, np.asarray(saab.energy))):
        image = kernel.reshape(size, size, channels)
        scale = float(np.max(np.abs(image))) or 1.0
        out.append((0.5 + 0.5 * image / scale, f"{'DC' if i == 0 else f'AC{i}'} ({100 * energy:.1f}%)"))
    return out


def _filter_images(params: ffcnn.FFCNNParams, class_names: Sequence[str]):
    # Stage 1 only: later stages' kernels have one k x k slice per input channel, not one image.
    return [("stage 1 Saab kernels (share of patch variance)", kernel_images(params.stages[0], params.config.kernel_size))]


def _settings(params: ffcnn.FFCNNParams) -> dict:
    return dict(files.asdict(params.config), channels=[int(s.kernels.shape[0]) for s in params.stages],
                fc_widths=[int(w.shape[1]) for w in params.fc], parameters_used=ffcnn.parameter_count(params),
                energy_kept=[round(float(jnp.sum(s.energy)), 4) for s in params.stages],
                kmeans_purity=[round(float(p), 4) for p in np.asarray(params.kmeans_purity)])


SYSTEMS = (
    System(
        name="saab_ff", title="FF-CNN (Saab)", config=ffcnn.FFCNNConfig(),
        description="Kuo et al.'s feedforward-designed LeNet-5: Saab stages (PCA with a DC kernel and a bias) and "
                    "least-squares fc layers on k-means pseudo-labels; no back-propagation",
        fit=ffcnn.fit, features=ffcnn.features, scores=ffcnn.scores, save=save, load=load,
        representation=lambda params: f"fc{len(params.fc) - 1}", class_names=lambda params: params.class_names,
        settings=_settings, filter_images=_filter_images,
    ),
)
