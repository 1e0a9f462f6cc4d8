import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from citygrid import synth
from citygrid._defects import COMPONENT_RULES, GRID_RULES
from citygrid.catalog import load_catalog

CATALOG = load_catalog()


def test_same_seed_same_district_other_seed_differs():
    a = synth.make_district(seed=7, n_components=1_500)
    b = synth.make_district(seed=7, n_components=1_500)
    c = synth.make_district(seed=8, n_components=1_500)
    for name in ("components", "grid", "communities", "streets", "roads"):
        assert_geodataframe_equal(getattr(a, name), getattr(b, name))
    assert not a.components["component_id"].equals(c.components["component_id"])


def test_grid_tiles_each_community_without_gap_or_overlap(small_district):
    d = small_district
    cells = d.grid.geometry.to_numpy()
    assert shapely.is_valid(cells).all()
    # no overlap: areas add up to the area of the union, per community and overall
    for code, group in d.grid.groupby("community_code"):
        community = d.communities.set_index("code").geometry[code]
        assert group.area.sum() == pytest.approx(community.area, rel=1e-9)
        assert shapely.union_all(group.geometry.to_numpy()).symmetric_difference(community).area < 1.0
    union = shapely.coverage_union_all(cells)
    assert d.grid.area.sum() == pytest.approx(union.area, rel=1e-9)
    # no gap: the cells cover the district
    assert union.symmetric_difference(d.boundary).area < 1.0


def test_every_cell_in_exactly_one_community_and_codes_nest(small_district):
    d = small_district
    probes = shapely.point_on_surface(d.grid.geometry.to_numpy())
    hit_in, hit_comm = d.communities.sindex.query(probes, predicate="within")
    assert np.array_equal(np.bincount(hit_in, minlength=len(d.grid)), np.ones(len(d.grid)))
    assert (d.communities["code"].to_numpy()[hit_comm[np.argsort(hit_in)]] == d.grid["community_code"]).all()
    assert d.grid["code"].str.fullmatch(r"\d{15}").all() and d.grid["code"].is_unique
    assert (d.grid["code"].str.slice(0, 12) == d.grid["community_code"]).all()
    assert (d.grid["community_code"].str.slice(0, 9) == d.grid["street_code"]).all()
    assert 10_000 <= len(d.grid) <= 20_000
    assert 7_000 < d.grid.area.median() < 13_000


def test_components_are_where_they_claim_and_of_their_category_type(small_district):
    d = small_district
    comps = d.components
    assert len(comps) == 3_000 and comps["category"].nunique() == 136
    located = d.locate(comps.geometry)
    for column in ("grid", "community_code", "street_code", "community", "street"):
        assert (located[column].to_numpy() == comps[column].to_numpy()).all(), column
    expected = comps["category"].map({c.code: c.geometry for c in CATALOG})
    actual = comps.geom_type.map({"Point": "point", "LineString": "line", "Polygon": "polygon"})
    assert (expected == actual).all()
    assert shapely.is_valid(comps.geometry.to_numpy()).all()
    assert comps.within(d.boundary).all()


def test_clean_district_has_no_duplicates_or_overlaps():
    d = synth.make_district(seed=3, n_components=60_000)
    comps = d.components
    tolerance = comps["category"].map(CATALOG.tolerance()).to_numpy()
    geoms = comps.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=tolerance.max())
    pairs = left < right
    left, right = left[pairs], right[pairs]
    same = comps["category"].to_numpy()[left] == comps["category"].to_numpy()[right]
    distance = shapely.distance(geoms[left[same]], geoms[right[same]])
    assert (distance > tolerance[left[same]]).all()
    assert comps["component_id"].is_unique


def test_counts_are_skewed_like_a_city():
    counts = synth.category_counts(CATALOG, 420_000, np.random.default_rng(0))
    assert counts.sum() == 420_000 and (counts >= 3).all() and len(counts) == 136
    ordered = counts.sort_values(ascending=False)
    assert 55_000 < ordered.iloc[0] < 65_000
    assert ordered.iloc[:10].sum() / 420_000 > 0.6
    assert ordered.iloc[-10:].max() < 30


def test_attributes_look_real(small_district):
    comps = small_district.components
    units = small_district.units
    assert comps["department"].isin(units["name"]).all()
    assert comps["owner"].isin(units["name"]).all() and comps["maintainer"].isin(units["name"]).all()
    assert (comps["owner"] != comps["department"]).any()
    assert comps["status"].value_counts(normalize=True)["完好"] > 0.85
    assert comps["survey_date"].between("2019-01-01", "2019-12-31").all()
    assert (comps["change_date"].dropna() > comps.loc[comps["change_date"].notna(), "survey_date"]).all()


def test_defect_ground_truth_covers_every_registry_rule(defect_district):
    d = defect_district
    truth = d.defects
    assert set(truth["rule"]) == set(COMPONENT_RULES) | set(GRID_RULES)
    assert (truth.groupby("rule").size() >= 3).all()
    comps = d.components
    rows = truth[truth["layer"] == "components"]
    assert not rows.duplicated(["row"]).any()

    def at(rule):
        return comps.iloc[rows.loc[rows["rule"] == rule, "row"]]

    assert at("geom.missing").geometry.apply(lambda g: g is None or g.is_empty).all()
    assert not shapely.is_valid(at("geom.invalid").geometry.to_numpy()).any()
    assert (at("geom.wrong_type").geom_type == "Polygon").all()
    assert not at("geom.outside_district").intersects(d.boundary).any()
    assert at("schema.unknown_category")["category"].eq("0199").all()
    dup = at("id.duplicate")["component_id"]
    assert dup.isin(comps.drop(index=dup.index)["component_id"]).all()
    grid_rows = truth[truth["layer"] == "grid"]
    assert grid_rows["row"].max() < len(d.grid)


@pytest.mark.slow
def test_too_few_or_too_many_components_are_refused():
    with pytest.raises(ValueError, match="fewer than the 136 categories"):
        synth.make_district(seed=0, n_components=100)
    with pytest.raises(ValueError, match="has room for"):
        synth.make_district(seed=0, n_components=5_000_000)


def test_the_full_sample_district():
    d = synth.make_district(seed=0)
    assert len(d.components) == 420_000
    assert d.components["category"].nunique() == 136
    assert d.components["street"].nunique() == 6 and len(d.streets) == 6
    assert d.components["component_id"].is_unique
