"""Rules on coordinates as a batch: ``crs.*``."""

from __future__ import annotations

import numpy as np
import shapely

from citygrid import settings
from citygrid._i18n import N_, _
from citygrid.validation._engine import Context, Findings, located, rule
from citygrid.validation.geom import arriving, gcj02_shift, shifted_as_gcj02
from citygrid.validation.topology import claimed_cells


@rule("crs.missing", "warning", "no CRS information and none given", whole=True)
def missing(ctx: Context) -> Findings:
    how = ctx.notes.get("crs_from")
    if how not in ("detected", "none"):
        return Findings.none()
    crs = ctx.notes.get("crs")
    message = _("the batch has no CRS (no .prj) and none was given; its coordinate ranges say {crs}: confirm with "
                "--crs {crs}").format(crs=crs)
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([None]),
                    component_id=np.array([None]), layer="batch-level")


@rule("crs.assumed", "info", "longitude/latitude columns (经度/纬度, lon/lat) read as WGS84, as such columns are",
      whole=True)
def assumed(ctx: Context) -> Findings:
    """A table's 经度/纬度 are WGS84 unless a note or --gcj02 says otherwise: said once, not warned on every batch."""
    if ctx.notes.get("crs_from") != "columns":
        return Findings.none()
    x, y = ctx.notes.get("coordinate_columns") or ("", "")
    message = _("{x}/{y} read as WGS84 longitude/latitude (EPSG:4326), as such columns are unless a note says "
                "otherwise; if they were copied from Amap (GCJ-02), read the batch with --gcj02").format(x=x, y=y)
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([None]),
                    component_id=np.array([None]), layer="batch-level", field="geometry")


@rule("crs.axis_swapped", "error", "latitude and longitude exchanged")
def axis_swapped(ctx: Context) -> Findings:
    rows = ctx.notes.get("swapped_rows") or []
    if not rows:
        return Findings.none()
    pos = np.flatnonzero(ctx.frame["row"].isin(rows).to_numpy())
    message = np.full(len(pos), _("longitude and latitude are exchanged (x looks like a latitude, y like a "
                                  "longitude); swap the x/y columns — the issue is drawn, and the other rules judge "
                                  "the row, where the swapped point would be"), dtype=object)
    return Findings(pos, message, field="geometry")


SMALL_BATCH = 50
"""A shifted batch of at most this many located rows has each shifted row named as well."""


@rule("crs.gcj02_suspected", "error",
      "coordinates shifted as GCJ-02: the batch as a whole (with the estimated shift), or, in a small batch, each row "
      "that lies off its registered position or its claimed grid cell by the shift", needs=("district",), whole=True)
def gcj02_suspected(ctx: Context) -> Findings:
    """Shift the batch back from GCJ-02 and see whether it then fits.

    It fits when the same components in the registry, or else the roads, come much closer: one
    batch-level finding; only a batch of at most ``SMALL_BATCH`` rows, fixed by hand, also gets one
    per row. Otherwise each row that lies off its registered position, or outside its claimed
    cell, by the very shift is named (:func:`_shifted_rows`), so that five rows copied from Amap
    into a large batch are found as surely as five thousand.
    """
    if ctx.notes.get("gcj02_converted"):
        return Findings.none()
    ok = located(ctx)
    whole = _whole_batch(ctx, np.flatnonzero(ok)) if ok.sum() >= 3 else None
    if whole is not None and ok.sum() > SMALL_BATCH:
        return whole
    rows = _shifted_rows(ctx)
    if whole is None:
        return rows
    return Findings(np.concatenate([whole.pos, rows.pos]), np.concatenate([whole.message, rows.message]),
                    geometry=np.concatenate([whole.geometry, ctx.geoms[rows.pos]]),
                    component_id=np.concatenate([whole.component_id, ctx.ids(rows.pos)]),
                    field=np.array([None] * len(whole.pos) + ["geometry"] * len(rows.pos), dtype=object),
                    whole=np.arange(len(whole.pos) + len(rows.pos)) < len(whole.pos))


