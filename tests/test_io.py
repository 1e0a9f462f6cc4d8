import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from citygrid import crs, settings
from citygrid.io import BatchError, read_batch
from citygrid.validation import validate

HOSTILE = ["<img src=x onerror=alert(1)>", "O'Brien \"quoted\"", "'; DROP TABLE components;--",
           "名" * 10_000, "emoji 🚧🕳️", "坪山大道"]


@pytest.fixture(scope="module")
def sample(small_district):
    comps = small_district.components
    return comps[comps.geom_type == "Point"].head(30).reset_index(drop=True)


def _wgs(frame):
    return frame.to_crs(settings.web_crs)


def _shapefile(tmp_path, frame, encoding, name="batch"):
    path = tmp_path / f"{name}.shp"
    out = frame[["component_id", "category", "department", "owner", "grid", "status", "survey_date",
                 "geometry"]].rename(columns={"component_id": "OBJID", "category": "CATEGORY",
                                              "department": "DEPTNAME1", "owner": "DEPTNAME2",
                                              "grid": "BGID", "status": "OBJSTATE", "survey_date": "ORDATE"})
    out["ORDATE"] = out["ORDATE"].dt.strftime("%Y%m%d")
    pyogrio.write_dataframe(out, path, encoding=encoding)
    return path


@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
def test_shapefile_without_cpg_is_decoded(tmp_path, sample, encoding):
    path = _shapefile(tmp_path, sample, encoding)
    path.with_suffix(".cpg").unlink(missing_ok=True)
    batch = read_batch(path)
    assert batch["owner"].tolist() == sample["owner"].tolist()
    assert batch.attrs["citygrid"]["encoding_from"] == "detected"
    assert not validate(batch, rules=["schema.mojibake"]).issues.shape[0]


def test_shapefile_cpg_is_obeyed(tmp_path, sample):
    path = _shapefile(tmp_path, sample, "GBK")
    path.with_suffix(".cpg").write_text("936")
    assert read_batch(path)["department"].iloc[0] == sample["department"].iloc[0]


def test_missing_prj_is_detected_and_reported(tmp_path, sample):
    path = _shapefile(tmp_path, sample, "UTF-8")
    path.with_suffix(".prj").unlink()
    batch = read_batch(path)
    assert batch.attrs["citygrid"]["crs_from"] == "detected"
    assert shapely.equals_exact(batch.geometry.to_numpy(), sample.geometry.to_numpy(), tolerance=1e-3).all()
    report = validate(batch)
    assert report.issues["rule"].tolist() == ["crs.missing"] and report.ok
    given = read_batch(path, crs="EPSG:4547")
    assert given.attrs["citygrid"]["crs_from"] == "given"
    assert "crs.missing" not in validate(given).issues["rule"].tolist()


@pytest.mark.parametrize("epsg", ["EPSG:4326", "EPSG:4490", "EPSG:4547"])
def test_batches_in_each_crs_land_in_place(sample, epsg):
    batch = read_batch(sample.to_crs(epsg))
    assert batch.crs.to_string() == settings.default_crs
    distance = shapely.distance(batch.geometry.to_numpy(), sample.geometry.to_numpy())
    assert distance.max() < 1.0  # CGCS2000 and WGS84 differ by well under a metre here


def test_gcj02_batch_is_shifted_back(sample):
    wgs = _wgs(sample)
    shifted = wgs.set_geometry(crs.geometries_wgs84_to_gcj02(wgs.geometry.to_numpy()))
    fixed = read_batch(shifted, gcj02=True)
    assert shapely.distance(fixed.geometry.to_numpy(), sample.geometry.to_numpy()).max() < 0.01
    raw = read_batch(shifted)
    assert 400 < shapely.distance(raw.geometry.to_numpy(), sample.geometry.to_numpy()).min() < 700
    with pytest.raises(BatchError, match="needs longitude/latitude"):
        read_batch(sample, gcj02=True)


def test_csv_with_chinese_coordinate_columns_in_gbk(tmp_path, sample):
    wgs = _wgs(sample)
    table = pd.DataFrame({"标识码": wgs["component_id"], "部件小类": wgs["category"], "主管部门": wgs["department"],
                          "所在单元网格": wgs["grid"], "状态": wgs["status"],
                          "初始日期": wgs["survey_date"].dt.strftime("%Y/%m/%d"),
                          "经度": wgs.geometry.x.round(8), "纬度": wgs.geometry.y.round(8)})
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="gbk")
    batch = read_batch(path)
    assert batch.attrs["citygrid"]["encoding"] == "gb18030"
    assert batch["department"].tolist() == sample["department"].tolist()
    assert batch["component_id"].tolist() == sample["component_id"].tolist()
    assert (batch["survey_date"] == sample["survey_date"]).all()
    assert shapely.distance(batch.geometry.to_numpy(), sample.geometry.to_numpy()).max() < 0.01


