"""ExplainerConfig: every choice of the explainer network, validated."""
from __future__ import annotations

import dataclasses

from glassjax.core import arrays

__all__ = ["ExplainerConfig"]


@dataclasses.dataclass(frozen=True)
class ExplainerConfig:
    """How the explainer is built and trained.

    layer                the performer's layer l the encoder reads (a spatial (N, h, w, c) layer)
    targets              the performer's layers the decoder reconstructs, in depth order; None: the
                         layer after l and the layer the performer's classifier reads, when deeper
    filters              filters of each encoder track (interpretable and ordinary alike)
    interpretable_layers conv layers of the interpretable track, each 3x3, ReLU, mask, filter loss
    hidden               width of the decoder's hidden dense layer before each vector target
    epochs               passes over the training maps (Adam)
    batch_size           maps per step; Z_T of the filter loss sums over the batch
    learning_rate        Adam learning rate
    eta                  weight of -log p, which pushes the interpretable track's share p up
    filter_weight        lambda_f: the loss adds lambda_f / filters * sum_f Loss_f
    flip                 also train on the performer's maps of the mirrored training images
    """

    layer: str = "conv4"
    targets: tuple[str, ...] | None = None
    filters: int = 64
    interpretable_layers: int = 2
    hidden: int = 256
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-3
    eta: float = 0.1
    filter_weight: float = 1.0
    flip: bool = True

    def validated(self) -> ExplainerConfig:
        """The config with its values checked (TypeError / ValueError naming the field otherwise)."""
        where = "ExplainerConfig"
        if not isinstance(self.layer, str) or not self.layer:
            raise TypeError(f"{where}: expected layer a layer name, got {self.layer!r}")
        if self.targets is not None and (not isinstance(self.targets, tuple) or not self.targets
                                         or not all(isinstance(t, str) and t for t in self.targets)):
            raise TypeError(f"{where}: expected targets None or a non-empty tuple of layer names, got {self.targets!r}")
        for name in ("filters", "interpretable_layers", "hidden", "epochs"):
            arrays.as_int(getattr(self, name), where, name)
        arrays.as_int(self.batch_size, where, "batch_size", minimum=2)  # Z_T needs two maps at least
        arrays.as_float(self.learning_rate, where, "learning_rate", positive=True)
        arrays.as_float(self.eta, where, "eta", positive=False)
        arrays.as_float(self.filter_weight, where, "filter_weight", positive=False)
        arrays.as_bool(self.flip, where, "flip")
        return self
