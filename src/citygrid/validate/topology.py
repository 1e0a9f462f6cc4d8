"""Rules on how features sit among others and in the hierarchy: ``topology.*``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from citygrid.validate._engine import Context, Findings, rule
from citygrid.validate.geom import present


def _usable(ctx: Context) -> np.ndarray:
    """Features with a valid geometry (the others are reported by the geom rules)."""
    geoms = ctx.geoms
    ok = present(geoms)
    ok[ok] = shapely.is_valid(geoms[ok])
    return ok


def _arriving(ctx: Context) -> np.ndarray:
    """Features that will be in the registry after a merge (rows retiring a component are not)."""
    if "action" not in ctx.frame:
        return np.ones(len(ctx.frame), dtype=bool)
    return (ctx.frame["action"] != "retire").fillna(True).to_numpy(dtype=bool)


def _inside_district(ctx: Context, ok: np.ndarray) -> np.ndarray:
    if ctx.district is None:
        return ok
    boundary = ctx.district.boundary
    shapely.prepare(boundary)
    out = ok.copy()
    out[ok] = shapely.intersects(boundary, ctx.geoms[ok])
    return out


def _kind(ctx: Context, categories: np.ndarray) -> np.ndarray:
    table = {c.code: c.geometry for c in ctx.catalog} | {c.code_2026: c.geometry for c in ctx.catalog}
    return pd.Series(categories, dtype=object).map(table).to_numpy(dtype=object)


@rule("topology.duplicate_feature", "error",
      "same category within the category's tolerance of another component (batch or registry)")
def duplicate_feature(ctx: Context) -> Findings:
    ok = _usable(ctx) & _arriving(ctx)
    cats = ctx.frame["category"].to_numpy(dtype=object)
    tolerance = ctx.tolerance(cats)
    ok &= np.isfinite(tolerance)
    pos = np.flatnonzero(ok)
    geoms, ids = ctx.geoms[pos], ctx.frame["component_id"].to_numpy(dtype=object)[pos]
    found: dict[int, str] = {}
    if len(pos):
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="dwithin", distance=tolerance[pos])
        keep = (left > right) & (cats[pos][left] == cats[pos][right])
        left, right = left[keep], right[keep]
        gap = _gap(geoms[left], geoms[right])
        close = gap <= tolerance[pos][left]
        for a, b, d in zip(left[close], right[close], gap[close]):
            found.setdefault(int(pos[a]), f"within {d:.2f} m of batch row {int(ctx.frame['row'].iloc[pos[b]])}"
                             f"{'' if pd.isna(ids[b]) else f' ({ids[b]})'} of the same category")
    if ctx.registry is not None and len(pos):
        reg = ctx.registry[ctx.registry["retired_at"].isna()] if "retired_at" in ctx.registry else ctx.registry
        reg_geoms = reg.geometry.to_numpy()
        reg_ids = reg["component_id"].to_numpy(dtype=object)
        reg_cats = reg["category"].to_numpy(dtype=object)
        hit_b, hit_r = reg.sindex.query(geoms, predicate="dwithin", distance=tolerance[pos])
        keep = (cats[pos][hit_b] == reg_cats[hit_r]) & (ids[hit_b] != reg_ids[hit_r])
        hit_b, hit_r = hit_b[keep], hit_r[keep]
        gap = _gap(geoms[hit_b], reg_geoms[hit_r])
        close = gap <= tolerance[pos][hit_b]
        for a, r, d in zip(hit_b[close], hit_r[close], gap[close]):
            found.setdefault(int(pos[a]), f"within {d:.2f} m of registered component {reg_ids[r]} "
                             "of the same category")
    keys = np.array(sorted(found), dtype=int)
    return Findings(keys, np.array([f"suspected duplicate: {found[k]}" for k in keys], dtype=object))


def _gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance for points; Hausdorff distance for lines and polygons (shape closeness)."""
    points = shapely.get_type_id(a) == 0
    out = shapely.distance(a, b)
    if (~points).any():
        out[~points] = shapely.hausdorff_distance(a[~points], b[~points])
    return out


def _cells(ctx: Context):
    grid = ctx.district.grid
    return grid, pd.Series(np.arange(len(grid)), index=grid["code"].to_numpy())


