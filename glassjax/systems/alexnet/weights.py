"""torchvision-format AlexNet weights in and out: ``.safetensors``, ``.npz``, and ``.pth`` (read only).

A torchvision state dict names conv layers ``features.{0,3,6,8,10}`` (weights OIHW) and
dense layers ``classifier.{1,4,6}`` (weights (out, in)). glassjax params hold conv kernels
HWIO and dense kernels (in, out), and fc6's input rows in NHWC-flatten order (6, 6, C)
instead of torch's (C, 6, 6); both conversions are exact permutations.

``.pth`` files are read only through ``torch.load(weights_only=True)``, and only when
torch is installed: never an unrestricted unpickler.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import jax.numpy as jnp
import numpy as np

from glassjax.systems.alexnet import model as alexnet
from glassjax.core.files import atomic_write

__all__ = ["TORCH_NAMES", "load_torchvision", "save_torchvision", "from_state_dict", "to_state_dict", "read_state_dict",
           "check_file"]

# glassjax layer -> torchvision module prefix.
TORCH_NAMES = {
    "conv1": "features.0",
    "conv2": "features.3",
    "conv3": "features.6",
    "conv4": "features.8",
    "conv5": "features.10",
    "fc6": "classifier.1",
    "fc7": "classifier.4",
    "fc8": "classifier.6",
}
_EXPECTED_KEYS = tuple(f"{prefix}.{part}" for prefix in TORCH_NAMES.values() for part in ("weight", "bias"))
_POOL = alexnet.POOL_SIZE


def _fc6_torch_to_nhwc(weight: np.ndarray, channels: int) -> np.ndarray:
    """(out, C*6*6) torch weight -> (6*6*C, out) kernel whose rows follow the NHWC flatten."""
    out = weight.shape[0]
    return weight.reshape(out, channels, _POOL, _POOL).transpose(2, 3, 1, 0).reshape(_POOL * _POOL * channels, out)


def _fc6_nhwc_to_torch(kernel: np.ndarray, channels: int) -> np.ndarray:
    out = kernel.shape[1]
    return kernel.reshape(_POOL, _POOL, channels, out).transpose(3, 2, 0, 1).reshape(out, channels * _POOL * _POOL)


def _check_keys(state: Mapping[str, np.ndarray], where: str) -> None:
    missing = [k for k in _EXPECTED_KEYS if k not in state]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r} ({len(missing)} missing); expected torchvision AlexNet keys")
    unexpected = sorted(set(state) - set(_EXPECTED_KEYS))
    if unexpected:
        raise ValueError(f"{where}: unexpected keys {unexpected[:5]}; expected only torchvision AlexNet keys")


def from_state_dict(state: Mapping[str, np.ndarray], *, where: str = "from_state_dict") -> dict:
    """torchvision AlexNet state dict {key: array} -> glassjax params (float32), keys, shapes and values
    (finite) checked."""
    return {name: {part: jnp.asarray(v) for part, v in parts.items()} for name, parts in _converted(state, where).items()}


# (resolved path, size, mtime_ns) of files check_file has read whole and found good.
_CHECKED: set[tuple[str, int, int]] = set()


def check_file(path: str | os.PathLike) -> None:
    """Read the weights file at ``path`` whole and check it as ``load_torchvision`` would (format,
    keys, shapes, finite values), without putting it on a device: the error a bad file gives,
    before any work starts. A file found good is not read again while unchanged."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"load_torchvision: no such file {path}")
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key in _CHECKED:
        return
    _converted(read_state_dict(path), f"load_torchvision({Path(path).name})")
    _CHECKED.add(key)


