import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from citygrid import crs, synth
from citygrid.backends import gpkg
from citygrid.errors import RegistryError, RegistryLocked
from citygrid.io import read_batch
from citygrid.registry import Registry, open_registry

HOSTILE = ["<img src=x onerror=alert(1)>", "O'Brien \"quoted\"", "'; DROP TABLE components;--",
           "名" * 10_000, "emoji 🚧🕳️", "a\nb"]


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=5, n_components=3_000, reserve=800)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, district):
    path = tmp_path_factory.mktemp("pristine") / "registry.gpkg"
    Registry.create(path, district=district)
    return path


@pytest.fixture
def reg(tmp_path, pristine):
    path = tmp_path / "registry.gpkg"
    shutil.copy(pristine, path)
    return open_registry(path)


def fingerprint(path) -> str:
    """Content of a registry without the wall-clock stamps."""
    r = open_registry(path)
    frame = r.components_with_retired().sort_values("component_id")
    columns = [c for c in frame.columns if c not in ("updated_at", "retired_at", "geometry")]
    text = pd.util.hash_pandas_object(frame[columns].astype(str), index=False).to_numpy().tobytes()
    geoms = b"".join(shapely.to_wkb(frame.geometry.to_numpy()))
    history = r.batches()[["batch_id", "source", "created", "updated", "retired"]].to_csv()
    retired = frame["retired_at"].notna().to_numpy().tobytes()
    return hashlib.sha256(text + geoms + history.encode() + retired).hexdigest()


def test_create_and_open_with_both_engines(tmp_path, district):
    for engine in ("pyogrio", "fiona"):
        path = tmp_path / f"{engine}.gpkg"
        Registry.create(path, district=district, engine=engine)
        reg = open_registry(path, engine=engine)
        assert len(reg.components) == 3_000
        assert set(reg.components["category"]) == set(district.components["category"])
        layers = dict(pyogrio.list_layers(path))
        assert layers["components_point"] == "Point" and layers["grid"] == "MultiPolygon"
        assert {"citygrid_history", "citygrid_catalog", "citygrid_units"} <= set(layers)
        assert reg.catalog["0101"].name_zh == "上水井盖" and len(reg.catalog) == 136
        assert len(reg.district.grid) == len(district.grid)
    a = open_registry(tmp_path / "pyogrio.gpkg").components.sort_values("component_id").reset_index(drop=True)
    b = open_registry(tmp_path / "fiona.gpkg", engine="fiona").components.sort_values(
        "component_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns=["geometry", "updated_at"]),
                                  b.drop(columns=["geometry", "updated_at"]), check_dtype=False)


def test_create_refuses_bad_input(tmp_path, district, pristine):
    with pytest.raises(FileExistsError, match="exists; open it"):
        Registry.create(pristine, district=district)
    broken = synth.make_district(seed=1, n_components=2_000, defects=True)
    with pytest.raises(RegistryError, match=r"id\.duplicate(.|\n)*no registry was made|no registry was made"):
        Registry.create(tmp_path / "bad.gpkg", district=broken)
    assert not (tmp_path / "bad.gpkg").exists()


def test_open_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_registry(tmp_path / "missing.gpkg")
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(RegistryError, match="is not a citygrid registry"):
        open_registry(junk)
    with pytest.raises(ValueError, match="engine='gdal' is not known"):
        open_registry(junk, engine="gdal")


def test_queries(reg, district):
    comps = district.components
    lamps = reg.query(category="路灯", street="马峦街道")
    expected = comps[(comps["category"] == "0118") & (comps["street"] == "马峦街道")]
    assert sorted(lamps["component_id"]) == sorted(expected["component_id"])
    assert len(reg.query(category=["0118", "01001"])) == ((comps["category"] == "0118").sum()
                                                          + (comps["category"] == "0101").sum())
    owner = comps["owner"].iloc[0]
    assert (reg.query(owner=owner)["owner"] == owner).all()
    code = comps["owner_code"].iloc[0]
    assert len(reg.query(owner=code)) == (comps["owner_code"] == code).sum()
    community = comps["community"].iloc[0]
    assert len(reg.query(community=community)) == (comps["community"] == community).sum()
    cell = comps["grid"].iloc[0]
    assert set(reg.query(grid=cell)["component_id"]) == set(comps.loc[comps["grid"] == cell, "component_id"])
    minx, miny = comps.geometry.iloc[0].x - 300, comps.geometry.iloc[0].y - 300
    box = reg.query(bbox=(minx, miny, minx + 600, miny + 600), status="完好")
    assert len(box) and (box["status"] == "完好").all()
    assert box.geometry.intersects(shapely.box(minx, miny, minx + 600, miny + 600)).all()
    with pytest.raises(KeyError, match="streets are"):
        reg.query(street="东门街道")
    with pytest.raises(KeyError, match="no category"):
        reg.query(category="9999")


def test_stats(reg):
    by_cat = reg.stats("category")
    assert by_cat["count"].sum() == 3_000 and by_cat.index[0] == "0104"
    assert by_cat.loc["0104", "name_zh"] == "雨水箅子"
    assert reg.stats("street")["count"].sum() == 3_000
    with pytest.raises(ValueError, match="--by 'colour' is not known"):
        reg.stats("colour")


def test_owner_at_in_wgs84_and_gcj02(reg):
    comp = reg.components.iloc[10]
    wgs = reg.components.iloc[[10]].to_crs("EPSG:4326").geometry.iloc[0]
    found = reg.owner_at(wgs.x, wgs.y, radius=5)
    assert found["component_id"].iloc[0] == comp["component_id"] and found["distance_m"].iloc[0] < 0.01
    assert found.attrs["grid"] is not None
    glon, glat = crs.wgs84_to_gcj02(wgs.x, wgs.y)
    via_amap = reg.owner_at(float(glon), float(glat), crs="gcj02", radius=5)
    assert via_amap["component_id"].iloc[0] == comp["component_id"]
    with pytest.raises(ValueError, match="lies 1,9[0-9]{2}.[0-9] km outside 坪山区"):
        reg.owner_at(116.397, 39.909, radius=5)  # Beijing
    with pytest.raises(ValueError, match="swapped it lies inside: give longitude first"):
        reg.owner_at(wgs.y, wgs.x, radius=5)
    empty = reg.owner_at(wgs.x + 0.0003, wgs.y, radius=0.5)  # in the district, nothing within 0.5 m
    assert empty.empty and empty.attrs["grid"] is not None


