"""Tables of encoded images with labels: Hugging Face datasets saved with ``save_to_disk``, and
parquet files (read with pyarrow, without ``datasets``).

A table has an image column ("image" or "img") of encoded PNG/JPEG/BMP images (the Hugging Face
``Image`` feature: a struct of bytes and path; or plain binary) and a label column ("label" or
"labels") of ints (class names from a ``ClassLabel`` feature when the table records one) or of
strings (class names: the sorted distinct strings of the train split).

  hf_splits(path, where)        split -> HFRows of a dataset saved to disk (needs ``datasets``)
  parquet_splits(path, where)   split -> ParquetRows of a .parquet file or a folder of them
  TableReader(...)              rows of a table decoded by ``glassjax.data.images``' rules
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator, Sequence

import numpy as np

import glassjax.data.images as images
from glassjax.data.readers import ImageReader

__all__ = ["IMAGE_COLUMNS", "LABEL_COLUMNS", "HF_INSTALL", "is_hf_folder", "hf_splits", "parquet_files", "parquet_splits",
           "HFRows", "ParquetRows", "TableReader", "encode_labels"]

IMAGE_COLUMNS = ("image", "img")
LABEL_COLUMNS = ("label", "labels")
HF_INSTALL = "pip install glassjax[hf]"


def _column(names: Sequence[str], wanted: Sequence[str], what: str, source: str, where: str) -> str:
    for name in wanted:
        if name in names:
            return name
    raise ValueError(f"{where}: expected {what} column named {' or '.join(wanted)} in {source}, got columns {list(names)}")


def _class_names(features: dict | None, label: str) -> tuple[str, ...] | None:
    """The names of a Hugging Face ``ClassLabel`` feature ``label`` in a features dict, if any."""
    entry = (features or {}).get(label) or {}
    names = entry.get("names") if isinstance(entry, dict) else None
    return tuple(str(n) for n in names) if names else None


class _Rows:
    """A table's rows: ``source`` (for messages), ``base`` (where relative image paths start),
    the chosen columns, ``num_rows``, ``raw_labels`` and ``cells(indices)``."""

    source: str
    base: str
    image: str
    label: str
    class_names: tuple[str, ...] | None

    def check_image_type(self, arrow_type, where: str) -> None:
        import pyarrow as pa

        ok = pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type) or (
            pa.types.is_struct(arrow_type) and arrow_type.get_field_index("bytes") >= 0)
        if not ok:
            raise ValueError(f"{where}: expected column {self.image!r} of {self.source} to hold encoded images (a Hugging "
                             f"Face Image feature or binary), got type {arrow_type}")

    def cell_name(self, row: int, cell: Any) -> str:
        path = cell.get("path") if isinstance(cell, dict) else None
        return f"{self.source} row {row}" + (f" ({path})" if path else "")

    def opener(self, row: int, cell: Any, where: str) -> Any:
        if isinstance(cell, dict):
            if cell.get("bytes") is not None:
                return cell["bytes"]
            if cell.get("path"):
                path = cell["path"] if os.path.isabs(cell["path"]) else os.path.join(self.base, cell["path"])
                return path
            raise ValueError(f"{where}: {self.source} row {row} has no image (neither bytes nor path)")
        if cell is None:
            raise ValueError(f"{where}: {self.source} row {row} has no image")
        return cell

    def scan(self, where: str, chunk: int = 1024) -> Iterator[tuple[int, tuple[int, int], str]]:
        """(row, (H, W), mode) of every image, from headers, ``chunk`` rows at a time."""
        for start in range(0, self.num_rows, chunk):
            rows = np.arange(start, min(start + chunk, self.num_rows))
            for row, cell in zip(rows, self.cells(rows)):
                size, mode = images.scan(self.opener(int(row), cell, where), self.cell_name(int(row), cell), where)
                yield int(row), size, mode


class HFRows(_Rows):
    """One split of a Hugging Face dataset saved to disk (memory-mapped arrow; ``datasets`` reads it)."""

    def __init__(self, dataset: Any, source: str, base: str, where: str):
        self.arrow, self.source, self.base = dataset.with_format("arrow"), source, base
        names = list(dataset.column_names)
        self.image = _column(names, IMAGE_COLUMNS, "an image", source, where)
        self.label = _column(names, LABEL_COLUMNS, "a label", source, where)
        self.class_names = _class_names(dataset.features.to_dict(), self.label)
        self.num_rows = len(dataset)
        self.check_image_type(self.arrow.features.arrow_schema.field(self.image).type, where)

    def raw_labels(self) -> np.ndarray:
        return np.asarray(self.arrow[self.label].to_numpy(zero_copy_only=False))

    def cells(self, indices: np.ndarray) -> list:
        if not len(indices):
            return []
        return self.arrow[[int(i) for i in indices]].column(self.image).to_pylist()


class ParquetRows(_Rows):
    """Parquet files read as one table, one row group at a time (the last one read is kept)."""

    def __init__(self, files: Sequence[str], source: str, base: str, where: str):
        import pyarrow.parquet as pq

        self.files, self.source, self.base = list(files), source, base
        self.parts = []  # (file index, row group, first row)
        first, schema = 0, None
        for k, path in enumerate(self.files):
            try:
                handle = pq.ParquetFile(path)
            except Exception as err:  # pyarrow raises several types for damaged files
                raise ValueError(f"{where}: cannot read {path}: expected a parquet file, got {type(err).__name__}: {err}".splitlines()[0]) from None
            if schema is None:
                schema = handle.schema_arrow
            for g in range(handle.metadata.num_row_groups):
                self.parts.append((k, g, first))
                first += handle.metadata.row_group(g).num_rows
        self.num_rows = first
        names = list(schema.names)
        self.image = _column(names, IMAGE_COLUMNS, "an image", source, where)
        self.label = _column(names, LABEL_COLUMNS, "a label", source, where)
        meta = (schema.metadata or {}).get(b"huggingface")
        features = json.loads(meta).get("info", {}).get("features") if meta else None
        self.class_names = _class_names(features, self.label)
        self.check_image_type(schema.field(self.image).type, where)
        self.starts = np.asarray([p[2] for p in self.parts] + [self.num_rows], np.int64)
        self._cached = (None, None)

    def _group(self, part: int, column: str):
        import pyarrow.parquet as pq

        if self._cached[0] == (part, column):
            return self._cached[1]
        k, g, _ = self.parts[part]
        values = pq.ParquetFile(self.files[k]).read_row_group(g, columns=[column]).column(column)
        self._cached = ((part, column), values)
        return values

    def raw_labels(self) -> np.ndarray:
        import pyarrow.parquet as pq

        parts = [pq.read_table(f, columns=[self.label]).column(self.label).to_numpy() for f in self.files]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def cells(self, indices: np.ndarray) -> list:
        indices = np.asarray(indices, np.int64)
        parts = np.searchsorted(self.starts, indices, side="right") - 1
        out: list = [None] * indices.size
        for part in np.unique(parts):
            chosen = np.flatnonzero(parts == part)
            values = self._group(int(part), self.image).take(indices[chosen] - self.starts[part]).to_pylist()
            for slot, value in zip(chosen, values):
                out[slot] = value
        return out


def is_hf_folder(path: str) -> bool:
    """Whether ``path`` is a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in ("dataset_dict.json", "state.json"))


