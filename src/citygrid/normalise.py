"""The one normalising step every batch goes through before it is validated or merged.

``validate``, ``Registry.ingest`` and the CLI all call :func:`normalise`, so a batch that
validates clean is a batch that ingests: the file is read into canonical columns, ids and
category codes are brought to the registry's layout, and an empty grid cell, street or
community is filled from the location.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid.catalog import Catalog
from citygrid.io import read_batch
from citygrid.layout import to_layout

if TYPE_CHECKING:
    from citygrid.admin import District

__all__ = ["ADMIN_FIELDS", "is_canonical", "normalise"]

ADMIN_FIELDS = ("grid", "street_code", "street", "community_code", "community")
"""Fields filled from the location when a batch leaves them empty."""


def is_canonical(batch: object) -> bool:
    """Whether `batch` is already a frame made by :func:`citygrid.io.read_batch`."""
    return isinstance(batch, gpd.GeoDataFrame) and "row" in batch.columns and "citygrid" in batch.attrs


def normalise(batch: str | Path | pd.DataFrame, *, catalog: Catalog, layout: str | None = None,
              district: District | None = None, **read_options: Any) -> gpd.GeoDataFrame:
    """Read `batch` and bring it to the registry's form.

    Parameters
    ----------
    batch : path or frame
        A survey batch (see :func:`citygrid.io.read_batch`).
    catalog : Catalog
        Resolves category names and codes.
    layout : {"cjt214", "gbt47678"}, optional
        The registry's identifier layout; ids and category codes of the other one are rewritten.
    district : District, optional
        Fills empty grid cell, street and community fields from the location.
    **read_options
        Passed to :func:`~citygrid.io.read_batch`.

    Returns
    -------
    GeoDataFrame
        Canonical columns (with ``row``, the batch row number), in the registry's CRS.
    """
    frame = batch if is_canonical(batch) else read_batch(batch, catalog=catalog, required=(), **read_options)
    if layout is not None:
        frame = to_layout(frame, layout, catalog)
    if district is not None:
        frame = _locate_empty(frame, district)
    return frame


def _locate_empty(frame: gpd.GeoDataFrame, district: District) -> gpd.GeoDataFrame:
    columns = list(ADMIN_FIELDS)
    empty = frame[columns].isna().to_numpy()
    geoms = frame.geometry.to_numpy()
    rows = np.flatnonzero(empty.any(axis=1) & ~pd.isna(geoms))
    if not len(rows):
        return frame
    frame = frame.copy()
    located = district.locate(geoms[rows])
    for k, column in enumerate(columns):
        fill = rows[empty[rows, k]]
        frame.loc[frame.index[fill], column] = located[column].to_numpy(dtype=object)[empty[rows, k]]
    return frame
