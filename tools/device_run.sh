#!/usr/bin/env bash
# One part of the full-profile GPU run (tools/device_kit.py prepares .devkit/ and prints the calls): install the
# wheels the GPU image lacks, extract the part's datasets from its mirror, time every cell of its notebooks in the
# full profile (benchmarks/notebook_times.py), and pack the log, the per-cell times and the executed copies into $OUT.
# DEVKIT_SMOKE=1 DEVKIT_PYTHON=.venv/bin/python: the same steps as a smoke run on any machine (device_kit.py check).
set -euo pipefail
part="${1:?usage: device_run.sh a|b|c}"
cd "$(dirname "$0")/.."
kit="$PWD/.devkit"
[ -f "$kit/$part/notebooks" ] || { echo "no $kit/$part: run tools/device_kit.py prepare here, and carry .devkit/$part" >&2; exit 2; }
out="${OUT:-$PWD/runs/device}"
mkdir -p "$out"
py="${DEVKIT_PYTHON:-python3}"
if [ -z "${DEVKIT_PYTHON:-}" ]; then  # the GPU image: its own torch, our wheels beside it
  [ -d /tmp/site/nbclient ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$kit"/whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
  export PATH="/tmp/site/bin:$PATH"
fi
# ImageNet weights are too big to carry: stand-ins with torchvision's file names and random values are made there, in a
# mirror beside the part's datasets, so that 02, 03, 05 and 07 time the path learners take (the feature loss in 05 and
# 07, frozen encoders); floors are reported, not enforced, and the stand-ins stay out of the real torch cache
"$py" tools/standin_weights.py "/tmp/devkit-mirror-$part" --datasets "$kit/$part/mirror" >/dev/null
export HELPERS_MIRROR="file:///tmp/devkit-mirror-$part" HELPERS_DATA="${HELPERS_DATA:-/tmp/devkit-data}"
export TORCH_HOME="/tmp/devkit-torch" HELPERS_PROGRESS=none PYTHONUNBUFFERED=1
[ "$part" = a ] || export HELPERS_FLOORS=report  # part a (01, 06) loads no weights: its floors stay enforced
smoke=(); [ "${DEVKIT_SMOKE:-0}" = 1 ] && smoke=(--smoke)
log="$out/log-$part.txt"
status=0
{
  "$py" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
        'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
  nbs=()
  for nb in $(cat "$kit/$part/notebooks"); do nbs+=("notebooks/$nb"); done
  archives=$(sed -n 's/^[0-9a-f]*  \(.*\)\.tgz$/\1/p' "$kit/$part/mirror/SHA256SUMS")
  "$py" -c "import sys, time; from helpers.download import untar_data
for name in sys.argv[1:]:
    t = time.perf_counter(); print(name, '->', untar_data(name), f'{time.perf_counter() - t:.1f} s')" $archives
  if grep -q 04_wgan "$kit/$part/notebooks"; then  # LSUN is not mirrored: the pets as its own photos
    "$py" - "$HELPERS_DATA/oxford-iiit-pet/images" <<'PY'
import json, sys
nb = json.load(open("notebooks/04_wgan.ipynb"))
cell = next(c for c in nb["cells"] if "own_photos = None" in "".join(c["source"]))
cell["source"] = "".join(cell["source"]).replace("own_photos = None", f"own_photos = {sys.argv[1]!r}")
json.dump(nb, open("notebooks/04_wgan_own_photos.ipynb", "w"))
PY
    nbs=("${nbs[@]/notebooks\/04_wgan.ipynb/notebooks/04_wgan_own_photos.ipynb}")
  fi
  # no cell starts after DEVKIT_BUDGET seconds; a cell still running 45 s later is killed, so that what finished is
  # packed before the call's own limit (timeout_s = budget + 75) would return nothing but the log
  budget="${DEVKIT_BUDGET:-480}"
  timeout "$((budget + 45))" "$py" benchmarks/notebook_times.py "${nbs[@]}" --profile full "${smoke[@]}" \
    --budget "$budget" --out /tmp/devkit-times-$part
} 2>&1 | tee "$log" || status=$?
rm -f notebooks/04_wgan_own_photos.ipynb
mkdir -p "/tmp/devkit-times-$part"
tar czf "$out/times-$part.tgz" -C /tmp "devkit-times-$part"
echo "log: $log; times and executed copies: $out/times-$part.tgz (exit $status)"
exit "$status"