def _converted(state: Mapping[str, np.ndarray], where: str) -> dict:
    """The params of ``from_state_dict`` as numpy arrays."""
    _check_keys(state, where)
    arrays = {}
    for key in _EXPECTED_KEYS:
        value = np.asarray(state[key])
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{where}: {key!r}: expected floating-point values, got dtype {value.dtype}")
        value = value.astype(np.float32)
        finite = np.isfinite(value)
        if not finite.all():
            nan = int(np.isnan(value).sum())
            raise ValueError(f"{where}: {key!r}: expected finite values, got {nan} NaN and {value.size - int(finite.sum()) - nan} inf")
        arrays[key] = value
    params = {}
    channels = 3
    for (name, prefix), (k, *_rest) in zip(TORCH_NAMES.items(), alexnet.CONV_GEOMETRY):
        weight, bias = arrays[prefix + ".weight"], arrays[prefix + ".bias"]
        if weight.ndim != 4 or weight.shape[1:] != (channels, k, k):
            raise ValueError(f"{where}: {prefix}.weight: expected shape (C, {channels}, {k}, {k}), got {weight.shape}")
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"{where}: {prefix}.bias: expected shape {weight.shape[:1]}, got {bias.shape}")
        params[name] = {"kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)), "bias": bias}
        channels = weight.shape[0]
    features = channels * _POOL * _POOL
    for name in alexnet.DENSE_NAMES:
        prefix = TORCH_NAMES[name]
        weight, bias = arrays[prefix + ".weight"], arrays[prefix + ".bias"]
        if weight.ndim != 2 or weight.shape[1] != features:
            raise ValueError(f"{where}: {prefix}.weight: expected shape (F, {features}), got {weight.shape}")
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"{where}: {prefix}.bias: expected shape {weight.shape[:1]}, got {bias.shape}")
        kernel = _fc6_torch_to_nhwc(weight, channels) if name == "fc6" else weight.T
        params[name] = {"kernel": np.ascontiguousarray(kernel), "bias": bias}
        features = weight.shape[0]
    return params


def to_state_dict(params: Mapping) -> dict[str, np.ndarray]:
    """glassjax params -> torchvision AlexNet state dict of float32 numpy arrays."""
    alexnet.model_for(params)  # validates names and shapes
    state = {}
    for name, prefix in TORCH_NAMES.items():
        kernel = np.asarray(params[name]["kernel"], dtype=np.float32)
        if name in alexnet.CONV_NAMES:
            weight = kernel.transpose(3, 2, 0, 1)
        elif name == "fc6":
            weight = _fc6_nhwc_to_torch(kernel, kernel.shape[0] // (_POOL * _POOL))
        else:
            weight = kernel.T
        state[prefix + ".weight"] = np.ascontiguousarray(weight)
        state[prefix + ".bias"] = np.asarray(params[name]["bias"], dtype=np.float32)
    return state


def _read_pth(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as err:
        raise ValueError(
            f"load_torchvision: {path} is a .pth file and torch is not installed; convert it to "
            ".safetensors (safetensors.torch.save_file(torch.load(p, weights_only=True), out)) and load that"
        ) from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad files; report them uniformly
        raise ValueError(f"load_torchvision: cannot read {path} as a torch state dict: {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"load_torchvision: expected {path} to hold a flat state dict of tensors, got {type(state).__name__}")
    return {k: v.detach().float().cpu().numpy() for k, v in state.items()}


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The raw {key: array} of a ``.safetensors``, ``.npz`` or ``.pth`` file; ValueError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_torchvision: no such file {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return dict(load_file(path))
        except Exception as err:  # SafetensorError and friends: a corrupt or truncated file
            raise ValueError(f"load_torchvision: {path} is not a readable safetensors file: {err}") from err
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
            raise ValueError(f"load_torchvision: {path} is not a readable .npz file: {err}") from err
    if suffix in (".pth", ".pt"):
        return _read_pth(path)
    raise ValueError(f"load_torchvision: expected a .safetensors, .npz or .pth file, got {path.name!r}")


def load_torchvision(path: str | os.PathLike) -> dict:
    """Read torchvision AlexNet weights (any num_classes and widths) into glassjax params."""
    return from_state_dict(read_state_dict(path), where=f"load_torchvision({Path(path).name})")


def save_torchvision(params: Mapping, path: str | os.PathLike) -> Path:
    """Write params as a torchvision state dict to ``.safetensors`` or ``.npz``, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".npz"):
        raise ValueError(f"save_torchvision: expected a .safetensors or .npz path, got {path.name!r}")
    state = to_state_dict(params)
    with atomic_write(path) as tmp:
        if suffix == ".safetensors":
            from safetensors.numpy import save_file

            save_file(state, tmp)
        else:
            with open(tmp, "wb") as f:
                np.savez(f, **state)
    return path
