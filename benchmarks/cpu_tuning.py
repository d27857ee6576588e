"""Side-by-side benchmark: notebooks on the CPU with denormal floats kept (``HELPERS_CPU_TUNING=off``) and
flushed to zero (the default, ``torch.set_flush_denormal(True)`` in every CPU learner).

Each notebook runs whole, headless, in a fresh kernel (``notebook_times.run``), alternately off and on, so
that background load hits both alike. Prints per notebook the seconds of each run, the median ratio, and
the largest difference between the two settings' recorded metrics (timings excluded).

    HELPERS_MIRROR=file:///path/to/shared/datasets .venv/bin/python benchmarks/cpu_tuning.py \
        notebooks/01_resnet_mnist.ipynb [--rounds 1] [--out runs/cpu-tuning]
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from notebook_times import run

from helpers.results import machine


def metrics(folder: Path, stem: str) -> dict[str, float]:
    record = json.loads((folder / f"{stem}.json").read_text())
    return {k: v for k, v in record["metrics"].items() if "seconds" not in k}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=1, help="off/on pairs per notebook")
    ap.add_argument("--out", type=Path, default=Path("runs/cpu-tuning"))
    args = ap.parse_args()
    os.environ.setdefault("HELPERS_PROFILE", "small")
    print(f"{machine()}; profile {os.environ['HELPERS_PROFILE']}; {args.rounds} off/on pair(s) per notebook")
    for path in args.notebooks:
        seconds = {"off": [], "on": []}
        for _ in range(args.rounds):
            for setting in ("off", "on"):
                folder = args.out / setting
                folder.mkdir(parents=True, exist_ok=True)
                os.environ["HELPERS_CPU_TUNING"], os.environ["HELPERS_RUNS"] = setting, str(folder.resolve())
                record, ok = run(path.resolve(), folder)
                if not ok:
                    print(f"{path.name} failed with HELPERS_CPU_TUNING={setting}", file=sys.stderr)
                    return 1
                seconds[setting].append(record["seconds"])
        off, on = metrics(args.out / "off", path.stem), metrics(args.out / "on", path.stem)
        diff = max((abs(off[k] - on[k]) for k in off if k in on and isinstance(off[k], (int, float))), default=0.0)
        print(f"{path.stem}: denormals kept {', '.join(f'{s:.1f}' for s in seconds['off'])} s; "
              f"flushed {', '.join(f'{s:.1f}' for s in seconds['on'])} s; median ratio "
              f"{statistics.median(seconds['off']) / statistics.median(seconds['on']):.2f}x; "
              f"largest metric difference {diff:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
