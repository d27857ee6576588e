"""Every name the notebooks, benchmarks and tools import from ``helpers`` exists: a helper renamed or folded away
breaks no caller unnoticed (nothing is executed but the imports of ``helpers`` itself)."""
import ast
import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py")])


def code_of(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def helpers_imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for each top-level ``from helpers... import name`` in the file (an import inside a function
    may be meant for another checkout, as benchmarks/data_paths.py's "before" path is)."""
    found = []
    for node in ast.parse(code_of(path)).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
            found += [(node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_helpers_names_exist(path):
    missing = []
    for module, name in helpers_imports(path):
        mod = importlib.import_module(module)
        if not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{path.name} imports names helpers does not have: {missing}"
