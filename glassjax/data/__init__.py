"""Data: bundled offline sets, TFDS, and batch sources for streaming fits; numpy arrays out.

  loader   ``load(name)`` -> ``Dataset`` (NHWC float32 in [0, 1], int32 labels, seeded split)
  tfds     prepared TensorFlow Datasets sets: the directory lookup, checked opening, reading
  sources  batch sources read once per pass (arrays, TFDS, synthetic)
"""
from glassjax.data import sources, tfds
from glassjax.data.loader import BUNDLED, Dataset, as_images, as_labels, available, load, select_classes, stratified_split

__all__ = ["Dataset", "BUNDLED", "load", "available", "as_images", "as_labels", "stratified_split", "select_classes",
           "sources", "tfds"]
