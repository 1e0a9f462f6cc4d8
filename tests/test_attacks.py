"""An attacker's pass on the surfaces a district's files, a dataset, an event export and the terminal reach.

Each test does what the attacker did, and fails on the code before its fix: codes from data
never become code or a path, a registry without components stays usable, readers have limits,
and what the command prints is never read as markup. PostGIS attacks are in
``test_postgis_attacks.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from citygrid import scale, synth
from citygrid.backends import gpkg
from citygrid.dispatch import closing_figures
from citygrid.district_files import init_registry
from citygrid.errors import DistrictError, InputError
from citygrid.registry import Registry, open_registry

DATA = Path(__file__).parents[1] / "data"


def run(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200", "CITYGRID_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "citygrid.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=8, n_components=1_500, reserve=60)


@pytest.fixture
def reg(tmp_path, district):
    return Registry.create(tmp_path / "registry.gpkg", district=district)


# --- 1, 2, 6: datasets --------------------------------------------------------------------------

class NoSpark:
    """A Spark session that must never be used: a crafted dataset is refused before Spark reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"Spark was asked for {name!r}")


@pytest.mark.slow
def test_a_district_code_written_as_sql_never_reaches_spark(reg, tmp_path):
    folder = scale.export_dataset(reg, tmp_path / "dataset")
    meta = json.loads((folder / "_citygrid.json").read_text(encoding="utf-8"))
    evil = "440310' AS admin_code, java_method('java.nio.file.Files', 'createSymbolicLink') AS x --"
    meta["districts"] = {evil: meta["districts"]["440310"]}
    (folder / "_citygrid.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(DistrictError, match="not 6 digits"):
        scale.check(folder, engine="sedona", spark=NoSpark())
    with pytest.raises(DistrictError, match="not 6 digits"):
        open_registry(folder)
    done = run("check", folder, "--engine", "sedona")
    assert done.returncode == 2 and "not 6 digits" in done.stderr and "Traceback" not in done.stderr


def _edit_street_code(path: Path, code: str, n: int = 30) -> None:
    """An edit another program makes in the layer (as QGIS would): some components' street code."""
    conn = gpkg.connect(path)  # with the SQL functions GDAL gives the R-tree triggers
    with conn:
        conn.execute("UPDATE components_point SET street_code = ? WHERE fid IN "
                     "(SELECT fid FROM components_point LIMIT ?)", (code, n))
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("code", ["../../../x", "440310001/../../../y", "..", "坪山"])
def test_a_partition_folder_is_never_named_by_a_code_from_data(reg, tmp_path, code):
    """The value is kept, escaped as Hive does (``%2F``): the dataset holds every component, inside it."""
    _edit_street_code(reg.path, code)
    out = tmp_path / "a" / "b" / "dataset"
    before = {p for p in tmp_path.rglob("*")}
    scale.export_dataset(open_registry(reg.path), out)
    written = {p for p in tmp_path.rglob("*") if not p.name.startswith("registry.gpkg")} - before
    inside = [p.resolve().is_relative_to(out.resolve()) or out.resolve().is_relative_to(p.resolve()) for p in written]
    assert written and all(inside)  # the dataset, and the folders made to hold it
    back = scale.read_dataset(out)
    assert len(back) == len(reg.components) and (back["street_code"] == code).sum() == 30
    done = run("export", "-r", reg.path, "-o", tmp_path / "cli", "--partitioned")
    assert done.returncode == 0 and len(scale.read_dataset(tmp_path / "cli")) == len(reg.components)


def test_a_symlink_in_a_dataset_is_never_followed(reg, tmp_path):
    folder = scale.export_dataset(reg, tmp_path / "dataset")
    part = next(p for p in folder.rglob("part-0.parquet"))
    (part.parent / "root").symlink_to("/", target_is_directory=True)
    (folder / "_district" / "440310" / "streets.parquet").rename(tmp_path / "streets.parquet")
    (folder / "_district" / "440310" / "streets.parquet").symlink_to(tmp_path / "streets.parquet")
    opened = open_registry(folder)
    assert len(opened.components) == len(reg.components)
    problems = opened.verify()
    assert len([p for p in problems if "symbolic link" in p]) == 2 and len(problems) == 2
    with pytest.raises(DistrictError, match="symbolic links"):
        scale.check(folder, engine="sedona", spark=NoSpark())


# --- 3: a registry without components -----------------------------------------------------------

def test_a_registry_without_components_opens_and_takes_batches(tmp_path, district):
    empty = copy.copy(district)
    empty.components = district.components.iloc[0:0]
    path = tmp_path / "empty.gpkg"
    Registry.create(path, district=empty)
    for _ in range(3):
        assert len(open_registry(path).components) == 0
        stats = run("stats", "-r", path, "--json")
        assert stats.returncode == 0 and json.loads(stats.stdout) == [], stats.stderr
    batch = synth.make_batch(district, district.components.iloc[0:0], new=20, updated=0, retired=0)
    batch.to_file(tmp_path / "batch.gpkg", layer="batch")
    done = run("ingest", tmp_path / "batch.gpkg", "-r", path, "--source", "first")
    assert done.returncode == 0, done.stderr
    for _ in range(2):
        assert len(open_registry(path).components) == 20
    assert run("ingest", tmp_path / "batch.gpkg", "-r", path, "--source", "again").returncode == 1  # duplicates


# --- 11: codes of any form in a district's own files -------------------------------------------

def _files(d, out: Path, streets) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    streets.to_file(out / "streets.gpkg")
    d.communities.to_file(out / "communities.gpkg")
    d.grid.to_file(out / "grid.gpkg")
    d.units.rename(columns={"name": "name_zh"}).to_csv(out / "units.csv", index=False)
    return {"streets": out / "streets.gpkg", "communities": out / "communities.gpkg", "grid": out / "grid.gpkg",
            "units": out / "units.csv"}


@pytest.mark.parametrize("codes", [["../x"] * 6, ["44031000A"] * 6, [""] * 6, ["4403100"] * 6])
def test_init_refuses_codes_of_another_form_in_one_line(tmp_path, district, codes):
    streets = district.streets.assign(code=codes[:len(district.streets)])
    files = _files(district, tmp_path / "files", streets)
    target = tmp_path / "r.gpkg"
    done = run("init", target, *[a for k, v in files.items() for a in (f"--{k}", v)])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert ("code" in done.stderr) and not target.exists()


def test_init_reads_full_width_digits_as_digits(tmp_path, district):
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    streets = district.streets.assign(code=district.streets["code"].str.translate(wide))
    files = _files(district, tmp_path / "files", streets)
    reg, _ = init_registry(tmp_path / "r.gpkg", **{k: str(v) for k, v in files.items()})
    assert reg.district.streets["code"].tolist() == district.streets["code"].tolist()


def test_a_district_code_of_another_form_is_refused(tmp_path, district):
    files = _files(district, tmp_path / "files", district.streets)
    with pytest.raises(DistrictError, match="not 6 digits"):
        init_registry(tmp_path / "r.gpkg", code="../../x",
                                        **{k: str(v) for k, v in files.items()})


def test_opening_a_registry_whose_codes_were_tampered_with_is_refused(reg):
    conn = gpkg.connect(reg.path)
    with conn:
        conn.execute("UPDATE streets SET code = '../../evil' WHERE fid = 1")
    conn.close()
    with pytest.raises(DistrictError, match="street code"):
        open_registry(reg.path).district  # noqa: B018



# --- 9: verify reports before anything is repaired ---------------------------------------------

def _tamper(path: Path, *statements: str) -> None:
    conn = gpkg.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


@pytest.mark.parametrize(("statements", "said"), [
    (["DROP TRIGGER components_point_update_revision"], "guard missing: components_point_update_revision"),
    (["DROP TRIGGER rtree_components_point_geom_insert"], "rtree_components_point_geom_insert is missing"),
    (["DELETE FROM citygrid_history WHERE change_id = (SELECT max(change_id) FROM citygrid_history "
      "WHERE action = 'update')"], "history: its rows are not those citygrid wrote"),
    (["UPDATE citygrid_history SET new_value = '完好' WHERE change_id = (SELECT max(change_id) "
      "FROM citygrid_history WHERE field = 'status')"], "history: its rows are not those citygrid wrote"),
    (["INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, new_value, changed_at) "
      "SELECT 2, component_id, 'update', 'owner', 'a', 'b', '2026-12-01T00:00:00' FROM components_point LIMIT 1"],
     "disagrees with their versions"),
])
def test_verify_reports_tampering_before_anything_is_repaired(reg, district, statements, said):
    batch = synth.make_batch(district, reg.components, new=20, updated=40, retired=5, seed=2)
    assert reg.ingest(batch, source="week").accepted
    assert run("verify", reg.path).returncode == 0
    _tamper(reg.path, *statements)
    done = run("verify", reg.path)
    assert done.returncode == 1 and said in done.stdout, done.stdout + done.stderr
    again = run("verify", reg.path)  # the first verify (an open) repaired nothing
    assert again.returncode == 1 and said in again.stdout


# --- 10: readers have limits -------------------------------------------------------------------

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 ** 3, 1024 ** 3))  # 1 GiB of address space, the whole process
sys.argv = ["citygrid", *sys.argv[1:]]
from citygrid.cli import app
app()
"""


def _limited(*args) -> subprocess.CompletedProcess:
    """The command under a memory cap: a refusal in one line, never a MemoryError."""
    env = {**os.environ, "COLUMNS": "200", "CITYGRID_LANG": "en"}
    return subprocess.run([sys.executable, "-c", LIMITED, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def _workbook_bomb(path: Path) -> None:
    """A workbook of a few hundred kilobytes that unpacks to some hundred megabytes."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["经度", "纬度"])
    for k in range(3_000):
        sheet.append(["a" * 30_000 + str(k), 22.7])
    book.save(path)


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p.write_text(",".join(["a"] * 150_000) + "\n"), "columns in its first line"),
    (lambda p: p.write_text("经度,纬度\n" + "1" * 2_000_000 + ",2\n"), "line of 2,000,002 bytes"),
    (lambda p: p.write_bytes(b"\x00" * (200 * 1024 * 1024)), "NUL bytes"),
    (lambda p: os.truncate(p.write_bytes(b"") or p, 2 * 1024 ** 3 + 10), "NUL bytes"),  # sparse: no disk used
    (lambda p: _workbook_bomb(p.with_suffix(".xlsx")), "unpacks from"),
])
def test_a_hostile_table_is_refused_in_one_line_within_a_memory_cap(tmp_path, make, said):
    path = tmp_path / "batch.csv"
    make(path)
    path = path if path.exists() else path.with_suffix(".xlsx")
    done = _limited("validate", path)
    assert done.returncode == 2, done.stderr[-500:]
    assert said in done.stderr and "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_max_rows_refuses_a_bigger_table(tmp_path):
    rows = pd.read_csv(DATA / "batch_clean.csv", dtype=str)
    rows.to_csv(tmp_path / "batch.csv", index=False)
    refused = run("validate", tmp_path / "batch.csv", "--max-rows", 50)
    assert refused.returncode == 2 and "more than 50 rows; give a higher --max-rows" in refused.stderr
    assert run("validate", tmp_path / "batch.csv", "--max-rows", len(rows)).returncode in (0, 1)


