import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citygrid import crs
from citygrid._defects import COMPONENT_RULES, mojibake
from citygrid._i18n import using
from citygrid.registry import Registry, open_registry
from citygrid.validation import RULES, validate
from citygrid.validation.report import Report

GUIDE_RULES = {
    "schema.missing_field", "schema.unknown_category", "schema.bad_value", "schema.mojibake", "id.malformed",
    "id.category_mismatch", "id.duplicate", "geom.missing", "geom.invalid", "geom.wrong_type",
    "geom.outside_district", "crs.missing", "crs.gcj02_suspected", "crs.axis_swapped",
    "topology.duplicate_feature", "topology.grid_mismatch", "topology.admin_mismatch", "topology.overlap",
    "owner.unknown", "owner.conflict", "grid.gap", "grid.overlap", "grid.outside_parent",
}
# moves, credit codes, Z/M dropped, a first survey's date rewritten by a later one; what a spreadsheet's values
# were read as, its columns that were not read, and 经度/纬度 read as WGS84
ADDED_RULES = {"geom.moved_far", "owner.bad_code", "geom.flattened", "schema.initial_date_changed",
               "schema.read_as", "schema.unknown_column", "crs.assumed"}


def test_every_rule_of_the_guide_is_registered_once():
    assert set(RULES) == GUIDE_RULES | ADDED_RULES
    for code, spec in RULES.items():
        assert spec.code == code and spec.severity in ("error", "warning", "info") and spec.doc


@pytest.fixture(scope="module")
def truth_report(defect_district):
    return validate(defect_district.components, district=defect_district)


@pytest.mark.parametrize("rule", COMPONENT_RULES)
def test_each_rule_finds_all_its_faults_and_nothing_else(defect_district, truth_report, rule):
    truth = defect_district.defects
    want = set(truth.loc[(truth["layer"] == "components") & (truth["rule"] == rule), "row"])
    issues = truth_report.issues
    got = set(issues.loc[issues["rule"] == rule, "row"].astype(int) - 1)
    recall = len(want & got) / len(want)
    precision = len(want & got) / max(1, len(got))
    assert (recall, precision) == (1.0, 1.0), f"missed {sorted(want - got)}, false alarms {sorted(got - want)}"


def test_clean_components_raise_no_issue(truth_report, defect_district):
    truth_rows = set(defect_district.defects.loc[defect_district.defects["layer"] == "components", "row"])
    flagged = set(truth_report.issues["row"].dropna().astype(int) - 1)
    assert flagged <= truth_rows


def test_grid_faults_are_found_exactly(defect_district):
    report = validate(defect_district.components.head(0), district=defect_district, rules=["grid"])
    truth = defect_district.defects[defect_district.defects["layer"] == "grid"]
    issues = report.issues
    grid = defect_district.grid
    gaps = truth.loc[truth["rule"] == "grid.gap", "row"]
    rings = grid.geometry.iloc[gaps.to_numpy()].buffer(2.0)
    gap_issues = issues[issues["rule"] == "grid.gap"].geometry
    assert all(gap_issues.intersects(ring).any() for ring in rings)
    assert all(rings.intersects(g).any() for g in gap_issues)
    over = set(truth.loc[truth["rule"] == "grid.overlap", "component_id"])
    pairs = issues.loc[issues["rule"] == "grid.overlap", "component_id"]
    assert all(set(p.split("|")) & over for p in pairs)
    assert over <= {c for p in pairs for c in p.split("|")}
    outside = set(truth.loc[truth["rule"] == "grid.outside_parent", "component_id"])
    assert set(issues.loc[issues["rule"] == "grid.outside_parent", "component_id"]) == outside


def test_clean_registry_has_no_issue(tmp_path, small_district):
    reg = Registry.create(tmp_path / "clean.gpkg", district=small_district)
    report = reg.validate()
    assert report.ok and len(report) == 0 and report.checked == 3_000


# --- small hand-made cases ---------------------------------------------------------------

@pytest.fixture
def rows(small_district):
    comps = small_district.components
    points = comps[comps.geom_type == "Point"].head(6).copy()
    return points.reset_index(drop=True)


