"""The package's architecture, kept by import-linter's contracts (pyproject.toml, [tool.importlinter]).

The contracts are checked on the package as it is, and on a copy into which a cycle or a
layer breach is planted inside a function body, where a reader of module-level imports
would not see it: lint-imports must fail on those.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import citygrid as cg

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(cg.__file__).resolve().parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path) -> subprocess.CompletedProcess:
    """lint-imports on the package under `src`, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_contracts_hold():
    done = _lint(SRC.parent)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "planted", "broken"), [
    # the cycle the validation engine once hid: _engine used geom's helper, geom builds on _engine
    ("validation/_engine.py", "from citygrid.validation.geom import gcj02_shift", "No cycles"),
    ("registry.py", "from citygrid.scale import check", "layers"),
    ("validation/topology.py", "from citygrid.registry import open_registry", "never reach the registry"),
])
def test_a_breach_planted_in_a_function_body_breaks_a_contract(tmp_path, module, planted, broken):
    copy = tmp_path / "citygrid"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "assets", "data"))
    with open(copy / module, "a", encoding="utf-8") as out:
        out.write(f"\n\ndef _planted():\n    {planted}\n    return None\n")
    done = _lint(tmp_path)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "BROKEN" in done.stdout and broken in done.stdout.replace("\n", " "), done.stdout[-2000:]


def test_ruff_with_the_complexity_and_argument_limits_passes():
    """C901 (complexity at most 15) and PLR0913 (at most 8 arguments) are among the rules (pyproject.toml)."""
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "src", "tests", "benchmarks", "scripts"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_package_says_it_is_typed_and_carries_its_licence():
    assert (SRC / "py.typed").is_file()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


@pytest.mark.slow
def test_mypy_finds_nothing_in_the_package():
    """The type checker on ``src/citygrid`` (pyproject.toml, [tool.mypy]): clean, so a type error fails CI."""
    mypy = Path(sys.executable).with_name("mypy")
    done = subprocess.run([str(mypy), "--cache-dir", str(ROOT / ".mypy_cache")], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
