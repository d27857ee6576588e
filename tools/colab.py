"""The notebooks' Colab cell and the README's "Open in Colab" links, both made from one setting.

    .venv/bin/python tools/colab.py write   # insert or update the cell in every notebooks/*.ipynb
    .venv/bin/python tools/colab.py check   # exit 1 when a notebook's first code cell is not the template
    .venv/bin/python tools/colab.py links   # the README table's badge for each notebook

A notebook opened in Colab from GitHub arrives alone: no ``helpers``, no data folder. Its first code cell,
before the imports that need ``helpers``, clones the repository, installs it (editable) and moves into the
clone's ``notebooks/`` folder; anywhere else it does nothing. It is plain Python (``subprocess``, no ``!``
magics), so tests/test_colab.py can run it with Colab faked.

The repository's address is pyproject.toml's ``[project.urls] Repository``, written nowhere else. The ref the
cell clones is ``[tool.lesson7] colab-ref``, a branch (``main``): the commit a notebook comes from cannot be
written inside that commit (its hash depends on the notebook's text), so the cell names the branch it is
published on. ``write`` finds its own cell by the first line, ``MARKER``, and is the only thing that edits it.
"""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKER = "# On Colab: install this project (does nothing elsewhere)"
CELL_ID = "colab-install"
CLONE = "/content/lesson7"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
TEMPLATE = """{marker}
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    clone = {clone}
    if not os.path.isdir(clone):
        repo, ref = {repo}, {ref}
        subprocess.run(["git", "clone", "--depth", "1", "--branch", ref, repo, clone], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", clone], check=True)
    sys.path.insert(0, clone)  # so this session imports helpers without a restart
    os.chdir(clone + "/notebooks")  # the notebook's relative paths, as in a checkout"""


def settings() -> tuple[str, str]:
    """(repository URL, ref to clone), from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["project"]["urls"]["Repository"], project["tool"]["lesson7"]["colab-ref"]


def cell_source() -> str:
    """The Colab cell's text, filled in from pyproject.toml."""
    repo, ref = settings()
    return TEMPLATE.format(marker=MARKER, clone=json.dumps(CLONE), repo=json.dumps(repo), ref=json.dumps(ref))


def colab_url(notebook: str) -> str:
    """Colab's address for ``notebooks/<notebook>`` at the configured ref."""
    repo, ref = settings()
    owner_name = repo.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{ref}/notebooks/{notebook}"


def badge(notebook: str) -> str:
    """The README table's "Open in Colab" badge for ``notebooks/<notebook>`` (Markdown)."""
    return f"[![Open In Colab]({BADGE})]({colab_url(notebook)})"


def source_of(cell) -> str:
    return "".join(cell["source"])


def first_code_cell(cells: list):
    return next((c for c in cells if c["cell_type"] == "code"), None)


def write_one(path: Path) -> bool:
    """Put the template cell first among ``path``'s code cells; True when the file changed."""
    import nbformat
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    text = cell_source()
    ours = [c for c in nb.cells if c.cell_type == "code" and source_of(c).startswith(MARKER)]
    if ours and ours[0] is first_code_cell(nb.cells) and len(ours) == 1 and source_of(ours[0]) == text:
        return False
    cell = ours[0] if ours else nbformat.v4.new_code_cell(id=CELL_ID)
    if source_of(cell) != text:  # new or changed text: it has not run yet
        cell.update(source=text, outputs=[], execution_count=None)
    nb.cells = [c for c in nb.cells if not any(c is o for o in ours)]
    first = first_code_cell(nb.cells)
    nb.cells.insert(nb.cells.index(first) if first is not None else len(nb.cells), cell)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return True


def problems() -> list[str]:
    """One line per notebook whose first code cell is not the template's text."""
    text = cell_source()
    found = []
    for path in NOTEBOOKS:
        first = first_code_cell(json.loads(path.read_text())["cells"])
        if first is None or source_of(first) != text:
            found.append(f"{path.name}: its first code cell is not the Colab cell (python tools/colab.py write)")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if len(argv) == 1 else ""
    if command == "write":
        for path in NOTEBOOKS:
            print(f"{path.name}: {'written' if write_one(path) else 'up to date'}")
        return 0
    if command == "check":
        found = problems()
        print("\n".join(found) or f"{len(NOTEBOOKS)} notebooks carry the Colab cell")
        return 1 if found else 0
    if command == "links":
        for path in NOTEBOOKS:
            print(f"{path.name}: {badge(path.name)}")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
