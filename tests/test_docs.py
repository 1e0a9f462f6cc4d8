"""The docs site builds with warnings as errors, in English and Chinese, and covers every command and rule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import citygrid as cg

ROOT = Path(__file__).resolve().parents[1]
SPHINX = Path(sys.executable).with_name("sphinx-build")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["en", "zh"])
def site(request, tmp_path_factory) -> tuple[str, Path]:
    pytest.importorskip("sphinx")
    source = ROOT / "docs" / ("zh" if request.param == "zh" else "")
    out = tmp_path_factory.mktemp(f"docs-{request.param}")
    done = subprocess.run([str(SPHINX), "-W", "--keep-going", "-q", "-b", "html", str(source), str(out)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return request.param, out


def _text(out: Path) -> str:
    """The words of a page, or of every page of a site."""
    pages = [out] if out.is_file() else [p for p in out.rglob("*.html") if "_static" not in p.parts]
    return re.sub(r"<[^>]+>", " ", "\n".join(p.read_text(encoding="utf-8") for p in pages))


def test_every_command_and_rule_is_in_the_docs(site):
    language, out = site
    text = _text(out)
    from typer.main import get_command

    from citygrid.cli import app

    group = get_command(app)
    commands = [name for name in group.commands]
    commands += [f"map {name}" for name in group.commands["map"].commands]
    cli = (out / "reference" / "cli.html").read_text(encoding="utf-8")
    missing = [c for c in commands if c.split()[-1] not in re.findall(r"<h[2-4][^>]*>([\w-]+)<", cli)]
    assert missing == [], missing
    assert [code for code in cg.RULES if code not in text] == []
    if language == "zh":
        assert "没有坐标系信息" in text and "快速上手" in text  # the rules and the guide speak Chinese


def test_the_english_site_holds_the_guide_the_notebooks_and_the_latest_results(site):
    language, out = site
    if language != "en":
        pytest.skip("the Chinese site holds the user-facing pages only")
    notebooks = sorted(p.stem for p in (out / "guide" / "notebooks").glob("*.html"))
    assert notebooks == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    executed = (out / "guide" / "notebooks" / "01_catalog_and_district.html").read_text(encoding="utf-8")
    assert "136" in executed and "<img" in executed  # run at build time: outputs and the district plot
    performance = _text(out / "performance.html")
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    first_row = next(line for line in results.splitlines() if line.startswith("| ") and "---" not in line)
    assert first_row.split("|")[1].strip() in performance
    design = (out / "design" / "architecture.html").read_text(encoding="utf-8")
    assert "Where a new validation rule goes" in design and "SEDONA_RULES" in design


def test_the_readme_is_short_and_points_to_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 120
    assert "docs/guide/" in readme and "docs/design/" in readme