@rule("topology.grid_mismatch", "error", "geometry not in the unit grid cell it claims", needs=("district",))
def grid_mismatch(ctx: Context) -> Findings:
    ok = _inside_district(ctx, _usable(ctx)) & ctx.frame["grid"].notna().to_numpy()
    grid, index = _cells(ctx)
    pos = np.flatnonzero(ok)
    claimed = ctx.frame["grid"].to_numpy(dtype=object)[pos]
    where = index.reindex(claimed).to_numpy()
    known = ~np.isnan(where)
    probe = shapely.point_on_surface(ctx.geoms[pos])
    cells = grid.geometry.to_numpy()
    inside = np.zeros(len(pos), dtype=bool)
    inside[known] = shapely.covers(cells[where[known].astype(int)], probe[known])
    bad = ~inside
    located = ctx.district.locate(probe[bad])["grid"].to_numpy(dtype=object)
    distance = np.full(bad.sum(), np.nan)
    sub = where[bad]
    has = ~np.isnan(sub)
    distance[has] = shapely.distance(cells[sub[has].astype(int)], probe[bad][has])
    names = _names(ctx, ctx.frame["category"].to_numpy(dtype=object)[pos][bad])
    ids = ctx.frame["component_id"].to_numpy(dtype=object)[pos][bad]
    message = [
        (f"{n} {'' if pd.isna(i) else i + ' '}is {d:.1f} m outside its grid cell {c}; it lies in {loc}"
         if not np.isnan(d) else f"{n} {'' if pd.isna(i) else i + ' '}claims grid cell {c}, which does not "
         f"exist; it lies in {loc}")
        for n, i, c, d, loc in zip(names, ids, claimed[bad], distance, located)]
    return Findings(pos[bad], np.array(message, dtype=object))


def _names(ctx: Context, categories: np.ndarray) -> list[str]:
    table = {c.code: c.name_zh for c in ctx.catalog} | {c.code_2026: c.name_zh for c in ctx.catalog}
    return [table.get(c, "component") for c in categories]


@rule("topology.admin_mismatch", "error", "geometry not in the street/community it claims", needs=("district",))
def admin_mismatch(ctx: Context) -> Findings:
    ok = _inside_district(ctx, _usable(ctx))
    pos = np.flatnonzero(ok)
    located = _admin_at(ctx, shapely.point_on_surface(ctx.geoms[pos]))
    frame = ctx.frame.iloc[pos]
    problems = np.full(len(pos), "", dtype=object)
    for column, label in (("street", "street"), ("street_code", "street"),
                          ("community", "community"), ("community_code", "community")):
        claimed = frame[column].to_numpy(dtype=object)
        actual = located[column].to_numpy(dtype=object)
        differs = ~pd.isna(claimed) & ~pd.isna(actual) & (claimed != actual)
        for i in np.flatnonzero(differs):
            text = f"claims {label} {claimed[i]} but lies in {actual[i]}"
            if text.split(" but")[0] not in problems[i]:
                problems[i] = f"{problems[i]}; {text}" if problems[i] else text
    bad = problems != ""
    return Findings(pos[bad], problems[bad])


def _admin_at(ctx: Context, probes: np.ndarray) -> pd.DataFrame:
    """Street and community polygons (not the grid's attributes) containing each probe."""
    out = pd.DataFrame(index=range(len(probes)))
    for layer, code_col, name_col in ((ctx.district.communities, "community_code", "community"),
                                      (ctx.district.streets, "street_code", "street")):
        hit_in, hit = layer.sindex.query(probes, predicate="intersects")
        first_in, first = np.unique(hit_in, return_index=True)
        codes = np.full(len(probes), None, dtype=object)
        names = np.full(len(probes), None, dtype=object)
        codes[first_in] = layer["code"].to_numpy(dtype=object)[hit[first]]
        names[first_in] = layer["name"].to_numpy(dtype=object)[hit[first]]
        out[code_col], out[name_col] = codes, names
    return out


@rule("topology.overlap", "error", "polygons of the same category overlapping beyond tolerance")
def overlap(ctx: Context) -> Findings:
    ok = _usable(ctx) & _arriving(ctx)
    cats = ctx.frame["category"].to_numpy(dtype=object)
    polygonal = np.isin(shapely.get_type_id(ctx.geoms), (3, 6))
    pos = np.flatnonzero(ok & polygonal & (_kind(ctx, cats) == "polygon"))
    geoms = ctx.geoms[pos]
    if not len(pos):
        return Findings.none()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = (left > right) & (cats[pos][left] == cats[pos][right])
    left, right = left[keep], right[keep]
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    tolerance = ctx.tolerance(cats[pos][left])
    big = (shared > tolerance) & (shared > 0.01 * smaller)
    ids = ctx.frame["component_id"].to_numpy(dtype=object)[pos]
    found: dict[int, str] = {}
    rows = ctx.frame["row"].to_numpy()[pos]
    for a, b, area in zip(left[big], right[big], shared[big]):
        other = f"row {int(rows[b])}" if pd.isna(ids[b]) else ids[b]
        found.setdefault(int(pos[a]), f"overlaps {other} of the same category by {area:,.1f} m²")
    keys = np.array(sorted(found), dtype=int)
    return Findings(keys, np.array([found[k] for k in keys], dtype=object))
