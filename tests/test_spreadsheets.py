"""Survey batches as field offices send them: the clean sample batch re-dressed in the habits of
government spreadsheets. Each is either read to exactly the registry the clean batch gives, with
info issues that say what was read as what, or refused with issues that name the row and the
column a spreadsheet shows; openpyxl (not citygrid) says what is in the cell a report names."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

import citygrid as cg
from citygrid import synth
from citygrid.crs import transformer, wgs84_to_gcj02
from citygrid.io import understood_headers
from citygrid.registry import Registry
from citygrid.schema import FIELD_NAMES

DATA = Path(__file__).parents[1] / "data"
FULL_WIDTH = str.maketrans("0123456789.", "０１２３４５６７８９．")
TITLE = "坪山区城市部件普查成果表（2026年第48周）"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The registry of ``citygrid demo --small``, which the sample batches fit."""
    path = tmp_path_factory.mktemp("sheets") / "registry.gpkg"
    Registry.create(path, district=synth.sample_district())
    return path


@pytest.fixture(scope="module")
def expected(template, tmp_path_factory):
    """The registry after the clean batch, as the CSV the project ships."""
    return _registered(template, tmp_path_factory.mktemp("clean"), DATA / "batch_clean.csv")


def clean() -> pd.DataFrame:
    return pd.read_csv(DATA / "batch_clean.csv", dtype=str, keep_default_na=False)


def _registered(template: Path, folder: Path, batch: Path, **options) -> pd.DataFrame:
    path = folder / "registry.gpkg"
    shutil.copy(template, path)
    reg = cg.open_registry(path)
    result = reg.ingest(batch, source="2026-W48", **options)
    assert result.accepted, result.report.issues[["rule", "row", "column", "message"]].to_string()
    assert (result.created, result.updated, result.retired) == (120, 57, 19)
    frame = reg.components.sort_values("component_id").reset_index(drop=True)
    return frame[[*FIELD_NAMES, "retired_at", "geometry"]]


def _same_registry(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["component_id"].tolist() == want["component_id"].tolist()
    for column in [*FIELD_NAMES, "retired_at"]:
        a, b = got[column].astype(object), want[column].astype(object)
        differs = ~((a == b) | (a.isna() & b.isna()))
        assert not differs.any(), (column, a[differs].head(3).tolist(), b[differs].head(3).tolist())
    moved = shapely.distance(got.geometry.to_numpy(), want.geometry.to_numpy())
    assert np.nanmax(moved) < 0.5


def _write_xlsx(path: Path, table: pd.DataFrame, *, above: list[list] = (), below_header: list | None = None,
                sheet: str = "部件", other_sheets: dict[str, list[list]] | None = None, merge_title: bool = False,
                numbers: tuple[str, ...] = ("经度", "纬度")) -> Path:
    """Write `table` as an office does: rows above the header, a second header row, other sheets."""
    book = openpyxl.Workbook()
    book.active.title = sheet
    ws = book.active
    for row in above:
        ws.append(row)
    if merge_title:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(table.columns))
    ws.append(list(table.columns))
    if below_header is not None:
        ws.append(below_header)
    for values in table.itertuples(index=False):
        ws.append([_cell(v, c in numbers) for c, v in zip(table.columns, values)])
    for name, rows in (other_sheets or {}).items():
        other = book.create_sheet(name, 0)
        for row in rows:
            other.append(row)
    book.save(path)
    return path


def _cell(value, number: bool):
    """A cell as a person types it: empty for "", a number in a column of numbers, else the text."""
    if value is None or value == "":
        return None
    if number and isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    return value


def _cells(path: Path, issues: pd.DataFrame) -> list:
    """What openpyxl finds in the cells the issues name (sheet, row, column letter)."""
    book = openpyxl.load_workbook(path, data_only=True)
    out = []
    for issue in issues.itertuples():
        ws = book[issue.sheet]
        out.append(ws[f"{issue.column.split(',')[0]}{int(issue.row)}"].value)
    return out


