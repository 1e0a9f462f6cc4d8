"""Every extract read back by a reader citygrid did not write, and compared with the registry.

The readers: GDAL (pyogrio's raw arrays, ``ogr2ogr``), Python's csv module, openpyxl and
pyarrow. Positions are checked twice: the WKT (or the stored geometry) against the registry's
geometry, and the lon/lat point projected back to metres must lie on the component.
The registry has had ingests first, so its frame's index has gaps.
"""

import csv
import shutil
import subprocess
import sys

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pyogrio.raw
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from citygrid import synth
from citygrid.registry import Registry, open_registry

ATTRIBUTES = ("component_id", "category", "name", "department", "owner", "owner_code", "maintainer", "street",
              "community", "grid", "status")
SHORT = {"component_id": "COMP_ID", "category": "CATEGORY", "name": "NAME", "department": "DEPT", "owner": "OWNER",
         "owner_code": "OWNER_CODE", "maintainer": "MAINT", "street": "STREET", "community": "COMMUNITY",
         "grid": "GRID", "status": "STATUS", "survey_date": "SURVEYED"}
TO_METRES = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
TO_DEGREES = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A registry after three ingests (new, updated and retired rows): its frame's index has gaps."""
    district = synth.make_district(seed=11, n_components=3_000, reserve=600)
    path = tmp_path_factory.mktemp("exports") / "registry.gpkg"
    registry = Registry.create(path, district=district)
    for seed in (1, 2, 3):
        batch = synth.make_batch(district, registry.components, new=400 if seed == 1 else 0, updated=120,
                                 retired=60, seed=seed)
        assert registry.ingest(batch, source=f"week {seed}").accepted
    registry = open_registry(path)
    index = registry.components.index
    assert not index.equals(pd.RangeIndex(len(index)))  # the case that hid the bug
    return registry


def _expected(reg, **where) -> pd.DataFrame:
    frame = reg.query(**{k: v for k, v in where.items() if k != "department"})
    if "department" in where:
        value = where["department"]
        hit = (frame["department"] == value) | (frame["owner"] == value) | (frame["department_code"] == value) \
            | (frame["owner_code"] == value)
        frame = frame[hit.fillna(False).to_numpy()]
    return frame.set_index("component_id", drop=False)


def _read_gdal(files) -> pd.DataFrame:
    """The components of every file through GDAL's raw arrays: attributes and WKB.

    A GeoPackage's other layers (the outlines placing them, QGIS's styles) and the project
    beside it are not components.
    """
    parts = []
    for f in (f for f in files if f.suffix != ".qgz"):
        for layer, _ in pyogrio.list_layers(f):
            if f.suffix == ".gpkg" and not layer.startswith("components_"):
                continue
            meta, _, geometry, values = pyogrio.raw.read(f, layer=layer)
            part = pd.DataFrame(dict(zip(meta["fields"], values)))
            part["geometry"] = shapely.from_wkb(geometry)
            parts.append(part.assign(crs=meta["crs"]))
    return pd.concat(parts, ignore_index=True)


def _read_csv(path) -> pd.DataFrame:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return pd.DataFrame(rows, dtype=object)


def _read_xlsx(path) -> pd.DataFrame:
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=object)


def _text(values) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _check_positions(back: pd.DataFrame, expected: pd.DataFrame, *, wkt: bool) -> None:
    """WKT (3 decimals) equals the registry's geometry, and lon/lat lies on it."""
    geoms = expected.geometry.to_numpy()
    if wkt:
        read = shapely.from_wkt(back["wkt"].to_numpy())
        assert shapely.equals_exact(read, geoms, tolerance=0.00071).all()  # both axes rounded to 1 mm
    lon, lat = (pd.to_numeric(back[c].replace("", None)).astype(float).to_numpy() for c in ("lon", "lat"))
    assert np.isfinite(lon).all() and np.isfinite(lat).all(), "empty lon/lat"
    x, y = TO_METRES.transform(lon, lat)
    off = shapely.distance(shapely.points(x, y), geoms)
    assert off.max() < 0.02, f"{int((off >= 0.02).sum())} rows' lon/lat are up to {off.max():,.0f} m off"