def test_a_query_that_can_match_nothing_says_why(reg, district):
    """Values that match nothing are errors with a hint, not empty frames."""
    with pytest.raises(KeyError, match="no status '损坏'.*known: 完好, 破损"):
        reg.query(status="损坏")
    partial = district.components["owner"].iloc[0][-3:]
    with pytest.raises(KeyError, match=f"no owner '{partial}'.*containing '{partial}': "):
        reg.query(owner=partial)
    with pytest.raises(KeyError, match="no grid cell '440310999'"):
        reg.query(grid="440310999")
    with pytest.raises(KeyError, match="no category '井盖'.*containing '井盖': 上水井盖, 污水井盖"):
        reg.query(category="井盖")
    with pytest.raises(ValueError, match="looks like longitude/latitude.*bbox_crs='EPSG:4326'"):
        reg.query(bbox=(114.30, 22.65, 114.40, 22.75))
    assert len(reg.query(bbox=(114.30, 22.65, 114.40, 22.75), bbox_crs="EPSG:4326"))
    with pytest.raises(KeyError, match="no component .4403100101999999. in the registry"):
        reg.history("4403100101999999")
    with pytest.raises(ValueError, match="before the registry began"):
        reg.as_of("2001-01-01")
    assert len(reg.query(status=["完好", "破损"])) and len(reg.query(owner=district.components["owner"].iloc[0]))


def test_ingest_creates_updates_retires_and_keeps_history(reg, district):
    before = reg.components.copy()
    batch = synth.make_batch(district, new=60, updated=40, retired=10, seed=1)
    started = pd.Timestamp.now(tz="UTC")
    result = reg.ingest(batch, source="2026-W48 contractor A", user="tester")
    assert result.accepted and (result.created, result.updated, result.retired) == (60, 40, 10)
    assert len(reg.components) == 3_000 + 60 - 10
    assert len(reg.components_with_retired()) == 3_060
    new = reg.query(category=batch["category"].iloc[0])
    assert set(result.new_ids) <= set(reg.components["component_id"])
    assert len(set(result.new_ids)) == 60 and len(new)
    retired_id = batch.loc[batch["action"] == "retire", "component_id"].iloc[0]
    history = reg.history(retired_id)
    assert history["action"].tolist() == ["create", "retire"]
    assert history["source"].tolist() == ["initial load", "2026-W48 contractor A"]
    changed = batch.loc[batch["component_id"].notna() & batch["action"].isna()].iloc[0]
    fields = reg.history(changed["component_id"])["field"].dropna().tolist()
    assert "change_date" in fields and len(fields) >= 2
    past = reg.as_of(started)
    a = before.sort_values("component_id").reset_index(drop=True)
    b = past.sort_values("component_id").reset_index(drop=True)
    assert a["component_id"].tolist() == b["component_id"].tolist()
    for column in ("status", "maintainer", "change_date"):
        assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), column
    assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=1e-6).all()
    again = reg.ingest(batch.loc[batch["action"].isna() & batch["component_id"].notna()], source="again")
    assert again.accepted and again.unchanged == 40 and again.updated == 0
    batches = reg.batches()
    assert batches["source"].tolist() == ["initial load", "2026-W48 contractor A", "again"]


def test_an_update_keeps_the_initial_date_and_says_so(reg):
    """初始日期 is the first survey's date: a later batch that fills it in differently does not move it."""
    rows = reg.components.iloc[:3].copy()
    first = rows["survey_date"].tolist()
    rows["survey_date"] = pd.Timestamp("2026-11-30")
    rows["status"] = "破损"
    result = reg.ingest(rows, source="resurvey")
    assert result.accepted and result.updated == 3
    warned = result.report.issues
    assert warned["rule"].tolist() == ["schema.initial_date_changed"] * 3
    assert set(warned["severity"]) == {"warning"}
    assert all(f"{d:%Y-%m-%d}" in m and "2026-11-30" in m for d, m in zip(first, warned["message"]))
    kept = reg.components.set_index("component_id").loc[rows["component_id"], "survey_date"]
    assert kept.tolist() == first
    history = reg.history(rows["component_id"].iloc[0])
    assert "survey_date" not in set(history["field"].dropna()) and "status" in set(history["field"])


def test_a_report_has_no_truth_value_that_reads_the_wrong_way_round(reg):
    from citygrid.validation import validate

    dirty = validate(reg.components.iloc[:2].assign(status="坏了"))
    clean = validate(reg.components.iloc[:2])
    assert not dirty.ok and clean.ok and len(dirty) == 2
    for report in (dirty, clean):
        with pytest.raises(TypeError, match=r"report\.ok"):
            bool(report)


def test_history_gives_positions_and_how_far_an_update_moved(reg):
    rows = reg.components[reg.components.geom_type == "Point"].iloc[:1].copy()
    rows["geometry"] = shapely.transform(rows.geometry.to_numpy(), lambda xy: xy + [0.3, 0.4])
    assert reg.ingest(rows, source="moved").accepted
    history = reg.history(rows["component_id"].iloc[0])
    moved = history[history["field"] == "geometry"].iloc[0]
    assert moved["moved_m"] == pytest.approx(0.5)
    old = tuple(float(v) for v in moved["old_value"].split(", "))
    x, y = crs.transformer("EPSG:4326", "EPSG:4547").transform(*old)
    assert shapely.distance(shapely.Point(x, y), shapely.transform(rows.geometry.iloc[0], lambda xy: xy - [0.3, 0.4])) \
        < 0.01
    assert history.loc[history["field"] != "geometry", "moved_m"].isna().all()