def _dms(value: float, positive: str, negative: str) -> str:
    degrees = int(abs(value))
    minutes = int((abs(value) - degrees) * 60)
    seconds = (abs(value) - degrees - minutes / 60) * 3600
    return f"{degrees}°{minutes}'{seconds:.3f}\"{positive if value >= 0 else negative}"


# --- read to the very registry the clean batch gives ---------------------------------------------

def test_xlsx_with_a_title_row_an_empty_row_and_the_header_third(template, expected, tmp_path):
    path = _write_xlsx(tmp_path / "batch.xlsx", clean(), above=[[TITLE], []], merge_title=True)
    report = cg.validate(path)
    assert report.ok and set(report.issues["sheet"].dropna()) == {"部件"}
    _same_registry(_registered(template, tmp_path, path), expected)
    book = openpyxl.load_workbook(path)
    assert book["部件"]["A3"].value == "标识码"  # the header is the third row


def test_a_second_header_row_of_the_standards_abbreviations(template, expected, tmp_path):
    abbreviations = ["OBJID", "", "OBJNAME", "", "DEPTNAME1", "DEPTNAME2", "DEPTNAME3", "BGID", "OBJSTATE",
                     "ORDATE", "CHDATE", "DATASOURCE", "", "", ""]
    path = _write_xlsx(tmp_path / "batch.xlsx", clean(), above=[[TITLE]], below_header=abbreviations)
    _same_registry(_registered(template, tmp_path, path), expected)


def test_a_notes_sheet_before_the_data_sheet(template, expected, tmp_path):
    notes = {"填表说明": [["填表说明"], ["1. 坐标为 WGS84 经纬度"], ["2. 日期格式 YYYYMMDD"]]}
    path = _write_xlsx(tmp_path / "batch.xlsx", clean(), sheet="普查成果", other_sheets=notes)
    _same_registry(_registered(template, tmp_path, path), expected)


def test_two_sheets_of_components_ask_for_layer(template, tmp_path):
    book_path = _write_xlsx(tmp_path / "batch.xlsx", clean(), sheet="马峦街道")
    book = openpyxl.load_workbook(book_path)
    copy = book.copy_worksheet(book["马峦街道"])
    copy.title = "坪山街道"
    book.save(book_path)
    with pytest.raises(cg.BatchError, match=r"several sheets of components.*--layer"):
        cg.read_batch(book_path)
    assert cg.read_batch(book_path, layer="坪山街道").attrs["citygrid"]["sheet"] == "坪山街道"


def test_full_width_digits_in_codes(template, expected, tmp_path):
    table = clean()
    for column in ("部件小类", "所在单元网格"):
        table[column] = table[column].str.translate(FULL_WIDTH)
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    report = cg.validate(path)
    said = report.issues[report.issues["rule"] == "schema.read_as"]
    assert len(said) == 2 * len(table) and set(said["severity"]) == {"info"}
    assert "'０１０２' read as '0102'" in said["message"].iloc[0]
    assert set(said["column"]) == {"B", "H"} and said["row"].min() == 2
    _same_registry(_registered(template, tmp_path, path), expected)


@pytest.mark.parametrize("form", ["chinese", "slashes", "dots", "excel serial"])
def test_dates_as_offices_write_them(template, expected, tmp_path, form):
    table = clean()
    for column in ("初始日期", "变更日期"):
        day = pd.to_datetime(table[column], format="%Y%m%d", errors="coerce")
        written = {"chinese": day.map(lambda d: f"{d.year}年{d.month}月{d.day}日" if pd.notna(d) else ""),
                   "slashes": day.dt.strftime("%Y/%-m/%-d"), "dots": day.dt.strftime("%Y.%m.%d"),
                   "excel serial": (day - pd.Timestamp("1899-12-30")).dt.days}[form]
        table[column] = written.where(day.notna(), "")
    path = _write_xlsx(tmp_path / "batch.xlsx", table, numbers=("经度", "纬度", "初始日期", "变更日期"))
    report = cg.validate(path)
    assert report.ok
    said = report.issues[report.issues["rule"] == "schema.read_as"]
    if form in ("chinese", "excel serial"):  # read, and said how: the contractor can be told
        assert len(said) == (table["初始日期"] != "").sum() + (table["变更日期"] != "").sum()
        assert set(said["column"]) == {"J", "K"}
        assert said["message"].iloc[0].endswith("(a Chinese date)" if form == "chinese" else "(an Excel date number)")
    else:  # year, month and day in order: nothing to say
        assert said.empty
    _same_registry(_registered(template, tmp_path, path), expected)


