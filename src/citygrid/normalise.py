"""The one normalising step every batch goes through before it is validated or merged.

``validate``, ``Registry.ingest`` and the CLI all call :func:`normalise`, so a batch that
validates clean is a batch that ingests: the file is read into canonical columns, ids and
category codes are brought to the registry's layout, and an empty grid cell, street or
community is filled from the location.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid.catalog import Catalog
from citygrid.io import BatchChunks
from citygrid.layout import to_layout

if TYPE_CHECKING:
    from citygrid.admin import District

__all__ = ["ADMIN_FIELDS", "NormalisedParts", "is_canonical", "normalise"]

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
    parts = NormalisedParts(batch, size=None, catalog=catalog, layout=layout, district=district, **read_options)
    (frame,) = parts  # all rows in one part
    frame.attrs = {"citygrid": parts.notes}
    return frame


class NormalisedParts:
    """A batch normalised part by part: :func:`normalise` for batches too large to hold whole.

    Iterating gives canonical frames of at most `size` rows (all at once when None), in the
    batch's order, each with the notes on its rows in ``attrs["citygrid"]``; :attr:`notes` then
    holds the notes on the whole batch. A vector file is read `size` features at a time (see
    :class:`citygrid.io.BatchChunks`); a frame already read is handed out in parts.
    Parameters are those of :func:`normalise`.
    """

    def __init__(self, batch: str | Path | pd.DataFrame, *, size: int | None, catalog: Catalog,
                 layout: str | None = None, district: District | None = None, **read_options: Any) -> None:
        self.batch, self.size, self.catalog = batch, size, catalog
        self.layout, self.district, self.read_options = layout, district, read_options
        self.notes: dict[str, Any] = {}

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        if is_canonical(self.batch):
            frame = cast(gpd.GeoDataFrame, self.batch)
            self.notes = dict(frame.attrs["citygrid"])
            step = self.size or max(len(frame), 1)
            parts: Any = (frame.iloc[at:at + step] for at in range(0, max(len(frame), 1), step))
        else:
            parts = BatchChunks(self.batch, size=self.size, catalog=self.catalog, required=(), **self.read_options)
        for part in parts:
            notes = part.attrs.get("citygrid") or self.notes
            if self.layout is not None:
                part = to_layout(part, self.layout, self.catalog)
            if self.district is not None:
                part = _locate_empty(part, self.district)
            part.attrs = {"citygrid": notes}
            yield part
        if isinstance(parts, BatchChunks):
            self.notes = parts.notes


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