def test_empty_grid_street_and_community_are_filled_from_the_location(reg, district):
    batch = synth.make_batch(district, new=8, updated=4, retired=0, seed=6).reset_index(drop=True)
    admin = ["grid", "street_code", "street", "community_code", "community"]
    batch.loc[0:3, admin] = None  # new components without any of it
    batch.loc[4, "street"] = None  # only the street name missing
    batch.loc[8, "grid"] = None  # an update without its grid cell
    result = reg.ingest(batch, source="no admin columns")
    assert result.accepted, result.report.summary()
    ids = np.concatenate([result.new_ids[:5], batch.loc[[8], "component_id"].to_numpy()])
    got = reg.components.set_index("component_id").loc[ids]
    where = reg.district.locate(got.geometry.to_numpy())
    for column in admin:
        assert got[column].tolist() == where[column].tolist(), column
    assert got[admin].notna().all().all()
    kept = reg.components.set_index("component_id").loc[result.new_ids[5:]]
    assert kept["street"].tolist() == batch.loc[5:7, "street"].tolist()  # given values are kept


def test_the_spatial_index_follows_every_write(reg, district):
    """The GeoPackage R-tree (what QGIS and GDAL's spatial filters use) matches the geometries."""
    batch = synth.make_batch(district, new=30, updated=30, retired=5, seed=7).reset_index(drop=True)
    updates = batch["component_id"].notna() & batch["action"].isna()
    moved = batch.index[updates & (batch.geom_type == "Point")][:10]
    batch.loc[moved, "geometry"] = shapely.transform(batch.geometry[moved].to_numpy(), lambda xy: xy + [40, -25])
    batch.loc[moved, ["grid", "street_code", "street", "community_code", "community"]] = None  # located anew
    for component_id in batch.loc[moved, "component_id"]:  # a 47 m move is no survey correction
        reg.allow(component_id, "geom.moved_far", "relocated")
    result = reg.ingest(batch, source="moves")
    assert result.accepted, result.report.summary()
    conn = sqlite3.connect(reg.path)
    try:
        for layer in ("components_point", "components_line", "components_polygon"):
            rows = conn.execute(f'SELECT r.minx, r.maxx, r.miny, r.maxy, c.component_id FROM "{layer}" c '
                                f'JOIN "rtree_{layer}_geom" r ON r.id = c.fid').fetchall()
            (count,) = conn.execute(f'SELECT COUNT(*) FROM "{layer}"').fetchone()
            assert len(rows) == count  # one entry per feature, none stale
            frame = reg.components_with_retired().set_index("component_id")
            bounds = shapely.bounds(frame.loc[[r[4] for r in rows]].geometry.to_numpy())
            boxes = np.array([r[:4] for r in rows])
            # the R-tree keeps 32-bit floats rounded outwards: within a few cm at 2.5e6 m
            assert np.allclose(boxes, bounds[:, [0, 2, 1, 3]], atol=0.5)
    finally:
        conn.close()
    target = reg.components_with_retired().set_index("component_id").loc[batch.loc[moved[0], "component_id"]]
    x, y = target.geometry.x, target.geometry.y
    found = pyogrio.read_dataframe(reg.path, layer="components_point", bbox=(x - 1, y - 1, x + 1, y + 1))
    assert batch.loc[moved[0], "component_id"] in set(found["component_id"])


def test_the_sql_geometry_functions_read_gdal_blobs_as_geos_does(tmp_path):
    """ST_MinX & co. (registered for the R-tree triggers) on blobs GDAL wrote, points without envelope."""
    geoms = [shapely.Point(530_001.25, 2_510_002.5), shapely.Point(), shapely.LineString([(0, 1), (3, -2)]),
             shapely.Polygon([(0, 0), (4, 0), (4, 5), (0, 0)]), shapely.Point(1, 2, 3)]
    path = tmp_path / "blobs.gpkg"
    for i, geom in enumerate(geoms):
        gpd.GeoDataFrame({"k": [i]}, geometry=[geom], crs="EPSG:4547").to_file(path, layer=f"l{i}")
    conn = gpkg.connect(path, readonly=True)
    try:
        for i, geom in enumerate(geoms):
            got = conn.execute(f"SELECT ST_MinX(geom), ST_MaxX(geom), ST_MinY(geom), ST_MaxY(geom), "
                               f"ST_IsEmpty(geom) FROM l{i}").fetchone()
            if geom.is_empty:
                assert got == (None, None, None, None, 1)
            else:
                minx, miny, maxx, maxy = geom.bounds
                assert got == (minx, maxx, miny, maxy, 0), geom.wkt
    finally:
        conn.close()
    big_endian = b"GP\x00\x00" + (4547).to_bytes(4, "big") + shapely.to_wkb(geoms[0], byte_order=0)
    assert gpkg._envelope(big_endian) == (530_001.25, 530_001.25, 2_510_002.5, 2_510_002.5)


def test_rejected_batch_changes_nothing(reg, district):
    state = reg.state
    batch = synth.make_batch(district, new=5, updated=5, retired=0, seed=2)
    batch.loc[0, "status"] = "良好"
    batch.loc[1, "geometry"] = None
    batch.loc[2, "category"] = "0199"
    result = reg.ingest(batch, source="bad")
    assert not result.accepted and result.batch_id is None
    assert set(result.report.issues["rule"]) >= {"schema.bad_value", "geom.missing", "schema.unknown_category"}
    assert reg.state == state and len(reg.batches()) == 1
    assert "rejected, nothing written" in repr(result) and "× schema.unknown_category" in repr(result)
    with pytest.raises(ValueError, match="rejected, nothing written: .* error.*geom.missing") as caught:
        result.raise_for_errors()
    assert caught.value.report is result.report


