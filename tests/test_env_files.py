"""environment.yml's pip section must list exactly requirements.txt's pins (conda is not testable here)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _conda_pip_section() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    section = []
    for line in lines[start + 1:]:
        if not line.startswith("      - "):
            break
        section.append(line.strip()[2:])
    return section


def test_environment_yml_pins_match_requirements():
    pip = _conda_pip_section()
    assert [p for p in pip if p != "-e ."] == _requirements()
    assert "-e ." in pip, "environment.yml must install helpers (editable)"


def test_environment_yml_uses_python_311():
    assert "  - python=3.11" in (ROOT / "environment.yml").read_text().splitlines()


def test_every_requirement_is_pinned_exactly():
    for req in _requirements():
        assert "==" in req, f"{req} is not pinned"
    assert "torch==2.14.1" in _requirements() and "torchvision==0.29.1" in _requirements()


def _pyproject() -> dict:
    import tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    from packaging.requirements import Requirement
    return Requirement(req).name.lower().replace("_", "-")


def _imported_modules() -> set[str]:
    """Top-level names of every module that helpers/ imports, at module level or inside functions."""
    import ast
    names = set()
    for path in (ROOT / "helpers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_of_helpers_is_a_declared_dependency():
    import sys
    from importlib.metadata import packages_distributions
    declared = {_name(r) for r in _pyproject()["project"]["dependencies"]}
    dists = packages_distributions()
    third_party = sorted(m for m in _imported_modules() - set(sys.stdlib_module_names) - {"helpers", "__future__"})
    assert third_party, "the scan found no imports at all"
    for module in third_party:
        assert module in dists, f"helpers imports {module}, which is not installed"
        assert {_name(d) for d in dists[module]} & declared, \
            f"helpers imports {module} ({', '.join(dists[module])}): add it to pyproject.toml's dependencies"


def test_pyproject_bounds_admit_the_pinned_versions():
    from packaging.requirements import Requirement
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.11.4", "tarfile's extraction filter needs Python 3.11.4"
    pins = {_name(r): r.split("==")[1] for r in _requirements()}
    for req in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        r = Requirement(req)
        if _name(req) in pins:
            assert r.specifier.contains(pins[_name(req)]), f"{req} excludes the pinned {pins[_name(req)]}"
    named = {_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]}
    assert {"torch", "torchvision", "nbval", "pytest"} <= named