@pytest.mark.parametrize("form", ["dms", "dms chinese", "ddm", "degree sign", "hemisphere", "full-width",
                                  "decimal comma"])
def test_coordinates_as_people_write_them(template, expected, tmp_path, form):
    table = clean()
    lon, lat = table["经度"].astype(float), table["纬度"].astype(float)

    def ddm(v, h):
        return f"{int(v)}°{(v - int(v)) * 60:.5f}'{h}"

    def chinese(v, h):
        d = int(v)
        m = int((v - d) * 60)
        return f"{h}{d}度{m}分{(v - d - m / 60) * 3600:.3f}秒"

    write = {"dms": lambda v, h: _dms(v, h, ""), "dms chinese": chinese, "ddm": ddm,
             "degree sign": lambda v, h: f"{v:.7f}°", "hemisphere": lambda v, h: f"{h}{v:.7f}",
             "full-width": lambda v, h: f"{v:.7f}".translate(FULL_WIDTH),
             "decimal comma": lambda v, h: f"{v:.7f}".replace(".", ",")}[form]
    hemisphere = {"dms chinese": ("东经", "北纬")}.get(form, ("E", "N"))
    table["经度"] = [write(v, hemisphere[0]) for v in lon]
    table["纬度"] = [write(v, hemisphere[1]) for v in lat]
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig", sep=";" if form == "decimal comma" else ",")
    report = cg.validate(path)
    assert report.ok, report.issues.to_string()
    said = report.issues[report.issues["rule"] == "schema.read_as"]
    assert len(said) == 2 * len(table) and set(said["column"]) == {"N", "O"}
    assert said["message"].iloc[0].startswith(f"经度 {table['经度'].iloc[0]!r} read as ")
    _same_registry(_registered(template, tmp_path, path), expected)


def test_gbk_csv_saved_by_excel_and_spaces_around_names(template, expected, tmp_path):
    table = clean()
    table["主管部门"] = " " + table["主管部门"] + "\u3000"
    table["状态"] = table["状态"] + " "
    path = tmp_path / "batch.csv"
    path.write_bytes(table.to_csv(index=False).replace("\n", "\r\n").encode("gbk"))
    report = cg.validate(path)
    said = report.issues[report.issues["rule"] == "schema.read_as"]
    assert set(said["column"]) == {"E", "I"} and said["message"].str.endswith("(spaces around it dropped)").all()
    _same_registry(_registered(template, tmp_path, path), expected)


def test_headers_chinese_offices_use(template, expected, tmp_path):
    table = clean().rename(columns={"标识码": "部件编号", "部件小类": "部件类别", "初始日期": "调查日期",
                                    "权属单位": "产权单位", "养护单位": "维护单位", "所在单元网格": "单元网格编码"})
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    report = cg.validate(path)
    assert not (report.issues["rule"] == "schema.unknown_column").any()
    _same_registry(_registered(template, tmp_path, path), expected)


def test_a_category_column_of_names(template, expected, tmp_path):
    """部件小类 holding names (污水井盖), as many systems export it: read by name."""
    table = clean()
    table["部件小类"] = table["部件名称"]
    table = table.drop(columns="部件名称")
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    _same_registry(_registered(template, tmp_path, path), expected)