def _whole_batch(ctx: Context, pos: np.ndarray) -> Findings | None:
    """One batch-level finding if the batch, shifted back, comes much closer to where it should be."""
    pos = pos[np.linspace(0, len(pos) - 1, min(len(pos), 2000)).astype(int)]  # a sample says enough
    points = ctx.probes()[pos]
    xy = shapely.get_coordinates(points)
    shift = gcj02_shift(ctx)[pos]
    back = shapely.points(xy - shift)
    measure, what = _yardstick(ctx, pos)
    if measure is None:
        return None
    raw = float(np.median(measure(points)))
    fixed = float(np.median(measure(back)))
    if not (raw > 15.0 and fixed < raw / 3):
        return None
    dx, dy = shift.mean(axis=0)
    message = _("the batch looks shifted as GCJ-02 (Amap/Gaode coordinates): by about {shift:.0f} m (east "
                "{east:+.0f} m, north {north:+.0f} m); shifted back, {what} moves from {raw:.0f} m to {fixed:.1f} m. "
                "Re-read it with --gcj02").format(shift=np.median(np.hypot(*shift.T)), east=dx, north=dy, what=_(what),
                                                   raw=raw, fixed=fixed)
    centre = shapely.centroid(shapely.multipoints(points))
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([centre], dtype=object),
                    component_id=np.array([None]), layer="batch-level")


def _shifted_rows(ctx: Context) -> Findings:
    """Rows lying off their registered position, or outside their claimed cell, by the GCJ-02 shift there."""
    ok = located(ctx) & arriving(ctx)
    said = np.full(len(ctx.frame), "", dtype=object)
    twins = ctx.current_twins() if ctx.registry is not None else np.full(len(ctx.frame), -1)
    with_twin = np.flatnonzero(ok & (twins >= 0))
    step = settings.batch_part_rows  # points made a block at a time: a million at once hold 250 MB
    if len(with_twin):
        places = ctx.known_registry.geometry.to_numpy()
        for rows in (with_twin[at:at + step] for at in range(0, len(with_twin), step)):
            registered = shapely.point_on_surface(places[twins[rows]])
            said[rows[shifted_as_gcj02(ctx, rows, registered)]] = _(
                "shifted back by the GCJ-02 offset it falls on its registered position")
    where, covered = claimed_cells(ctx)
    outside = np.flatnonzero(ok & (where >= 0) & ~covered & (said == ""))
    text = _("shifted back by the GCJ-02 offset it falls in its claimed grid cell {cell}")
    cells = ctx.known_district.grid.geometry.to_numpy()
    for rows in (outside[at:at + step] for at in range(0, len(outside), step)):
        back = shapely.points(shapely.get_coordinates(ctx.probes()[rows]) - gcj02_shift(ctx)[rows])
        hit = rows[shapely.covers(cells[where[rows]], back)]
        said[hit] = [text.format(cell=c) for c in ctx.values("grid")[hit]]
    pos = np.flatnonzero(said != "")
    size = np.hypot(*gcj02_shift(ctx)[pos].T)
    head = _("looks like GCJ-02 (Amap) coordinates, {shift:.0f} m off: {why}; read the batch with --gcj02")
    message = [head.format(shift=s, why=w) for s, w in zip(size, said[pos])]
    return Findings(pos, np.array(message, dtype=object), field="geometry")


def _yardstick(ctx: Context, pos: np.ndarray):
    """How far features are from where they should sit.

    Their registered twins (same id), or else the nearest road of the district.
    """
    if ctx.registry is not None:
        found = ctx.twins()[pos]
        hit = found >= 0
        if hit.sum() >= 3:
            twins = shapely.point_on_surface(ctx.known_registry.geometry.to_numpy()[found[hit]])
            return (lambda pts: shapely.distance(pts[hit], twins)), N_("the median distance to the registered twins")
    roads = getattr(ctx.district, "roads", None)
    if roads is None or roads.empty:
        return None, ""
    lines = roads.geometry.to_numpy()
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same = index[1:] == index[:-1]
    segments = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    tree = shapely.STRtree(segments)
    return (lambda pts: tree.query_nearest(pts, return_distance=True, all_matches=False)[1]), \
        N_("the median distance to the nearest road")
