import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citygrid import crs

# Published test vectors (WGS84 lon, lat -> GCJ-02 lon, lat) used by several
# independent implementations of the GCJ-02 formula.
REFERENCE = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), REFERENCE)
def test_forward_matches_published_points(lon, lat, glon, glat):
    out_lon, out_lat = crs.wgs84_to_gcj02(lon, lat)
    assert out_lon == pytest.approx(glon, abs=1e-7)
    assert out_lat == pytest.approx(glat, abs=1e-7)


def test_inverse_agrees_with_a_published_point_and_is_exact():
    # the published value comes from a looser iteration (about 2 cm off); ours
    # maps back onto the GCJ-02 input exactly
    lon, lat = crs.gcj02_to_wgs84(123.0, 45.0)
    assert lon == pytest.approx(122.99395597, abs=1e-6)
    assert lat == pytest.approx(44.99804071, abs=1e-6)
    again = crs.wgs84_to_gcj02(lon, lat)
    assert again[0] == pytest.approx(123.0, abs=1e-9) and again[1] == pytest.approx(45.0, abs=1e-9)


def test_outside_china_is_unchanged():
    lon, lat = crs.wgs84_to_gcj02([2.35, 183.0], [48.85, 45.0])
    assert lon.tolist() == [2.35, 183.0] and lat.tolist() == [48.85, 45.0]


@settings(max_examples=200, deadline=None)
@given(st.floats(73.0, 135.0), st.floats(1.0, 53.0))
def test_round_trip_within_a_centimetre(lon, lat):
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = crs.gcj02_to_wgs84(glon, glat)
    metres = np.hypot((back_lon - lon) * 111_320 * np.cos(np.radians(lat)), (back_lat - lat) * 110_540)
    assert metres < 0.01


def test_vectorised_over_a_million_points_is_exact():
    rng = np.random.default_rng(0)
    lon = rng.uniform(114.2, 114.5, 1_000_000)
    lat = rng.uniform(22.6, 22.8, 1_000_000)
    back_lon, back_lat = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert np.abs(back_lon - lon).max() < 1e-7 and np.abs(back_lat - lat).max() < 1e-7


def test_shift_in_shenzhen_is_half_a_kilometre():
    lon, lat = crs.wgs84_to_gcj02(114.35, 22.70)
    metres = np.hypot((lon - 114.35) * 111_320 * np.cos(np.radians(22.7)), (lat - 22.7) * 110_540)
    assert 450 < metres < 650


def test_geometries_keep_type_and_empties():
    geoms = [shapely.Point(114.35, 22.7), shapely.LineString([(114.3, 22.6), (114.4, 22.7)]),
             shapely.Polygon(), None]
    out = crs.geometries_wgs84_to_gcj02(geoms)
    assert [g.geom_type if g is not None else None for g in out] == \
        ["Point", "LineString", "Polygon", None]
    back = crs.geometries_gcj02_to_wgs84(out)
    assert shapely.equals_exact(back[0], geoms[0], tolerance=1e-9)


def test_non_finite_coordinates_raise_a_clear_error():
    with pytest.raises(ValueError, match="not finite"):
        crs.gcj02_to_wgs84([114.3, np.nan], [22.7, 22.7])
