"""The SegNet-style autoencoder of the probe (Flax Linen), in two modules so the encoder can be frozen.

Encoder: per stage ``convs`` x (3x3 conv -> batch norm -> ReLU), then 2x2 max pooling that keeps
its argmax. Decoder: the mirror, per stage max-unpooling with the encoder's argmax, then
``convs`` x (3x3 conv -> batch norm -> ReLU), the last conv of a stage narrowing to the next
stage's width; a final 1x1 conv to the image's channels, no output activation.

  Encoder(widths, convs)(x (N, H, W, C), train)          -> Code
  Decoder(widths, convs, channels)(code, train)          -> reconstruction (N, H, W, C)

Sides that do not divide by 2 are handled by the pooling pair (``unpool``): 28 -> 14 -> 7 -> 4.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax

from glassjax.probes.input_signal.unpool import max_pool_with_argmax, max_unpool

__all__ = ["AutoencoderConfig", "Code", "Encoder", "Decoder"]


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """The autoencoder and its two trainings.

    widths            channels of each encoder stage (the decoder mirrors them)
    convs             3x3 conv + batch norm + ReLU blocks per stage
    pretrain_epochs   epochs of reconstruction (MSE) training, all weights
    finetune_epochs   epochs of decoder-only training on a frozen classifier's cross-entropy
    batch_size        images per Adam step
    learning_rate     Adam's step size (both trainings)
    """

    widths: tuple[int, ...] = (16, 32)
    convs: int = 2
    pretrain_epochs: int = 6
    finetune_epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 2e-3

    def validated(self) -> "AutoencoderConfig":
        """The config with its values checked (one-line ValueError naming the field otherwise)."""
        widths = tuple(self.widths) if isinstance(self.widths, (tuple, list)) else None
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"input_signal: expected widths a non-empty tuple of ints >= 1, got {self.widths!r}")
        for name, low in (("convs", 1), ("pretrain_epochs", 0), ("finetune_epochs", 0), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"input_signal: expected {name} an int >= {low}, got {value!r}")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < float("inf"):
            raise ValueError(f"input_signal: expected learning_rate a finite float > 0, got {rate!r}")
        return dataclasses.replace(self, widths=widths)


class Code(NamedTuple):
    """What the encoder hands the decoder: the deepest maps (N, h, w, widths[-1]) and, per stage,
    the argmax (N, h_s, w_s, widths[s]) int8 of its pooling."""

    maps: jax.Array
    argmax: tuple[jax.Array, ...]


def _block(x: jax.Array, width: int, train: bool, name: str) -> jax.Array:
    x = nn.Conv(width, (3, 3), padding="SAME", name=f"{name}_conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"{name}_bn")(x)
    return nn.relu(x)


class Encoder(nn.Module):
    """x (N, H, W, C) -> Code; the sizes the decoder unpools to are read off the argmax shapes."""

    widths: tuple[int, ...]
    convs: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> Code:
        argmax = []
        for s, width in enumerate(self.widths):
            for b in range(self.convs):
                x = _block(x, width, train, f"enc{s + 1}_{b + 1}")
            x, where = max_pool_with_argmax(x, 2)
            argmax.append(where)
        return Code(x, tuple(argmax))


class Decoder(nn.Module):
    """Code -> reconstruction (N, H, W, channels); ``size`` (H, W) the image side before the first pooling."""

    widths: tuple[int, ...]
    convs: int
    channels: int
    size: tuple[int, int]

    @nn.compact
    def __call__(self, code: Code, train: bool) -> jax.Array:
        # The side each stage unpools to: the image's, then each pooling's output (ceil of half).
        sides = [tuple(self.size)]
        for _ in self.widths[:-1]:
            sides.append(tuple(-(-s // 2) for s in sides[-1]))
        x = code.maps
        for s in reversed(range(len(self.widths))):
            x = max_unpool(x, code.argmax[s], sides[s], 2)
            narrow = self.widths[s - 1] if s > 0 else self.widths[0]
            for b in range(self.convs):
                x = _block(x, narrow if b == self.convs - 1 else self.widths[s], train, f"dec{s + 1}_{b + 1}")
        return nn.Conv(self.channels, (1, 1), name="out")(x)