def test_a_column_not_understood_is_said_once_and_the_rest_is_read(template, expected, tmp_path):
    table = clean()
    table.insert(3, "井盖材质", "球墨铸铁")
    table.insert(4, "普查人员", "张三")
    table = table.rename(columns={"状态": "部件状况"})  # close to 部件状态
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    with pytest.raises(cg.BatchError, match=r"cannot map required field\(s\) status.*部件状况.*--columns"):
        cg.read_batch(path)
    report = cg.validate(path, columns={"部件状况": "status"})
    unknown = report.issues[report.issues["rule"] == "schema.unknown_column"]
    assert unknown["column"].tolist() == ["D", "E"] and unknown["row"].isna().all()
    assert set(unknown["severity"]) == {"warning"}
    assert "'井盖材质'" in unknown["message"].iloc[0] and "'普查人员'" in unknown["message"].iloc[1]
    _same_registry(_registered(template, tmp_path, path, columns={"部件状况": "status"}), expected)


# --- refused, naming the row and the column a spreadsheet shows -----------------------------------

def test_gauss_krueger_metres_in_the_degree_columns(template, tmp_path):
    table = clean()
    rows = [3, 17, 40, 41, 90, 120, 150, 195]
    x, y = transformer("EPSG:4326", "EPSG:4547").transform(table.loc[rows, "经度"].astype(float),
                                                           table.loc[rows, "纬度"].astype(float))
    table.loc[rows, "经度"] = [f"{v:.3f}" for v in x]
    table.loc[rows, "纬度"] = [f"{v:.3f}" for v in y]
    path = _write_xlsx(tmp_path / "batch.xlsx", table, above=[[TITLE]])
    report = cg.validate(path)
    errors = report.issues[report.issues["severity"] == "error"]
    assert errors["rule"].tolist() == ["geom.missing"] * 8
    assert errors["row"].tolist() == [r + 3 for r in rows]  # a title row and the header above the first row
    assert (errors["column"] == "N,O").all() and errors["message"].str.contains("EPSG:4547").all()
    assert _cells(path, errors) == [pytest.approx(v, abs=0.01) for v in x]
    assert not report.issues["message"].str.contains("ring order").any()


def test_leading_zeros_lost_to_a_number_column(template, tmp_path):
    table = clean()
    table["部件小类"] = table["部件小类"].astype(int)
    path = _write_xlsx(tmp_path / "batch.xlsx", table, above=[[TITLE], []], numbers=("经度", "纬度", "部件小类"))
    report = cg.validate(path)
    errors = report.issues[report.issues["severity"] == "error"]
    assert set(errors["rule"]) == {"schema.unknown_category"} and len(errors) == len(table)
    assert "did you mean '0102' (污水井盖)?" in errors["message"].iloc[0]
    assert (errors["column"] == "B").all() and errors["row"].tolist() == list(range(4, 4 + len(table)))
    assert [str(v) for v in _cells(path, errors)] == table["部件小类"].astype(str).tolist()


def test_a_date_that_is_no_date_is_one_problem_not_two(tmp_path):
    table = clean()
    table.loc[5, "初始日期"] = "03/04/2026"
    table.loc[6, "初始日期"] = "见附件"
    path = _write_xlsx(tmp_path / "batch.xlsx", table)
    report = cg.validate(path)
    errors = report.issues[report.issues["severity"] == "error"]
    assert errors["rule"].tolist() == ["schema.bad_value"] * 2 and errors["row"].tolist() == [7, 8]
    assert "either way round" in errors["message"].iloc[0] and "not a date" in errors["message"].iloc[1]
    assert _cells(path, errors) == ["03/04/2026", "见附件"]


def test_an_unknown_category_name_is_not_an_empty_category(tmp_path):
    table = clean().drop(columns="部件小类")
    table.loc[4, "部件名称"] = "污水井"
    table.loc[9, "部件名称"] = "不明设施"
    path = tmp_path / "batch.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    issues = cg.validate(path).issues
    errors = issues[issues["severity"] == "error"]
    assert errors["rule"].tolist() == ["schema.unknown_category"] * 2 and errors["row"].tolist() == [6, 11]
    assert "'污水井' is not in the catalog" in errors["message"].iloc[0]
    assert "污水井盖 (0102)" in errors["message"].iloc[0] and (errors["column"] == "B").all()


