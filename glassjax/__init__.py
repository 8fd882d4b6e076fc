"""glassjax: glass-box CNNs in JAX, measured side by side against AlexNet.

The three transparent layers (``glassbox``): a representation built from group actions and
class information (``groups``, ``filters``, ``representation``), PCA (``reduction``), and a
classifier (``classifiers``). The baseline is AlexNet in Flax (``alexnet``, ``weights``), and
the instruments that compare them are in ``metrics`` and ``testing``.
"""
from glassjax import classifiers, data, filters, groups, metrics, reduction, representation, testing
from glassjax.glassbox import GlassBox, GlassBoxConfig, GlassBoxParams, apply, fit, predict, represent, transform

__version__ = "0.1.0"

__all__ = [
    "GlassBox", "GlassBoxConfig", "GlassBoxParams", "fit", "apply", "predict", "represent", "transform",
    "classifiers", "data", "filters", "groups", "metrics", "reduction", "representation", "testing",
]
