"""Rules on coordinates as a batch: ``crs.*``."""

from __future__ import annotations

import numpy as np
import shapely

from citygrid import settings
from citygrid._i18n import N_, _
from citygrid.crs import gcj02_to_wgs84, transformer
from citygrid.validation._engine import Context, Findings, rule
from citygrid.validation.geom import located


@rule("crs.missing", "warning", "no CRS information and none given")
def missing(ctx: Context) -> Findings:
    how = ctx.notes.get("crs_from")
    if how not in ("detected", "none"):
        return Findings.none()
    crs = ctx.notes.get("crs")
    message = _("the batch has no CRS (no .prj) and none was given; its coordinate ranges say {crs}: confirm with "
                "--crs {crs}").format(crs=crs)
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([None]),
                    component_id=np.array([None]), layer="batch-level")


@rule("crs.axis_swapped", "error", "latitude and longitude exchanged")
def axis_swapped(ctx: Context) -> Findings:
    rows = ctx.notes.get("swapped_rows") or []
    if not rows:
        return Findings.none()
    pos = np.flatnonzero(ctx.frame["row"].isin(rows).to_numpy())
    message = np.full(len(pos), _("longitude and latitude are exchanged (x looks like a latitude, y like a "
                                  "longitude); swap the x/y columns — the issue is drawn, and the other rules judge "
                                  "the row, where the swapped point would be"), dtype=object)
    return Findings(pos, message)


@rule("crs.gcj02_suspected", "error", "coordinates shifted as GCJ-02 (batch-level, with the estimated shift)",
      needs=("district",))
def gcj02_suspected(ctx: Context) -> Findings:
    """Shift the batch back from GCJ-02 and see whether it then fits.

    It fits when the same components in the registry, or else the roads, come much closer.
    """
    geoms = ctx.geoms
    ok = located(ctx)
    if ok.sum() < 3:
        return Findings.none()
    pos = np.flatnonzero(ok)
    pos = pos[np.linspace(0, len(pos) - 1, min(len(pos), 2000)).astype(int)]  # a sample says enough
    points = shapely.point_on_surface(geoms[pos])
    x, y = shapely.get_coordinates(points).T
    # CGCS2000 longitudes and latitudes stand in for WGS84 ones: the two agree to centimetres
    # (PROJ shifts nothing between them) and the transformers build 200 times faster
    lon, lat = transformer(settings.default_crs, settings.geographic_crs).transform(x, y)
    back = shapely.points(*transformer(settings.geographic_crs, settings.default_crs).transform(
        *gcj02_to_wgs84(lon, lat)))
    shift = shapely.distance(points, back)
    measure, what = _yardstick(ctx, pos)
    if measure is None:
        return Findings.none()
    raw = float(np.median(measure(points)))
    fixed = float(np.median(measure(back)))
    if not (raw > 15.0 and fixed < raw / 3):
        return Findings.none()
    dx, dy = (shapely.get_coordinates(points) - shapely.get_coordinates(back)).mean(axis=0)
    message = _("the batch looks shifted as GCJ-02 (Amap/Gaode coordinates): by about {shift:.0f} m (east "
                "{east:+.0f} m, north {north:+.0f} m); shifted back, {what} moves from {raw:.0f} m to {fixed:.1f} m. "
                "Re-read it with --gcj02").format(shift=np.median(shift), east=dx, north=dy, what=_(what), raw=raw,
                                                   fixed=fixed)
    centre = shapely.centroid(shapely.multipoints(points))
    return Findings(np.array([0]), np.array([message], dtype=object), geometry=np.array([centre], dtype=object),
                    component_id=np.array([None]), layer="batch-level")


def _yardstick(ctx: Context, pos: np.ndarray):
    """How far features are from where they should sit.

    Their registered twins (same id), or else the nearest road of the district.
    """
    if ctx.registry is not None:
        found = ctx.twins()[pos]
        hit = found >= 0
        if hit.sum() >= 3:
            twins = shapely.point_on_surface(ctx.registry.geometry.to_numpy()[found[hit]])
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