def test_retiring_an_unknown_component_is_refused(reg, district):
    batch = synth.make_batch(district, new=0, updated=0, retired=1, seed=3)
    batch.loc[0, "component_id"] = "440310" + batch.loc[0, "category"] + "999998"
    result = reg.ingest(batch, source="x")
    assert not result.accepted
    assert result.report.issues["message"].tolist() == ["asks to retire a component that is not in the registry"]


def test_retired_ids_are_never_reused(reg, district):
    batch = synth.make_batch(district, new=0, updated=0, retired=1, seed=4)
    assert reg.ingest(batch, source="retire").accepted
    back = batch.drop(columns="action")
    result = reg.ingest(back, source="reuse")
    assert not result.accepted and result.report.issues["rule"].tolist() == ["id.duplicate"]


def test_batches_in_the_new_layout_are_normalised(reg, district):
    batch = synth.make_batch(district, new=3, updated=3, retired=0, seed=5)
    known = batch["component_id"].notna()
    batch.loc[known, "component_id"] = [i[:6] + i[6:8] + "0" + i[8:] for i in batch.loc[known, "component_id"]]
    batch["category"] = [c[:2] + "0" + c[2:] for c in batch["category"]]
    result = reg.ingest(batch, source="2026 layout")
    assert result.accepted and result.updated + result.unchanged == 3 and result.created == 3
    assert all(len(i) == 16 for i in result.new_ids)


def test_migration_to_the_2026_layout(reg):
    some = reg.components["component_id"].iloc[0]
    created = reg.batches()["finished_at"].iloc[0]
    assert reg.migrate() == 3_000
    assert reg.layout == "gbt47678"
    assert reg.components["component_id"].str.len().eq(17).all()
    assert reg.components["category"].str.len().eq(5).all()
    new = some[:8] + "0" + some[8:]
    assert new in set(reg.components["component_id"])
    history = reg.history(some)
    assert history["action"].tolist() == ["create", "migrate", "migrate"]
    assert reg.query(category="0118")["category"].eq("01018").all()
    old = reg.as_of(pd.Timestamp(created) + pd.Timedelta(milliseconds=1))
    assert old["component_id"].str.len().eq(16).all() and some in set(old["component_id"])
    with pytest.raises(RegistryError, match="already uses"):
        reg.migrate()


