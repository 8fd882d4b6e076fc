"""Writing the report folder all or nothing: built under a temporary name beside ``out`` and
renamed into place, so a failure leaves ``out`` absent or as it was."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from glassjax.report.page import render_html

__all__ = ["FORMAT", "check_out", "write_report"]

FORMAT = "glassjax.compare"
_REPORT_SUFFIXES = (".png", ".html", ".json")


def check_out(out: str | os.PathLike) -> None:
    """ValueError unless ``out`` is missing, an empty folder, or an earlier report (only its own kinds of file)."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"report folder: expected a folder for the report, got the file {out}")
    entries = list(out.iterdir())
    if not entries:
        return
    foreign = [e.name for e in entries if not e.is_file() or e.suffix not in _REPORT_SUFFIXES]
    try:
        marker = json.loads((out / "metrics.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        marker = None
    if foreign or marker != FORMAT:
        example = foreign[0] if foreign else "no glassjax metrics.json"
        raise ValueError(f"report folder: expected a new or empty folder or an earlier glassjax report, got {out} "
                         f"({example}); choose another folder")


def write_report(out: str | os.PathLike, result: Mapping, figures: Mapping[str, bytes]) -> Path:
    """Write metrics.json, the PNG figures and index.html into the folder ``out``, all or nothing.

    The folder is built under a temporary name beside ``out`` and renamed into place; an
    earlier report at ``out`` is replaced only once the new one is complete.
    """
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # os.mkdir, unlike mkdtemp, gives the folder the user's usual (umask) permissions.
    building = out.parent / f".{out.name}.{secrets.token_hex(6)}.new"
    building.mkdir()
    old = None
    try:
        document = dict(result, format=FORMAT, version=1, figures=sorted(figures))
        (building / "metrics.json").write_text(json.dumps(document, indent=1, allow_nan=True))
        for name, data in figures.items():
            (building / name).write_bytes(data)
        (building / "index.html").write_text(render_html(document, figures), encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        try:
            os.replace(building, out)
        except OSError:
            if old is not None:
                os.replace(old / out.name, out)
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out
