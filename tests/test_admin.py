import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from citygrid import admin
from citygrid.admin import District, load_profile, read_boundary, read_units

ADMIN = admin._package_file("pingshan_admin.csv")


def test_default_profile_is_pingshan():
    p = load_profile()
    assert (p.code, p.name) == ("440310", "坪山区")
    assert p.streets["name"].tolist() == [
        "坪山街道", "马峦街道", "碧岭街道", "石井街道", "坑梓街道", "龙田街道"]
    assert len(p.communities) == 23 and p.communities["provisional"].all()
    assert all(c.startswith(s) for c, s in zip(p.communities["code"], p.communities["street_code"]))
    assert p.communities["code"].is_unique
    assert len(p.units) == 57 and (p.units["level"] == "city").sum() == 20
    assert 150e6 < p.boundary.area < 180e6


def test_another_community_is_a_line_of_data(tmp_path):
    path = tmp_path / "admin.csv"
    text = ADMIN.read_text(encoding="utf-8").rstrip("\n") + "\ncommunity,,新和社区,440310001,derived list\n"
    path.write_text(text, encoding="utf-8")
    p = load_profile(path)
    assert len(p.communities) == 24
    assert p.communities.iloc[-1][["code", "name"]].tolist() == ["440310001005", "新和社区"]


def test_gbk_admin_file(tmp_path):
    path = tmp_path / "admin_gbk.csv"
    path.write_bytes(ADMIN.read_text(encoding="utf-8").encode("gbk"))
    assert load_profile(path).streets["name"].iloc[0] == "坪山街道"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("district,440310", "street,440310", 1),
         "exactly one row with level 'district'"),
        (lambda t: t.replace("community,,坪山社区,440310001", "community,,坪山社区,440310009"),
         r"community\(s\) 坪山社区 need a parent_code"),
        (lambda t: t.replace("street,440310002,", "street,44031002,"),
         r"street\(s\) 马峦街道 need a 9-digit"),
        (lambda t: t.replace("community,,坪山社区", "town,,坪山社区"), r"unknown level\(s\) town;"),
        (lambda t: t.replace("community,,六和社区,440310001", "community,440310002001,六和社区,440310001"),
         "community codes must be 12 unique digits"),
        (lambda t: t.replace("level,code,name_zh,parent_code", "level,code,name,parent"), "lacks column"),
    ],
)
def test_bad_admin_files_say_what_is_wrong(tmp_path, edit, message):
    path = tmp_path / "admin.csv"
    path.write_text(edit(ADMIN.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_profile(path)


def test_boundary_readers(tmp_path):
    square = shapely.box(114.30, 22.65, 114.32, 22.67)
    feature = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "<b>x</b>"},
         "geometry": json.loads(shapely.to_geojson(square))}]}
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(feature))
    wgs = read_boundary(path, crs="EPSG:4326")
    gcj = read_boundary(path, crs="gcj02")
    assert wgs.geom_type in ("Polygon", "MultiPolygon") and wgs.area == pytest.approx(gcj.area, rel=5e-3)
    shift = shapely.centroid(wgs).distance(shapely.centroid(gcj))
    assert 400 < shift < 700
    point = tmp_path / "p.geojson"
    point.write_text(shapely.to_geojson(shapely.Point(1, 2)))
    with pytest.raises(ValueError, match="holds no polygon"):
        read_boundary(point)
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json")
    with pytest.raises(ValueError, match="is not GeoJSON"):
        read_boundary(junk)
    with pytest.raises(FileNotFoundError):
        read_boundary(tmp_path / "missing.geojson")


def test_bowtie_boundary_is_repaired(tmp_path):
    path = tmp_path / "bowtie.geojson"
    bowtie = shapely.Polygon([(114.3, 22.6), (114.4, 22.7), (114.4, 22.6), (114.3, 22.7)])
    path.write_text(shapely.to_geojson(bowtie))
    assert read_boundary(path, crs="EPSG:4326").is_valid


def test_unit_list_errors(tmp_path):
    units = pd.read_csv(admin._package_file("pingshan_units.csv"), dtype=str, keep_default_na=False)
    bad = pd.concat([units, units.head(1)])
    bad.loc[bad.index[-1], "maintainer"] = "没有这个单位"
    bad.loc[bad.index[-2], "kind"] = "club"
    path = tmp_path / "units.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"repeated names(.|\n)*kinds must be one of(.|\n)*没有这个单位"):
        read_units(path)


def test_locate_points_and_outside(small_district):
    d = small_district
    cells = d.grid.sample(50, random_state=1)
    probes = list(shapely.point_on_surface(cells.geometry.to_numpy())) + [shapely.Point(0, 0), None]
    out = d.locate(probes)
    assert out["grid"].tolist()[:50] == cells["code"].tolist()
    assert out.iloc[50:].isna().all().all()
    names = dict(zip(d.streets["code"], d.streets["name"]))
    assert out["street"].tolist()[:50] == [names[c] for c in cells["street_code"]]


def test_street_lookup(small_district):
    assert small_district.street("马峦街道")["code"] == "440310002"
    assert small_district.street("440310005")["name"] == "坑梓街道"
    with pytest.raises(KeyError, match="streets are: 坪山街道, 马峦街道"):
        small_district.street("东门街道")


def test_file_round_trip_with_one_layer_per_kind(tmp_path, small_district):
    path = tmp_path / "d.gpkg"
    written = small_district.to_file(path)
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert layers["components_point"] == "Point" and layers["components_polygon"] == "Polygon"
    assert layers["grid"] == "MultiPolygon"
    back = District.from_file(path)
    assert sum(v for k, v in written.items() if k.startswith("components")) == len(back.components)
    a = small_district.components.sort_values("component_id").reset_index(drop=True)
    b = back.components.sort_values("component_id").reset_index(drop=True)[a.columns]
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"),
                                  check_dtype=False)
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=1e-6).all()
    assert back.boundary.equals_exact(small_district.boundary, 1e-6) or \
        back.boundary.symmetric_difference(small_district.boundary).area < 1e-3


def test_failed_write_keeps_the_old_file(tmp_path, small_district, monkeypatch):
    path = tmp_path / "d.gpkg"
    small_district.to_file(path)
    before = path.read_bytes()
    calls = {"n": 0}
    real = pyogrio.write_dataframe

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", dying)
    with pytest.raises(OSError, match="disk full"):
        small_district.to_file(path)
    assert path.read_bytes() == before


def test_from_file_rejects_other_files(tmp_path):
    path = tmp_path / "other.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326).to_file(path, layer="x")
    with pytest.raises(ValueError, match=r"not a citygrid district: it lacks layers"):
        District.from_file(path)
    with pytest.raises(FileNotFoundError):
        District.from_file(tmp_path / "none.gpkg")
