"""Coordinate reference systems and the GCJ-02 and BD-09 offsets.

GCJ-02 ("Mars coordinates", used by Amap/Gaode and Tencent maps) is an obfuscated,
non-linear offset of WGS84 that no EPSG code or PROJ pipeline describes, so it is
implemented here: the published forward formula (Krasovsky ellipsoid constants
``a = 6378245.0``, ``ee = 0.00669342162296594323``) vectorised with numpy, and its
inverse solved by fixed-point iteration to better than 1 cm.

Outside mainland China the offset is not applied (the forward formula's own rule).

Examples
--------
>>> import numpy as np
>>> lon, lat = wgs84_to_gcj02(np.array([114.35]), np.array([22.70]))
>>> back_lon, back_lat = gcj02_to_wgs84(lon, lat)
>>> bool(abs(back_lon[0] - 114.35) < 1e-9 and abs(back_lat[0] - 22.70) < 1e-9)
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer

from citygrid import settings
from citygrid._i18n import _

_A = 6378245.0
_EE = 0.00669342162296594323
_METRES_PER_DEGREE = 111_320.0

CGCS2000_GK_114E = "EPSG:4547"
CGCS2000 = "EPSG:4490"
WGS84 = "EPSG:4326"


@lru_cache(maxsize=32)
def transformer(source: str, target: str) -> Transformer:
    """A cached x/y-ordered transformer (building one costs about 0.1 s).

    Raises
    ------
    pyproj.exceptions.CRSError
        If either CRS is unknown to pyproj.

    Examples
    --------
    >>> x, y = transformer(WGS84, CGCS2000_GK_114E).transform(114.35, 22.70)
    >>> round(x), round(y)
    (535962, 2511357)
    """
    return Transformer.from_crs(source, target, always_xy=True)


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Where the GCJ-02 offset applies (the rough mainland box of the formula).

    Parameters
    ----------
    lon, lat : array_like
        Geographic coordinates in degrees.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> in_china([114.3, 2.35], [22.7, 48.85]).tolist()
    [True, False]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _offset(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    wave = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx
        + (wave + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx
        + (wave + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Shift WGS84 coordinates to GCJ-02.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 longitude and latitude in degrees (any matching shapes).

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 longitude and latitude.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(114.35, 22.70)
    >>> round(float(lon - 114.35) * 1e5), round(float(lat - 22.70) * 1e5)
    (492, -270)
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, max_iter: int = 30
) -> tuple[NDArray, NDArray]:
    """Shift GCJ-02 coordinates back to WGS84, exactly (iterated to < 1 cm).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees.
    max_iter : int, default 30
        Upper bound on fixed-point iterations (3 to 5 are typical).

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude.

    Raises
    ------
    ValueError
        If the iteration does not reach ``settings.gcj02_tolerance_m`` (non-finite input).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(114.354922, 22.697296)
    >>> round(float(lon), 6), round(float(lat), 6)
    (114.35, 22.7)
    """
    return _invert(wgs84_to_gcj02, lon, lat, what="GCJ-02 to WGS84", max_iter=max_iter)


def _invert(forward, lon: ArrayLike, lat: ArrayLike, *, what: str, max_iter: int) -> tuple[NDArray, NDArray]:
    """Solve ``forward(x) = (lon, lat)`` by fixed-point iteration to ``settings.gcj02_tolerance_m``."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    tol_deg = settings.gcj02_tolerance_m / _METRES_PER_DEGREE / 10.0
    for _step in range(max_iter):
        flon, flat = forward(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        if np.all(np.abs(elon) < tol_deg) and np.all(np.abs(elat) < tol_deg):
            return wlon, wlat
    bad = int(np.count_nonzero(~(np.isfinite(glon) & np.isfinite(glat))))
    raise ValueError(_("{what} did not converge within {n} iterations; {bad} coordinate(s) are not finite numbers. "
                       "Drop or fix them first.").format(what=what, n=max_iter, bad=bad))


_X_PI = np.pi * 3000.0 / 180.0


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Shift GCJ-02 coordinates to BD-09 (Baidu maps), by Baidu's published formula.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 8), round(float(lat), 8)
    (116.41036949, 39.92133699)
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, max_iter: int = 30) -> tuple[NDArray, NDArray]:
    """Shift BD-09 coordinates back to GCJ-02, exactly (iterated to < 1 cm).

    The closed form most libraries use is off by a few centimetres; this inverts
    :func:`gcj02_to_bd09` itself.
    """
    return _invert(gcj02_to_bd09, lon, lat, what="BD-09 to GCJ-02", max_iter=max_iter)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Shift BD-09 coordinates to WGS84 (through GCJ-02, both steps exact to < 1 cm)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """Shift WGS84 coordinates to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _transform_geometries(geoms: ArrayLike, func) -> NDArray:
    def apply(coords: NDArray) -> NDArray:
        if len(coords) == 0:
            return coords
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), apply)


def geometries_wgs84_to_gcj02(geoms: ArrayLike) -> NDArray:
    """Shift an array of WGS84 shapely geometries to GCJ-02 (vectorised).

    Examples
    --------
    >>> import shapely
    >>> g = geometries_wgs84_to_gcj02([shapely.Point(114.35, 22.70)])
    >>> round(g[0].x, 4)
    114.3549
    """
    return _transform_geometries(geoms, wgs84_to_gcj02)


def geometries_gcj02_to_wgs84(geoms: ArrayLike) -> NDArray:
    """Shift an array of GCJ-02 shapely geometries back to WGS84 (vectorised).

    Examples
    --------
    >>> import shapely
    >>> g = geometries_gcj02_to_wgs84([shapely.Point(114.354922, 22.697296)])
    >>> round(g[0].x, 4), round(g[0].y, 4)
    (114.35, 22.7)
    """
    return _transform_geometries(geoms, gcj02_to_wgs84)