def _rules(frame, district, rules, **kw):
    return validate(frame, district=district, rules=rules, **kw).issues


def test_schema_rules(rows, small_district):
    rows.loc[0, "status"] = "好的"
    rows.loc[1, "department"] = None
    rows.loc[2, "category"] = "0999"
    rows.loc[2, "component_id"] = None
    rows.loc[3, "name"] = mojibake("坪山大道")
    rows.loc[4, "change_date"] = pd.Timestamp("2001-01-01")
    issues = _rules(rows, small_district, ["schema"])
    assert sorted(zip(issues["row"], issues["rule"])) == [
        (1, "schema.bad_value"), (2, "schema.missing_field"), (3, "schema.unknown_category"),
        (4, "schema.mojibake"), (5, "schema.bad_value")]
    assert "probably '坪山大道'" in issues.loc[issues["rule"] == "schema.mojibake", "message"].iloc[0]
    assert "department" in issues.loc[issues["rule"] == "schema.missing_field", "message"].iloc[0]
    with using("zh"):
        chinese = validate(rows.iloc[[1]])
    assert "主管部门" in chinese.issues.loc[chinese.issues["rule"] == "schema.missing_field", "message"].iloc[0]


def test_id_rules(rows, small_district):
    rows.loc[0, "component_id"] = "4403100101abc001"
    rows.loc[1, "component_id"] = rows.loc[2, "component_id"]
    rows.loc[3, "component_id"] = "440310" + ("0102" if rows.loc[3, "category"] != "0102" else "0103") + "000777"
    rows.loc[4, "component_id"] = "3205080101000001"
    issues = _rules(rows, small_district, ["id"])
    got = sorted(zip(issues["row"], issues["rule"]))
    assert (1, "id.malformed") in got and (5, "id.malformed") in got
    assert (4, "id.category_mismatch") in got
    assert (3, "id.duplicate") in got and (2, "id.duplicate") not in got
    assert "not the district's 440310" in issues.loc[issues["row"] == 5, "message"].iloc[0]


def test_geometry_rules(rows, small_district):
    rows.loc[0, "geometry"] = None
    rows.loc[1, "geometry"] = shapely.MultiPoint([(0, 0), (1, 1)])
    rows.loc[2, "geometry"] = shapely.Point(0, 0)
    rows.loc[3, "geometry"] = shapely.LineString([rows.geometry[3].coords[0], rows.geometry[3].coords[0]])
    issues = _rules(rows, small_district, ["geom"])
    got = sorted(zip(issues["row"], issues["rule"]))
    assert got == [(1, "geom.missing"), (2, "geom.outside_district"), (2, "geom.wrong_type"),
                   (3, "geom.outside_district"), (4, "geom.invalid"), (4, "geom.wrong_type")]
    assert "split the multipart point" in issues.loc[(issues["row"] == 2) & (issues["rule"] == "geom.wrong_type"),
                                                     "message"].iloc[0]
    assert "Too few points" in issues.loc[(issues["row"] == 4) & (issues["rule"] == "geom.invalid"),
                                          "message"].iloc[0]


def test_topology_rules(rows, small_district):
    d = small_district
    rows.loc[1, "category"] = rows.loc[0, "category"]
    rows.loc[1, "component_id"] = None
    rows.loc[1, "geometry"] = shapely.Point(rows.geometry[0].x + 0.3, rows.geometry[0].y)
    place = ["grid", "street", "street_code", "community", "community_code"]
    rows.loc[1, place] = rows.loc[0, place].to_numpy()
    other = d.grid[d.grid["code"] != rows.loc[2, "grid"]].iloc[0]
    rows.loc[2, "grid"] = other["code"]
    far = d.communities[d.communities["street_code"] != rows.loc[3, "street_code"]].iloc[0]
    rows.loc[3, ["community", "community_code"]] = [far["name"], far["code"]]
    issues = _rules(rows, d, ["topology"])
    got = sorted(zip(issues["row"], issues["rule"]))
    assert got == [(2, "topology.duplicate_feature"), (3, "topology.grid_mismatch"),
                   (4, "topology.admin_mismatch")]
    assert "m outside its grid cell" in issues.loc[issues["row"] == 3, "message"].iloc[0]
    # a looser tolerance is an option; a tighter one silences the duplicate
    looser = _rules(rows, d, ["topology.duplicate_feature"], tolerances={rows.loc[0, "category"]: 0.1})
    assert looser.empty


