"""AlexNet as a registered system: trained from scratch on the data set, or read from
torchvision-format ``weights``; its layers conv1..fc8 as features."""
from __future__ import annotations

import dataclasses
import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import modelfile
from glassjax.systems.alexnet import model, training, weights
from glassjax.systems.protocol import InputSplit, System

__all__ = ["AlexNetConfig", "AlexNetParams", "SYSTEMS", "fit", "features", "scores"]

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class AlexNetConfig:
    """How the AlexNet baseline is made.

    size           side its input is resized to (>= 63; 224 for ImageNet weights)
    weights        a torchvision-format state dict (.safetensors, .npz, .pth) to read instead of training
    epochs         training epochs (AdamW, cross-entropy)
    width          multiplier of torchvision's channel and fc widths
    augment        none, or d4: a random D4 element per image per step
    batch_size     images per training step
    learning_rate  AdamW learning rate
    """

    size: int = 64
    weights: str | None = None
    epochs: int = 10
    width: float = 0.5
    augment: str = "none"
    batch_size: int = 32
    learning_rate: float = 3e-4

    def validated(self) -> "AlexNetConfig":
        """The config with its values checked (ValueError naming the field otherwise)."""
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < model.MIN_SIZE:
            raise ValueError(f"AlexNet: expected size an int >= {model.MIN_SIZE}, got {self.size!r}")
        if self.weights is not None and not os.path.isfile(self.weights):
            raise FileNotFoundError(f"AlexNet: no weights file at {self.weights}")
        if self.weights is not None:
            weights.check_file(self.weights)  # a bad file is reported before any work, not after
        if self.weights is None:
            training.check_train_args(self.size, self.epochs, self.batch_size, self.learning_rate, self.augment,
                                      self.width)
        return self


class AlexNetParams(eqx.Module):
    """AlexNet's weights (a dict of layers, see ``glassjax.systems.alexnet.model``), its config and classes."""

    config: AlexNetConfig = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    weights: dict
    info: dict = eqx.field(static=True, default_factory=dict)


def fit(config: AlexNetConfig, dataset, *, key: jax.Array, mesh=None) -> AlexNetParams:
    """AlexNet read from ``config.weights``, else trained from scratch on ``dataset``'s train split."""
    config = config.validated()
    if config.weights is not None:
        params = weights.load_torchvision(config.weights)
        info = {"source": "weights", "weights": str(config.weights)}
    else:
        params, history = training.train(dataset, size=config.size, epochs=config.epochs, batch_size=config.batch_size,
                                         learning_rate=config.learning_rate, augment=config.augment, key=key,
                                         width=config.width, mesh=mesh)
        info = {"source": "trained", "final_loss": history[-1]["loss"] if history else None}
    outputs = int(np.shape(params["fc8"]["bias"])[0])
    names = tuple(dataset.class_names) if outputs == len(dataset.class_names) else tuple(map(str, range(outputs)))
    # Replicated over a training mesh, every later call would run on all its devices.
    params = jax.device_put(params, jax.devices()[0])
    return AlexNetParams(config, names, params, info)


def features(params: AlexNetParams, x: jax.Array) -> dict[str, jax.Array]:
    """conv1..conv5 (N, h, w, c) and fc6..fc8 (N, d) of images x (N, H, W, 1 or 3) in [0, 1]."""
    return model.activations(params.weights, model.preprocess(x, params.config.size))


def scores(params: AlexNetParams, x: jax.Array) -> jax.Array:
    """fc8's logits (N, outputs) of images x (N, H, W, 1 or 3) in [0, 1]."""
    return model.apply(params.weights, model.preprocess(x, params.config.size))


def input_split(params: AlexNetParams) -> InputSplit:
    """``features`` and ``scores`` split at the network's own input: the preprocessed (N, size, size, 3)."""
    return InputSplit(prepare=functools.partial(model.preprocess, size=params.config.size),
                      layers=functools.partial(model.activations, params.weights),
                      scores=functools.partial(model.apply, params.weights))


def save(params: AlexNetParams, path: str | os.PathLike) -> None:
    """An .npz model file: the layers' arrays, the config and the class names."""
    arrays = {f"{layer}.{part}": np.asarray(v) for layer, parts in params.weights.items() for part, v in parts.items()}
    meta = {"format": "glassjax.AlexNet", "system": "alexnet", "version": FORMAT_VERSION,
            "config": dataclasses.asdict(params.config), "class_names": list(params.class_names), "info": params.info}
    modelfile.write(path, meta, arrays)


def load(path: str | os.PathLike) -> AlexNetParams:
    """Params written by ``save``."""
    meta, arrays = modelfile.read(path, format="glassjax.AlexNet", version=FORMAT_VERSION)
    layers: dict[str, dict[str, jax.Array]] = {}
    for key, value in arrays.items():
        layer, _, part = key.partition(".")
        layers.setdefault(layer, {})[part] = jnp.asarray(value)
    model.model_for(layers)  # names and shapes fit together
    try:
        config = AlexNetConfig(**meta["config"])
        names = tuple(meta["class_names"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: its meta entry is not an AlexNet's ({type(err).__name__}: {err})") from None
    outputs = int(np.shape(layers["fc8"]["bias"])[0])
    if len(names) != outputs:
        raise ValueError(f"{path}: expected one class name per output of fc8 ({outputs}), got {len(names)} class names")
    if not isinstance(config.size, int) or isinstance(config.size, bool) or config.size < model.MIN_SIZE:
        raise ValueError(f"{path}: expected its config's size an int >= {model.MIN_SIZE}, got {config.size!r}")
    return AlexNetParams(config, names, layers, dict(meta.get("info") or {}))


def _settings(params: AlexNetParams) -> dict:
    widths = [int(np.shape(params.weights[name]["bias"])[0]) for name in model.LAYER_NAMES]
    return dict(dataclasses.asdict(params.config), widths=widths, **params.info)


SYSTEMS = (
    System(
        name="alexnet", title="AlexNet", config=AlexNetConfig(),
        description="AlexNet (torchvision layout, Flax), trained from scratch with AdamW or read from "
                    "torchvision weights; the paper's baseline",
        fit=fit, features=features, scores=scores, save=save, load=load,
        representation=lambda params: "fc7", class_names=lambda params: params.class_names, settings=_settings,
        input_split=input_split,
    ),
)
