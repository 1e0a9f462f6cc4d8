"""Rules on geometries: ``geom.*``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import N_, _
from citygrid._layers import families
from citygrid.crs import gcj02_to_wgs84, transformer
from citygrid.validation._engine import Context, Findings, located, present, rule
from citygrid.validation._sedona import LOCATED, finding, query, sedona


def gcj02_shift(ctx: Context) -> np.ndarray:
    """The offset, in metres east and north, that GCJ-02 (Amap) puts on each row's probe point; NaN where none.

    A row copied from Amap lies this far from where it is; shifted back by it, it is there.
    """
    def compute() -> np.ndarray:
        out = np.full((len(ctx.frame), 2), np.nan)
        probes = ctx.probes()
        ok = np.flatnonzero(present(probes))
        if not len(ok):
            return out
        there = transformer(settings.default_crs, settings.geographic_crs)
        back = transformer(settings.geographic_crs, settings.default_crs)
        for start in range(0, len(ok), settings.batch_part_rows):  # a block at a time: the formula's arrays stay small
            rows = ok[start:start + settings.batch_part_rows]
            x, y = shapely.get_coordinates(probes[rows]).T
            # CGCS2000 longitudes and latitudes stand in for WGS84 ones: the two agree to centimetres
            bx, by = back.transform(*gcj02_to_wgs84(*there.transform(x, y)))
            out[rows] = np.column_stack([x - bx, y - by])
        return out

    return ctx.memo("gcj02_shift", compute)


def shifted_as_gcj02(ctx: Context, pos: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Whether rows `pos` lie off the points `truth` (where they should be) by the GCJ-02 shift at that place.

    The offset must match the shift in direction and length, within a tenth of it (and never less than
    25 m: survey corrections move a component by a few metres); outside China there is no shift.
    """
    shift = gcj02_shift(ctx)[pos]
    offset = shapely.get_coordinates(ctx.probes()[pos]) - shapely.get_coordinates(truth)
    size = np.hypot(*shift.T)
    miss = np.hypot(*(offset - shift).T)
    return (size > 100) & (miss < np.maximum(25.0, size / 10))


def arriving(ctx: Context) -> np.ndarray:
    """Rows that will be in the registry after a merge (rows retiring a component are not)."""
    if "action" not in ctx.frame:
        return np.ones(len(ctx.frame), dtype=bool)
    return (ctx.frame["action"] != "retire").fillna(True).to_numpy(dtype=bool)


@rule("geom.missing", "error", "empty or null geometry")
def missing(ctx: Context) -> Findings:
    pos = np.flatnonzero(~present(ctx.geoms))
    unread = ctx.notes.get("unparsed_coordinates") or {}
    metres = ctx.notes.get("metric_rows") or {}
    columns = "/".join(ctx.notes.get("coordinate_columns") or ())
    rows = ctx.frame["row"].to_numpy()[pos]
    unreadable = _("the coordinates {value!r} are not numbers (give decimal degrees or metres), so the feature "
                   "has no geometry")
    metric = _("the {columns} columns hold {value}, which are CGCS2000 Gauss-Krüger metres ({crs}), not degrees; "
               "give the row in longitude/latitude like the others, or the whole batch in metres with --crs {crs}")
    empty = _("the feature has no geometry (null or empty)")
    message = [unreadable.format(value=unread[r]) if r in unread
               else metric.format(columns=columns, value=metres[r][0], crs=metres[r][1]) if r in metres
               else empty for r in rows]
    return Findings(pos, np.array(message, dtype=object), field="geometry")


@rule("geom.flattened", "warning", "heights (Z) or measures (M) dropped: the registry keeps 2-D coordinates")
def flattened(ctx: Context) -> Findings:
    read_flat = ctx.frame["row"].isin(ctx.notes.get("flattened_rows") or []).to_numpy()
    pos = np.flatnonzero(read_flat | shapely.has_z(ctx.geoms))  # a registry edited elsewhere may hold Z
    message = _("the geometry has heights (Z) or measures (M); the registry keeps 2-D coordinates and drops them "
                "(keep them in a field, e.g. remarks, if they matter)")
    return Findings(pos, np.full(len(pos), message, dtype=object), field="geometry")


