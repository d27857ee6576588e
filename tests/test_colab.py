"""tools/colab.py: the notebooks' first code cell installs the project on Colab and does nothing elsewhere, and
the cell and the README's "Open in Colab" badges follow pyproject.toml's one setting of the repository's address."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CLONE = "/content/lesson7"


def colab_module():
    spec = importlib.util.spec_from_file_location("colab", ROOT / "tools" / "colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setting() -> tuple[str, str]:
    """(repository URL, ref), read here on their own rather than through tools/colab.py."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["project"]["urls"]["Repository"], project["tool"]["lesson7"]["colab-ref"]


@pytest.fixture
def recorded(monkeypatch):
    """Runs the cell with subprocess.run, os.chdir, os.path.isdir and sys.path faked; returns what it did."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(("run", cmd, kw)))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", path)))
    monkeypatch.setattr(sys, "path", list(sys.path))

    def run_cell(cloned: bool = False) -> list:
        real_isdir = os.path.isdir
        monkeypatch.setattr(os.path, "isdir", lambda p: cloned if p == CLONE else real_isdir(p))
        exec(compile(colab_module().cell_source(), "<colab cell>", "exec"), {})
        return calls

    return run_cell


def test_on_colab_the_cell_clones_installs_and_moves_into_the_notebooks(recorded, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    repo, ref = setting()
    calls = recorded()
    assert calls == [
        ("run", ["git", "clone", "--depth", "1", "--branch", ref, repo, CLONE], {"check": True}),
        ("run", [sys.executable, "-m", "pip", "install", "-q", "-e", CLONE], {"check": True}),
        ("chdir", CLONE + "/notebooks"),
    ]
    assert sys.path[0] == CLONE  # helpers imports in the running kernel, without a restart


def test_on_colab_a_second_run_does_not_clone_again(recorded, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    calls = recorded(cloned=True)
    assert [c[1][:3] for c in calls if c[0] == "run"] == [[sys.executable, "-m", "pip"]]


def test_elsewhere_the_cell_does_nothing(recorded, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    path_before = list(sys.path)
    assert recorded() == []
    assert sys.path == path_before


def test_the_cell_is_short_plain_python_with_the_setting():
    text = colab_module().cell_source()
    repo, ref = setting()
    lines = text.splitlines()
    assert lines[0] == colab_module().MARKER and len(lines) <= 15
    assert all(len(ln) < 120 for ln in lines)
    assert f'"{repo}"' in text and f'"{ref}"' in text
    assert not re.search(r"^\s*[!%]", text, re.M), "no IPython magics: the cell must run as plain Python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebooks_first_code_cell_is_the_template(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == colab_module().cell_source(), \
        f"{path.name}: run python tools/colab.py write"
    assert "from helpers" not in "".join(code[0]["source"]) and "helpers" in "".join(code[1]["source"])


def test_check_command_agrees():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "colab.py"), "check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_write_inserts_updates_and_moves_the_cell(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    colab = colab_module()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"),
                                         nbformat.v4.new_code_cell("import helpers", execution_count=1)])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert colab.write_one(path) and not colab.write_one(path)  # inserted, then left alone
    cells = nbformat.read(path, as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code"]
    assert cells[1].source == colab.cell_source() and cells[1].execution_count is None and cells[1].outputs == []
    assert cells[2].source == "import helpers"
    monkeypatch.setattr(colab, "settings", lambda: ("https://github.com/someone/else", "v2"))  # the setting changed
    assert colab.write_one(path)
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 3 and '"https://github.com/someone/else", "v2"' in cells[1].source


def test_readme_badges_follow_the_setting():
    repo, ref = setting()
    owner_name = repo.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)", readme)
    expected = [f"https://colab.research.google.com/github/{owner_name}/blob/{ref}/notebooks/{p.name}"
                for p in NOTEBOOKS]
    assert sorted(links) == expected, "README's Open in Colab links: python tools/colab.py links prints them"
    badge = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    for path, link in zip(NOTEBOOKS, expected):  # each in its notebook's row of the table
        row = next(ln for ln in readme.splitlines() if ln.startswith("| ") and f"(notebooks/{path.name})" in ln)
        assert row.endswith(f"{badge}({link}) |"), row[-200:]


def test_the_address_is_written_once():
    repo, _ = setting()
    files = [*ROOT.glob("*.*"), ROOT / "Makefile", *ROOT.glob(".ci/*"),
             *(p for folder in ("helpers", "tools", "tests", "benchmarks") for p in (ROOT / folder).glob("*.*"))]
    hits = [str(p.relative_to(ROOT)) for p in files if p.is_file() and repo in p.read_text(errors="ignore")]
    assert hits == ["pyproject.toml"], "the notebooks' cell and the README's badges are made from pyproject.toml"
