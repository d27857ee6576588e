"""The Makefile gives each target its own environment, and `make setup` stops on a Python it cannot use.

Each target runs against a fake virtual environment (``VENV=<tmp>``): its ``bin/python`` and ``bin/jupyter`` are
stubs that print the environment they were started with, and its up-to-date stamp keeps ``setup`` from installing
anything. Nothing real runs: no notebook, no pip, no JupyterLab.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")

# What each stub prints: its name, then the two settings (``unset`` where the variable is not set at all).
STUB = """#!/bin/sh
echo "STUB $(basename "$0") HELPERS_PROFILE=${HELPERS_PROFILE-unset} HELPERS_PROGRESS=${HELPERS_PROGRESS-unset}"
"""
# (HELPERS_PROFILE, HELPERS_PROGRESS) each target's commands see when the user sets neither
EXPECTED = {
    "run": ("small", "none"),  # the committed outputs are the small profile's, on any machine
    "test": ("small", "none"),  # nbval compares against those outputs
    "test-canonical": ("small", "none"),  # the same checked outputs, from canonical-shaped archives
    "standin": ("small", "none"),  # stand-in ImageNet weights, small profile
    "smoke": ("unset", "none"),  # benchmarks/notebook_times.py --profile full sets its own
    "times": ("unset", "none"),  # --profile $(PROFILE)
    "unit": ("unset", "none"),  # pytest alone, as before
    "lab": ("unset", "unset"),  # a learner's kernels: live bars (auto), the profile by device
    "lab-check": ("unset", "unset"),  # tools/lab_check.py starts JupyterLab with the environment make lab gives
}


def write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "jupyter"):
        write_script(venv / "bin" / name, STUB)
    stamp = venv / ".installed"  # the Makefile's $(STAMP): newer than requirements.txt and pyproject.toml
    stamp.touch()
    newer = max(time.time(), *((ROOT / name).stat().st_mtime + 1 for name in ("requirements.txt", "pyproject.toml")))
    os.utime(stamp, (newer, newer))
    return venv


def clean_env(**extra: str) -> dict:
    """This process's environment without the settings under test, nor the make that may be running pytest."""
    drop = ("HELPERS_PROGRESS", "HELPERS_PROFILE", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "PYTHON")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "-C", str(ROOT), "--no-print-directory", *args], env=env or clean_env(),
                          capture_output=True, text=True, timeout=60)


def stub_lines(target: str, venv: Path, env: dict | None = None) -> list[str]:
    # VENV always points at the fake one: a target must never reach the real notebooks or pip from here
    done = make(target, f"VENV={venv}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("STUB ")]
    assert lines, f"make {target} started neither python nor jupyter:\n{done.stdout}{done.stderr}"
    return lines


@pytest.mark.parametrize("target", EXPECTED)
def test_each_target_gets_its_profile_and_progress(target, fake_venv):
    profile, progress = EXPECTED[target]
    for line in stub_lines(target, fake_venv):
        assert f"HELPERS_PROFILE={profile} HELPERS_PROGRESS={progress}" in line, f"make {target}: {line}"


def test_make_lab_kernels_draw_bars(fake_venv):
    """The regression of issue 29: a global ``export HELPERS_PROGRESS ?= none`` reached JupyterLab's kernels."""
    [line] = stub_lines("lab", fake_venv)
    assert line.startswith("STUB jupyter "), line
    assert "HELPERS_PROGRESS=none" not in line


def test_a_users_own_progress_setting_wins(fake_venv):
    for target in ("test", "lab"):
        for line in stub_lines(target, fake_venv, env=clean_env(HELPERS_PROGRESS="text")):
            assert "HELPERS_PROGRESS=text" in line, f"make {target}: {line}"


def test_lab_check_starts_jupyterlab_with_the_environment_make_lab_gives(tmp_path, monkeypatch):
    """tools/lab_check.py counts the bars a learner sees: it must not turn them on itself, or it would pass
    whatever the Makefile does to `make lab`'s kernels."""
    spec = importlib.util.spec_from_file_location("lab_check", ROOT / "tools" / "lab_check.py")
    lab_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab_check)
    started = {}
    monkeypatch.setattr(lab_check.subprocess, "Popen", lambda cmd, env, **kw: started.update(cmd=cmd, env=env))
    monkeypatch.setattr(lab_check.urllib.request, "urlopen", lambda *args, **kw: None)  # "the server is up"
    monkeypatch.setenv("HELPERS_PROGRESS", "none")
    (tmp_path / "notebooks").mkdir()
    lab_check.start_lab(tmp_path / "notebooks", 8888, "token", smoke=True)
    assert started["env"]["HELPERS_PROGRESS"] == "none"  # as it came: make lab-check no longer sets none
    assert started["env"]["HELPERS_SMOKE"] == "1"


# --- make setup: the Python check, before the virtual environment and pip

SITE_OLD = "import sys\nsys.version_info = (3, 10, 12, 'final', 0)\n"
SITE_NO_ENSUREPIP = "import sys\nsys.modules['ensurepip'] = None  # what Debian's python3 without python3-venv gives\n"


def base_python() -> str:
    """The interpreter this environment was made from (outside any virtual environment)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def fake_python(tmp_path: Path, site: str) -> Path:
    """A ``python3`` that is the real one with ``sitecustomize`` faking what ``site`` says."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(site)
    stub = tmp_path / "python3"
    write_script(stub, f'#!/bin/sh\nPYTHONPATH="{folder}" exec "{base_python()}" "$@"\n')
    return stub


@pytest.mark.parametrize("site, words", [(SITE_OLD, ("3.10.12", "3.11.4")), (SITE_NO_ENSUREPIP, ("venv",))],
                         ids=["python-3.10", "no-venv-module"])
def test_setup_stops_at_once_on_a_python_it_cannot_use(tmp_path, site, words):
    venv = tmp_path / "venv"
    done = make("setup", f"VENV={venv}", f"PYTHON={fake_python(tmp_path, site)}")
    assert done.returncode != 0
    said = [ln for ln in done.stderr.splitlines() if not ln.startswith("make: ")]
    assert len(said) == 1, done.stderr
    assert all(w in said[0] for w in words), said[0]
    assert not venv.exists(), "the virtual environment was created (pip would have started)"
    assert "pip" not in done.stdout


def run_check(python: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(ROOT / "tools" / "check_python.py")], capture_output=True, text=True,
                          timeout=60, env=clean_env(**env))


@pytest.mark.parametrize("python", [base_python(), sys.executable], ids=["base", "this-venv"])
def test_the_real_interpreter_passes(python):
    has_venv = subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True, env=clean_env())
    if python != sys.executable and has_venv.returncode != 0:
        pytest.skip(f"{python} has no venv module here (a virtualenv- or uv-made environment's base)")
    done = run_check(python)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_an_old_virtual_environment_is_named(tmp_path):
    """A .venv made earlier by an old Python: the check runs with it and says to remove it."""
    venv = tmp_path / "venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITE_OLD)
    done = run_check(str(venv / "bin" / "python"), PYTHONPATH=str(tmp_path / "site"))
    assert done.returncode == 1
    assert "3.10.12" in done.stderr and str(venv) in done.stderr and len(done.stderr.splitlines()) == 1


def test_check_python_reads_the_minimum_from_pyproject():
    import tomllib
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    source = (ROOT / "tools" / "check_python.py").read_text()
    assert spec == ">=3.11.4" and "3.11.4" not in source, "the minimum is written once, in pyproject.toml"