def _compare(suffix: str, files, expected: pd.DataFrame, fields: str = "citygrid") -> None:
    if suffix in (".gpkg", ".shp", ".geojson"):
        back = _read_gdal(files)
        if suffix == ".shp":
            back = back.rename(columns={v: k for k, v in SHORT.items()})
    elif suffix == ".csv":
        back = _read_csv(files[0])
    elif suffix == ".xlsx":
        back = _read_xlsx(files[0])
    else:
        table = pq.read_table(files[0])
        back = table.drop(["geometry"]).to_pandas()
        back["geometry"] = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    assert back["component_id"].is_unique
    assert sorted(back["component_id"]) == sorted(expected["component_id"])
    back = back.set_index("component_id", drop=False).loc[expected.index]
    for column in ATTRIBUTES:
        assert _text(back[column]) == _text(expected[column].astype(object).where(expected[column].notna(), None)), \
            (suffix, column)
    dates = pd.to_datetime(pd.Series(_text(back["survey_date"])).replace("", None)).dt.date.to_numpy()
    assert (dates == expected["survey_date"].dt.date.to_numpy()).all(), suffix
    if suffix in (".csv", ".xlsx"):
        _check_positions(back, expected, wkt=True)
    else:
        geoms = back["geometry"].to_numpy()
        if suffix == ".geojson":
            geoms = shapely.transform(geoms, lambda c: np.column_stack(TO_METRES.transform(c[:, 0], c[:, 1])))
            tolerance = 0.01  # GeoJSON's 7 decimals of a degree
        else:
            tolerance = 1e-9
        # a Shapefile or a GeoPackage layer of one family stores lines and polygons as multi-parts
        mine = expected.geometry.to_numpy()
        same = shapely.equals_exact(geoms, mine, tolerance=tolerance) | (
            shapely.hausdorff_distance(geoms, mine) <= tolerance)
        assert same.all(), (suffix, int((~same).sum()))


