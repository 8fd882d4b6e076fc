"""The system protocol: what every model glassjax fits or trains provides.

A system is a name, a frozen config dataclass, and pure functions:

  fit(config, dataset, *, key, mesh=None) -> params
                                              params a pytree; dataset a ``glassjax.data.Dataset``
                                              (its train split; ``streams`` systems also take a
                                              batch source as ``dataset.x_train``); mesh: the
                                              devices a data-parallel fit may shard over (None: all)
  features(params, x) -> {layer: activation}  x (N, H, W, C) in [0, 1]; layers in depth order,
                                              each (N, h, w, c) spatial or (N, d)
  scores(params, x) -> (N, classes)           class scores, jittable
  save(params, path) / load(path) -> params   one file, round trip bit-exact

and what the comparison and the report read off it: ``representation(params)`` names the
layer its classifier reads (the one drawn in the scatter figure and set against other
systems' in the findings), ``settings(params)`` what a report shows of it,
``filter_images(params, class_names)`` its filters as labelled images where it has any, and
``class_names(params)`` the classes its scores stand for. A system that resizes or normalises
the images inside ``features`` says so with ``input_split(params)`` (an ``InputSplit``): the Lie
derivative rotates the input its network sees, not the data set's image.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = ["System", "FilterImages", "InputSplit"]

# One row of the filters figure: (title, [(image (k, k, C) in [0, 1], class name), ...]).
FilterImages = Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]]


class InputSplit(NamedTuple):
    """A system's forward pass split at the network's own input (what ``System.input_split`` returns):
    features(params, x) == layers(prepare(x)) and scores(params, x) == scores(prepare(x)).

    prepare  the data set's images (N, H, W, C) in [0, 1] -> the network's input (N, H', W', C')
             (AlexNet: grey to RGB, resize, ImageNet normalisation)
    layers   network input -> {layer: activation}, in depth order
    scores   network input -> class scores (N, classes)
    """

    prepare: Callable[[Any], Any]
    layers: Callable[[Any], Mapping[str, Any]]
    scores: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class System:
    """A registered model: its name, one-line description, default config and pure functions."""

    name: str
    description: str
    title: str
    config: Any
    fit: Callable[..., Any]
    features: Callable[[Any, Any], Mapping[str, Any]]
    scores: Callable[[Any, Any], Any]
    save: Callable[[Any, Any], None]
    load: Callable[[Any], Any]
    representation: Callable[[Any], str]
    class_names: Callable[[Any], tuple[str, ...]]
    settings: Callable[[Any], dict] = lambda params: {}
    filter_images: Callable[[Any, Sequence[str]], FilterImages] | None = None
    streams: bool = False
    # fit runs in every process of a jax.distributed run, each process passing only its share of the
    # train split (``data.sharding``), and returns the same params in every process.
    processes: bool = False
    # params -> InputSplit, for a system that transforms the images before its first layer; the
    # Lie derivative rotates the network's own input. None: that input is the image itself.
    input_split: Callable[[Any], InputSplit] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"System: expected a name that is a Python identifier, got {self.name!r}")
        if not dataclasses.is_dataclass(self.config) or not self.config.__dataclass_params__.frozen:
            raise TypeError(f"System {self.name}: expected config an instance of a frozen dataclass, "
                            f"got {type(self.config).__name__}")
        if "\n" in self.description or not self.description:
            raise ValueError(f"System {self.name}: expected a one-line description, got {self.description!r}")

    def configure(self, **overrides) -> Any:
        """The default config with ``overrides`` (field -> value) replaced; unknown fields are a ValueError."""
        fields = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"system {self.name}: its config has no field {', '.join(unknown)}; "
                             f"its fields are {', '.join(sorted(fields))}")
        return dataclasses.replace(self.config, **overrides)