def test_the_past_before_an_ingest_survives_a_later_migration(reg, district):
    """Changes recorded under the old ids are undone on the components that carry new ids now."""
    before = reg.components.sort_values("component_id").reset_index(drop=True)
    moment = pd.Timestamp(reg.batches()["finished_at"].iloc[-1])
    batch = synth.make_batch(district, new=30, updated=40, retired=10, seed=9)
    assert reg.ingest(batch, source="week").accepted
    reg.migrate()
    past = reg.as_of(moment).sort_values("component_id").reset_index(drop=True)
    assert past["component_id"].tolist() == before["component_id"].tolist()
    for column in ("status", "maintainer", "category"):
        assert past[column].astype(str).tolist() == before[column].astype(str).tolist(), column
    assert shapely.equals_exact(past.geometry.to_numpy(), before.geometry.to_numpy(), tolerance=1e-6).all()


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson", ".csv", ".xlsx", ".parquet"])
@pytest.mark.parametrize("fields", ["citygrid", "cjt214", "gbt47678"])
def test_exports_round_trip(tmp_path, reg, suffix, fields):
    target = tmp_path / f"extract{suffix}"
    files = reg.export(target, street="坑梓街道", fields=fields)
    expected = reg.query(street="坑梓街道").sort_values("component_id").reset_index(drop=True)
    if suffix == ".parquet" and fields == "citygrid":
        back = gpd.read_parquet(files[0])
    else:
        parts = []
        for f in (f for f in files if f.suffix != ".qgz"):  # the project beside a GeoPackage
            layers = [n for n, _ in pyogrio.list_layers(f) if n.startswith("components_")] if suffix == ".gpkg" \
                else [None]
            parts += [read_batch(f, layer=layer) for layer in layers]
        back = pd.concat(parts, ignore_index=True)
    back = back.sort_values("component_id").reset_index(drop=True)
    assert back["component_id"].tolist() == expected["component_id"].tolist()
    for column in ("owner", "maintainer", "status", "grid", "department", "name"):
        assert back[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    assert (pd.to_datetime(back["survey_date"]) == expected["survey_date"]).all()
    if suffix == ".shp":
        assert all(f.with_suffix(".cpg").read_text() == "UTF-8" for f in files)
        names = [c for f in files for c in pyogrio.read_info(f)["fields"]]
        assert max(map(len, names)) <= 10
        for f in files:  # each text field as wide as its longest value (in UTF-8 bytes), not 254
            frame = gpd.read_file(f, engine="fiona")
            with __import__("fiona").open(f) as source:
                widths = {k: int(v.split(":")[1]) for k, v in source.schema["properties"].items()
                          if v.startswith("str")}
            for column, width in widths.items():
                longest = frame[column].dropna().astype(str).str.encode("utf-8").str.len().max()
                assert width == max(1, 0 if pd.isna(longest) else longest), (f.name, column)


def test_hostile_values_survive_ingest_and_export(tmp_path, reg, district):
    batch = synth.make_batch(district, new=len(HOSTILE), updated=0, retired=0, seed=6)
    batch["name"] = HOSTILE
    batch["remarks"] = HOSTILE[::-1]
    result = reg.ingest(batch, source="<b>hostile</b>")
    assert result.accepted
    stored = reg.components.set_index("component_id").loc[result.new_ids]
    assert stored["name"].tolist() == HOSTILE and stored["remarks"].tolist() == HOSTILE[::-1]
    assert reg.batches()["source"].iloc[-1] == "<b>hostile</b>"
    target = tmp_path / "h.gpkg"
    reg.export(target)
    names = set()
    for layer in (n for n, _ in pyogrio.list_layers(target) if n.startswith("components_")):
        names |= set(read_batch(target, layer=layer)["name"].dropna())
    assert set(HOSTILE) <= names
    with pytest.raises(ValueError, match="longer than the 254 bytes"):
        reg.export(tmp_path / "h.shp")


CHILD = """
import sys, time
from citygrid.registry import open_registry
from citygrid.io import read_batch
reg = open_registry(sys.argv[1])
batch = read_batch(sys.argv[2], layer="batch")
reg.components, reg.district
print("start", flush=True)
t0 = time.perf_counter()
reg.ingest(batch, source="killed?")
print(time.perf_counter() - t0, flush=True)
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_before_or_after(tmp_path, pristine, district):
    batch = synth.make_batch(district, new=400, updated=300, retired=50, seed=7)
    batch_file = tmp_path / "batch.gpkg"
    batch.to_file(batch_file, layer="batch", engine="pyogrio")
    before = fingerprint(pristine)
    finished = tmp_path / "finished.gpkg"
    shutil.copy(pristine, finished)
    out = subprocess.run([sys.executable, "-c", CHILD, str(finished), str(batch_file)], check=True,
                         capture_output=True, text=True).stdout.split()
    duration = float(out[-1])
    after = fingerprint(finished)
    assert before != after
    rng = np.random.default_rng(0)
    outcomes = []
    for i in range(10):
        path = tmp_path / f"victim{i}.gpkg"
        shutil.copy(pristine, path)
        with subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(batch_file)],
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout.readline().strip() == "start"
            time.sleep(rng.uniform(0.0, 1.2) * duration)
            proc.kill()
            proc.wait()
        state = fingerprint(path)
        assert state in (before, after), f"kill #{i} left the registry in between"
        outcomes.append("after" if state == after else "before")
        assert len(open_registry(path).components) > 0
    assert "before" in outcomes  # some kills landed mid-ingest and were rolled back


NO_CHECKPOINT = """
import os, sys
from citygrid.backends import gpkg
from citygrid.io import read_batch
from citygrid.registry import open_registry
plain = gpkg.connect
def connect(*args, **kwargs):  # no checkpoint: the merge stays in the WAL, as at a power cut
    conn = plain(*args, **kwargs)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn
gpkg.connect = connect
holder = plain(sys.argv[1])  # open throughout: the last connection to close would checkpoint
holder.execute("SELECT count(*) FROM citygrid_meta").fetchall()
open_registry(sys.argv[1]).ingest(read_batch(sys.argv[2], layer="batch"), source="power cut?")
print("merged", flush=True)
sys.stdin.readline()  # the power goes: the files are taken as they are, nothing is closed
os._exit(0)
"""


def test_a_power_cut_during_a_merge_leaves_before_or_after(tmp_path, pristine, district):
    """What reaches the disk before a power cut is the file and a prefix of its WAL (frames are
    appended in order): cut the WAL of a whole merge at 24 random bytes, and at no byte and at
    the end; each registry opens, passes SQLite's integrity check, and is before or after."""
    batch = synth.make_batch(district, new=300, updated=200, retired=30, seed=8)
    batch_file = tmp_path / "batch.gpkg"
    batch.to_file(batch_file, layer="batch", engine="pyogrio")
    merged = tmp_path / "merged.gpkg"
    shutil.copy(pristine, merged)
    with sqlite3.connect(merged) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = fingerprint(pristine)
    database = merged.read_bytes()
    with subprocess.Popen([sys.executable, "-c", NO_CHECKPOINT, str(merged), str(batch_file)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout.readline().strip() == "merged"
        wal = Path(f"{merged}-wal").read_bytes()
        on_disk = merged.read_bytes()
        child.communicate("\n")
    assert on_disk == database and len(wal) > 100_000  # the whole merge is in the WAL
    whole = tmp_path / "whole" / "registry.gpkg"
    whole.parent.mkdir()
    whole.write_bytes(database)
    Path(f"{whole}-wal").write_bytes(wal)
    after = fingerprint(whole)
    rng = np.random.default_rng(1)
    cuts = [0, len(wal), *sorted(int(c) for c in rng.integers(32, len(wal), size=24))]
    outcomes = []
    for k, cut in enumerate(cuts):
        copy = tmp_path / f"cut{k}" / "registry.gpkg"
        copy.parent.mkdir()
        copy.write_bytes(database)
        Path(f"{copy}-wal").write_bytes(wal[:cut])
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", cut
        state = fingerprint(copy)
        assert state in (before, after), f"a cut at byte {cut} of {len(wal)} left the registry in between"
        outcomes.append(state == after)
    assert outcomes[0] is False and outcomes[1] is True and len(outcomes) == 26


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_the_snapshot_reads_back_what_the_layers_hold_and_any_edit_makes_a_new_one(reg):
    from citygrid.backends import gpkg

    from_layers = gpkg.read_components_layers(reg.path, engine="pyogrio")
    snapshot = gpkg.snapshot_path(reg.path)
    first = open_registry(reg.path).components_with_retired()  # reads the layers, keeps a snapshot …
    gpkg.settle(reg.path)  # … written in the background
    assert snapshot.exists() and not list(reg.path.parent.glob("*.snapshot.*"))
    kept = snapshot.stat().st_mtime_ns
    for frame in (first, open_registry(reg.path).components_with_retired()):
        pd.testing.assert_frame_equal(frame, from_layers)
    assert snapshot.stat().st_mtime_ns == kept  # the second open read it
    ident = from_layers["component_id"].iloc[0]
    before = reg.state
    conn = gpkg.connect(reg.path)  # another GeoPackage program edits a layer, as QGIS would
    conn.execute("UPDATE components_point SET name = '外部修改' WHERE component_id = ?", (ident,))
    conn.close()
    assert reg.state != before
    assert reg.components.set_index("component_id").loc[ident, "name"] == "外部修改"
    assert open_registry(reg.path).components.set_index("component_id").loc[ident, "name"] == "外部修改"


@pytest.mark.parametrize("junk", [b"", b"citygrid" + b"\0" * 30, b"citygrid" + os.urandom(5000)])
def test_a_damaged_or_foreign_snapshot_is_ignored(reg, tmp_path, junk):
    from citygrid.backends import gpkg

    expected = gpkg.read_components_layers(reg.path, engine="pyogrio")
    gpkg.snapshot_path(reg.path).write_bytes(junk)
    pd.testing.assert_frame_equal(open_registry(reg.path).components_with_retired(), expected)
    other = tmp_path / "other.gpkg"  # a copy of the registry, then edited by another program
    shutil.copy(reg.path, other)
    gpkg.snapshot_path(other).write_bytes(gpkg.snapshot_path(reg.path).read_bytes())
    conn = gpkg.connect(other)
    conn.execute("UPDATE components_point SET name = 'x' WHERE fid = 1")
    conn.close()
    assert open_registry(other).components_with_retired()["name"].eq("x").sum() == 1


def test_a_writer_that_commits_while_another_plans_makes_it_plan_again(reg, district, monkeypatch):
    from citygrid import ingest as ingest_module  # the ingest loop plans with it

    first = synth.make_batch(district, new=4, updated=0, retired=0, seed=21)
    second = synth.make_batch(district, new=4, updated=0, retired=0, seed=22)
    other = open_registry(reg.path)
    _ = other.components
    plans = []
    assign = ingest_module.assign_ids

    def commit_meanwhile(frame, **options):  # the other writer merges between this plan and its write
        if options.get("meanwhile"):
            return assign(frame, **{k: v for k, v in options.items() if k != "meanwhile"})
        plans.append(len(reg.components))
        if len(plans) == 1:
            monkeypatch.setattr(ingest_module, "assign_ids", lambda f, **o: commit_meanwhile(f, meanwhile=1, **o))
            assert other.ingest(first, source="meanwhile").accepted
            monkeypatch.setattr(ingest_module, "assign_ids", commit_meanwhile)
        return assign(frame, **options)

    monkeypatch.setattr(ingest_module, "assign_ids", commit_meanwhile)
    result = reg.ingest(second, source="planned first")
    assert result.accepted and plans == [3_000, 3_004]  # planned again on the registry with the other's merge
    ids = open_registry(reg.path).components["component_id"]
    assert len(ids) == 3_008 and ids.is_unique
    assert set(result.new_ids) <= set(ids)


def test_a_second_writer_gets_a_clear_error_or_waits_and_readers_are_not_blocked(reg, district):
    batch = synth.make_batch(district, new=3, updated=0, retired=0, seed=8)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(reg.path), "3"], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.stdout.close()
    impatient = open_registry(reg.path, timeout=0.3)
    with pytest.raises(RegistryLocked, match="being changed by another process"):
        impatient.ingest(batch, source="second writer")
    reader = open_registry(reg.path)
    assert len(reader.components) == 3_000 and len(reader.query(street="马峦街道"))
    patient = open_registry(reg.path, timeout=10)
    result = patient.ingest(batch, source="waited")
    holder.wait()
    assert result.accepted and result.created == 3


def python_calls(run, *args):
    """``run(*args)`` and how many Python function calls it made (a measure of work that is not a timing)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    result = profile.runcall(run, *args)
    return result, pstats.Stats(profile).total_calls


def test_as_of_after_a_migration_does_not_grow_with_the_square_of_the_renamed_rows(tmp_path):
    calls = []
    for n in (600, 2_400):
        district = synth.make_district(seed=2, n_components=n)
        reg = Registry.create(tmp_path / f"{n}.gpkg", district=district)
        created = reg.batches()["finished_at"].iloc[0]
        reg.migrate()
        past, count = python_calls(reg.as_of, pd.Timestamp(created) + pd.Timedelta("1ms"))
        calls.append(count)
        assert len(past) == n and past["component_id"].str.len().eq(16).all()
        assert set(past["component_id"]) == set(district.components["component_id"])
    assert calls[1] < 1.5 * calls[0], calls  # four times the rows, about the same work


def test_a_feature_added_by_another_program_is_read(reg):
    """QGIS adds a feature with the fields it knows: no version, batch or update time."""
    import pyogrio

    new = reg.components[reg.components.geom_type == "Point"].head(1)[["category", "department", "grid", "status",
                                                                        "geometry"]].copy()
    new["component_id"] = "4403100101999991"
    new["category"] = "0101"
    before = len(reg.components)
    pyogrio.write_dataframe(new, reg.path, layer="components_point", append=True)
    again = open_registry(reg.path)
    row = again.components.set_index("component_id").loc["4403100101999991"]
    assert row["version"] == 1 and row["batch_id"] == 0 and pd.isna(row["updated_at"])
    assert len(again.components) == before + 1


@pytest.mark.parametrize("name", ["x%20y.gpkg", "a#b.gpkg", "q?.gpkg", "50%.gpkg"])
def test_odd_characters_in_the_path_name_that_file(tmp_path, pristine, district, name):
    """SQLite opens files by URI: "%20", "#" and "?" in a name must not point at another file."""
    path = tmp_path / name
    shutil.copy(pristine, path)
    reg = open_registry(path)
    batch = synth.make_batch(district, new=3, updated=2, retired=0, seed=11)
    result = reg.ingest(batch, source="odd path")
    assert result.accepted, result.report.summary()
    assert len(open_registry(path).components) == 3_000 + 3
    stray = {p.name for p in tmp_path.iterdir()} - {name, f"{name}-wal", f"{name}-shm", f"{name}.snapshot"}
    assert not stray, stray


@pytest.mark.slow
def test_overlapping_ingests_never_merge_unchecked(tmp_path, pristine, district):
    """Two departments merge at the same moment, 120 times. On even turns they send the same new
    components: one batch is merged, and the other, validated again against the state it would
    go into, is rejected as duplicates. On odd turns they send different components: both are
    merged (the later one on top of the other). The registry never takes an unchecked row."""
    import threading

    path = tmp_path / "registry.gpkg"
    shutil.copy(pristine, path)
    spare = district.reserve.reset_index(drop=True)
    used = 0
    for turn in range(120):
        same = turn % 2 == 0
        size = 5 if same else 3
        batches = [spare.iloc[used + (0 if same else size * who):][:size].copy() for who in range(2)]
        used += size if same else 2 * size
        for batch in batches:
            batch["component_id"] = None
        results = []

        def send(who, turn=turn, results=results, batches=batches):
            reg = open_registry(path, timeout=30)
            results.append(reg.ingest(batches[who], source=f"turn {turn} {'甲乙'[who]}"))

        threads = [threading.Thread(target=send, args=(who,)) for who in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        merged = [r for r in results if r.accepted]
        assert len(merged) == (1 if same else 2), [r.report.summary() for r in results]
        if same:
            rejected = [r for r in results if not r.accepted][0]
            rules = set(rejected.report.issues["rule"])  # copied polygons also overlap
            assert {"topology.duplicate_feature"} <= rules <= {"topology.duplicate_feature", "topology.overlap"}
    reg = open_registry(path)
    assert len(reg.components) == 3_000 + used
    assert reg.components["component_id"].is_unique
    report = reg.validate()
    assert report.ok, report.summary()
    batches = reg.batches().query("kind == 'ingest'")
    assert len(batches) == 180 and batches["created"].astype(int).sum() == used


def _spare(district, start, count):
    """New components (no identifier) from the district's spare ones."""
    batch = district.reserve.iloc[start:start + count].copy()
    batch["component_id"] = None
    return batch


def _reads(reg, monkeypatch):
    """Counts the registry's full reads of its components."""
    reads = []
    real = reg.store.read_components
    monkeypatch.setattr(reg.store, "read_components", lambda state: reads.append(state) or real(state))
    return reads


def test_a_merge_is_written_on_top_of_merges_that_touch_none_of_its_rows(reg, district, monkeypatch):
    """A department that read the registry before two others merged is not made to read it all
    again when their merges changed nothing its batch is checked against; its new identifiers
    come after theirs."""
    late = open_registry(reg.path)
    _ = late.components
    reads = _reads(late, monkeypatch)
    first = open_registry(reg.path).ingest(_spare(district, 0, 6), source="first")
    second = open_registry(reg.path).ingest(synth.make_batch(district, new=0, updated=5, retired=2, seed=31),
                                            source="second")
    assert first.accepted and second.accepted
    mine = _spare(district, 100, 6)
    result = late.ingest(mine, source="late")
    assert result.accepted and result.created == 6, result.report.summary()
    assert reads == []  # the state read before was enough
    fresh = open_registry(reg.path)
    ids = fresh.components_with_retired()["component_id"]
    assert ids.is_unique and len(ids) == 3_000 + 12
    assert not set(result.new_ids) & set(first.new_ids)
    assert fresh.validate().ok
    assert len(fresh.history(result.new_ids[0])) and len(fresh.batches()) == 4


def test_a_merge_on_an_old_state_is_checked_again_when_others_touched_its_components(reg, district):
    """Another department retired a component that a late batch updates: the late batch is
    validated again against the state it would go into, and rejected."""
    late = open_registry(reg.path)
    current = late.components
    target = current[current.geom_type == "Point"].iloc[[7]]
    open_registry(reg.path).ingest(target.assign(action="retire"), source="retire it")
    result = late.ingest(target.assign(status="破损"), source="late update")
    assert not result.accepted
    assert "retired" in " ".join(result.report.issues["message"])
    assert open_registry(reg.path).components_with_retired().set_index("component_id").loc[
        target["component_id"].iloc[0], "status"] != "破损"


def test_a_merge_on_an_old_state_is_checked_again_when_others_added_a_duplicate_nearby(reg, district):
    late = open_registry(reg.path)
    _ = late.components
    near = _spare(district, 0, 1)
    near = near[near.geom_type == "Point"] if (near.geom_type == "Point").any() else near
    assert open_registry(reg.path).ingest(near, source="first").accepted
    copy = near.copy()
    copy["geometry"] = copy.geometry.translate(0.2, 0.0)
    result = late.ingest(copy, source="late copy")
    assert not result.accepted
    assert set(result.report.issues["rule"]) <= {"topology.duplicate_feature", "topology.overlap"}


def test_an_edit_by_another_program_makes_a_late_merge_read_everything_again(reg, district, monkeypatch):
    """QGIS adds a component beside one a late batch brings: no chain of citygrid merges explains
    the new state, so the batch is validated again from the layers, and the duplicate found."""
    late = open_registry(reg.path)
    _ = late.components
    reads = _reads(late, monkeypatch)
    mine = _spare(district, 0, 3)
    point = mine[mine.geom_type == "Point"].head(1)
    outside = point.drop(columns=[c for c in ("action",) if c in point]).assign(component_id="4403100101999991")
    outside = outside.assign(category=point["category"].iloc[0])
    outside = outside[["component_id", "category", "geometry"]]
    pyogrio.write_dataframe(outside.set_crs(late.components.crs, allow_override=True),
                            reg.path, layer="components_point", append=True)
    result = late.ingest(point, source="late")
    assert len(reads) == 1
    assert not result.accepted and "topology.duplicate_feature" in set(result.report.issues["rule"])


def test_a_full_disk_during_a_merge_is_one_clear_error(reg, district, monkeypatch):
    """SQLite rolls back by itself when the disk fills; the error says so, not "cannot rollback"."""
    import sqlite3

    from citygrid.backends import gpkg
    from citygrid.errors import OutputError

    before = reg.state
    batch = synth.make_batch(district, new=5, updated=5, retired=0, seed=12)

    def full(conn, *args, **kwargs):
        conn.execute("CREATE TABLE filler (x)")  # something was written before the disk filled
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(gpkg, "_insert", full)
    with pytest.raises(OutputError, match="disk is full, so nothing was written"):
        reg.ingest(batch, source="full disk")
    assert reg.state == before and len(open_registry(reg.path).components) == 3_000
    with sqlite3.connect(reg.path) as conn:
        assert "filler" not in {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a tmpfs mount of a given size (mounting needs root, as .ci/run has here)."""
    mounts = []

    def make(size: int) -> Path:
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode:  # test_a_full_disk_during_a_merge_is_one_clear_error still runs
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield make
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_really_full_disk_during_a_merge_leaves_the_registry_as_before(pristine, district, small_disk):
    """The registry on a disk with room for 256 KB more: the merge of 800 new components fills
    it. One clear error; the registry opens as before, whole, and a merge fits once there is room."""
    disk = small_disk(pristine.stat().st_size + 256 * 1024)
    path = disk / "registry.gpkg"
    shutil.copy(pristine, path)
    reg = open_registry(path)
    before = reg.state
    batch = district.reserve.iloc[:800].copy()
    batch["component_id"] = None
    from citygrid.errors import OutputError

    with pytest.raises(OutputError, match="the disk is full, so nothing was written"):
        reg.ingest(batch, source="full disk")
    again = open_registry(path)
    assert again.state == before and len(again.components) == 3_000
    assert again.verify() == []
    kept = {"registry.gpkg", "registry.gpkg-wal", "registry.gpkg-shm", "registry.gpkg.snapshot"}  # no partial file
    assert {p.name for p in disk.iterdir()} <= kept
    roomy = small_disk(64 * 2**20)
    shutil.copy(path, roomy / "registry.gpkg")
    assert open_registry(roomy / "registry.gpkg").ingest(batch, source="room").created == 800


def test_a_registry_without_write_access_is_read_and_a_merge_says_so(reg, district, monkeypatch):
    """Where the file and folder are read-only (a share, a CD), SQLite cannot make the -shm of a
    WAL database: the registry is read as it is, and a merge is refused in words."""
    import os
    import sqlite3

    from citygrid.backends import gpkg
    from citygrid.errors import AccessDenied

    path = reg.path
    real_access, real_connect = os.access, sqlite3.connect

    def no_write(target, mode, *args, **kwargs):
        if mode == os.W_OK and os.fspath(target) in (os.fspath(path), os.fspath(path.parent)):
            return False
        return real_access(target, mode, *args, **kwargs)

    def refusing(database, *args, **kwargs):
        if "mode=rw" in database:  # as the OS allows: reading only
            database = database.replace("mode=rw", "mode=ro")
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(os, "access", no_write)
    monkeypatch.setattr(gpkg.sqlite3, "connect", refusing)
    opened = open_registry(path)
    assert len(opened.components) == 3_000
    with pytest.raises(AccessDenied, match="read-only here"):
        opened.ingest(synth.make_batch(district, new=2, updated=0, retired=0, seed=13), source="x")


def test_verify_finds_what_breaks_a_registry_file(reg):
    """Breaks made with plain SQL, as another program would make them; each is named."""
    assert reg.verify() == []
    path = reg.path
    with sqlite3.connect(path) as conn:
        for (key,) in conn.execute("SELECT id FROM rtree_components_point_geom LIMIT 3").fetchall():
            conn.execute("DELETE FROM rtree_components_point_geom WHERE id = ?", (key,))
        conn.execute("UPDATE rtree_grid_geom SET minx = minx + 500, maxx = maxx + 500 WHERE id = 1")
        conn.execute("INSERT INTO citygrid_history (batch_id, component_id, action, changed_at) "
                     "VALUES (77, 'x', 'update', '2026-01-01T00:00:00Z')")
        conn.execute("DELETE FROM gpkg_contents WHERE table_name = 'roads'")
        conn.execute("DROP TRIGGER components_line_update_revision")
    found = "\n".join(gpkg.verify(path))
    assert "components_point: the spatial index holds" in found
    assert "grid: 1 box(es) of the spatial index do not cover their feature" in found
    assert "history: 1 change(s) in 1 batch(es) that are not recorded" in found
    assert "table roads is not registered in gpkg_contents" in found
    assert "guard missing: components_line_update_revision" in found
    with sqlite3.connect(path) as conn:  # else the WAL's newer copies of pages would hide the torn one
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as raw:  # a torn page in the middle of the file
        raw.seek(raw.seek(0, 2) // 2)
        raw.write(b"\xff" * 4096)
    assert any(line.startswith(("integrity_check", "cannot read")) for line in gpkg.verify(path))


def test_a_backup_taken_during_merges_is_before_or_after_and_restores_whole(tmp_path, pristine, district):
    batch = synth.make_batch(district, new=400, updated=300, retired=50, seed=9)
    batch_file = tmp_path / "batch.gpkg"
    batch.to_file(batch_file, layer="batch", engine="pyogrio")
    live = tmp_path / "live.gpkg"
    shutil.copy(pristine, live)
    before = fingerprint(live)
    copies = []
    with subprocess.Popen([sys.executable, "-c", CHILD, str(live), str(batch_file)], stdout=subprocess.PIPE,
                          text=True) as child:
        assert child.stdout.readline().strip() == "start"
        while child.poll() is None and len(copies) < 40:
            copies.append(open_registry(live).backup(tmp_path / f"backup{len(copies)}.gpkg"))
        child.wait()
    after = fingerprint(live)
    states = [fingerprint(c) for c in copies]
    assert copies and all(s in (before, after) for s in states)
    assert all(gpkg.verify(c) == [] for c in copies[:3])
    with pytest.raises(FileExistsError):
        open_registry(live).backup(copies[0])
    assert not list(tmp_path.glob("*.partial"))
    # restore the first backup over the live file: the snapshot of the later state is never served
    restored = open_registry(live)
    _ = restored.components
    shutil.copy(copies[0], live)
    Path(f"{live}-wal").unlink(missing_ok=True)
    Path(f"{live}-shm").unlink(missing_ok=True)
    assert fingerprint(live) == states[0]