def test_overlap_rule(small_district):
    comps = small_district.components
    poly = comps[comps.geom_type == "Polygon"].head(1).copy()
    twin = poly.copy()
    twin["component_id"] = None
    twin["geometry"] = twin.geometry.translate(12.0, 0.0)
    frame = pd.concat([poly, twin], ignore_index=True)
    issues = _rules(frame, small_district, ["topology.overlap"])
    assert issues["row"].tolist() == [2] and "m²" in issues["message"].iloc[0]
    apart = frame.copy()
    apart.loc[1, "geometry"] = poly.geometry.translate(500.0, 0.0).iloc[0]
    assert _rules(apart, small_district, ["topology.overlap"]).empty


def test_owner_rules(tmp_path, small_district, rows):
    rows.loc[0, "owner"] = "<script>x</script>公司"
    rows.loc[1, "maintainer"] = "不存在的单位"
    issues = _rules(rows, small_district, ["owner"])
    assert sorted(issues["row"]) == [1, 2]
    reg = Registry.create(tmp_path / "r.gpkg", district=small_district)
    batch = reg.components.head(3).copy().drop(columns=["retired_at", "version", "updated_at", "batch_id"])
    other = "坪山街道办事处" if batch["owner"].iloc[0] != "坪山街道办事处" else "马峦街道办事处"
    batch.loc[batch.index[0], "owner"] = other
    report = validate(batch, registry=reg, rules=["owner.conflict"])
    assert report.issues["row"].tolist() == [1] and "confirm the ownership" in report.issues["message"].iloc[0]
    reg.allow(batch["component_id"].iloc[0], "owner.conflict", "transfer approved")
    assert validate(batch, registry=reg, rules=["owner.conflict"]).ok
    with pytest.raises(ValueError, match="not a rule code"):
        reg.allow("x", "owner.nope")


def test_gcj02_shifted_batch_is_suspected(small_district):
    points = small_district.components[small_district.components.geom_type == "Point"].head(200).to_crs(4326)
    shifted = points.set_geometry(crs.geometries_wgs84_to_gcj02(points.geometry.to_numpy()))
    issues = _rules(shifted, small_district, ["crs"])
    assert issues["rule"].tolist() == ["crs.gcj02_suspected"]
    assert "by about 5" in issues["message"].iloc[0] or "by about 6" in issues["message"].iloc[0]
    assert _rules(points, small_district, ["crs"]).empty


def test_options_and_bad_options(rows, small_district):
    rows.loc[0, "status"] = "好的"
    assert validate(rows, district=small_district, skip=["schema"]).ok
    soft = validate(rows, district=small_district, severities={"schema.bad_value": "warning"})
    assert soft.ok and soft.issues["severity"].tolist() == ["warning"]
    with pytest.raises(ValueError, match="no rule or family 'colour'"):
        validate(rows, rules=["colour"])
    with pytest.raises(ValueError, match="severities"):
        validate(rows, severities={"schema.bad_value": "fatal"})


# --- odd and hostile input ---------------------------------------------------------------

def test_empty_batch(small_district):
    report = validate(small_district.components.head(0), district=small_district)
    assert report.ok and len(report) == 0


def test_all_null_geometries_and_mixed_types(small_district, rows):
    nulls = rows.set_geometry([None] * len(rows), crs=rows.crs)
    report = validate(nulls, district=small_district, crs="EPSG:4547")
    assert set(report.issues["rule"]) == {"geom.missing"} and len(report) == len(rows)
    mixed = rows.copy()
    mixed.loc[0, "geometry"] = shapely.box(0, 0, 1, 1)
    mixed.loc[1, "geometry"] = shapely.GeometryCollection([shapely.Point(1, 1)])
    assert "geom.wrong_type" in set(validate(mixed, district=small_district).issues["rule"])


