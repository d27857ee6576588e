"""Every public function and class of ``helpers`` says in its docstring which notebook introduces it."""
import ast
import re
from pathlib import Path

import pytest

MODULES = sorted((Path(__file__).parent.parent / "helpers").glob("*.py"))
NAMES_A_NOTEBOOK = re.compile(r"notebooks?\s+0[1-7]")


def without_notebook(path: Path) -> list[str]:
    """The module-level public functions and classes of ``path`` whose docstring names no notebook."""
    tree = ast.parse(path.read_text())
    return [f"{n.name} (line {n.lineno})" for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
            and not NAMES_A_NOTEBOOK.search(ast.get_docstring(n) or "")]


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_public_helpers_name_their_notebook(path):
    missing = without_notebook(path)
    assert not missing, f"{path.name}: no 'notebook 0N' in the docstring of {', '.join(missing)}"


def test_the_check_sees_a_missing_notebook(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def named():\n    """Does a thing (notebook 03)."""\n\n\ndef unnamed():\n    """Does a thing."""\n')
    assert without_notebook(bad) == ["unnamed (line 5)"]