def test_xlsx_numbers_that_lost_digits_are_reported(tmp_path, sample):
    wgs = _wgs(sample)
    table = pd.DataFrame({"OBJID": wgs["component_id"].astype("int64").astype(float),
                          "OBJSTATE": wgs["status"], "DEPTNAME1": wgs["department"], "BGID": wgs["grid"],
                          "ORDATE": wgs["survey_date"], "lon": wgs.geometry.x, "lat": wgs.geometry.y})
    table.loc[0, "OBJID"] = 44031001010000017.0
    path = tmp_path / "batch.xlsx"
    table.to_excel(path, index=False)
    batch = read_batch(path)
    assert batch["component_id"].iloc[1] == sample["component_id"].iloc[1]
    report = validate(batch, rules=["schema.bad_value"])
    assert report.issues["row"].tolist() == [2]  # the spreadsheet's row: the header is row 1
    assert "stored as a number may have lost digits" in report.issues["message"].iloc[0]


def test_swapped_axes_are_flagged_where_they_belong(sample):
    wgs = _wgs(sample)
    geoms = wgs.geometry.to_numpy().copy()
    geoms[:3] = shapely.transform(geoms[:3], lambda c: c[:, ::-1])
    batch = read_batch(wgs.set_geometry(list(geoms)))
    assert batch.attrs["citygrid"]["swapped_rows"] == [1, 2, 3]
    report = validate(batch, rules=["crs.axis_swapped"])
    assert report.issues["row"].tolist() == [1, 2, 3]
    located = report.issues.geometry.to_numpy()
    assert shapely.distance(located, sample.geometry.to_numpy()[:3]).max() < 1.0


def test_column_mapping_and_missing_fields(sample):
    raw = sample[["status", "department", "grid", "survey_date", "geometry"]].rename(
        columns={"status": "井盖状况"}).assign(种类="0101")
    with pytest.raises(BatchError, match=r"cannot map required field\(s\) category(.|\n)*status"):
        read_batch(raw)
    batch = read_batch(raw, columns={"井盖状况": "status", "种类": "category"})
    assert batch["status"].tolist() == sample["status"].tolist()
    with pytest.raises(BatchError, match=r"unknown field\(s\) colour;"):
        read_batch(raw, columns={"种类": "colour"})