def test_non_string_ids_and_numbers(small_district, rows):
    rows["component_id"] = rows["component_id"].astype("int64").astype(object)
    rows.loc[0, "component_id"] = 12.5
    report = validate(rows, district=small_district, rules=["id", "schema"])
    assert set(report.issues["row"]) == {1}
    assert set(report.issues["rule"]) == {"id.malformed", "schema.bad_value"}


@pytest.mark.slow
def test_a_million_rows(small_district):
    n = 1_000_000
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = small_district.boundary.bounds
    frame = gpd.GeoDataFrame({
        "component_id": pd.array([None] * n, dtype="str"),
        "category": pd.array(np.where(rng.random(n) < 0.5, "0101", "9999"), dtype="str"),
        "status": pd.array(["完好"] * n, dtype="str"),
    }, geometry=shapely.points(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)), crs="EPSG:4547")
    report = validate(frame, district=small_district, rules=["schema.unknown_category", "geom", "id"])
    counts = report.issues["rule"].value_counts()
    assert counts["schema.unknown_category"] == (frame["category"] == "9999").sum()
    assert 0 < counts.get("geom.outside_district", 0) < n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=3, max_size=8))
def test_invalid_polygons_are_exactly_the_invalid_ones(points):
    polygon = shapely.Polygon(points + [points[0]])
    frame = gpd.GeoDataFrame({"category": ["0405"], "component_id": [None]}, geometry=[polygon], crs="EPSG:4547")
    issues = validate(frame, rules=["geom.invalid"]).issues
    assert (len(issues) == 1) == (not polygon.is_empty and not polygon.is_valid)


def _pairs_by_brute_force(xy, group, tolerance):
    i, j = np.nonzero(np.tril(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) <= tolerance[:, None], -1))
    same = group[i] == group[j]
    return sorted(zip(i[same].tolist(), j[same].tolist()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-12, 12), st.integers(-12, 12), st.integers(0, 2)), min_size=0, max_size=40),
       st.sampled_from([(0.0, 0.0), (500_000.0, 2_500_000.0), (-3.7e6, 1.2e6)]),
       st.sampled_from([0.25, 0.5, 1.0, 0.3]))
def test_close_points_are_every_pair_within_the_tolerance(cells, origin, unit):
    # on a lattice of quarter metres, pairs fall exactly on the tolerance and on the hashing grid's lines
    from citygrid.validation.topology import _point_pairs

    xy = np.array([(origin[0] + x / 4, origin[1] + y / 4) for x, y, _ in cells]).reshape(-1, 2)
    group = np.array([g for *_, g in cells], dtype=int)
    tolerance = np.array([unit, 1.0, 0.75])[group]
    got = sorted(map(tuple, _point_pairs(xy, group, tolerance).tolist()))
    assert got == _pairs_by_brute_force(xy, group, tolerance)


def test_close_points_over_a_continent_at_millimetre_tolerance():
    # a hashing grid of 40,000 km by 1 mm has no int64 key per cell: the cells grow, no pair is lost
    from citygrid.validation.topology import _point_pairs

    rng = np.random.default_rng(3)
    xy = rng.uniform(-2e7, 2e7, (300, 2))
    xy = np.concatenate([xy, xy[:50] + rng.uniform(-7e-4, 7e-4, (50, 2))])
    group = np.zeros(len(xy), dtype=int)
    tolerance = np.full(len(xy), 1e-3)
    got = sorted(map(tuple, _point_pairs(xy, group, tolerance).tolist()))
    assert got == _pairs_by_brute_force(xy, group, tolerance) and len(got) >= 25


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789x", min_size=0, max_size=18))
def test_malformed_ids_are_exactly_those_off_layout(text):
    frame = gpd.GeoDataFrame({"category": ["0101"], "component_id": [text]},
                             geometry=[shapely.Point(0, 0)], crs="EPSG:4547")
    issues = validate(frame, rules=["id.malformed"]).issues
    well_formed = text.isdigit() and len(text) in (16, 17)
    assert (len(issues) == 1) == (bool(text) and not well_formed)


# --- the report ---------------------------------------------------------------------------

