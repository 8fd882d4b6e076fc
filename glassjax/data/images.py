"""Image files and encoded images read with Pillow, by one set of rules.

  scan(opener, name)          an image's size and mode from its header (no pixels decoded)
  channels_for(modes, where)  1 or 3: the channel rule for a whole set
  decode(opener, name, ...)   one image as uint8 (H, W, C), converted and resized by the rules
  check_sizes(...)            one size for the whole set, or the error naming two files
  resize(x, size)             a batch of arrays (B, H, W, C) resized like decoded images

The rules (stated once, in docs/data.md too):
  * Suffixes .png, .jpg, .jpeg, .bmp (any case); other files are ignored.
  * Channels: a set whose images are all grey (Pillow modes 1, L, LA) is read with one
    channel; if any image is in colour (RGB, RGBA, P, PA, CMYK, YCbCr, ...) every image is
    read as RGB, a grey one repeated into three equal channels (Pillow's ``convert("RGB")``).
    Alpha is dropped, not composited. 16-bit and float images (modes I, I;16, F) are refused.
  * Size: every image must have the size of the first unless ``image_size`` (H, W) is given;
    then every image is resized to it with Pillow's bilinear filter (aspect ratio not kept).
Pixels come out as uint8; ``glassjax.data.loader.as_images`` alone turns them into [0, 1].
"""
from __future__ import annotations

import io
import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["SUFFIXES", "GREY_MODES", "is_image_file", "scan", "channels_for", "decode", "check_sizes", "image_size",
           "resize"]

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GREY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa")


def is_image_file(name: str) -> bool:
    """Whether ``name`` has an image suffix this reader takes (not a hidden file)."""
    base = os.path.basename(name)
    return not base.startswith(".") and base.lower().endswith(SUFFIXES)


def _open(opener: Any):
    """A file path, bytes or a binary file object, opened by Pillow (header only)."""
    from PIL import Image

    if isinstance(opener, (bytes, bytearray, memoryview)):
        opener = io.BytesIO(opener)
    return Image.open(opener)


def _one_line(err: Exception) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0]


def scan(opener: Any, name: str, where: str) -> tuple[tuple[int, int], str]:
    """((H, W), Pillow mode) of one image from its header; ValueError naming ``name`` when it is no image."""
    try:
        with _open(opener) as image:
            width, height = image.size
            mode = image.mode
    except Exception as err:  # Pillow raises many types for damaged or foreign files
        raise ValueError(f"{where}: cannot read image {name}: {_one_line(err)}") from None
    if mode not in GREY_MODES + COLOUR_MODES:
        raise ValueError(f"{where}: expected 8-bit grey or colour images, got mode {mode} in {name}")
    return (height, width), mode


def channels_for(modes: Iterable[str]) -> int:
    """1 when every mode is grey (1, L, LA), else 3 (every image read as RGB)."""
    return 1 if all(m in GREY_MODES for m in modes) else 3


def check_sizes(sizes: Sequence[tuple[int, int]], names: Callable[[int], str], where: str,
                size: tuple[int, int] | None) -> tuple[int, int]:
    """The set's image size (H, W): ``size`` when given, else the one size of every image.

    Different sizes without ``size`` raise a ValueError naming the first image and the first
    of another size (``names(i)`` names image i).
    """
    if size is not None:
        return size
    if not len(sizes):
        raise ValueError(f"{where}: expected at least one image, got none")
    first = tuple(sizes[0])
    for i, other in enumerate(sizes):
        if tuple(other) != first:
            raise ValueError(f"{where}: images differ in size: {names(0)} is {first[0]}x{first[1]}, {names(i)} is "
                             f"{other[0]}x{other[1]} (HxW); resize them all with --image-size H[,W] (image_size=)")
    return first


def decode(opener: Any, name: str, where: str, *, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (H, W, channels), converted by the channel rule and resized to ``size``
    (H, W) when it differs; ValueError naming ``name`` for a damaged file."""
    from PIL import Image

    try:
        with _open(opener) as image:
            target = "L" if channels == 1 else "RGB"
            if image.mode != target:
                image = image.convert(target)
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except Exception as err:
        raise ValueError(f"{where}: cannot read image {name}: {_one_line(err)}") from None
    return pixels.reshape(size[0], size[1], channels)


def image_size(value: Any, where: str = "image_size") -> tuple[int, int] | None:
    """``value`` as (H, W): None, an int (square), a pair, or text "H" / "H,W"."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("x", ",").split(",")]
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{where}: expected H or H,W (positive ints), got {value!r}") from None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) not in (1, 2)
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise ValueError(f"{where}: expected H or (H, W) of positive ints, got {value!r}")
    return (int(value[0]), int(value[-1]))


def resize(x: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Images (B, H, W, C), uint8 or float, resized to ``size`` (H, W) channel by channel with
    Pillow's bilinear filter (the filter ``decode`` uses); unchanged when the size already fits."""
    if size is None or tuple(x.shape[1:3]) == tuple(size):
        return x
    from PIL import Image

    dtype = x.dtype
    work = x if dtype == np.uint8 else x.astype(np.float32)
    out = np.empty((x.shape[0], size[0], size[1], x.shape[3]), work.dtype)
    for i in range(x.shape[0]):
        for c in range(x.shape[3]):
            band = Image.fromarray(np.ascontiguousarray(work[i, :, :, c]))  # 2-D uint8 -> L, float32 -> F
            out[i, :, :, c] = np.asarray(band.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    if dtype != np.uint8:
        out = np.clip(out, 0.0, 1.0).astype(dtype)
    return out