# --- 8: text from data is never markup ---------------------------------------------------------

def test_markup_in_names_paths_and_messages_is_printed_as_it_is(reg, tmp_path):
    _tamper(reg.path, "UPDATE components_point SET street = '马峦[/]街道' WHERE fid IN "
                      "(SELECT fid FROM components_point LIMIT 5)")
    stats = run("stats", "-r", reg.path, "--by", "street")
    assert stats.returncode == 0 and "马峦[/]街道" in stats.stdout, stats.stderr
    folder = tmp_path / "x[/b]y[red]"
    folder.mkdir(parents=True)  # "[/b]" holds a slash: two folders
    missing = run("validate", folder / "batch[/].csv")
    assert missing.returncode == 2 and "x[/b]y[red]" in missing.stderr and "Traceback" not in missing.stderr
    rows = reg.components.head(3).assign(owner="[red]某单位[/red]", component_id=None)
    rows.to_file(folder / "batch.gpkg", layer="batch")
    found = run("validate", folder / "batch.gpkg", "-r", reg.path)
    assert found.returncode == 1 and "'[red]某单位[/red]' is not in the unit list" in found.stdout


# --- 7, 12: hotline events -------------------------------------------------------------------

@pytest.fixture(scope="module")
def events_reg(tmp_path_factory, district):
    return Registry.create(tmp_path_factory.mktemp("events") / "r.gpkg", district=district)


