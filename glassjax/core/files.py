"""Atomic file writes: readers see the old file or the new one, never half of one.

``atomic_write(path)`` writes a temporary file beside the target and renames it onto the
target, so:

- the target must be a regular file or not exist yet: a FIFO, a device node, a socket or a
  folder is refused (ValueError) and never replaced by a regular file;
- a symlink is followed: its target is written and the link stays a link;
- a new file gets the mode any file the user writes gets (0666 minus the umask: 0644 under
  umask 022); an existing file keeps its mode;
- the temporary file is removed on any exception, and on SIGTERM where the command line
  turns it into one (``glassjax.cli``). A temporary file left by a process that was killed
  outright (SIGKILL, a power cut) is named after its host and process id and removed by the
  next write to the same target once that process is gone.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "write_bytes_atomic", "writable_target", "file_kind"]

_KINDS = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device",
          stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}


def _host() -> str:
    # Only [A-Za-z0-9-]: the temporary name is split on dots.
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def file_kind(mode: int) -> str:
    """What ``os.stat(...).st_mode`` says a path is: "a regular file", "a folder", "a FIFO", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((text for test, text in _KINDS.items() if test(mode)), "not a regular file")


def writable_target(path: str | os.PathLike, where: str = "atomic_write", name: str = "path") -> Path:
    """The file a write to ``path`` replaces: ``path``, or its target when it is a symlink.

    ValueError ("{where}: expected {name} ...") when that is anything but a regular file or a
    new name: a folder, a FIFO, a device, a socket; or when its parent is not a folder.
    """
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise ValueError(f"{where}: expected {name} inside a folder, got {os.fspath(path)} (a parent is a file)") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"{where}: expected {name} to be a regular file or a new file, got {file_kind(mode)}: "
                         f"{os.fspath(path)}")
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{where}: expected {name} inside a folder, got {os.fspath(path)} ({parent} is a file)")
    return target


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _remove_stale(target: Path, host: str) -> None:
    """Remove temporary files of ``target`` left by dead processes of this host."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(host)}\.(\d+)\.[^.]+\.tmp{re.escape(target.suffix)}")
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        match = pattern.fullmatch(sibling.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                sibling.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path`` (its target, for a symlink).

    On any exception the temporary file is removed and ``path`` is left untouched. The
    temporary name keeps ``path``'s suffix so format-sniffing writers still work. See the
    module docstring for what is refused and which mode the file gets.
    """
    target = writable_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    host = _host()
    _remove_stale(target, host)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{host}.{os.getpid()}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)
    tmp = Path(tmp)
    try:
        try:
            os.fchmod(fd, mode)  # mkstemp makes 0600 whatever the umask
        finally:
            os.close(fd)
        yield tmp
        writable_target(path)  # the target may have changed kind while we wrote
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