@rule("geom.invalid", "error", "not OGC-valid (the message carries the reason)")
def invalid(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = present(geoms)
    pos = np.flatnonzero(ok)[~shapely.is_valid(geoms[ok])]
    reasons = shapely.is_valid_reason(geoms[pos])
    text = _("invalid geometry: {reason}; repair it (e.g. fix the ring order or remove the spike)")
    message = [text.format(reason=_reason(r)) for r in reasons]
    return Findings(pos, np.array(message, dtype=object), field="geometry")


@rule("geom.wrong_type", "error", "geometry type not allowed for the category")
def wrong_type(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = present(geoms)
    expected = pd.Series(ctx.by_category("geometry"), dtype=object)
    kinds = pd.Series(shapely.get_type_id(geoms)).map(dict(enumerate(_TYPES)))
    bad = ok & expected.notna().to_numpy() & (families(geoms) != expected.to_numpy())
    pos = np.flatnonzero(bad)
    names = ctx.by_category("name_zh")
    cats = ctx.values("category")
    text, split = _("a {kind} for {name} ({category}), which takes a {expected}"), _("; split the multipart point")
    message = [text.format(kind=_(kinds.iloc[p]), name=names[p], category=cats[p],
                           expected=_(_FAMILY.get(expected.iloc[p], expected.iloc[p])))
               + (split if kinds.iloc[p] == "MultiPoint" else "") for p in pos]
    return Findings(pos, np.array(message, dtype=object), field="geometry")


_TYPES = (N_("Point"), N_("LineString"), N_("LinearRing"), N_("Polygon"), N_("MultiPoint"), N_("MultiLineString"),
          N_("MultiPolygon"), N_("GeometryCollection"))
_FAMILY = {"point": N_("point"), "line": N_("line"), "polygon": N_("polygon")}
_REASONS = (N_("Ring Self-intersection"), N_("Self-intersection"), N_("Too few points in geometry component"),
            N_("Invalid Coordinate"), N_("Nested shells"), N_("Hole lies outside shell"), N_("Nested holes"),
            N_("Interior is disconnected"), N_("Duplicate Rings"), N_("Ring is not closed"),
            N_("Invalid Number of Points"))
"""GEOS's reasons (``shapely.is_valid_reason``), translated where they are shown; the place in brackets stays."""


def _reason(text: str) -> str:
    """A GEOS validity reason in the language in use, e.g. ``Self-intersection[x y]`` -> ``自相交[x y]``."""
    head = next((r for r in _REASONS if text.startswith(r)), None)
    return text if head is None else _(head) + text[len(head):]


def _segments(polygon: shapely.Geometry) -> np.ndarray:
    """The boundary of a polygon as two-point segments (fast nearest-distance queries)."""
    rings = shapely.get_parts(shapely.boundary(polygon))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    same = index[1:] == index[:-1]
    return shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))


@rule("geom.outside_district", "error", "located outside the district boundary", needs=("district",))
def outside_district(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = np.flatnonzero(located(ctx))
    boundary = ctx.known_district.boundary
    shapely.prepare(boundary)
    outside = ok[~shapely.intersects(boundary, geoms[ok])]
    edges = shapely.STRtree(_segments(boundary))
    distance = edges.query_nearest(geoms[outside], return_distance=True, all_matches=False)[1]
    text = _("{distance:,.0f} m outside {district}; check the coordinates and their CRS")
    message = [text.format(distance=d, district=ctx.known_district.name) for d in distance]
    return Findings(outside, np.array(message, dtype=object), field="geometry")


@rule("geom.moved_far", "error", "update moving a point component further than a survey correction does",
      needs=("registry",))
def moved_far(ctx: Context) -> Findings:
    """Compare each point with its registered twin; the threshold is the category's ``move_m``."""
    twins = ctx.current_twins()
    limit = ctx.by_category("move_m").astype(float)
    pos = np.flatnonzero(located(ctx) & (twins >= 0) & np.isfinite(limit)
                        & (shapely.get_type_id(ctx.geoms) == 0))
    pos = pos[arriving(ctx)[pos]]
    registered = ctx.known_registry.geometry.to_numpy()[twins[pos]]
    distance = shapely.distance(ctx.geoms[pos], registered)
    far = distance > limit[pos]
    pos, distance, registered = pos[far], distance[far], registered[far]
    ids, names = ctx.values("component_id")[pos], ctx.by_category("name_zh")[pos]
    amap = shifted_as_gcj02(ctx, pos, registered)
    text = _("{name} {id} moves {distance:,.1f} m from where it is registered, more than the {limit:g} m of a "
             "survey correction: a new component takes an empty id; a real move goes on the allow-list "
             "(citygrid allow {id} geom.moved_far -r <registry>)")
    shifted = _("{name} {id} lies {distance:,.1f} m from where it is registered, by the very shift GCJ-02 (Amap) "
                "coordinates have here: read the batch with --gcj02 (do not allow the move: the position is wrong)")
    message = [(shifted if a else text).format(name=n, id=i, distance=d, limit=m)
               for n, i, d, m, a in zip(names, ids, distance, limit[pos], amap)]
    return Findings(pos, np.array(message, dtype=object), field="geometry")


# --- on Sedona ---------------------------------------------------------------------------

@sedona("geom.wrong_type")
def wrong_type_on_sedona(spark: Any) -> pd.DataFrame:
    """Geometries of a type the category does not take."""
    family = ("CASE WHEN GeometryType(c.geometry) = 'POINT' THEN 'point' "
              "WHEN GeometryType(c.geometry) IN ('LINESTRING', 'MULTILINESTRING') THEN 'line' "
              "WHEN GeometryType(c.geometry) IN ('POLYGON', 'MULTIPOLYGON') THEN 'polygon' ELSE 'other' END")
    joins = "JOIN cg_catalog k ON k.admin_code = c.admin_code AND (k.code = c.category OR k.code_2026 = c.category)"
    return query(spark, finding("geom.wrong_type", f"{LOCATED} AND {family} <> k.geometry",
                              "concat(GeometryType(c.geometry), ' for ', k.name_zh, ' (', c.category, "
                              "'), which takes a ', k.geometry)", joins))


@sedona("geom.outside_district")
def outside_on_sedona(spark: Any) -> pd.DataFrame:
    """Geometries outside the district's outline."""
    return query(spark, finding("geom.outside_district", f"{LOCATED} AND ST_Distance(b.geometry, c.geometry) > 0",
                              "concat(format_number(ST_Distance(b.geometry, c.geometry), 0), ' m outside ', m.name, "
                              "'; check the coordinates and their CRS')",
                              "JOIN cg_boundary b USING (admin_code) JOIN cg_meta m USING (admin_code)"))
