"""City and national scale: partitioned GeoParquet, and validation on Sedona agreeing with the local engine."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import shapely

import citygrid as cg
import faults
from citygrid import scale, synth
from citygrid.errors import AccessDenied, UsageError
from citygrid.registry import Registry


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """Two districts, into each of which another program wrote faulty components and grid cells
    (tests/faults.py, which knows nothing of either engine)."""
    regs = []
    for k, district in enumerate(synth.make_city(2, 10_000, seed=3)):
        registered, spare = faults.split(district, 0.25, seed=3 + k)
        path = tmp_path_factory.mktemp(f"district{k}") / "registry.gpkg"
        Registry.create(path, district=dataclasses.replace(district, components=registered))
        case, grid_faults = faults.registry_case(district, registered, spare, per_shape=3, seed=4 + k)
        faults.write_into(path, case, grid_faults, district.grid)
        regs.append(cg.open_registry(path))
    return regs


@pytest.fixture(scope="module")
def faulty(city):
    return city[0]


@pytest.fixture(scope="module")
def dataset(faulty, tmp_path_factory):
    return scale.export_dataset(faulty, tmp_path_factory.mktemp("dataset") / "pingshan")


@pytest.fixture(scope="module")
def city_dataset(city, tmp_path_factory):
    return scale.export_dataset(city, tmp_path_factory.mktemp("dataset") / "shenzhen")


@pytest.fixture(scope="module")
def spark():
    required = bool(os.environ.get("CITYGRID_REQUIRE_SEDONA"))  # .ci/run sets it: never skipped there
    try:
        import sedona.spark  # noqa: F401
    except ImportError:
        (pytest.fail if required else pytest.skip)("pip install 'citygrid[scale]' (.ci/run installs it)")
    if required and not os.environ.get("CITYGRID_SEDONA_JARS"):
        pytest.fail("CITYGRID_SEDONA_JARS is not set: .ci/run fetches Sedona's jars with Maven")
    session = scale.sedona_session("local[2]")
    yield session
    session.stop()


@pytest.mark.slow
def test_the_dataset_is_hive_partitioned_geoparquet_1_1_with_a_bbox_covering(faulty, dataset):
    parts = sorted(dataset.glob("admin_code=440310/street_code=*/category=*/part-0.parquet"))
    assert len(parts) >= 100
    geo = json.loads(pq.read_schema(parts[0]).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "bbox" in geo["columns"]["geometry"]["covering"]
    back = scale.read_dataset(dataset)
    current = faulty.components.reset_index(drop=True)
    assert back["component_id"].tolist() == current["component_id"].tolist()  # rows in registry order
    wkt = [shapely.to_wkt(g.geometry.to_numpy(), rounding_precision=-1) for g in (back, current)]
    assert (wkt[0] == wkt[1]).all()  # faulty ones too: NaN, empty, bow-ties
    assert set(back["street_code"].dropna()) <= set(faulty.district.streets["code"])
    with pytest.raises(UsageError, match="not empty"):
        scale.export_dataset(faulty, dataset)
    with pytest.raises(UsageError, match="two registries of one district"):
        scale.export_dataset([faulty, faulty], dataset.parent / "twice")


def test_a_dataset_opens_as_a_read_only_registry(dataset, faulty):
    reg = cg.open_registry(dataset)
    assert reg.admin_code == "440310" and len(reg.components) == len(faulty.components)
    assert len(reg.query(category="0104")) == len(faulty.query(category="0104"))
    with pytest.raises(AccessDenied, match="read-only"):
        reg.ingest(faulty.components.head(1), source="x")


def test_a_dataset_says_it_keeps_no_history(dataset, faulty):
    """A dataset holds the components as exported: history and as_of say so in one line (they raised a bare
    KeyError and gave the batches table's columns)."""
    reg = cg.open_registry(dataset)
    some = faulty.components["component_id"].iloc[0]
    for ask in (lambda: reg.history(some), lambda: reg.as_of("2030-01-01")):
        with pytest.raises(cg.UsageError, match="keeps the components as they were exported, not their history"):
            ask()


@pytest.mark.slow
def test_sedona_finds_what_the_local_engine_finds_row_by_row_in_a_two_district_city(city, city_dataset, spark):
    expected = set()
    for reg in city:
        local = reg.validate().issues
        local = local[local["rule"].isin(scale.SEDONA_RULES)]
        expected |= {(reg.admin_code, rule, str(i)) for rule, i in zip(local["rule"], local["component_id"])}
    report = scale.check(city_dataset, engine="sedona", spark=spark)
    issues = report.issues
    found = set(zip(issues["admin_code"], issues["rule"], issues["component_id"].astype(str)))
    assert {a for a, _, _ in expected} == {"440310", "440307"}
    assert found == expected
    rows = issues.set_index(["admin_code", "component_id", "rule"])["row"]  # the row named is the component's
    for reg in city:
        positions = dict(zip(reg.components["component_id"], range(1, len(reg.components) + 1)))
        mine = rows.loc[reg.admin_code]
        assert all(positions[cid] == row for (cid, rule), row in mine.items()
                   if cid in positions and rule != "id.duplicate")  # a repeated id: the later row
    assert report.checked == sum(len(r.components) for r in city) and not report.ok


def test_the_duplicate_search_uses_a_spatial_or_cell_join_not_a_hash_join_on_the_category(dataset, spark):
    """A category equality inside the distance join makes Spark hash-join on it with the distance as a
    filter: quadratic within a category. The plans must show the tolerance cells and Sedona's join."""
    plans = scale.duplicate_plans(spark, dataset)
    points = plans["points"]
    assert "SortMergeJoin [admin_code" in points or "BroadcastHashJoin [admin_code" in points
    assert "gx" in points.split("Join", 1)[1].split("]", 1)[0]  # the cell is a join key
    assert "DistanceJoin" in plans["shapes"] or "RangeJoin" in plans["shapes"]
    assert "category" not in plans["shapes"].split("Join", 1)[1].split("\n", 1)[0]


@pytest.mark.slow
def test_cli_export_partitioned_and_check(faulty, tmp_path, spark):
    out = tmp_path / "dataset"
    env = {**os.environ, "CITYGRID_LANG": "en"}
    made = subprocess.run([sys.executable, "-m", "citygrid.cli", "export", "-r", str(faulty.path), "-o", str(out),
                           "--partitioned", "--json"], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["files"] == [str(out)]
    local = subprocess.run([sys.executable, "-m", "citygrid.cli", "check", str(out), "--json"],
                           capture_output=True, text=True, env=env)
    assert local.returncode == 1 and json.loads(local.stdout)["issues"]
    on_sedona = subprocess.run([sys.executable, "-m", "citygrid.cli", "check", str(out), "--engine", "sedona",
                                "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert on_sedona.returncode == 1, on_sedona.stderr[-2000:]
    said = json.loads(on_sedona.stdout)
    rules = {i["rule"] for i in said["issues"]}
    assert rules <= set(scale.SEDONA_RULES) and "topology.duplicate_feature" in rules
    wrong = subprocess.run([sys.executable, "-m", "citygrid.cli", "check", str(out), "--engine", "hadoop"],
                           capture_output=True, text=True, env=env)
    assert wrong.returncode == 2 and "--engine" in wrong.stderr
    assert Path(out / "_citygrid.json").is_file()


@pytest.mark.slow
def test_the_docs_spark_submit_script_runs_as_written(dataset, faulty, tmp_path):
    """The docs' script for a cluster (docs/guide/city-scale.md), run by spark-submit (local[2], the jars .ci/run
    fetched)."""
    import re

    import geopandas as gpd
    import pyspark

    jars = sorted(Path(os.environ.get("CITYGRID_SEDONA_JARS", "/nonexistent")).glob("*.jar"))
    if not jars:
        (pytest.fail if os.environ.get("CITYGRID_REQUIRE_SEDONA") else pytest.skip)("CITYGRID_SEDONA_JARS has no jars")
    page = (Path(__file__).parents[1] / "docs" / "guide" / "city-scale.md").read_text(encoding="utf-8")
    script = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "# check_city.py" in b)
    submit = next(b for b in re.findall(r"```\n(spark-submit.*?)```", page, re.S))
    assert "--packages org.apache.sedona:sedona-spark-shaded-3.5_2.12:1.8.1" in submit
    report = tmp_path / "city-report.gpkg"
    (tmp_path / "check_city.py").write_text(
        script.replace("/mnt/share/city-report.gpkg", str(report)).replace("/mnt/share/city", str(dataset)),
        encoding="utf-8")
    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "local[2]",
               "--jars", ",".join(map(str, jars)), "check_city.py"]  # --jars for --packages: no network in CI
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    found = gpd.read_file(report, layer="issues")  # beside it: the layer_styles QGIS reads
    expected = faulty.validate(rules=list(scale.SEDONA_RULES)).issues
    assert sorted(zip(found["component_id"], found["rule"])) == sorted(zip(expected["component_id"], expected["rule"]))
    assert "topology.duplicate_feature" in done.stdout


def test_each_sedona_rule_sits_beside_its_rule():
    """One source per rule: the Spark SQL of a rule is in the module of its family, and SEDONA_RULES derives from it."""
    from citygrid.validation._sedona import SEDONA

    assert scale.SEDONA_RULES == tuple(SEDONA) and set(SEDONA) <= set(cg.RULES) and len(SEDONA) == 9
    for code, find in SEDONA.items():
        assert find.__module__ == f"citygrid.validation.{cg.RULES[code].family}", code