def hf_splits(path: str, where: str) -> dict[str, HFRows]:
    """split -> rows of the Hugging Face dataset saved at ``path``: a DatasetDict's splits, or
    {"all": ...} for a single Dataset. A one-line error when ``datasets`` is not installed."""
    try:
        import datasets
    except ImportError:
        raise ValueError(f"{where}: {path} is a Hugging Face dataset saved to disk, which needs the datasets package: "
                         f"{HF_INSTALL}") from None
    try:
        loaded = datasets.load_from_disk(path)
    except Exception as err:  # datasets raises several types for damaged folders
        raise ValueError(f"{where}: cannot read the Hugging Face dataset at {path}: {type(err).__name__}: {err}".splitlines()[0]) from None
    if isinstance(loaded, datasets.DatasetDict):
        return {split: HFRows(ds, f"{path} [{split}]", os.path.join(path, split), where) for split, ds in loaded.items()}
    return {"all": HFRows(loaded, path, path, where)}


def parquet_files(path: str) -> list[str]:
    """The .parquet files of ``path`` (itself, or any below it), sorted."""
    if os.path.isfile(path):
        return [path]
    found = []
    for parent, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, n) for n in names if n.endswith(".parquet") and not n.startswith(".")]
    return sorted(found)


def _split_of(path: str, root: str) -> str | None:
    """The split a parquet file belongs to: a folder named train/test on its way from ``root``,
    else a file name starting with train/test followed by - _ . or a digit (Hugging Face's
    ``train-00000-of-00002.parquet``)."""
    parts = os.path.relpath(path, root).split(os.sep)
    for folder in parts[:-1]:
        if folder in ("train", "test"):
            return folder
    match = re.match(r"(train|test)(?=[-_.\d])", parts[-1])
    return match.group(1) if match else None


