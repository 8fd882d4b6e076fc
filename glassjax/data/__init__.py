"""Data: bundled offline sets, TFDS, a user's own files, and batch sources for streaming fits;
numpy arrays out.

  loader   ``load(name or path)`` -> ``Dataset`` (NHWC float32 in [0, 1], int32 labels, seeded split)
  tfds     prepared TensorFlow Datasets sets: the directory lookup, checked opening, reading
  user     a user's image folder, .npz, Hugging Face or parquet set, opened as batch sources
  readers  random-access readers of image folders and .npz; tables: Hugging Face and parquet
  images   the image rules: Pillow decoding, channels, sizes, resizing
  sources  batch sources read once per pass (arrays, TFDS, user files, synthetic); per-process shards
"""
from glassjax.data import images, readers, sources, tables, tfds, user
from glassjax.data.loader import BUNDLED, Dataset, as_images, as_labels, available, load, select_classes, stratified_split

__all__ = ["Dataset", "BUNDLED", "load", "available", "as_images", "as_labels", "stratified_split", "select_classes",
           "sources", "tfds", "user", "images", "readers", "tables"]
