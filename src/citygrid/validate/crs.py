"""Rules on coordinates as a batch: ``crs.*``."""

from __future__ import annotations

import numpy as np

from citygrid.validate._engine import Context, Findings, rule


@rule("crs.missing", "warning", "no CRS information and none given")
def missing(ctx: Context) -> Findings:
    how = ctx.notes.get("crs_from")
    if how not in ("detected", "none"):
        return Findings.none()
    message = (f"the batch has no CRS (no .prj) and none was given; its coordinate ranges say "
               f"{ctx.notes.get('crs')}: confirm with crs='{ctx.notes.get('crs')}'")
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([None]),
                    component_id=np.array([None]), layer="batch-level")


@rule("crs.axis_swapped", "error", "latitude and longitude exchanged")
def axis_swapped(ctx: Context) -> Findings:
    rows = ctx.notes.get("swapped_rows") or []
    if not rows:
        return Findings.none()
    pos = np.flatnonzero(ctx.frame["row"].isin(rows).to_numpy())
    fixed = ctx.notes.get("swapped_geometry", {})
    where = np.array([fixed.get(r) for r in ctx.frame["row"].to_numpy()[pos]], dtype=object)
    message = np.full(len(pos), "longitude and latitude are exchanged (x looks like a latitude, y like "
                      "a longitude); swap the x/y columns — the issue is drawn where the swapped "
                      "point would be", dtype=object)
    return Findings(pos, message, geometry=where)