def parquet_splits(path: str, where: str) -> dict[str, ParquetRows]:
    """split -> rows of a .parquet file or a folder of them: files named (or in folders named)
    train and test give the split (others beside them are skipped); else every file is one set."""
    try:
        import pyarrow.parquet  # noqa: F401  (tensorflow-datasets installs it; the [hf] extra names it)
    except ImportError:
        raise ValueError(f"{where}: {path} is parquet, which needs pyarrow: {HF_INSTALL}") from None
    files = parquet_files(path)
    if not files:
        raise ValueError(f"{where}: expected .parquet files in {path}, got none")
    if os.path.isfile(path):
        return {"all": ParquetRows(files, path, os.path.dirname(path), where)}
    by_split: dict[str, list[str]] = {}
    for f in files:
        by_split.setdefault(_split_of(f, path) or "other", []).append(f)
    if "train" not in by_split:
        if "test" in by_split:
            raise ValueError(f"{where}: wrong layout in {path}: expected train parquet files beside the test ones, got none")
        return {"all": ParquetRows(files, path, path, where)}
    return {split: ParquetRows(by_split[split], f"{path} [{split}]", path, where) for split in ("train", "test") if split in by_split}


def encode_labels(raw: dict[str, np.ndarray], class_names: tuple[str, ...] | None, where: str,
                  source: str) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Raw label columns per split -> int32 labels 0..C-1 per split and the class names.

    Ints keep their values (names from ``class_names``, else "0".."C-1"); strings are named
    classes, numbered in sorted order of the train split's (or the only split's) strings. A test
    label the train split does not have, a negative label or a missing one is a ValueError.
    """
    first = raw.get("train", raw.get("all"))
    if first.dtype.kind in "OUS":
        names = tuple(sorted({str(v) for v in first if v is not None}))
        lookup = {n: i for i, n in enumerate(names)}
        out = {}
        for split, values in raw.items():
            unknown = sorted({str(v) for v in values if v is None or str(v) not in lookup})
            if unknown:
                raise ValueError(f"{where}: unknown class names in {source} [{split}]: {unknown[:5]} (train has {list(names)[:10]})")
            out[split] = np.asarray([lookup[str(v)] for v in values], np.int32)
        return out, names
    out = {}
    for split, values in raw.items():
        if values.dtype.kind == "f" and (np.isnan(values).any() or (values != np.round(values)).any()):
            raise ValueError(f"{where}: expected integer labels in {source} [{split}], got non-integer values")
        if values.size and values.min() < 0:
            raise ValueError(f"{where}: expected labels 0..C-1 in {source} [{split}], got {int(values.min())} "
                             "(an unlabelled split?)")
        out[split] = values.astype(np.int32)
    top = max(int(v.max()) for v in out.values() if v.size) + 1
    if class_names is not None:
        if top > len(class_names):
            raise ValueError(f"{where}: expected labels below {len(class_names)} (the class names of {source}), got {top - 1}")
        return out, class_names
    return out, tuple(str(c) for c in range(top))


class TableReader(ImageReader):
    """Rows of a table decoded ``channels`` deep at ``size`` (H, W) by ``glassjax.data.images``' rules."""

    def __init__(self, name: str, rows: _Rows, labels: np.ndarray, class_names: Sequence[str], channels: int,
                 size: tuple[int, int]):
        super().__init__(name, labels, class_names, channels, size)
        self.rows = rows

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        x = np.empty((indices.size,) + self.image_shape, np.uint8)
        for slot, (row, cell) in enumerate(zip(indices, self.rows.cells(indices))):
            row = int(row)
            x[slot] = images.decode(self.rows.opener(row, cell, self.name), self.rows.cell_name(row, cell), self.name,
                                    channels=self.channels, size=self.size)
        return x, self.labels[indices]