def _events(reg, times: list, **more) -> pd.DataFrame:
    point = reg.components[reg.components["category"] == "0102"].to_crs(4326).geometry.iloc[0]
    return pd.DataFrame({"工单编号": [f"E{k}" for k in range(len(times))], "上报时间": times,
                         "事件类型": "下水井盖", "经度": point.x, "纬度": point.y, **more})


def test_times_with_and_without_offsets_read_to_local_time(events_reg, tmp_path):
    times = ["2026-11-17 08:00:00", "2026-11-17T00:30:00+00:00", "2026-11-17T08:45:00+08:00",
             "2026年11月17日 9时5分"]
    result = events_reg.dispatch(_events(events_reg, times, 办结时间="2026-11-18T02:00:00Z"), coords="wgs84")
    assert [str(t) for t in result["created_at"]] == ["2026-11-17 08:00:00", "2026-11-17 08:30:00",
                                                      "2026-11-17 08:45:00", "2026-11-17 09:05:00"]
    assert (result["outcome"] == "matched").all()
    figures = closing_figures(result)  # no TypeError on offsets
    assert figures["closed"].sum() == 4
    events = tmp_path / "events.csv"
    _events(events_reg, ["2026-11-17T08:00:00+08:00"] * 3).to_csv(events, index=False)
    out = tmp_path / "out.xlsx"
    done = run("dispatch", events, "-r", events_reg.path, "-o", out)
    assert done.returncode == 0, done.stderr
    import openpyxl

    sheet = openpyxl.load_workbook(out).worksheets[0]
    column = [c.value for c in sheet[1]].index("created_at")
    assert all(row[column].value is not None for row in sheet.iter_rows(min_row=2))


