"""Which components match a query: the filter engine under :meth:`citygrid.Registry.query`.

A value that can match nothing is an error, not an empty result: the message names the
units containing a partial name, or the close matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from citygrid import settings
from citygrid._i18n import N_, _, list_text
from citygrid._text import suggest
from citygrid.admin import District
from citygrid.errors import NotFound, UsageError
from citygrid.schema import STATUSES

__all__ = ["NAMES", "Filters", "known", "select"]

NAMES = {"grid": N_("grid cell"), "status": N_("status"), "owner": N_("owner"), "maintainer": N_("maintainer"),
          "department": N_("department"), "department or owner": N_("department or owner")}
"""What a query's filters are called in its messages."""


def known(what: str, values: list, allowed: Any, hints: Any = None) -> None:
    """Raise NotFound for a value that can match nothing, with a hint of what would."""
    allowed = allowed if isinstance(allowed, (set, dict)) else set(allowed)
    for value in values:
        if value not in allowed:
            raise NotFound(_("no {what} {value!r} in the registry").format(what=_(what), value=value)
                           + suggest(value, allowed if hints is None else hints) + _("."))



@dataclass(frozen=True)
class Filters:
    """The conditions of a query (see :meth:`citygrid.Registry.query`); None: no condition."""

    category: str | list[str] | None = None
    street: str | None = None
    community: str | None = None
    grid: str | list[str] | None = None
    owner: str | None = None
    maintainer: str | None = None
    department: str | None = None
    status: str | list[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: str | None = None


def select(frame: gpd.GeoDataFrame, filters: Filters, *, district: District, code_of: Callable[[str], str],
           units: Callable[[str], tuple[set[str], Any]]) -> gpd.GeoDataFrame:
    """The rows of `frame` matching every condition of `filters`.

    `code_of` gives a category's code in the registry's layout from any code or name;
    `units` the names and codes ever registered in a unit column, and the names alone.

    Raises
    ------
    NotFound
        For an unknown category, street, community, grid cell, status or unit.
    UsageError
        For a bbox in degrees without ``bbox_crs``.
    """
    mask = np.ones(len(frame), dtype=bool)
    f = filters
    if f.category is not None:
        codes = [code_of(c) for c in ([f.category] if isinstance(f.category, str) else list(f.category))]
        mask &= frame["category"].isin(codes).to_numpy()
    if f.street is not None:
        mask &= (frame["street_code"] == district.street(f.street)["code"]).to_numpy()
    if f.community is not None:
        hit = district.communities
        hit = hit[(hit["code"] == f.community) | (hit["name"] == f.community)]
        if hit.empty:
            raise NotFound(_("no community {community!r}; communities are: {known}").format(
                community=f.community, known=list_text(list(district.communities["name"]))))
        mask &= (frame["community_code"] == hit["code"].iloc[0]).to_numpy()
    for column, value, allowed in (("grid", f.grid, district.grid["code"]), ("status", f.status, STATUSES)):
        if value is not None:
            wanted = [value] if isinstance(value, str) else list(value)
            known(NAMES[column], wanted, allowed)
            mask &= frame[column].isin(wanted).to_numpy()
    for column, value in (("owner", f.owner), ("maintainer", f.maintainer), ("department", f.department)):
        if value is not None:
            registered, names = units(column)
            known(NAMES[column], [value], registered, hints=names)
            mask &= ((frame[column] == value) | (frame[f"{column}_code"] == value)).fillna(False).to_numpy()
    if f.bbox is not None:
        if f.bbox_crs is None and all(abs(v) <= 180 for v in f.bbox):
            raise UsageError(_("bbox={bbox} looks like longitude/latitude, but the registry is in metres ({crs}); "
                               "add bbox_crs='EPSG:4326'.").format(bbox=tuple(f.bbox), crs=settings.default_crs))
        box = shapely.box(*f.bbox)
        if f.bbox_crs is not None:
            box = gpd.GeoSeries([box], crs=f.bbox_crs).to_crs(settings.default_crs).iloc[0]
        inside = np.zeros(len(frame), dtype=bool)
        inside[frame.sindex.query(box, predicate="intersects")] = True
        mask &= inside
    return frame[mask]