FORMATS = [".gpkg", ".shp", ".geojson", ".csv", ".xlsx", ".parquet"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("where", [{}, {"street": "马峦街道"}, {"category": "0101"},
                                   {"department": "坪山区城市管理和综合执法局"}, {"department": "114403105172374492"}],
                         ids=["all", "street", "category", "department", "department code"])
def test_every_format_and_filter_reads_back_as_the_registry(reg, tmp_path, suffix, where):
    expected = _expected(reg, **where)
    assert len(expected) > 0
    files = reg.export(tmp_path / f"extract{suffix}", **where)
    _compare(suffix, files, expected)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_filter_and_spreadsheet_reads_back_as_the_registry(reg, tmp_path_factory, data):
    components = reg.components
    where = data.draw(st.fixed_dictionaries({}, optional={
        "street": st.sampled_from(sorted(components["street"].dropna().unique())),
        "category": st.sampled_from(sorted(components["category"].unique())),
        "department": st.sampled_from(sorted(components["department"].dropna().unique())
                                      + sorted(components["owner_code"].dropna().unique())[:5]),
    }))
    suffix = data.draw(st.sampled_from([".csv", ".xlsx", ".gpkg"]))
    expected = _expected(reg, **where)
    target = tmp_path_factory.mktemp("property") / f"x{suffix}"
    if expected.empty:
        return
    _compare(suffix, reg.export(target, **where), expected)


def test_the_cli_extract_of_a_street_reads_back_through_ogr2ogr(reg, tmp_path):
    if shutil.which("ogr2ogr") is None:
        pytest.skip("GDAL's ogr2ogr is not installed (apt-get install gdal-bin)")
    xlsx, csv_file = tmp_path / "maluan.xlsx", tmp_path / "maluan.csv"
    for target in (xlsx, tmp_path / "maluan.gpkg"):
        done = subprocess.run([sys.executable, "-m", "citygrid.cli", "export", "--registry", str(reg.path),
                               "--street", "马峦街道", "-o", str(target)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    subprocess.run(["ogr2ogr", "-f", "CSV", str(csv_file), str(tmp_path / "maluan.gpkg"), "-lco",
                    "GEOMETRY=AS_WKT", "components_point"], check=True, capture_output=True)
    expected = _expected(reg, street="马峦街道")
    _compare(".xlsx", [xlsx], expected)
    points = _read_csv(csv_file)
    mine = expected[expected.geom_type == "Point"]
    got = points.set_index("component_id").loc[mine.index]
    assert shapely.equals_exact(shapely.from_wkt(got["WKT"].to_numpy()), mine.geometry.to_numpy(), 1e-6).all()


@pytest.fixture(scope="module")
def report(reg, tmp_path_factory):
    """Issues of many rules, rows without a place among them, and text a page or sheet would run."""
    from citygrid.validation import validate

    batch = reg.components.sample(300, random_state=3).copy()
    batch.loc[batch.index[:20], "component_id"] = None  # copies of registered ones: duplicates
    batch.loc[batch.index[20:30], "geometry"] = None
    batch.loc[batch.index[30:40], "status"] = "<b>坏了</b>"
    batch.loc[batch.index[40:45], "category"] = "=HYPERLINK(\"http://x\")"
    batch.loc[batch.index[45:50], "name"] = "åŸŽå¸‚"  # UTF-8 read as cp1252
    batch = batch.to_crs(4326)
    sheet = pd.DataFrame(batch.drop(columns="geometry")).assign(WKT=batch.geometry.to_wkt())
    path = tmp_path_factory.mktemp("report") / "batch.xlsx"
    sheet.to_excel(path, sheet_name="部件", index=False)  # issues name its sheet, rows and column letters
    result = validate(path, registry=reg)
    assert result.issues["rule"].nunique() >= 4 and result.issues.geometry.isna().any()
    assert set(result.issues["sheet"]) == {"部件"} and result.issues["column"].notna().any()
    return result


def _issue_positions(report) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat of each issue computed here: a point on its geometry, NaN where it has none."""
    geoms = report.issues.geometry.to_numpy()
    lon, lat = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    for i, g in enumerate(geoms):
        if g is not None and not g.is_empty:
            lon[i], lat[i] = TO_DEGREES.transform(*shapely.point_on_surface(g).coords[0])
    return lon, lat


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".json", ".html"])
def test_every_report_format_reads_back_as_the_report(report, tmp_path, suffix):
    import html.parser
    import json

    path = report.to_file(tmp_path / f"issues{suffix}")
    mine = report.issues.reset_index(drop=True)
    lon, lat = _issue_positions(report)
    if suffix == ".gpkg":
        meta, _, geometry, values = pyogrio.raw.read(path, layer="issues")
        back = pd.DataFrame(dict(zip(meta["fields"], values)))
        read = shapely.from_wkb(geometry)
        same = shapely.equals_exact(read, mine.geometry.to_numpy(), 1e-9)
        assert (same | (pd.isna(read) & mine.geometry.isna())).all()
    elif suffix == ".csv":
        back = _read_csv(path)
    elif suffix == ".json":
        back = pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["issues"], dtype=object)
    else:
        class Cells(html.parser.HTMLParser):
            rows: list = []

            def handle_starttag(self, tag, attrs):
                if tag == "tr":
                    self.rows.append([])
                elif tag in ("td", "th"):
                    self.rows[-1].append("")

            def handle_data(self, data):
                if self.rows and self.rows[-1]:
                    self.rows[-1][-1] += data

        parser = Cells()
        parser.feed(path.read_text(encoding="utf-8"))
        table = [r for r in parser.rows if len(r) == 8]
        back = pd.DataFrame(table[1:], columns=["rule", "severity", "component_id", "sheet", "row", "column", "message",
                                                "lonlat"])
        assert "<b>坏了</b>" not in path.read_text(encoding="utf-8")  # escaped, shown as text
    assert len(back) == len(mine)
    for column in ("rule", "component_id", "sheet", "column", "message"):
        assert _text(back[column]) == _text(mine[column].astype(object).where(mine[column].notna(), None)), column
    rows = pd.to_numeric(pd.Series(_text(back["row"])).replace("", None))
    assert rows.fillna(-1).astype(int).tolist() == mine["row"].fillna(-1).astype(int).tolist()
    if suffix == ".gpkg":
        return
    if suffix == ".html":
        xy = back["lonlat"].str.split(", ", expand=True).replace("", None)
        x, y = pd.to_numeric(xy[0]).to_numpy(float), pd.to_numeric(xy[1]).to_numpy(float)
        tolerance = 1e-6
    else:
        x, y = (pd.to_numeric(pd.Series(_text(back[c])).replace("", None)).to_numpy(float) for c in ("x", "y"))
        tolerance = 1e-9
    assert (np.isnan(x) == np.isnan(lon)).all()
    assert np.nanmax(np.abs(x - lon)) < tolerance and np.nanmax(np.abs(y - lat)) < tolerance


def test_a_project_that_cannot_be_written_is_one_clear_error_naming_it(reg, tmp_path):
    from citygrid.errors import OutputError

    (tmp_path / "x.qgz").mkdir()  # a folder where the project would go
    with pytest.raises(OutputError, match="x.qgz"):
        reg.export(tmp_path / "x.gpkg", street="马峦街道")


def test_an_extract_of_one_geometry_reads_back_as_a_batch_without_naming_its_layer(reg, tmp_path):
    """Its outlines and styles beside the components do not make a department name the layer it sends back."""
    from citygrid.errors import BatchError
    from citygrid.io import read_batch

    points = reg.components[reg.components.geom_type == "Point"]
    category = points["category"].value_counts().index[0]
    files = reg.export(tmp_path / "one.gpkg", category=category)
    assert {"components_point", "grid", "streets", "layer_styles"} <= {n for n, _ in pyogrio.list_layers(files[0])}
    back = read_batch(files[0])
    assert sorted(back["component_id"]) == sorted(reg.query(category=category)["component_id"])
    mixed = reg.export(tmp_path / "mixed.gpkg", street="马峦街道")[0]
    with pytest.raises(BatchError, match="several layers"):  # points and lines: which one is for the user to say
        read_batch(mixed)
