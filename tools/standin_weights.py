"""Stand-in ImageNet weights: for every network the notebooks download weights for, a file with torchvision's name for
them and the architecture's own random initialisation, in a mirror folder with its SHA256SUMS. With HELPERS_MIRROR
pointing there, the notebooks take the path ImageNet weights take (download, checksum, cache, load, the feature loss
in 05 and 07, frozen encoders), with values that are not ImageNet's: floors are then reported, not enforced
(HELPERS_FLOORS=report), and TORCH_HOME should point at a folder of its own, so that no stand-in lands in the real
torch cache. `make standin` does all of that.

    python tools/standin_weights.py OUT [--datasets DIR]

OUT gets the weight files and a SHA256SUMS; with --datasets, every archive DIR's SHA256SUMS lists is linked into OUT
too, so that OUT is a whole mirror.
"""

import argparse
import sys
from pathlib import Path

import torch
from torchvision import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.bodies import weights_file  # noqa: E402 (after the path insert, for a run from any folder)
from helpers.download import sha256_file  # noqa: E402
from helpers.files import atomic_write  # noqa: E402

# every architecture a notebook asks for ImageNet weights of (tests/test_standin_weights.py checks the notebooks)
ARCHS = ("resnet18", "resnet34", "vgg16_bn")


def write_standins(out: Path, archs: tuple[str, ...] | None = None, seed: int = 0) -> dict[str, str]:
    """One stand-in file per arch in ``out``, torchvision's file name, random values; returns {file name: sha256}."""
    out.mkdir(parents=True, exist_ok=True)
    sums = {}
    for arch in archs or ARCHS:
        name, _url, _cache = weights_file(arch)
        path = out / name
        if not path.exists():  # the same seed gives the same file: made once
            torch.manual_seed(seed)
            state = models.get_model(arch, weights=None).state_dict()
            atomic_write(path, lambda tmp: torch.save(state, tmp))
        sums[name] = sha256_file(path)
        print(f"{name}: {path.stat().st_size / 2**20:.0f} MiB, random values (a stand-in for {arch}'s ImageNet weights)")
    return sums


def link_datasets(out: Path, datasets: Path) -> dict[str, str]:
    """Link every archive ``datasets/SHA256SUMS`` lists into ``out``; returns their {file name: sha256}."""
    sums = {}
    for line in (datasets / "SHA256SUMS").read_text().splitlines():
        if len(parts := line.split()) == 2:
            digest, name = parts[0], parts[1].lstrip("*")
            link = out / name
            if link.is_symlink():  # made by an earlier run, perhaps to a folder that has moved since
                link.unlink()
            link.symlink_to((datasets / name).resolve())
            sums[name] = digest
    return sums


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the mirror folder to write")
    parser.add_argument("--datasets", type=Path, help="a dataset mirror folder whose archives are linked in")
    args = parser.parse_args(argv)
    if args.datasets is not None and not (args.datasets / "SHA256SUMS").is_file():
        parser.error(f"--datasets {args.datasets}: no SHA256SUMS there")
    marker = args.out / ".standin_weights"  # this tool's folder: never a real mirror's SHA256SUMS overwritten
    if (args.out / "SHA256SUMS").exists() and not marker.exists():
        parser.error(f"{args.out} holds a SHA256SUMS this tool did not write (a real mirror?); choose an empty folder")
    args.out.mkdir(parents=True, exist_ok=True)
    marker.touch()
    sums = write_standins(args.out)
    if args.datasets is not None:
        sums.update(link_datasets(args.out, args.datasets))
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    atomic_write(args.out / "SHA256SUMS", lambda tmp: tmp.write_text(text))
    print(f"mirror with stand-in weights: {args.out} ({len(sums)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
