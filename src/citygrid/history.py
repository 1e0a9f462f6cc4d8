"""Reading the past: a registry as it was at a moment, from its components and their history."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._arrays import Positions, isin
from citygrid.crs import transformer
from citygrid.schema import DATE_FIELDS

__all__ = ["as_of", "readable"]


def readable(changes: pd.DataFrame) -> pd.DataFrame:
    """History rows with positions a person can read instead of the stored geometry.

    A geometry's ``old_value``/``new_value`` (stored as WKB) become ``"lon, lat"`` in WGS84
    (7 decimals, about 1 cm) of the point, or of a point on a line or polygon with its
    kind in front; a ``moved_m`` column gives how far an update moved it (metres, between
    those points; NaN on other rows).

    Examples
    --------
    >>> import shapely
    >>> wkb = shapely.to_wkb(shapely.Point(537000, 2510000), hex=True)
    >>> moved = shapely.to_wkb(shapely.Point(537003, 2510004), hex=True)
    >>> row = pd.DataFrame({"field": ["geometry"], "old_value": [wkb], "new_value": [moved]})
    >>> out = readable(row)
    >>> out["old_value"].iloc[0], float(out["moved_m"].iloc[0])
    ('114.3600716, 22.6877203', 5.0)
    """
    out = changes.copy()
    out["moved_m"] = np.nan
    rows = np.flatnonzero((out["field"] == "geometry").to_numpy())
    if not len(rows):
        return out
    to_web = transformer(settings.default_crs, settings.web_crs)
    points = {}
    for column in ("old_value", "new_value"):
        values = out[column].to_numpy(dtype=object)[rows]
        stored = ~pd.isna(values)
        geoms = np.full(len(rows), None, dtype=object)
        geoms[stored] = shapely.from_wkb(values[stored], on_invalid="ignore")
        at = shapely.point_on_surface(geoms)
        xy = shapely.get_coordinates(at[~pd.isna(at)])
        lon, lat = to_web.transform(xy[:, 0], xy[:, 1]) if len(xy) else ([], [])
        text = np.full(len(rows), None, dtype=object)
        kinds = shapely.get_type_id(geoms[~pd.isna(at)])
        text[~pd.isna(at)] = [("" if kind == 0 else f"{_KINDS.get(int(kind), 'shape')} at ") + f"{x:.7f}, {y:.7f}"
                              for kind, x, y in zip(kinds, lon, lat)]
        out.iloc[rows, out.columns.get_loc(column)] = text
        points[column] = at
    out.iloc[rows, out.columns.get_loc("moved_m")] = np.round(
        shapely.distance(points["old_value"], points["new_value"]), 2)
    return out


_KINDS = {1: "line", 3: "polygon", 4: "multipoint", 5: "line", 6: "polygon"}


def as_of(frame: gpd.GeoDataFrame, later: pd.DataFrame) -> gpd.GeoDataFrame:
    """Undo the changes in `later` on `frame` (every component now, retired ones too).

    Parameters
    ----------
    frame : GeoDataFrame
        The registry's components now.
    later : DataFrame
        History rows after the moment: ``change_id, batch_id, component_id, action, field, old_value``.

    Returns
    -------
    GeoDataFrame
        The components as they were, retired ones left out; identifiers renamed since (a
        migration) as they were then.
    """
    frame = frame.copy()
    current = frame["component_id"].to_numpy(dtype=object)
    renames = later[later["field"] == "component_id"]
    now_named = _renamed_forward(later["component_id"].to_numpy(dtype=object), renames)
    later = later.assign(component_id=now_named)  # each change under the id its component has now
    updates = later[later["field"].notna() & (later["field"] != "component_id")]
    first = updates.sort_values("change_id").drop_duplicates(["component_id", "field"])
    index = Positions(current)
    for name, group in first.groupby("field"):
        where = index(group["component_id"].to_numpy(dtype=object))
        pos, values = where[where >= 0], group["old_value"].to_numpy(dtype=object)[where >= 0]
        if name == "geometry":
            frame.iloc[pos, frame.columns.get_loc("geometry")] = shapely.from_wkb(values)
        elif name in DATE_FIELDS or name == "retired_at":
            frame[name] = frame[name].astype("datetime64[ms]")
            frame.iloc[pos, frame.columns.get_loc(name)] = pd.to_datetime(values).astype("datetime64[ms]")
        elif name in frame.columns:
            frame.iloc[pos, frame.columns.get_loc(name)] = values
    frame["component_id"] = _undo_renames(current, renames)
    frame = frame[~isin(current, later.loc[later["action"] == "create", "component_id"].to_numpy(dtype=object))]
    return frame[frame["retired_at"].isna()].reset_index(drop=True)


def _renamed_forward(ids: np.ndarray, renames: pd.DataFrame) -> np.ndarray:
    """`ids` as the components are named now, after `renames` (``component_id`` new, ``old_value`` old).

    A change recorded before a migration names the component by its old id; renames are
    followed in order of their batches, so a component renamed twice ends under its last id.
    """
    ids = ids.copy()
    for _batch, batch in sorted(renames.groupby("batch_id"), key=lambda item: int(item[0])):
        pos = Positions(batch["old_value"].to_numpy(dtype=object))(ids)
        ids = np.where(pos >= 0, batch["component_id"].to_numpy(dtype=object)[np.maximum(pos, 0)], ids)
    return ids


def _undo_renames(ids: np.ndarray, renames: pd.DataFrame) -> np.ndarray:
    """`ids` as they were before `renames` (``batch_id, component_id, old_value``), newest batch first.

    Each batch renames at most once per component, so one hashed lookup undoes a batch.
    """
    ids = ids.copy()
    for _batch, batch in sorted(renames.groupby("batch_id"), key=lambda item: -int(item[0])):
        pos = Positions(batch["component_id"].to_numpy(dtype=object))(ids)
        ids = np.where(pos >= 0, batch["old_value"].to_numpy(dtype=object)[np.maximum(pos, 0)], ids)
    return ids