@pytest.mark.parametrize("word", ["now", "today", "yesterday", "03/04/2026"])
def test_words_and_ambiguous_dates_are_not_times(events_reg, word):
    result = events_reg.dispatch(_events(events_reg, [word]), coords="wgs84")
    assert result["created_at"].isna().all() and result["outcome"].iloc[0] == "unreadable_time"


def test_events_in_a_projected_crs_are_placed(events_reg, tmp_path):
    import geopandas as gpd

    frame = _events(events_reg, ["2026-11-17 08:00:00"])
    placed = gpd.GeoDataFrame(frame.drop(columns=["经度", "纬度"]),
                              geometry=gpd.points_from_xy(frame["经度"], frame["纬度"]), crs=4326).to_crs(4547)
    placed.to_file(tmp_path / "events.gpkg")
    result = events_reg.dispatch(tmp_path / "events.gpkg")
    assert result["outcome"].iloc[0] == "matched" and result.attrs["coordinates"] == "wgs84"


def test_headers_alike_and_radii_that_are_no_distance_are_refused(events_reg, tmp_path):
    table = _events(events_reg, ["2026-11-17 08:00:00"]).rename(columns={"经度": "经度 "})
    table["经度"] = table["经度 "] + 0.01
    with pytest.raises(InputError, match="differ only by spaces"):
        events_reg.dispatch(table)
    for radius in ("nan", "inf", "-1", "0"):
        table = _events(events_reg, ["2026-11-17 08:00:00"])
        table.to_csv(tmp_path / "e.csv", index=False)
        done = run("dispatch", tmp_path / "e.csv", "-r", events_reg.path, "-o", tmp_path / "o.csv",
                   "--radius", radius)
        assert done.returncode == 2 and "--radius" in done.stderr, (radius, done.stderr)
        assert not (tmp_path / "o.csv").exists()


def test_a_failing_output_leaves_no_half_file(events_reg, tmp_path):
    table = _events(events_reg, ["2026-11-17 08:00:00"], 问题描述=["\x01" * 10])  # no XML character for Excel
    table.to_csv(tmp_path / "e.csv", index=False)
    done = run("dispatch", tmp_path / "e.csv", "-r", events_reg.path, "-o", tmp_path / "o.xlsx")
    assert not (tmp_path / "o.xlsx").exists() or done.returncode == 0
    assert not list(tmp_path.glob(".*partial*"))


def test_a_street_of_a_million_vertices_does_not_stall_init(tmp_path, district):
    """The attacker's street ran for more than 20 minutes; vertices on a straight line are dropped as read."""
    import shapely

    streets = district.streets.copy()
    outline = streets.geometry.iloc[0]
    streets.loc[streets.index[0], "geometry"] = shapely.segmentize(outline, outline.length / 1_000_000)
    assert shapely.get_num_coordinates(streets.geometry.iloc[0]) > 1_000_000
    files = _files(district, tmp_path / "files", streets)
    target = tmp_path / "r.gpkg"
    done = subprocess.run([sys.executable, "-m", "citygrid.cli", "init", str(target),
                           *[a for k, v in files.items() for a in (f"--{k}", str(v))]],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "CITYGRID_LANG": "en"})
    assert done.returncode == 0, done.stderr
    stored = open_registry(target).district.streets.geometry.iloc[0]
    assert shapely.hausdorff_distance(stored, outline) < 0.001
