"""Systems: every model glassjax fits or trains, behind one protocol (``System``), registered by name.

    >>> from glassjax import systems
    >>> systems.names()
    ('glassbox', 'glassbox_both', 'alexnet')
    >>> system = systems.get("glassbox")
    >>> params = system.fit(system.config, dataset, key=jax.random.key(0))

Built-in systems are one line each in ``BUILTIN`` (name -> the module whose ``SYSTEMS`` holds
it), imported the first time they are asked for. ``register`` adds a system at run time (a
user's own, or a test's); the comparison, the report and the commands only ever see the
registry.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from glassjax.systems.protocol import FilterImages, System

__all__ = ["System", "FilterImages", "BUILTIN", "names", "get", "register", "unregister", "load", "save"]

# name -> module defining it in ``SYSTEMS``. Adding a system: one sub-package and one line here.
BUILTIN = {
    "glassbox": "glassjax.systems.glassbox.system",
    "glassbox_both": "glassjax.systems.glassbox.system",
    "alexnet": "glassjax.systems.alexnet.system",
    "cnn_csg": "glassjax.systems.csg.system",
    "alexnet_csg": "glassjax.systems.csg.system",
    "saab_ff": "glassjax.systems.saab.system",
    "pixelhop": "glassjax.systems.pixelhop.system",
    "lenet5": "glassjax.systems.lenet.system",
    "glassbox_deep": "glassjax.systems.glassbox_deep.system",
}

_registered: dict[str, System] = {}


def register(system: System, *, replace: bool = False) -> System:
    """Add ``system`` to the registry under its name (ValueError if taken, unless ``replace``)."""
    if not isinstance(system, System):
        raise TypeError(f"systems.register: expected a glassjax.systems.System, got {type(system).__name__}")
    if not replace and (system.name in _registered or system.name in BUILTIN):
        raise ValueError(f"systems.register: a system named {system.name!r} is already registered")
    _registered[system.name] = system
    return system


def unregister(name: str) -> None:
    """Remove a system added by ``register``."""
    _registered.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered system's name: the built-in ones first, then those added by ``register``."""
    return tuple(BUILTIN) + tuple(n for n in _registered if n not in BUILTIN)


def get(name: str) -> System:
    """The system registered as ``name``."""
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN:
        raise ValueError(f"unknown system {name!r}; registered: {', '.join(names())}")
    module = importlib.import_module(BUILTIN[name])
    for system in module.SYSTEMS:
        _registered.setdefault(system.name, system)
    return _registered[name]


def save(system: System, params, path: str | Path) -> None:
    """``system.save(params, path)``: the file records the system's name, so ``load`` needs only the path."""
    system.save(params, path)


def load(path: str | Path) -> tuple[System, object]:
    """(system, params) read from a model file written by any registered system's ``save``."""
    from glassjax.core import modelfile

    name = modelfile.read_system_name(path)
    return get(name), get(name).load(path)
