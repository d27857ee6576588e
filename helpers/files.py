"""Writing files and folders so that nothing half-written is ever found: to a temporary name beside the
destination, renamed into place only when complete.

Introduced in notebook 01 (resnet-mnist): the decoded-images cache, saved models and results records use
``atomic_write``; derived folders (notebook 05) and extracted datasets use ``building``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


def atomic_write(path: Path | str, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path`` (named with this process's id), then rename it to
    ``path``; on any error the temporary file is removed and ``path`` is untouched (notebook 01)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextmanager
def building(dest: Path | str):
    """Yield a fresh temporary folder beside ``dest``; when the block ends without an error it replaces
    ``dest`` (an older ``dest`` goes), otherwise it is removed and ``dest`` stays as it was (notebook 05)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        new = work / dest.name
        new.mkdir()
        yield new
        if dest.exists():  # the old copy leaves with the temporary folder
            os.replace(dest, work / "old")
        os.replace(new, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