def test_report_files(tmp_path, rows, small_district):
    rows.loc[0, "status"] = "<img src=x onerror=alert(1)>"
    rows.loc[1, "geometry"] = None
    report = validate(rows, district=small_district)
    data = json.loads(report.to_file(tmp_path / "r.json").read_text(encoding="utf-8"))
    assert set(data) == {"issues", "summary"} and data["summary"]["errors"] == 2
    first = data["issues"][0]
    assert set(first) == {"rule", "severity", "component_id", "sheet", "row", "column", "message", "x", "y"}
    located = [i for i in data["issues"] if i["x"] is not None]
    assert all(114.2 < i["x"] < 114.5 and 22.6 < i["y"] < 22.8 for i in located)
    assert any(i["x"] is None for i in data["issues"])
    page = report.to_file(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x" in page and "Validation report" in page
    with using("zh"):
        chinese = report.to_file(tmp_path / "zh.html").read_text(encoding="utf-8")
        headers = list(pd.read_csv(report.to_file(tmp_path / "zh.csv")).columns)
    assert "校验报告" in chinese and "<td>错误</td>" in chinese and "&lt;img src=x" in chinese
    assert headers == ["规则", "级别", "部件标识码", "工作表", "行", "列", "说明", "经度", "纬度"]
    csv = pd.read_csv(report.to_file(tmp_path / "r.csv"))
    assert list(csv.columns) == ["rule", "severity", "component_id", "sheet", "row", "column", "message", "x", "y"]
    back = gpd.read_file(report.to_file(tmp_path / "r.gpkg"), layer="issues")  # beside it: QGIS's layer_styles
    assert len(back) == 2
    with pytest.raises(ValueError, match="cannot write a report as '.pdf'"):
        report.to_file(tmp_path / "r.pdf")
    summary = report.summary()
    assert summary.loc["geom.missing", "error"] == 1
    assert isinstance(report, Report) and not report.ok


# --- mistakes of real batches: no crash, no false alarm -----------------------------------

def _wgs_points(district, n=20):
    comps = district.components
    return comps[comps.geom_type == "Point"].head(n).to_crs(4326).reset_index(drop=True)


@pytest.mark.parametrize("rows", [[3], "all"])
def test_swapped_rows_are_reported_once_and_judged_where_they_belong(small_district, rows):
    batch = _wgs_points(small_district)
    at = np.arange(len(batch)) if rows == "all" else np.array(rows)
    geoms = batch.geometry.to_numpy().copy()
    geoms[at] = shapely.transform(geoms[at], lambda c: c[:, ::-1])
    batch = batch.set_geometry(list(geoms), crs=4326)
    report = validate(batch, district=small_district)
    assert sorted(zip(report.issues["rule"], report.issues["row"])) == [("crs.axis_swapped", r + 1) for r in at]
    quiet = validate(batch, district=small_district, skip=["crs.axis_swapped"])
    assert quiet.ok and len(quiet) == 0


def test_non_finite_coordinates_are_invalid_or_empty_and_nothing_else(small_district):
    batch = small_district.components[small_district.components.geom_type == "Point"].head(4).copy()
    first = batch.geometry.iloc[1]
    with np.errstate(invalid="ignore"):
        nan_line = shapely.linestrings([[first.x, first.y], [np.nan, 1.0]])
    batch["geometry"] = [batch.geometry.iloc[0], shapely.Point(np.inf, first.y), shapely.Point(np.nan, np.nan),
                         nan_line]
    report = validate(batch, district=small_district)
    got = sorted(zip(report.issues["row"], report.issues["rule"]))
    assert got == [(2, "geom.invalid"), (3, "geom.missing"), (4, "geom.invalid"), (4, "geom.wrong_type")]


def test_registry_holding_a_duplicate_is_validated(tmp_path, small_district):
    import pyogrio

    reg = Registry.create(tmp_path / "r.gpkg", district=small_district)
    comps = reg.components
    twin = comps[comps.geom_type == "Point"].head(1).copy()
    twin["component_id"] = twin["component_id"].str.slice(0, 10) + "999999"
    twin["geometry"] = twin.geometry.translate(0.2, 0.0)
    pyogrio.write_dataframe(twin.drop(columns=["fid"], errors="ignore"), reg.store.path,
                            layer="components_point", append=True)  # as QGIS would add it
    issues = open_registry(reg.store.path).validate().issues
    assert issues["rule"].tolist() == ["topology.duplicate_feature"]
    pair = {twin["component_id"].iloc[0], comps[comps.geom_type == "Point"]["component_id"].iloc[0]}
    named = {issues["component_id"].iloc[0]} | {w.strip("()") for w in issues["message"].iloc[0].split()}
    assert pair <= named and "0.20 m" in issues["message"].iloc[0]


def test_an_update_moved_far_is_reported(tmp_path, small_district):
    reg = Registry.create(tmp_path / "r.gpkg", district=small_district)
    comps = reg.components
    batch = comps[comps.geom_type == "Point"].head(3).drop(
        columns=["retired_at", "version", "updated_at", "batch_id"]).reset_index(drop=True)
    batch["change_date"] = pd.Timestamp("2026-11-30")
    batch.loc[1, "geometry"] = shapely.Point(batch.geometry[1].x + 0.8, batch.geometry[1].y)  # a correction
    batch.loc[2, "geometry"] = shapely.Point(batch.geometry[2].x + 300.0, batch.geometry[2].y)
    report = validate(batch, registry=reg, rules=["geom.moved_far"])
    assert report.issues["row"].tolist() == [3]
    message = report.issues["message"].iloc[0]
    assert "300.0 m" in message and "citygrid allow" in message and batch["component_id"][2] in message
    dry = reg.ingest(batch, source="resurvey", dry_run=True)
    assert dry.report.issues["rule"].tolist().count("geom.moved_far") == 1
    reg.allow(batch["component_id"][2], "geom.moved_far", "moved with the road works")
    assert validate(batch, registry=reg, rules=["geom.moved_far"]).ok


@pytest.mark.parametrize("code, ok", [
    ("914403001922038216", True),  # Huawei Technologies, as published on its business licence
    ("9144030071526726XG", True),  # Shenzhen Tencent Computer Systems, idem
    ("91440300232034226X", False), ("not-a-code", False), ("9144030071526726X", False),
    ("9144030071526726XI", False),  # I is not in the alphabet of GB 32100
])
def test_credit_codes_are_checked(rows, small_district, code, ok):
    rows.loc[0, "owner_code"] = code
    issues = _rules(rows, small_district, ["owner.bad_code"])
    assert issues.empty == ok
    if not ok:
        assert issues["row"].tolist() == [1] and repr(code) in issues["message"].iloc[0]


def test_grid_claims_tolerate_rounding_but_not_a_move(rows, small_district):
    cells = small_district.grid.set_index("code").geometry
    cell = cells[rows.loc[0, "grid"]]
    edge = shapely.shortest_line(cell.exterior, rows.geometry[0])
    on = shapely.Point(edge.coords[0])
    outward = np.subtract(on.coords[0], rows.geometry[0].coords[0])
    outward /= np.hypot(*outward)
    for metres, expected in ((0.05, []), (0.5, ["topology.grid_mismatch"])):
        moved = rows.head(1).copy()
        moved["geometry"] = [shapely.Point(np.add(on.coords[0], metres * outward))]
        got = _rules(moved, small_district, ["topology.grid_mismatch"])["rule"].tolist()
        assert got == expected, metres


def test_an_owner_code_change_is_an_ownership_change(tmp_path, small_district):
    """Ownership is the code as much as the name: either changing needs 确权."""
    reg = Registry.create(tmp_path / "r.gpkg", district=small_district)
    batch = reg.components.head(3).drop(columns=["retired_at", "version", "updated_at", "batch_id"]).reset_index(
        drop=True)
    units = small_district.units
    other = units.loc[units["code"] != batch.loc[0, "owner_code"], "code"].iloc[0]
    batch.loc[0, "owner_code"] = other  # the name kept
    batch.loc[1, ["owner", "owner_code"]] = [None, other]  # the name left blank
    issues = validate(batch, registry=reg, rules=["owner.conflict"]).issues
    assert issues["row"].tolist() == [1, 2]
    assert other in issues["message"].iloc[0] and "confirm the ownership" in issues["message"].iloc[0]
