import pandas as pd
import pytest

import citygrid as cg
from citygrid.catalog import GEOMETRY_KINDS, CatalogError, load_catalog


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_has_136_unique_categories(catalog):
    frame = catalog.to_frame()
    assert len(catalog) == 136 == len(cg.load_catalog())
    assert frame["code"].is_unique and frame["code_2026"].is_unique and frame["name_zh"].is_unique


def test_standard_and_extension_counts(catalog):
    frame = catalog.to_frame()
    assert (frame["origin"] == "GB/T 30428.2-2013").sum() == 85
    assert (frame["origin"] == "district extension").sum() == 51
    per_major = frame[frame["origin"] != "district extension"].groupby("major_code").size().to_dict()
    assert per_major == {"01": 38, "02": 17, "03": 11, "04": 10, "05": 3, "06": 6}


def test_every_code_is_in_its_major_class_and_geometry_is_known(catalog):
    for c in catalog:
        assert c.code[:2] == c.major_code == c.code_2026[:2]
        assert c.code_2026 == c.major_code + "0" + c.code[2:]
        assert c.geometry in GEOMETRY_KINDS
        assert c.tolerance_m > 0
        assert c.department


def test_lookup_by_old_code_new_code_and_name(catalog):
    assert catalog["0101"] is catalog["01001"] is catalog["上水井盖"]
    assert catalog["0104"].name_en == "Storm drain grate"
    with pytest.raises(KeyError, match="no category '9999'"):
        catalog["9999"]


def test_code_mapping_both_ways(catalog):
    assert catalog.to_2026(["0405", "nope"]).tolist() == ["04005", None]
    assert catalog.from_2026(["04005"]).tolist() == ["0405"]
    assert catalog.normalise(["0405", "04005", "绿地", "x"]).tolist() == ["0405"] * 3 + [None]


def _write(tmp_path, frame, name="cat.csv", encoding="utf-8"):
    path = tmp_path / name
    frame.to_csv(path, index=False, encoding=encoding)
    return path


def test_user_catalog_round_trip_utf8_and_gbk(tmp_path, catalog):
    frame = catalog.to_frame()
    for encoding in ("utf-8", "gbk"):
        loaded = load_catalog(_write(tmp_path, frame, encoding=encoding))
        assert loaded.to_frame().equals(frame)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(code=f["code"].where(f.index != "0102", "0101")),
         r"line 3, column 'code': '0101' repeats line 2"),
        (lambda f: f.assign(geometry=f["geometry"].where(f.index != "0101", "circle")),
         r"line 2, column 'geometry': 'circle' is not one of"),
        (lambda f: f.assign(code=f["code"].where(f.index != "0201", "0301")),
         r"'0301' does not start with its major class 02"),
        (lambda f: f.assign(code_2026=f["code_2026"].where(f.index != "0101", "0101")),
         r"column 'code_2026': '0101' is not a 5-digit"),
        (lambda f: f.assign(tolerance_m=f["tolerance_m"].astype(str).where(f.index != "0101", "-1")),
         r"column 'tolerance_m': '-1' is not a distance"),
        (lambda f: f.assign(name_zh=f["name_zh"].where(f.index != "0101", "")),
         r"column 'name_zh': '' is empty"),
        (lambda f: f.drop(columns="geometry"), r"lacks column\(s\) geometry;"),
        (lambda f: f.iloc[0:0], r"has no categories"),
    ],
)
def test_bad_catalog_rows_are_named(tmp_path, catalog, change, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(_write(tmp_path, change(catalog.to_frame())))


def test_many_bad_rows_are_all_counted(tmp_path, catalog):
    frame = catalog.to_frame().assign(geometry="blob")
    with pytest.raises(CatalogError, match=r"136 bad value\(s\)(.|\n)*and 116 more"):
        load_catalog(_write(tmp_path, frame))


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_catalog(tmp_path / "nope.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x00" * 50)
    with pytest.raises(CatalogError, match="neither UTF-8 nor GBK"):
        load_catalog(binary)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CatalogError, match="not a readable CSV"):
        load_catalog(empty)


def test_hostile_names_are_kept_verbatim(tmp_path, catalog):
    frame = catalog.to_frame()
    frame.loc["0101", "name_en"] = "<img src=x onerror=alert(1)>'; DROP TABLE x;--"
    loaded = load_catalog(_write(tmp_path, frame))
    assert loaded["0101"].name_en == frame.loc["0101", "name_en"]


def test_frame_has_no_index_column_clash(catalog):
    frame = catalog.to_frame()
    assert frame.index.name is None
    assert isinstance(frame.groupby("major_code").size(), pd.Series)
