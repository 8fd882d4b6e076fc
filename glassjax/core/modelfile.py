"""Model files: one .npz per fitted system, arrays plus a JSON ``meta`` entry naming the system.

``write(path, meta, arrays)`` writes atomically (``core.files``) and stores a SHA-256 content
hash of the meta entry and every array (name, dtype, shape, bytes). ``read(path)`` returns
(meta, arrays) exactly as written or raises a one-line ValueError / FileNotFoundError: for a
file that is not such a model file (truncated, a flipped byte, another program's .npz), for
one whose content no longer matches its hash (edited or damaged after it was written), and
for a meta entry that breaks the conventions every system's meta follows (below). No pickles
are ever read. The hash detects damage and edits, not forgery: whoever can write the file
can also write a matching hash.

Meta conventions checked here (each system's ``load`` checks its own arrays' shapes):
  system       str, the registered system that wrote the file (always present)
  format, version   what ``read(format=, version=)`` asks for
  config       a JSON object of config fields, when present
  class_names  a list of str, when present
  image_shape  [H, W, C] positive ints, when present
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Mapping

import numpy as np

from glassjax.core.files import atomic_write, file_kind

__all__ = ["write", "read", "read_system_name", "content_hash", "HASH_ENTRY"]

HASH_ENTRY = "content_sha256"
_RESERVED = ("meta", HASH_ENTRY)

# numpy and zipfile raise many types on a damaged file: BadZipFile (a bad CRC, a truncated
# archive), EOFError, ValueError, SyntaxError and tokenize.TokenError (a header that does not
# parse), MemoryError (a shape too big to allocate), ... Only numpy and zipfile run inside, on
# the file's bytes, so every Exception there means the same thing: not a readable model file.
_DAMAGED = Exception


def content_hash(meta_text: str, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the meta entry's JSON text and every array: name, dtype, shape and bytes, names sorted."""
    digest = hashlib.sha256(b"glassjax model file\0")
    digest.update(meta_text.encode("utf-8") + b"\0")
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode("utf-8"))
        digest.update(value.reshape(-1).view(np.uint8).data if value.size else b"")
    return digest.hexdigest()


def write(path: str | os.PathLike, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``meta`` (JSON-able; must name its ``system``) to ``path`` atomically, with their hash."""
    if not isinstance(meta, Mapping) or "system" not in meta:
        raise ValueError(f"modelfile.write: expected meta to name its system, got {sorted(meta) if isinstance(meta, Mapping) else type(meta).__name__}")
    reserved = [name for name in _RESERVED if name in arrays]
    if reserved:
        raise ValueError(f"modelfile.write: expected array names other than {' and '.join(map(repr, _RESERVED))} "
                         f"(the file's own entries), got an array named {reserved[0]!r}")
    entries = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"modelfile.write: expected arrays of numbers or strings, got dtype object for {name!r}")
        entries[name] = value
    meta_text = json.dumps(dict(meta))
    entries["meta"] = np.asarray(meta_text)
    entries[HASH_ENTRY] = np.asarray(content_hash(meta_text, {k: v for k, v in entries.items() if k != "meta"}))
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **entries)


def _load(path) -> dict[str, np.ndarray]:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no model file at {path}") from None
    if not stat.S_ISREG(mode):  # a FIFO would block the read, a device never end it
        raise ValueError(f"{path} is not a glassjax model file: expected a regular file, got {file_kind(mode)}")
    try:
        with np.load(path, allow_pickle=False) as stored:
            if not hasattr(stored, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            return {k: stored[k] for k in stored.files}
    except _DAMAGED as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{path} is not a readable glassjax model file (damaged or not an .npz archive): "
                         f"{type(err).__name__}{': ' + detail if detail else ''}") from None


def _check_meta(path, meta: dict) -> None:
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected its meta's config to be a JSON object, got {type(config).__name__}")
    names = meta.get("class_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: expected its meta's class_names to be a list of strings, got {names!r}"[:300])
    shape = meta.get("image_shape", [1, 1, 1])
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        raise ValueError(f"{path}: expected its meta's image_shape to be [H, W, C] positive ints, got {shape!r}"[:300])


def read(path: str | os.PathLike, *, format: str | None = None, version: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a model file, exactly as written; ``meta["system"]`` is always set.

    With ``format`` (and ``version``), a file whose meta says otherwise is a ValueError.
    """
    arrays = _load(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a glassjax model file: expected a 'meta' entry, got entries {sorted(arrays)[:8]}")
    meta_entry, stored_hash = arrays.pop("meta"), arrays.pop(HASH_ENTRY, None)
    if meta_entry.ndim != 0 or meta_entry.dtype.kind != "U":
        raise ValueError(f"{path} is not a glassjax model file: expected its 'meta' entry to be a JSON string, "
                         f"got an array of dtype {meta_entry.dtype} and shape {meta_entry.shape}")
    meta_text = str(meta_entry)
    if stored_hash is None:
        raise ValueError(f"{path}: expected a content hash ({HASH_ENTRY!r}), got none: the file was written before "
                         "glassjax stored one, or had it removed; refit and save it again")
    if stored_hash.ndim != 0 or str(stored_hash) != content_hash(meta_text, arrays):
        raise ValueError(f"{path}: expected its content to match the hash stored when it was written, got a mismatch: "
                         "the file was edited or damaged after it was saved")
    try:
        meta = json.loads(meta_text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a glassjax model file: expected its 'meta' entry to be a JSON object, got {type(meta).__name__}")
    if not isinstance(meta.get("system"), str):
        raise ValueError(f"{path} is not a glassjax model file: expected its meta to name a system, got {meta.get('system')!r}")
    if format is not None and (meta.get("format") != format or meta.get("version") != version):
        raise ValueError(f"{path}: expected a {format} model of version {version}, got {meta.get('format')} {meta.get('version')}")
    _check_meta(path, meta)
    return meta, arrays


def read_system_name(path: str | os.PathLike) -> str:
    """The name of the system that wrote the model file at ``path``."""
    return read(path)[0]["system"]
