"""Reading the past: a registry as it was at a moment, from its components and their history."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid._arrays import Positions, isin
from citygrid.schema import DATE_FIELDS

__all__ = ["as_of"]


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
    frame["component_id"] = _undo_renames(current, later[later["field"] == "component_id"])
    frame = frame[~isin(current, later.loc[later["action"] == "create", "component_id"].to_numpy(dtype=object))]
    return frame[frame["retired_at"].isna()].reset_index(drop=True)


def _undo_renames(ids: np.ndarray, renames: pd.DataFrame) -> np.ndarray:
    """`ids` as they were before `renames` (``batch_id, component_id, old_value``), newest batch first.

    Each batch renames at most once per component, so one hashed lookup undoes a batch.
    """
    ids = ids.copy()
    for _, batch in sorted(renames.groupby("batch_id"), key=lambda item: -int(item[0])):
        pos = Positions(batch["component_id"].to_numpy(dtype=object))(ids)
        ids = np.where(pos >= 0, batch["old_value"].to_numpy(dtype=object)[np.maximum(pos, 0)], ids)
    return ids