@pytest.mark.parametrize(("content", "suffix", "message"), [
    (b"not a shapefile at all", ".shp", "has no .dbf beside it"),
    (b"", ".csv", "cannot read 'bad.csv' as CSV"),
    (b"a,b\n1,2\n", ".csv", "no coordinates"),
    (b"\x00\x01", ".dwg", "unknown kind of file"),
    (b"PK\x03\x04broken", ".xlsx", "cannot read 'bad.xlsx' as Excel"),
    (b"{\"type\": \"FeatureCollection\", \"features\": [", ".geojson", "cannot read"),
])
def test_broken_files_give_clear_errors(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(BatchError, match=message):
        read_batch(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_batch(tmp_path / "nope.shp")


def test_hostile_and_odd_values_survive(tmp_path, sample):
    frame = sample.head(len(HOSTILE)).copy()
    frame["name"] = HOSTILE
    frame["remarks"] = ["line\nbreak", "tab\there", "", None, "  padded  ", "ok"]
    path = tmp_path / "hostile.gpkg"
    frame.to_file(path, layer="batch", engine="pyogrio")
    batch = read_batch(path)
    assert batch["name"].tolist() == HOSTILE
    assert batch["remarks"].tolist()[:2] == ["line\nbreak", "tab\there"]
    assert pd.isna(batch["remarks"].iloc[2]) and pd.isna(batch["remarks"].iloc[3])


def test_empty_and_z_geometries(sample):
    frame = sample.head(4).copy()
    geoms = list(frame.geometry)
    geoms[0] = None
    geoms[1] = shapely.Point()
    geoms[2] = shapely.Point(geoms[2].x, geoms[2].y, 12.5)
    frame = frame.set_geometry(geoms, crs=sample.crs)
    batch = read_batch(frame)
    assert not shapely.has_z(batch.geometry.to_numpy()[2])
    report = validate(batch, rules=["geom"])
    assert sorted(zip(report.issues["row"], report.issues["rule"])) == [
        (1, "geom.missing"), (2, "geom.missing"), (3, "geom.flattened")]


def test_dates_in_every_form(sample):
    frame = sample.head(5).copy()
    frame["survey_date"] = ["20190514", "2019-05-14", "2019/5/14", "yesterday", None]
    batch = read_batch(frame)
    assert batch["survey_date"].iloc[:3].dt.strftime("%Y-%m-%d").tolist() == ["2019-05-14"] * 3
    bad = batch.attrs["citygrid"]["bad_values"]
    assert bad == [{"row": 4, "field": "survey_date", "value": "yesterday",
                    "reason": "not a date (use YYYYMMDD or YYYY-MM-DD)"}]


def test_fiona_engine_reads_the_same(tmp_path, sample):
    path = _shapefile(tmp_path, sample, "UTF-8")
    a = read_batch(path, engine="pyogrio")
    b = read_batch(path, engine="fiona")
    assert a["owner"].tolist() == b["owner"].tolist()
    assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=1e-6).all()


def test_multilayer_file_needs_a_layer(tmp_path, sample):
    path = tmp_path / "two.gpkg"
    sample.to_file(path, layer="a", engine="pyogrio")
    sample.to_file(path, layer="b", engine="pyogrio")
    with pytest.raises(BatchError, match=r"several layers \(a, b\); choose one with --layer"):
        read_batch(path)
    assert len(read_batch(path, layer="b")) == len(sample)
    with pytest.raises(BatchError, match="no layer 'c'"):
        read_batch(path, layer="c")


def test_rows_are_numbered_from_one(sample):
    batch = read_batch(sample)
    assert batch["row"].tolist() == list(range(1, len(sample) + 1))
    assert isinstance(batch, gpd.GeoDataFrame) and np.all(batch.columns[:3] == ["component_id", "category",
                                                                                  "category_name"])


def test_odd_coordinates_and_text_are_named(tmp_path):
    """Decimal commas are read; coordinates that are no numbers, NUL bytes and heights are reported."""
    import citygrid as cg

    table = tmp_path / "odd.csv"
    table.write_text(
        "类别,经度,纬度,初始日期,状态,主管部门,所在单元网格,名称\n"
        "0101,\"114,3512\",\"22,7013\",20261123,完好,坪山区水务局,440310001001001,甲\n"
        "0101,114°21′,22°42′,20261123,完好,坪山区水务局,440310001001001,乙\n"
        "0101,114.3512,22.7013,20261123,完好,坪山区水务局,440310001001001,\"丙\x00丁\"\n"
        "0101,见图纸,见图纸,20261123,完好,坪山区水务局,440310001001001,戊\n", encoding="utf-8")
    batch = read_batch(table, required=())
    assert batch["row"].tolist() == [2, 3, 4, 5]  # the lines of the file, the header being line 1
    lonlat = batch.to_crs("EPSG:4326").geometry
    assert (round(lonlat.iloc[1].x, 6), round(lonlat.iloc[1].y, 6)) == (114.35, 22.7)  # 114°21′ 22°42′
    assert batch.geometry.iloc[3] is None
    issues = cg.validate(batch).issues
    missing = issues[issues["rule"] == "geom.missing"]
    assert missing["row"].tolist() == [5] and "见图纸" in missing["message"].iloc[0]
    nul = issues[(issues["rule"] == "schema.bad_value") & (issues["row"] == 4)]
    assert "NUL" in nul["message"].iloc[0]
    words = tmp_path / "words.csv"
    words.write_text("类别,经度,纬度\n0101,见图纸,见图纸\n0101,—,—\n", encoding="utf-8")
    with pytest.raises(BatchError, match="hold no numbers.*见图纸"):
        read_batch(words, required=())


def test_heights_and_measures_are_dropped_with_a_warning(sample):
    import citygrid as cg

    wgs = _wgs(sample).head(3)
    wgs["geometry"] = [shapely.Point(p.x, p.y, 12.5) for p in wgs.geometry]
    report = cg.validate(wgs)
    assert report.ok and report.issues["rule"].tolist() == ["geom.flattened"] * 3
    assert (report.issues["severity"] == "warning").all()
