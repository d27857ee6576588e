"""The committed notebooks are teaching material: their stored outputs must come from a clean run.

Fast checks over the notebook files as committed (nothing is executed): small files, no absolute
paths of the machine that ran them, no errors, no stray warnings, no progress-bar fragments, no
blank or stray outputs, images sized for reading, and the profile stated near the top.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_FILE_BYTES = 600 * 1024
MAX_IMAGE_BYTES = 120 * 1024
# absolute paths of the machine that ran a notebook, and the reprs that carry them
ABSOLUTE = re.compile(r"(PosixPath\(|WindowsPath\(|(?<![\w.])/(root|home|tmp|work|Users|var|opt)/|[A-Z]:\\\\)")
BAR_FRAGMENT = re.compile(r"(\r|\d+%\|| it/s\]|s/it\])")
STRAY_RESULT = re.compile(r"(gpu_mb|<Figure size|^Text\(|^\[<matplotlib|<matplotlib\.)", re.M)


def colab_marker() -> str:
    """The first line of tools/colab.py's cell: it prints nothing outside Colab, and `colab.py write` leaves it
    unrun (no execution count, no outputs) when it changes it."""
    spec = importlib.util.spec_from_file_location("colab", ROOT / "tools" / "colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MARKER


def outputs(nb: dict):
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            yield i, out


def text_of(out: dict) -> str:
    if out["output_type"] == "stream":
        text = out["text"]
    else:
        text = out.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, dict]:
    return request.param, json.loads(request.param.read_text())


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


def test_file_is_small(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_FILE_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"


def test_every_code_cell_ran_and_none_failed(notebook):
    path, nb = notebook
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    unrun = [c for c in code if not c.get("execution_count")]
    marker = colab_marker()
    assert all("".join(c["source"]).startswith(marker) and not c["outputs"] for c in unrun), \
        f"{path.name}: cells without an execution count"
    errors = [i for i, out in outputs(nb) if out["output_type"] == "error"]
    assert not errors, f"{path.name}: error outputs in cells {errors}"


def test_no_absolute_paths(notebook):
    path, nb = notebook
    bad = [(i, m.group(0)) for i, out in outputs(nb) if (m := ABSOLUTE.search(text_of(out)))]
    assert not bad, f"{path.name}: absolute paths in outputs: {bad}"


def test_no_progress_fragments_blank_or_stray_outputs(notebook):
    path, nb = notebook
    for i, out in outputs(nb):
        text = text_of(out)
        if out["output_type"] == "stream":
            assert text.strip(), f"{path.name} cell {i}: blank stream output"
            assert not BAR_FRAGMENT.search(text), f"{path.name} cell {i}: progress-bar fragment {text[:80]!r}"
        if out["output_type"] == "execute_result":
            assert not STRAY_RESULT.search(text), f"{path.name} cell {i}: stray return value {text[:80]!r}"


def test_nothing_on_stderr(notebook):
    """Warnings and notes print in the cell's own output, on one line (the missing-weights note too), so
    nothing shows as a red block that a learner would read as an error."""
    path, nb = notebook
    for i, out in outputs(nb):
        if out["output_type"] == "stream" and out["name"] == "stderr":
            lines = [ln for ln in text_of(out).splitlines() if ln.strip()]
            raise AssertionError(f"{path.name} cell {i}: stderr output {lines[:2]}")


def test_images_sized_for_reading(notebook):
    path, nb = notebook
    for i, out in outputs(nb):
        for kind in ("image/png", "image/jpeg"):
            img = out.get("data", {}).get(kind)
            if img:
                size = len(base64.b64decode("".join(img) if isinstance(img, list) else img))
                assert size < MAX_IMAGE_BYTES, f"{path.name} cell {i}: a {size:,}-byte image"


def test_profile_stated_near_the_top(notebook):
    path, nb = notebook
    head = [text_of(out) for i, out in outputs(nb) if i < 4]
    assert any(t.startswith("profile: ") for t in head), f"{path.name}: no profile line in the first cells"


def test_ends_with_what_to_try_next(notebook):
    path, nb = notebook
    last = nb["cells"][-1]
    text = "".join(last["source"]) if last["cell_type"] == "markdown" else ""
    assert text.startswith("## What to try next"), f"{path.name}: the last cell is not the 'What to try next' section"
    items = re.split(r"^- ", text, flags=re.M)[1:]  # each experiment with its continuation lines
    assert 3 <= len(items) <= 5, f"{path.name}: {len(items)} experiments, expected 3 to 5"
    assert all("`" in ln for ln in items), f"{path.name}: every experiment names its knob (in code quotes)"


def test_results_table_at_the_end(notebook):
    path, nb = notebook
    tail = "".join(text_of(out) for i, out in outputs(nb) if i >= len(nb["cells"]) - 6)
    assert "checks passed" in tail and "notebook_seconds" in tail, f"{path.name}: no results table at the end"
