"""Files and folders written under a temporary name and renamed into place when complete (notebook 01)."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process at a time is then the user's care
    fcntl = None


def atomic_write(path: Path | str, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then renamed; on error ``path`` stays (notebook 01)."""
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
    """Yield a temporary folder beside ``dest`` replacing ``dest`` if the block succeeds, else removed (notebook 05)."""
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


@contextmanager
def locked(path: Path | str, what: str):
    """Hold an exclusive lock on the file ``path`` for the block, so that two processes (two notebooks opened side by
    side) do not fetch or build ``what`` at once; the second says that it waits, then finds the first's result
    (notebook 01)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another process to finish {what} ...", flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing
