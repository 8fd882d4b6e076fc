"""Random-access readers of a user's files: image folders (ImageFolder convention) and .npz archives.

A reader holds every row's label and where its pixels are, never the pixels: ``read(indices)``
decodes those rows only. ``glassjax.data.sources.IndexedSource`` reads one in batches;
``glassjax.data.user`` picks and opens them.

  image_folder(root, where)    the ImageFolder layout -> {split: (files, class of each)}, checked
  FolderReader(...)            files decoded by ``glassjax.data.images``' rules
  npz_members(path, where)     the arrays of an .npz, memory-mapped (stored) or read row range by row range (deflated)
  NpzReader(...)               images (N, H, W[, C]) and labels (N,) of one split of an .npz
"""
from __future__ import annotations

import os
import struct
import zipfile
from typing import Any, Sequence

import numpy as np

import glassjax.data.images as images

__all__ = ["SPLITS", "IGNORED_SPLITS", "image_folder", "ImageReader", "FolderReader", "NpzMember", "npz_members", "NpzReader"]

SPLITS = ("train", "test")
IGNORED_SPLITS = ("val", "valid", "validation")  # beside train/ and test/, skipped


def _subfolders(folder: str) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _class_files(folder: str, where: str) -> tuple[list[str], list[str]]:
    """(image paths, class name of each) of one folder of class folders, sorted by class, then path."""
    loose = sorted(e.name for e in os.scandir(folder) if e.is_file() and images.is_image_file(e.name))
    classes = _subfolders(folder)
    if loose:
        raise ValueError(f"{where}: expected class subfolders of images in {folder}, got {len(loose)} image files "
                         f"directly in it (e.g. {loose[0]}); put each class's images in a folder named after it")
    if not classes:
        raise ValueError(f"{where}: expected class subfolders of PNG/JPEG/BMP images in {folder}, got no subfolders")
    files, labels = [], []
    for name in classes:
        found = []
        for parent, dirs, names in os.walk(os.path.join(folder, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [os.path.join(parent, n) for n in names if images.is_image_file(n)]
        if not found:
            raise ValueError(f"{where}: no images: class folder {os.path.join(folder, name)} has no PNG/JPEG/BMP files")
        found.sort()
        files += found
        labels += [name] * len(found)
    return files, labels


def image_folder(root: str, where: str) -> dict[str, tuple[list[str], list[str]]]:
    """The ImageFolder layout of ``root`` -> {"train": ..., "test": ...} or {"all": ...}, each
    (image paths, class name of each), sorted by class then path.

    ``root/train/<class>/`` and ``root/test/<class>/`` give the split (val/, valid/ and
    validation/ beside them are skipped); else ``root/<class>/`` holds the whole set. Images
    may lie deeper inside a class folder; files without an image suffix are ignored. Wrong
    layouts, empty class folders, and test classes that train lacks are ValueErrors.
    """
    folders = _subfolders(root)
    if "train" not in folders and "test" not in folders:
        files, labels = _class_files(root, where)
        if len(set(labels)) < 2:
            raise ValueError(f"{where}: expected at least 2 class folders in {root}, got {sorted(set(labels))}")
        return {"all": (files, labels)}
    others = [f for f in folders if f not in SPLITS + IGNORED_SPLITS]
    if others or "train" not in folders:
        got = f"folders {others} beside the split folders" if others else "test/ without train/"
        raise ValueError(f"{where}: wrong layout in {root}: expected either class folders or train/ and test/ "
                         f"folders of class folders, got {got}")
    splits = {split: _class_files(os.path.join(root, split), where) for split in SPLITS if split in folders}
    train_classes = set(splits["train"][1])
    if len(train_classes) < 2:
        raise ValueError(f"{where}: expected at least 2 class folders in {os.path.join(root, 'train')}, got {sorted(train_classes)}")
    if "test" in splits:
        unknown = sorted(set(splits["test"][1]) - train_classes)
        if unknown:
            raise ValueError(f"{where}: unknown class names in {os.path.join(root, 'test')}: {unknown} (train/ has "
                             f"{sorted(train_classes)})")
    else:
        splits = {"all": splits["train"]}
    return splits


class ImageReader:
    """What every reader of encoded images holds: labels (N,) 0..C-1, class names, and the
    (H, W, channels) every image is decoded to; ``read(indices)`` is the subclass's."""

    def __init__(self, name: str, labels: np.ndarray, class_names: Sequence[str], channels: int, size: tuple[int, int]):
        self.name, self.class_names = name, tuple(class_names)
        self.labels = np.asarray(labels, np.int32)
        self.channels, self.size = channels, size
        self.image_shape = (size[0], size[1], channels)


class FolderReader(ImageReader):
    """Image files with labels 0..C-1, decoded ``channels`` deep at ``size`` (H, W) by the rules
    of ``glassjax.data.images``."""

    def __init__(self, name: str, files: Sequence[str], labels: np.ndarray, class_names: Sequence[str],
                 channels: int, size: tuple[int, int]):
        super().__init__(name, labels, class_names, channels, size)
        self.files = list(files)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        x = np.empty((indices.size,) + self.image_shape, np.uint8)
        for row, i in enumerate(indices):
            x[row] = images.decode(self.files[i], self.files[i], self.name, channels=self.channels, size=self.size)
        return x, self.labels[indices]


# --- .npz ---------------------------------------------------------------------------------------


class NpzMember:
    """One array of an .npz: ``shape``, ``dtype``, and ``rows(indices)`` reading only those rows.

    A stored (``np.savez``) member is memory-mapped; a deflated one (``np.savez_compressed``) is
    decompressed from its start to the last row asked for (a later pass starts again).
    """

    def __init__(self, path: str, info: zipfile.ZipInfo, where: str):
        self.path, self.info, self.where = path, info, where
        with zipfile.ZipFile(path) as archive, archive.open(info) as member:
            self.shape, fortran, self.dtype, self.header = _npy_header(member, f"{path}:{info.filename}", where)
        if fortran and len(self.shape) > 1:
            raise ValueError(f"{where}: expected C-ordered arrays in {path}, got {info.filename} in Fortran order; "
                             "save np.ascontiguousarray(x)")
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._map = None
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(30)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + 30 + name_len + extra_len + self.header
            self._map = np.memmap(path, self.dtype, "r", offset, self.shape) if self.shape[0] else np.zeros(self.shape, self.dtype)

    def whole(self) -> np.ndarray:
        return np.asarray(self.rows(np.arange(self.shape[0])))

    def rows(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if self._map is not None:
            return np.asarray(self._map[indices])
        if not indices.size:
            return np.zeros((0,) + self.shape[1:], self.dtype)
        first, last = int(indices.min()), int(indices.max())
        with zipfile.ZipFile(self.path) as archive, archive.open(self.info) as member:
            member.seek(self.header + first * self.row_bytes)
            raw = member.read((last - first + 1) * self.row_bytes)
        block = np.frombuffer(raw, self.dtype).reshape((last - first + 1,) + self.shape[1:])
        return block[indices - first]


def _npy_header(member: Any, name: str, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, header length in bytes) of an .npy stream."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(member)
    except Exception as err:  # not an .npy: damaged, or an unknown version
        raise ValueError(f"{where}: cannot read {name}: expected a .npy array, got {type(err).__name__}: {err}".splitlines()[0]) from None
    if dtype.hasobject:
        raise ValueError(f"{where}: expected numeric arrays, got object array {name} (not read: it would need pickle)")
    return tuple(shape), bool(fortran), dtype, member.tell()


def npz_members(path: str, where: str) -> dict[str, NpzMember]:
    """Array name -> ``NpzMember`` for every .npy in the archive at ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{where}: cannot read {path}: expected an .npz archive, got {type(err).__name__}: {err}".splitlines()[0]) from None
    return {info.filename[:-4]: NpzMember(path, info, where) for info in infos}


class NpzReader:
    """Rows of an .npz member of images (N, H, W) or (N, H, W, C), uint8 or float in [0, 1],
    with labels (N,) in 0..C-1; resized to ``size`` (H, W) when given."""

    def __init__(self, name: str, x: NpzMember, labels: np.ndarray, class_names: Sequence[str],
                 size: tuple[int, int] | None):
        self.name, self.x, self.class_names, self.size = name, x, tuple(class_names), size
        self.labels = np.asarray(labels, np.int32)
        h, w = size if size is not None else x.shape[1:3]
        self.image_shape = (h, w, x.shape[3] if len(x.shape) == 4 else 1)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.x.rows(indices)
        if x.ndim == 3:
            x = x[..., None]
        return images.resize(x, self.size), self.labels[np.asarray(indices, np.int64)]
