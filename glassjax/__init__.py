"""glassjax: glass-box CNNs in JAX, measured side by side against AlexNet."""
from glassjax import data, groups

__version__ = "0.1.0"
