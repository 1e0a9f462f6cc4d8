"""Rules on geometries: ``geom.*``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from citygrid._layers import families
from citygrid.validation._engine import Context, Findings, rule


def present(geoms: np.ndarray) -> np.ndarray:
    """Geometries that exist and are not empty."""
    isna = pd.isna(geoms)
    return ~isna & ~shapely.is_empty(np.where(isna, shapely.Point(), geoms))


@rule("geom.missing", "error", "empty or null geometry")
def missing(ctx: Context) -> Findings:
    pos = np.flatnonzero(~present(ctx.geoms))
    return Findings(pos, np.full(len(pos), "the feature has no geometry (null or empty)", dtype=object))


@rule("geom.invalid", "error", "not OGC-valid (the message carries the reason)")
def invalid(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = present(geoms)
    pos = np.flatnonzero(ok)[~shapely.is_valid(geoms[ok])]
    reasons = shapely.is_valid_reason(geoms[pos])
    message = [f"invalid geometry: {r}; repair it (e.g. fix the ring order or remove the spike)"
               for r in reasons]
    return Findings(pos, np.array(message, dtype=object))


@rule("geom.wrong_type", "error", "geometry type not allowed for the category")
def wrong_type(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = present(geoms)
    expected = pd.Series(ctx.values("category")).map(
        {**{c.code: c.geometry for c in ctx.catalog}, **{c.code_2026: c.geometry for c in ctx.catalog}})
    kinds = pd.Series(shapely.get_type_id(geoms)).map(
        dict(enumerate(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
                        "MultiPolygon", "GeometryCollection"])))
    bad = ok & expected.notna().to_numpy() & (families(geoms) != expected.to_numpy())
    pos = np.flatnonzero(bad)
    names = {c.code: c.name_zh for c in ctx.catalog} | {c.code_2026: c.name_zh for c in ctx.catalog}
    cats = ctx.values("category")
    message = [f"{kinds.iloc[p]} for {names.get(cats[p], cats[p])} ({cats[p]}), which takes a "
               f"{expected.iloc[p]}" + ("; split the multipart point" if kinds.iloc[p] == "MultiPoint" else "")
               for p in pos]
    return Findings(pos, np.array(message, dtype=object))


def _segments(polygon: shapely.Geometry) -> np.ndarray:
    """The boundary of a polygon as two-point segments (fast nearest-distance queries)."""
    rings = shapely.get_parts(shapely.boundary(polygon))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    same = index[1:] == index[:-1]
    return shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))


@rule("geom.outside_district", "error", "located outside the district boundary", needs=("district",))
def outside_district(ctx: Context) -> Findings:
    geoms = ctx.geoms
    ok = np.flatnonzero(present(geoms))
    boundary = ctx.district.boundary
    shapely.prepare(boundary)
    outside = ok[~shapely.intersects(boundary, geoms[ok])]
    edges = shapely.STRtree(_segments(boundary))
    distance = edges.query_nearest(geoms[outside], return_distance=True, all_matches=False)[1]
    message = [f"{d:,.0f} m outside {ctx.district.name}; check the coordinates and their CRS"
               for d in distance]
    return Findings(outside, np.array(message, dtype=object))
