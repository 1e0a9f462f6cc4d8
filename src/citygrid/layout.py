"""Identifier layouts in a registry: batches brought to the registry's layout, and migration.

A registry holds one layout: CJ/T 214 (16-digit ids, 4-digit categories) or GB/T 47678.5-2026
(17-digit ids, 5-digit categories). Batches may come in either; :func:`to_layout` rewrites
their identifiers and category codes to the registry's.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid.catalog import Catalog
from citygrid.schema import CJT214, GBT47678, migrate_ids, parse_ids

__all__ = ["migration", "to_layout"]


def to_layout(frame: gpd.GeoDataFrame, layout: str, catalog: Catalog) -> gpd.GeoDataFrame:
    """Identifiers and category codes in `layout` (codes the catalog cannot map stay as they are).

    Examples
    --------
    >>> from citygrid.catalog import load_catalog
    >>> f = pd.DataFrame({"component_id": ["44031001001000001", "4403100101000002"], "category": ["01001", "0101"]})
    >>> to_layout(f, "cjt214", load_catalog()).values.tolist()
    [['4403100101000001', '0101'], ['4403100101000002', '0101']]
    """
    frame = frame.copy()
    parsed = parse_ids(frame["component_id"].to_numpy(dtype=object))
    cats = frame["category"]
    if layout == GBT47678.name:
        old = (parsed["layout"] == CJT214.name).to_numpy()
        if old.any():
            frame.loc[old, "component_id"] = migrate_ids(frame.loc[old, "component_id"].to_numpy(dtype=object),
                                                         catalog)
        short = (cats.str.len() == 4).fillna(False).to_numpy()
        mapped = catalog.to_2026(cats[short].to_numpy(dtype=object))
        frame.loc[short, "category"] = np.where(pd.isna(mapped), cats[short].to_numpy(dtype=object), mapped)
        return frame
    new = (parsed["layout"] == GBT47678.name).to_numpy()
    if new.any():
        old_cats = catalog.from_2026(parsed.loc[new, "category"].to_numpy(dtype=object))
        ok = ~pd.isna(old_cats)
        rewritten = parsed.loc[new, "admin_code"].to_numpy(dtype=object)[ok] + old_cats[ok].astype(object) + \
            parsed.loc[new, "serial"].astype("int64").astype(str).str.zfill(6).to_numpy(dtype=object)[ok]
        frame.iloc[np.flatnonzero(new)[ok], frame.columns.get_loc("component_id")] = rewritten
    long = (cats.str.len() == 5).fillna(False).to_numpy()
    mapped = catalog.from_2026(cats[long].to_numpy(dtype=object))
    frame.loc[long, "category"] = np.where(pd.isna(mapped), cats[long].to_numpy(dtype=object), mapped)
    return frame


def migration(frame: gpd.GeoDataFrame, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """New identifiers and category codes of every component, in GB/T 47678.5-2026."""
    return (migrate_ids(frame["component_id"].to_numpy(dtype=object), catalog),
            catalog.to_2026(frame["category"].to_numpy(dtype=object)))
