import geopandas as gpd
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from citygrid import schema
from citygrid.catalog import load_catalog

CATALOG = load_catalog()
codes_old = st.sampled_from(CATALOG.codes)
serials = st.integers(1, schema.SERIAL_MAX)
admin_codes = st.from_regex(r"\d{6}", fullmatch=True)


@given(admin_codes, codes_old, serials, st.booleans())
def test_make_parse_round_trip_in_both_layouts(admin, code, serial, new):
    category = CATALOG[code].code_2026 if new else code
    (ident,) = schema.make_ids(admin, category, [serial])
    assert len(ident) == (17 if new else 16)
    parsed = schema.parse_ids([ident]).iloc[0]
    assert (parsed["admin_code"], parsed["category"], parsed["serial"]) == (admin, category, serial)
    assert parsed["layout"] == ("gbt47678" if new else "cjt214")
    problems = schema.id_problems([ident], [category], admin_code=admin).iloc[0]
    assert problems["malformed"] == "" and problems["category_mismatch"] == ""


@given(admin_codes, codes_old, serials)
def test_migration_keeps_admin_serial_and_category(admin, code, serial):
    (old,) = schema.make_ids(admin, code, [serial])
    (new,) = schema.migrate_ids([old], CATALOG)
    assert new == admin + CATALOG[code].code_2026 + str(serial).zfill(6)
    assert schema.migrate_ids([new], CATALOG).tolist() == [new]


@given(st.text(max_size=20))
def test_random_text_never_crashes_the_checker(text):
    out = schema.id_problems([text], ["0101"])
    if not (text.isascii() and text.isdigit() and len(text) in (16, 17)):
        assert out["malformed"].iloc[0] != ""


def test_id_problems_reasons():
    ids = ["4403100101000001", "44031001010000A1", "123", None, 440310010100001,
           "4403200101000001", "44031001001000001"]
    out = schema.id_problems(ids, ["0102", "0101", "0101", "0101", "0101", "0101", "01001"],
                             admin_code="440310")
    assert out["malformed"].tolist() == [
        "", "has characters other than digits", "has 3 characters, expected 16 or 17 digits",
        "is empty or not text", "is empty or not text",
        "starts with division code 440320, not the district's 440310", "",
    ]
    assert out["category_mismatch"].tolist()[0] == "id says category 0101, the category field says 0102"
    assert out["category_mismatch"].tolist()[1:] == [""] * 6


def test_required_layout():
    out = schema.id_problems(["44031001001000001"], layout="cjt214")
    assert "not in the CJ/T 214" in out["malformed"].iloc[0]
    with pytest.raises(ValueError, match="layout='gb' is not known"):
        schema.id_problems(["x"], layout="gb")


def test_next_ids_follow_the_largest_serial_of_that_category():
    existing = ["4403100101000041", "4403100101000007", "4403100102000099", "junk", None]
    assert schema.next_ids(existing, "440310", "0101", 2).tolist() == \
        ["4403100101000042", "4403100101000043"]
    assert schema.next_ids([], "440310", "01001", 1).tolist() == ["44031001001000001"]
    with pytest.raises(ValueError, match="would pass 999999"):
        schema.next_ids(["4403100101999999"], "440310", "0101", 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("44031", "0101", [1]), "6-digit division code"),
     (("440310", "011", [1]), "4-digit or all 5-digit"),
     (("440310", ["0101", "01001"], [1, 2]), "4-digit or all 5-digit"),
     (("440310", "0101", [0]), r"serials must be in 1\.\.999999")],
)
def test_make_ids_rejects_bad_parts(args, message):
    with pytest.raises(ValueError, match=message):
        schema.make_ids(*args)


def test_migrate_rejects_malformed_and_unknown_categories():
    with pytest.raises(ValueError, match="malformed"):
        schema.migrate_ids(["123"], CATALOG)
    with pytest.raises(ValueError, match=r"\['0199'\] have no GB/T 47678.5 code"):
        schema.migrate_ids(["4403100199000001"], CATALOG)


def test_aliases_cover_both_standards():
    aliases = schema.column_aliases()
    for f in schema.FIELDS:
        for abbreviation in (f.cjt214, f.gbt47678):
            if abbreviation:
                assert aliases[abbreviation] == f.name
    assert aliases["OBJCODE"] == "component_id" and aliases["权属单位"] == "owner"


@pytest.mark.parametrize("layout", ["cjt214", "gbt47678", "citygrid"])
def test_export_names_are_unique_and_short(layout):
    names = list(schema.standard_columns(layout).values())
    assert len(set(names)) == len(names)
    if layout != "citygrid":
        assert max(map(len, names)) <= 10


def test_uscc_check_digits():
    units = pd.read_csv(__import__("citygrid").admin._package_file("pingshan_units.csv"), dtype=str)
    assert schema.is_uscc(units["code"]).all()
    broken = units["code"].str.slice(0, 17) + "0"
    assert not schema.is_uscc(broken[broken != units["code"]]).any()


def test_pandera_schema_accepts_clean_and_lists_every_failure(small_district):
    comps = small_district.components
    check = schema.component_schema(CATALOG)
    check.validate(comps, lazy=True)
    bad = comps.head(5).copy()
    bad.loc[bad.index[0], "status"] = "良好"
    bad.loc[bad.index[1], "category"] = "9999"
    bad.loc[bad.index[2], "component_id"] = "12"
    with pytest.raises(pa.errors.SchemaErrors) as err:
        check.validate(bad, lazy=True)
    failed = set(err.value.failure_cases["column"])
    assert {"status", "category", "component_id"} <= failed


def test_pandera_schema_checks_crs():
    frame = gpd.GeoDataFrame({"component_id": ["4403100101000001"]},
                             geometry=[shapely.Point(114.3, 22.7)], crs="EPSG:4326")
    with pytest.raises(TypeError, match="CRS mismatch; actual EPSG:4326, expected EPSG:4547"):
        schema.component_schema(CATALOG).validate(frame, lazy=True)


def test_statuses_and_fields():
    assert set(schema.STATUSES) >= {"完好", "破损", "丢失", "占用", "废弃", "移除"}
    assert schema.REQUIRED_FIELDS == ("component_id", "category", "department", "grid",
                                      "status", "survey_date")
    assert np.all([f.kind in ("str", "date") for f in schema.FIELDS])
