"""Whose is this? Components near places: the one nearest-of-categories search.

:func:`near` is the search both :meth:`citygrid.Registry.owner_at` (one reported point, any
category) and :func:`citygrid.dispatch.dispatch` (many events, each with the categories its
type names) run: the components within a reach of each point, of the point's categories,
nearest first. :func:`owner_at` is the lookup at one reported location.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj.exceptions import CRSError

from citygrid import settings
from citygrid._i18n import _
from citygrid.admin import District
from citygrid.crs import gcj02_to_wgs84, transformer
from citygrid.errors import UsageError

__all__ = ["OWNER_COLUMNS", "near", "owner_answer", "owner_at"]

OWNER_COLUMNS = ("component_id", "category", "category_name", "name", "department", "owner", "maintainer", "grid",
                 "community", "street", "status")
"""What an owner lookup says of each component it finds."""


def near(frame: gpd.GeoDataFrame, points: np.ndarray, reach: float,
         categories: Sequence[Sequence[str]] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The components of `frame` within `reach` metres of each point, nearest first.

    Parameters
    ----------
    frame : GeoDataFrame
        The components searched (its spatial index is built once and kept by geopandas).
    points : array of shapely.Point
        The places, in the frame's CRS.
    reach : float
        Metres.
    categories : sequence of sequences of str, optional
        Per point, the category codes it may find; default any.

    Returns
    -------
    tuple of arrays
        ``(point, position, distance)``: the point's index, the component's position in
        `frame` and the distance, sorted by point and then by distance (ties in frame order).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> frame = gpd.GeoDataFrame({"category": ["0101", "0302"]}, geometry=[shapely.Point(0, 0), shapely.Point(3, 0)])
    >>> near(frame, np.array([shapely.Point(2, 0)]), 5.0)[1].tolist()
    [1, 0]
    >>> near(frame, np.array([shapely.Point(2, 0)]), 5.0, [["0101"]])[1].tolist()
    [0]
    """
    points = np.asarray(points, dtype=object)
    ask = np.arange(len(points)) if categories is None else np.flatnonzero([bool(c) for c in categories])
    if not len(ask) or not len(frame):
        empty = np.array([], dtype=int)
        return empty, empty, np.array([], dtype=float)
    point, position = frame.sindex.query(points[ask], predicate="dwithin", distance=reach)
    point = ask[point]
    if categories is not None:
        code, uniques = pd.factorize(frame["category"])
        number = {c: k for k, c in enumerate(uniques)}
        pairs = np.array([(p, number[c]) for p in ask.tolist() for c in categories[p] if c in number],
                         dtype=np.int64).reshape(-1, 2)
        keep = np.isin(point * len(number) + code[position], pairs[:, 0] * len(number) + pairs[:, 1])
        point, position = point[keep], position[keep]
    distance = shapely.distance(points[point], frame.geometry.to_numpy()[position])
    order = np.lexsort((position, distance, point))
    return point[order], position[order], distance[order]


def owner_at(frame: gpd.GeoDataFrame, district: District, x: float, y: float, *,
             crs: str = "EPSG:4326", radius: float = 10.0, limit: int = 5,
             columns: Callable[[], dict[str, Any]] | None = None) -> pd.DataFrame:
    """The current components nearest a reported location, with their units and grid cell.

    See :meth:`citygrid.Registry.owner_at`, which calls it with the registry's current
    components; `columns` gives :data:`OWNER_COLUMNS` as arrays, kept once per state.

    Raises
    ------
    UsageError
        For a point outside the district (saying so when latitude and longitude look
        swapped), non-finite coordinates or an unknown CRS.
    """
    if not (np.isfinite(x) and np.isfinite(y)):
        raise UsageError(_("x={x!r}, y={y!r}: the location must be two finite numbers (longitude and latitude for "
                           "a geographic CRS).").format(x=x, y=y))
    if crs.lower() in ("gcj02", "gcj-02"):
        lon, lat = gcj02_to_wgs84(x, y)
        x, y, crs = float(lon), float(lat), settings.web_crs
    try:
        to_local = transformer(crs, settings.default_crs)
    except CRSError as exc:
        raise UsageError(_("--crs {crs!r} is not a CRS pyproj knows; use e.g. 'EPSG:4326', 'EPSG:4490', "
                           "'EPSG:4547' or 'gcj02'.").format(crs=crs)) from exc
    px, py = to_local.transform(x, y)
    point = shapely.Point(px, py)
    outside = district.boundary.distance(point) if np.isfinite([px, py]).all() else np.inf
    if outside > radius:
        swapped = shapely.Point(*to_local.transform(y, x))
        if district.boundary.distance(swapped) <= radius:
            raise UsageError(_("x={x}, y={y} lies outside {district}, but swapped it lies inside: give "
                               "longitude first, then latitude (x y).").format(x=x, y=y, district=district.name))
        raise UsageError(_("x={x}, y={y} ({crs}) lies {km:,.1f} km outside {district}; check the coordinates and "
                           "--crs.").format(x=x, y=y, crs=crs, km=outside / 1000, district=district.name))
    table = columns() if columns is not None else {c: frame[c].to_numpy(dtype=object) for c in OWNER_COLUMNS}
    _point, position, distance = near(frame, np.array([point], dtype=object), radius)
    position, distance = position[:limit], distance[:limit]
    out = pd.DataFrame({c: table[c][position] for c in OWNER_COLUMNS}, dtype="str")  # no inference
    out.insert(len(OWNER_COLUMNS), "distance_m", distance.round(2))
    cell = district.locate([point])
    out.attrs["grid"] = cell["grid"].iloc[0]
    out.attrs["street"] = cell["street"].iloc[0]
    return out


def owner_answer(found: pd.DataFrame) -> dict[str, Any]:
    """What :func:`owner_at` found, as JSON-ready data: the grid cell and street at the point, and the components.

    A missing value (a component without a name) is None, so the JSON is valid (``null``).

    ``citygrid owner --json`` prints it and ``citygrid serve`` answers ``/owner`` with it.
    """
    records = found.astype(object).where(found.notna(), None).to_dict("records")  # missing is null, not NaN
    return {"grid": found.attrs.get("grid"), "street": found.attrs.get("street"), "components": records}
