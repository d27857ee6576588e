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
