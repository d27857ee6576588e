"""`make setup`'s first step: can this Python create the project's virtual environment?

    python3 tools/check_python.py        # silent, exit 0 when it can; else one line on stderr, exit 1

It checks the version against pyproject.toml's ``requires-python`` and, outside a virtual environment, that the
``venv`` module can install pip (Debian and Ubuntu ship that part apart, as ``python3-venv``). It runs on whatever
``python3`` a machine has, old ones included, so it keeps to Python 3.6 syntax and the standard library.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def minimum():
    """``requires-python = ">=X.Y.Z"`` from pyproject.toml, as a tuple of ints (no tomllib before 3.11)."""
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        found = re.search(r'^requires-python\s*=\s*">=\s*([0-9.]+)"', f.read(), re.M)
    return tuple(int(part) for part in found.group(1).split("."))


def problem():
    """What stops this interpreter from making the virtual environment, in one line; None when nothing does."""
    need, have = minimum(), tuple(sys.version_info[:3])
    dotted = ".".join(str(n) for n in need)
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    if have < need:
        if in_venv:  # a virtual environment made earlier, by an old Python
            fix = "remove %s and run make setup again with a newer one (make setup PYTHON=python3.12)" % sys.prefix
        else:
            fix = ("install Python %s or newer (python.org, or e.g. apt-get install python3.12 python3.12-venv), "
                   "then run make setup PYTHON=python3.12" % dotted)
        return "make setup needs Python %s or newer; %s is Python %s: %s" % (
            dotted, sys.executable, ".".join(str(n) for n in have), fix)
    if not in_venv:
        try:
            import ensurepip  # noqa: F401  (what `python -m venv` installs pip with)
            import venv  # noqa: F401
        except ImportError:
            return ("make setup needs Python's venv module, which %s lacks: on Debian or Ubuntu, "
                    "apt-get install python3-venv (python%d.%d-venv for this version)"
                    % (sys.executable, sys.version_info[0], sys.version_info[1]))
    return None


if __name__ == "__main__":
    said = problem()
    if said:
        sys.stderr.write(said + "\n")
        sys.exit(1)
