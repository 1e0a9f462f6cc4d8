"""The README's Python block runs as written, on the sample it sets up, and gives what its comments say."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).parents[1]


def _python_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "import citygrid as cg" in b)


@pytest.mark.slow
def test_the_readme_python_block_runs_as_written(tmp_path, monkeypatch):
    import citygrid as cg

    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    language = cg.settings.language
    space: dict = {}
    try:
        exec(compile(_python_block(), "README.md", "exec"), space)
    finally:
        cg.settings.language = language
    reg, report, result = space["reg"], space["report"], space["result"]
    assert len(space["cat"]) == 136 and space["cat"]["上水井盖"].code == "0101"
    assert (result.accepted, result.created, result.updated, result.retired) == (True, 120, 57, 19)
    truth = pd.read_csv(ROOT / "data" / "batch_defects_truth.csv")
    errors = report.issues[report.issues["severity"] == "error"]
    assert sorted(zip(errors["row"], errors["rule"])) == sorted(zip(truth["row"], truth["truth"]))
    assert not report.ok and (tmp_path / "issues.html").stat().st_size > 1000
    found = cg.open_registry(tmp_path / "pingshan.gpkg")
    assert len(found.components) == 20_000 + 120 - 19
    assert found.components["component_id"].str.len().eq(17).all()  # migrated
    assert len(found.history("4403100104000483")) >= 2  # an old id, still found: its creation and its migration
    near = cg.open_registry(tmp_path / "pingshan.gpkg").owner_at(114.42550, 22.68354, crs="EPSG:4326", radius=10)
    assert near["category_name"].iloc[0] == "雨水箅子" and near["owner"].iloc[0] == "坪山区水务局"
    assert len(reg.as_of(space["loaded"])) == 20_000
    assert sorted(p.name for p in tmp_path.glob("maluan_*.shp")) == ["maluan_line.shp", "maluan_point.shp",
                                                                     "maluan_polygon.shp"]
    assert (tmp_path / "maps" / "index.html").exists() and (tmp_path / "broken.html").exists()
    assert os.path.getsize(tmp_path / "0101.html") > 10_000
