"""Model-file helpers shared by the Saab systems: configs through JSON and back, unchanged."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from glassjax.core import modelfile

__all__ = ["tupled", "jsonable", "config_from_meta", "read"]


def tupled(value: Any) -> Any:
    """JSON lists back to the tuples they were written from, recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(tupled(v) for v in value)
    return value


def jsonable(value: Any) -> Any:
    """Tuples and numpy scalars as JSON lists and numbers, recursively."""
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def config_from_meta(cls: type, fields: Any, path: Any) -> Any:
    """The frozen config ``cls`` rebuilt from its ``dataclasses.asdict`` as stored in a model file."""
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: its meta entry holds no config")
    try:
        return cls(**{k: tupled(v) for k, v in fields.items()})
    except TypeError as err:
        raise ValueError(f"{path}: its config does not fit {cls.__name__} ({err})") from None


def read(path: str | os.PathLike, fmt: str, version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a model file written as ``fmt`` ``version``, else a one-line ValueError."""
    meta, arrays = modelfile.read(path)
    if meta.get("format") != fmt or meta.get("version") != version:
        raise ValueError(f"{path}: expected a {fmt} model of version {version}, got {meta.get('format')} "
                         f"{meta.get('version')}")
    return meta, arrays


def asdict(config: Any) -> dict:
    """A config as JSON-able fields."""
    return {k: jsonable(v) for k, v in dataclasses.asdict(config).items()}
