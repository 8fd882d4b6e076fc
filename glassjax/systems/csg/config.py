"""The two CSG systems' configurations: the network's own settings and the gate schedule."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

__all__ = ["CNNCSGConfig", "AlexNetCSGConfig", "is_csg_epoch"]


def is_csg_epoch(epoch: int, config) -> bool:
    """Whether 0-based ``epoch`` runs the CSG path: gates on, past the warm-up, and
    ``epoch % gate_period >= gate_phase`` (the reference: period 3, phase 2, warm-up 10)."""
    return bool(config.gates) and epoch >= config.warmup_epochs and epoch % config.gate_period >= config.gate_phase


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclasses.dataclass(frozen=True)
class _Schedule:
    """The fields both CSG systems share (documented on each system's config)."""

    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    standard_learning_rate: float | None = None
    gates: bool = True
    gate_density: float = 0.2
    gate_sparsity: float = 0.03
    gate_learning_rate: float = 1e-2
    warmup_epochs: int = 10
    gate_period: int = 3
    gate_phase: int = 2

    def _check_schedule(self, who: str) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 0:
            raise ValueError(f"{who}: expected epochs an int >= 0, got {self.epochs!r}")
        for name in ("batch_size", "gate_period"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{who}: expected {name} a positive int, got {getattr(self, name)!r}")
        for name in ("warmup_epochs", "gate_phase"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{who}: expected {name} an int >= 0, got {value!r}")
        if self.gate_phase >= self.gate_period:
            raise ValueError(f"{who}: expected gate_phase < gate_period ({self.gate_period}), got {self.gate_phase} "
                             "(no epoch would run the CSG path)")
        if not isinstance(self.gates, bool):
            raise ValueError(f"{who}: expected gates true or false, got {self.gates!r}")
        for name in ("learning_rate", "gate_learning_rate", "standard_learning_rate"):
            value = getattr(self, name)
            if value is None and name == "standard_learning_rate":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{who}: expected {name} > 0, got {value!r}")
        if not isinstance(self.gate_density, (int, float)) or not 0 < self.gate_density <= 1:
            raise ValueError(f"{who}: expected gate_density in (0, 1], got {self.gate_density!r}")
        if not isinstance(self.gate_sparsity, (int, float)) or not self.gate_sparsity >= 0:
            raise ValueError(f"{who}: expected gate_sparsity >= 0, got {self.gate_sparsity!r}")

    def csg_epochs(self) -> tuple[int, ...]:
        """The 0-based epochs that run the CSG path."""
        return tuple(e for e in range(self.epochs) if is_csg_epoch(e, self))


@dataclasses.dataclass(frozen=True)
class CNNCSGConfig(_Schedule):
    """The small CNN (three 3x3 convolutions, global average pool, linear head) with class-specific gates.

    channels            filters K of the gated layer conv3 (conv1 has K/2); >= 2
    epochs              training epochs, standard and CSG together
    batch_size          images per training step
    learning_rate       AdamW learning rate of the network: warm-up, CSG path, and standard path unless
                        standard_learning_rate is set
    standard_learning_rate  AdamW learning rate of the standard epochs after the warm-up (None: learning_rate)
    gates               train with class-specific gates; false trains the same network the standard way
    gate_density        target density d of the gate: sparsity loss relu(||G||_1 - d K C)
    gate_sparsity       weight lambda of the sparsity loss on the CSG path (the reference's 1e-3 for
                        K = 2048 filters, times 2048 / K: the loss's gradient per gate entry shrinks like 1 / K)
    gate_learning_rate  Adam learning rate of the gate (CSG path only)
    warmup_epochs       standard epochs before the first CSG epoch
    gate_period         the schedule's period: epoch e runs the CSG path when e % period >= phase
    gate_phase          see gate_period (period 3, phase 2: one CSG epoch in three)
    """

    network: ClassVar[str] = "cnn"
    channels: int = 64

    def validated(self) -> "CNNCSGConfig":
        """The config with its values checked (ValueError naming the field otherwise)."""
        if not isinstance(self.channels, int) or isinstance(self.channels, bool) or self.channels < 2:
            raise ValueError(f"cnn_csg: expected channels an int >= 2, got {self.channels!r}")
        self._check_schedule("cnn_csg")
        return self


@dataclasses.dataclass(frozen=True)
class AlexNetCSGConfig(_Schedule):
    """AlexNet (torchvision layout) with class-specific gates on conv5, trained from scratch.

    size                side images are resized to (>= 64)
    width               multiplier of torchvision's channel and fc widths
    epochs              training epochs, standard and CSG together
    batch_size          images per training step
    learning_rate       AdamW learning rate of the network: warm-up, CSG path, and standard path unless
                        standard_learning_rate is set
    standard_learning_rate  AdamW learning rate of the standard epochs after the warm-up (None: learning_rate)
    gates               train with class-specific gates; false trains the same network the standard way
    gate_density        target density d of the gate: sparsity loss relu(||G||_1 - d K C)
    gate_sparsity       weight lambda of the sparsity loss on the CSG path (the reference's 1e-3 for
                        K = 2048 filters, times 2048 / K: the loss's gradient per gate entry shrinks like 1 / K)
    gate_learning_rate  Adam learning rate of the gate (CSG path only; higher than the CNN's because a
                        small data set gives few steps: 5 an epoch on lfw_faces)
    warmup_epochs       standard epochs before the first CSG epoch
    gate_period         the schedule's period: epoch e runs the CSG path when e % period >= phase
    gate_phase          see gate_period (period 3, phase 2: one CSG epoch in three)
    """

    network: ClassVar[str] = "alexnet"
    size: int = 64
    width: float = 0.5
    learning_rate: float = 3e-4
    gate_sparsity: float = 0.015
    gate_learning_rate: float = 0.05
    warmup_epochs: int = 15

    def validated(self) -> "AlexNetCSGConfig":
        """The config with its values checked (ValueError naming the field otherwise)."""
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 64:
            raise ValueError(f"alexnet_csg: expected size an int >= 64, got {self.size!r}")
        if not isinstance(self.width, (int, float)) or isinstance(self.width, bool) or not self.width > 0:
            raise ValueError(f"alexnet_csg: expected width > 0, got {self.width!r}")
        self._check_schedule("alexnet_csg")
        return self