def test_a_wrong_crs_is_named_and_no_python_warning_reaches_the_user(template, tmp_path):
    path = tmp_path / "batch.csv"
    clean().to_csv(path, index=False, encoding="utf-8-sig")
    done = subprocess.run([sys.executable, "-m", "citygrid.cli", "validate", str(path), "--crs", "EPSG:4547"],
                          capture_output=True, text=True, env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert done.returncode == 2 and "Warning" not in done.stderr and "Traceback" not in done.stderr
    assert "do not fit --crs EPSG:4547" in done.stderr and "EPSG:4326" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_longitude_latitude_columns_are_wgs84_said_once_not_warned(tmp_path):
    path = tmp_path / "batch.csv"
    clean().to_csv(path, index=False, encoding="utf-8-sig")
    issues = cg.validate(path).issues
    assert "crs.missing" not in set(issues["rule"])
    said = issues[issues["rule"] == "crs.assumed"]
    assert len(said) == 1 and said["severity"].iloc[0] == "info" and "--gcj02" in said["message"].iloc[0]


# --- a new user's five rows copied from Amap ----------------------------------------------------------

def test_five_rows_copied_from_amap_are_named_and_no_move_is_allowed(template, tmp_path):
    table = clean()
    pick = table[table["标识码"] != ""].head(1).index.tolist() + table[table["标识码"] == ""].head(4).index.tolist()
    table = table.loc[pick].reset_index(drop=True)
    lon, lat = wgs84_to_gcj02(table["经度"].astype(float).to_numpy(), table["纬度"].astype(float).to_numpy())
    table["经度"], table["纬度"] = [f"{v:.7f}" for v in lon], [f"{v:.7f}" for v in lat]
    path = _write_xlsx(tmp_path / "five.xlsx", table)
    reg = cg.open_registry(shutil.copy(template, tmp_path / "registry.gpkg"))
    issues = cg.validate(path, registry=reg).issues
    amap = issues[issues["rule"] == "crs.gcj02_suspected"]
    rows = amap["row"].dropna().astype(int).tolist()  # each row named; the batch as a whole too, if it says so
    assert rows == [2, 3, 4, 5, 6] and amap["message"].str.contains("--gcj02").all() and len(amap) <= 6
    moved = issues[issues["rule"] == "geom.moved_far"]
    assert len(moved) == 1 and "allow" not in moved["message"].iloc[0].replace("do not allow", "")
    assert "--gcj02" in moved["message"].iloc[0]
    fixed = cg.validate(path, registry=reg, gcj02=True)
    assert fixed.ok and "crs.gcj02_suspected" not in set(fixed.issues["rule"])


def test_headers_page_lists_every_header_read():
    page = (Path(__file__).parents[1] / "docs" / "reference" / "headers.md").read_text(encoding="utf-8")
    for field, headers in understood_headers().items():
        line = next(line for line in page.splitlines() if line.startswith(f"| `{field}` |"))
        assert line.endswith(" | " + ", ".join(headers) + " |"), (field, "run: citygrid headers --markdown")


def test_notes_under_the_table_are_said_and_not_read(template, expected, tmp_path):
    path = _write_xlsx(tmp_path / "batch.xlsx", clean(), above=[[TITLE]])
    book = openpyxl.load_workbook(path)
    ws = book.active
    ws.append([])
    ws.append(["制表人：张三", None, None, "审核人：李四"])
    ws.append(["填表日期：2026年11月24日"])
    book.save(path)
    said = cg.validate(path).issues
    said = said[said["message"].str.contains("note under the table")]
    assert said["message"].str.extract(r"^row (\d+)")[0].astype(int).tolist() == [200, 201]
    assert ws["A200"].value == "制表人：张三" and ws["A201"].value.startswith("填表日期")
    _same_registry(_registered(template, tmp_path, path), expected)
