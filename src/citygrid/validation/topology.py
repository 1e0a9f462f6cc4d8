"""Rules on how features sit among others and in the hierarchy: ``topology.*``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import _
from citygrid.validation._engine import Context, Findings, located, present, rule
from citygrid.validation._sedona import LOCATED, PROBE, finding, query, sedona
from citygrid.validation.geom import arriving


def _usable(ctx: Context) -> np.ndarray:
    """Features with a valid geometry (the others are reported by the geom rules)."""
    ok = located(ctx).copy()
    ok[ok] = shapely.is_valid(ctx.geoms[ok])
    return ok


def _inside_district(ctx: Context, ok: np.ndarray) -> np.ndarray:
    if ctx.district is None:
        return ok
    boundary = ctx.known_district.boundary
    shapely.prepare(boundary)
    out = ok.copy()
    out[ok] = shapely.intersects(boundary, ctx.geoms[ok])
    return out


@rule("topology.duplicate_feature", "error",
      "same category within the category's tolerance of another component (batch or registry)", whole=True)
def duplicate_feature(ctx: Context) -> Findings:
    ok = _usable(ctx) & arriving(ctx)
    cats = ctx.values("category")
    tolerance = ctx.tolerance(cats)
    ok &= np.isfinite(tolerance)
    pos = np.flatnonzero(ok)
    geoms = ctx.geoms[pos]
    found: dict[int, str] = {}
    if len(pos):
        left, right = _close_pairs(geoms, cats[pos], tolerance[pos])
        gap = _gap(geoms[left], geoms[right])
        close = gap <= tolerance[pos][left]
        text = _("suspected duplicate: within {distance:.2f} m of {other} of the same category")
        for a, other, d in zip(left[close], ctx.label(pos[right[close]]), gap[close]):
            found.setdefault(int(pos[a]), text.format(distance=d, other=other))
    if ctx.registry is not None and len(pos):
        reg = ctx.registry  # its spatial index is cached with the registry's frame
        hit_b, hit_r = reg.sindex.query(geoms, predicate="dwithin", distance=tolerance[pos])
        keep = _standing(ctx)[hit_r] & (cats[pos][hit_b] == reg["category"].iloc[hit_r].to_numpy(dtype=object))
        hit_b, hit_r = hit_b[keep], hit_r[keep]
        reg_ids = reg["component_id"].iloc[hit_r].to_numpy(dtype=object)
        gap = _gap(geoms[hit_b], reg.geometry.to_numpy()[hit_r])
        close = gap <= tolerance[pos][hit_b]
        text = _("suspected duplicate: within {distance:.2f} m of registered component {other} of the same "
                 "category")
        for a, r, d in zip(hit_b[close], reg_ids[close], gap[close]):
            found.setdefault(int(pos[a]), text.format(distance=d, other=r))
    hidden = ctx.notes.get("hidden_near") or {}
    if hidden:  # a shared registry's components the reader may not see: the database said how far
        text = _("suspected duplicate: within {distance:.2f} m of a registered component of the same category that "
                 "you may not read")
        near = pd.Series(ctx.frame["row"].to_numpy()[pos]).map(hidden).to_numpy(dtype=float)
        for a in np.flatnonzero(near <= tolerance[pos]):
            found.setdefault(int(pos[a]), text.format(distance=near[a]))
    keys = np.array(sorted(found), dtype=int)
    return Findings(keys, np.array([found[k] for k in keys], dtype=object))


def _standing(ctx: Context) -> np.ndarray:
    """Registered components that stay as they are after the merge: current, and not in the batch.

    A component the batch updates or retires is judged by its batch row instead.
    """
    def compute() -> np.ndarray:
        reg = ctx.known_registry
        current = reg["retired_at"].isna().to_numpy().copy() if "retired_at" in reg else np.ones(len(reg), dtype=bool)
        twins = ctx.twins()
        current[twins[twins >= 0]] = False
        return current

    return ctx.memo("standing", compute)


def _close_pairs(geoms: np.ndarray, cats: np.ndarray, tolerance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i > j``, of the same category within its tolerance of each other.

    Points are hashed on a grid of their tolerance (:func:`_point_pairs`; a million point pairs
    cost GEOS seconds, the grid milliseconds); lines and polygons go through an STRtree
    ``dwithin`` query.
    """
    points = shapely.get_type_id(geoms) == 0
    at = np.flatnonzero(points)
    group, _groups = pd.factorize(cats[at])
    parts = [at[_point_pairs(shapely.get_coordinates(geoms[at]), group, tolerance[at])]]
    other = np.flatnonzero(~points)
    if len(other):
        a, b = shapely.STRtree(geoms[other]).query(geoms[other], predicate="dwithin", distance=tolerance[other])
        a, b = other[a], other[b]
        keep = (a > b) & (cats[a] == cats[b])
        parts.append(np.column_stack([a[keep], b[keep]]))
    pairs = np.concatenate(parts)
    return pairs[:, 0].astype(int), pairs[:, 1].astype(int)


def _point_pairs(xy: np.ndarray, group: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Pairs ``[i, j]``, ``i > j``, of points of one group no farther apart than the group's tolerance.

    The points are hashed on a grid of tolerance-sized cells (the duplicate-node search of
    JOSM): two points that close lie in one cell or in neighbouring ones, so only the points
    of a cell and of its neighbours are compared, and most cells have no neighbour at all.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [0.3, 0.4], [0.0, 0.2], [5.0, 5.0]])
    >>> _point_pairs(xy, np.array([0, 0, 1, 0]), np.full(4, 0.5)).tolist()
    [[1, 0]]
    """
    if len(xy) < 2:
        return np.empty((0, 2), dtype=np.int64)
    cell = np.floor(xy / tolerance[:, None])
    cell -= cell.min(axis=0)
    width, height = (cell.max(axis=0) + 2).astype(np.int64)  # an empty cell between columns: no key runs on
    # int64 arithmetic wraps around over a continent at millimetres; the key of a neighbouring
    # cell is still the key plus the step, and two cells sharing a key only add candidates
    key = (group.astype(np.int64) * width + cell[:, 0].astype(np.int64)) * height + cell[:, 1].astype(np.int64)
    order = np.argsort(key, kind="stable")
    cells, start, size = np.unique(key[order], return_index=True, return_counts=True)
    parts = []
    for step in (0, 1, height - 1, height, height + 1):  # the cell itself, and the neighbours after it
        found = np.searchsorted(cells, cells + step).clip(max=len(cells) - 1)
        a = np.flatnonzero(cells[found] == cells + step)
        b = found[a]
        count = size[a] * size[b]
        pair = np.repeat(np.arange(len(a)), count)
        k = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
        i = order[start[a][pair] + k // size[b][pair]]
        j = order[start[b][pair] + k % size[b][pair]]
        keep = i > j if step == 0 else slice(None)  # in one cell each pair comes twice, and with itself
        parts.append(np.column_stack([np.maximum(i, j), np.minimum(i, j)])[keep])
    pairs = np.unique(np.concatenate(parts), axis=0)  # sorted; once each, also where cells share a key
    a, b = pairs[:, 0], pairs[:, 1]
    return pairs[np.hypot(*(xy[a] - xy[b]).T) <= tolerance[a]]


def _gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance for points; Hausdorff distance for lines and polygons (shape closeness)."""
    points = shapely.get_type_id(a) == 0
    out = shapely.distance(a, b)
    if (~points).any():
        out[~points] = shapely.hausdorff_distance(a[~points], b[~points])
    return out


def claimed_cells(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Per row: position of the grid cell it claims (-1: none or unknown), and whether it is in it.

    In it: the cell covers its probe point, or lies within ``settings.grid_tolerance_m`` of it,
    or (lines and polygons) holds at least half of its length or area.
    """
    def compute() -> tuple[np.ndarray, np.ndarray]:
        grid = ctx.known_district.grid
        index = pd.Series(np.arange(len(grid)), index=pd.Index(grid["code"].to_numpy(dtype=object), dtype=object))
        where = index.reindex(pd.Index(ctx.values("grid"), dtype=object)).fillna(-1).to_numpy(dtype=int)
        cells = grid.geometry.to_numpy()
        shapely.prepare(cells)
        probes = ctx.probes()
        covered = np.zeros(len(where), dtype=bool)
        test = (where >= 0) & present(probes)
        covered[test] = shapely.covers(cells[where[test]], probes[test])
        near = np.flatnonzero(test & ~covered)
        covered[near] = shapely.dwithin(cells[where[near]], probes[near], settings.grid_tolerance_m)
        spread = near[~covered[near] & (shapely.get_type_id(ctx.geoms[near]) != 0)]
        covered[spread] = _share(ctx.geoms[spread], cells[where[spread]]) >= 0.5
        return where, covered

    return ctx.memo("claimed_cells", compute)


def _share(geoms: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The part of each line's length, or each polygon's area, inside its cell."""
    lines = np.isin(shapely.get_type_id(geoms), (1, 2, 5))
    inside = shapely.intersection(geoms, cells)
    whole = np.where(lines, shapely.length(geoms), shapely.area(geoms))
    part = np.where(lines, shapely.length(inside), shapely.area(inside))
    return np.divide(part, whole, out=np.zeros(len(geoms)), where=whole > 0)


def _cell_at(ctx: Context) -> np.ndarray:
    """Per row: position of a grid cell holding its probe point (-1: outside the grid).

    The claimed cell when it covers the point; only the other rows are searched.
    """
    def compute() -> np.ndarray:
        where, covered = claimed_cells(ctx)
        cell = np.where(covered, where, -1)
        rest = np.flatnonzero(~covered & present(ctx.probes()))
        hit_in, hit_cell = ctx.known_district.grid.sindex.query(ctx.probes()[rest], predicate="intersects")
        first_in, first = np.unique(hit_in, return_index=True)
        cell[rest[first_in]] = hit_cell[first]
        return cell

    return ctx.memo("cell_at", compute)


@rule("topology.grid_mismatch", "error", "geometry not in the unit grid cell it claims", needs=("district",))
def grid_mismatch(ctx: Context) -> Findings:
    ok = _inside_district(ctx, _usable(ctx)) & ctx.frame["grid"].notna().to_numpy()
    where, covered = claimed_cells(ctx)
    bad = np.flatnonzero(ok & ~covered)
    codes = ctx.known_district.grid["code"].to_numpy(dtype=object)
    cells = ctx.known_district.grid.geometry.to_numpy()
    probe = ctx.probes()[bad]
    found = _cell_at(ctx)[bad]
    located = np.where(found >= 0, codes[np.maximum(found, 0)], None)
    claimed = ctx.values("grid")[bad]
    distance = np.full(len(bad), np.nan)
    has = where[bad] >= 0
    distance[has] = shapely.distance(cells[where[bad][has]], probe[has])
    names = pd.Series(ctx.by_category("name_zh")[bad], dtype=object).fillna(_("component"))
    ids = ctx.values("component_id")[bad]
    outside = _("{what} is {distance:.1f} m outside its grid cell {cell}; it lies in {actual}")
    unknown = _("{what} claims grid cell {cell}, which does not exist; it lies in {actual}")
    message = [(outside if not np.isnan(d) else unknown).format(
        what=n if pd.isna(i) else f"{n} {i}", distance=d, cell=c, actual=_("no cell") if loc is None else loc)
        for n, i, c, d, loc in zip(names, ids, claimed, distance, located)]
    return Findings(bad, np.array(message, dtype=object), field="grid")


@rule("topology.admin_mismatch", "error", "geometry not in the street/community it claims", needs=("district",))
def admin_mismatch(ctx: Context) -> Findings:
    ok = _inside_district(ctx, _usable(ctx))
    pos = np.flatnonzero(ok)
    located = _admin_at(ctx, pos)
    texts = {"street": _("claims street {claimed} but lies in {actual}"),
             "community": _("claims community {claimed} but lies in {actual}")}
    said, first, claims = np.zeros(len(pos), dtype=bool), np.full(len(pos), None, dtype=object), []
    for level in ("street", "community"):
        by_name = np.zeros(len(pos), dtype=bool), np.full(len(pos), None, dtype=object)  # what the name claimed
        for column in (level, f"{level}_code"):
            claimed = ctx.values(column)[pos]
            actual = located[column]
            differs = ~pd.isna(claimed) & ~pd.isna(actual) & (claimed != actual)
            differs &= ~(by_name[0] & (claimed == by_name[1]))  # a code claiming what the name claimed: said once
            by_name = differs, claimed
            rows = np.flatnonzero(differs)
            claims.append((rows, [texts[level].format(claimed=c, actual=a)
                                  for c, a in zip(claimed[rows], actual[rows])]))
            first[rows[~said[rows]]] = column
            said[rows] = True
    bad = np.flatnonzero(said)
    at = np.full(len(pos), -1)
    at[bad] = np.arange(len(bad))
    problems: list[list[str]] = [[] for _row in bad]
    for rows, text in claims:
        for k, t in zip(at[rows], text):
            problems[k].append(t)
    return Findings(pos[bad], np.array(["; ".join(p) for p in problems], dtype=object), field=first[bad])


def _admin_at(ctx: Context, pos: np.ndarray) -> dict[str, np.ndarray]:
    """Street and community polygons (not the grid's attributes) holding the probes of rows `pos`.

    A grid cell lying wholly inside one polygon answers for every probe in it (few
    cells, many probes); probes in no such cell are tested against the polygons.
    """
    probes = ctx.probes()[pos]
    cell = _cell_at(ctx)[pos]
    out = {}
    for layer, level in ((ctx.known_district.communities, "community"), (ctx.known_district.streets, "street")):
        code_col, name_col = f"{level}_code", level
        polygons = layer.geometry.to_numpy()
        where = np.where(cell >= 0, ctx.known_district.cell_parents(level)[np.maximum(cell, 0)], -1)
        rest = np.flatnonzero(where < 0)
        if len(rest):
            poly, found = shapely.STRtree(probes[rest]).query(polygons, predicate="intersects")
            order = np.lexsort((poly, found))
            firsts, at = np.unique(found[order], return_index=True)
            where[rest[firsts]] = poly[order][at]
        known = where >= 0
        codes = np.full(len(pos), None, dtype=object)
        names = np.full(len(pos), None, dtype=object)
        codes[known] = layer["code"].to_numpy(dtype=object)[where[known]]
        names[known] = layer["name"].to_numpy(dtype=object)[where[known]]
        out[code_col], out[name_col] = codes, names
    return out


def _overlapping(a: np.ndarray, b: np.ndarray, tolerance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs overlap beyond tolerance (more than `tolerance` m² and 1 % of the smaller), and by how much."""
    shared = shapely.area(shapely.intersection(a, b))
    smaller = np.minimum(shapely.area(a), shapely.area(b))
    return (shared > tolerance) & (shared > 0.01 * smaller), shared


@rule("topology.overlap", "error", "polygons of the same category overlapping beyond tolerance (batch or registry)",
      whole=True)
def overlap(ctx: Context) -> Findings:
    ok = _usable(ctx) & arriving(ctx)
    cats = ctx.values("category")
    polygonal = np.isin(shapely.get_type_id(ctx.geoms), (3, 6))
    pos = np.flatnonzero(ok & polygonal & (ctx.by_category("geometry") == "polygon"))
    geoms = ctx.geoms[pos]
    if not len(pos):
        return Findings.none()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = (left > right) & (cats[pos][left] == cats[pos][right])
    left, right = left[keep], right[keep]
    found: dict[int, str] = {}
    big, area = _overlapping(geoms[left], geoms[right], ctx.tolerance(cats[pos][left]))
    text = _("overlaps {other} of the same category by {area:,.1f} m²")
    for a, other, shared in zip(left[big], ctx.label(pos[right[big]]), area[big]):
        found.setdefault(int(pos[a]), text.format(other=other, area=shared))
    if ctx.registry is not None:
        reg = ctx.registry
        hit_b, hit_r = reg.sindex.query(geoms, predicate="intersects")
        keep = _standing(ctx)[hit_r] & (cats[pos][hit_b] == reg["category"].iloc[hit_r].to_numpy(dtype=object))
        hit_b, hit_r = hit_b[keep], hit_r[keep]
        big, area = _overlapping(geoms[hit_b], reg.geometry.to_numpy()[hit_r], ctx.tolerance(cats[pos][hit_b]))
        reg_ids = reg["component_id"].iloc[hit_r[big]].to_numpy(dtype=object)
        text = _("overlaps registered component {other} of the same category by {area:,.1f} m²")
        for a, other, shared in zip(hit_b[big], reg_ids, area[big]):
            found.setdefault(int(pos[a]), text.format(other=other, area=shared))
    keys = np.array(sorted(found), dtype=int)
    return Findings(keys, np.array([found[k] for k in keys], dtype=object))


# --- on Sedona ---------------------------------------------------------------------------

POINT_PAIRS = """SELECT 'topology.duplicate_feature' AS rule, 'error' AS severity, a.component_id, a.row,
    concat('within ', format_number(ST_Distance(a.geometry, b.geometry), 2), ' m of ',
           coalesce(b.component_id, concat('row ', b.row)), ' of the same category') AS message,
    a.admin_code, ST_AsBinary(a.geometry) AS wkb
    FROM cg_pt a JOIN (SELECT p.*, dx, dy FROM cg_pt p
        LATERAL VIEW explode(array(-1, 0, 1)) x AS dx LATERAL VIEW explode(array(-1, 0, 1)) y AS dy) b
      ON a.admin_code = b.admin_code AND a.category = b.category AND a.gx = b.gx + b.dx AND a.gy = b.gy + b.dy
    WHERE a.row > b.row AND ST_Distance(a.geometry, b.geometry) <= a.tol"""
"""Point pairs: an equi-join on (district, category, tolerance cell) with the 8 neighbouring cells."""

SHAPE_JOIN = """SELECT a.component_id, a.row, a.admin_code, a.category, a.tol, a.geometry,
    b.component_id AS b_id, b.row AS b_row, b.admin_code AS b_admin, b.category AS b_category, b.geometry AS b_geometry
    FROM (SELECT * FROM cg_tol WHERE GeometryType(geometry) <> 'POINT') a
    JOIN (SELECT * FROM cg_tol WHERE GeometryType(geometry) <> 'POINT') b
      ON ST_DWithin(a.geometry, b.geometry, {reach})"""
"""Line and polygon pairs near each other: Sedona's distance join, nothing else in its condition."""

SHAPE_PAIRS = """SELECT 'topology.duplicate_feature' AS rule, 'error' AS severity, component_id, row,
    concat('within ', format_number(ST_HausdorffDistance(geometry, b_geometry), 2), ' m of ',
           coalesce(b_id, concat('row ', b_row)), ' of the same category') AS message,
    admin_code, ST_AsBinary(geometry) AS wkb FROM cg_near
    WHERE admin_code = b_admin AND category = b_category AND row > b_row
      AND ST_HausdorffDistance(geometry, b_geometry) <= tol"""
"""The same category, compared after the join (in the join Spark would make it a hash key)."""


def sedona_tolerances(spark: Any) -> float:
    """Views cg_tol and cg_pt; the largest tolerance.

    cg_tol: usable components with their category's tolerance; cg_pt: its points with their
    cell on the tolerance grid. The largest tolerance is the reach of the shapes' distance join.
    """
    spark.sql(f"""SELECT c.*, CAST(k.tolerance_m AS DOUBLE) AS tol FROM cg_c c
        JOIN cg_catalog k ON k.admin_code = c.admin_code AND (k.code = c.category OR k.code_2026 = c.category)
        WHERE {LOCATED} AND ST_IsValid(c.geometry)
          AND CAST(k.tolerance_m AS DOUBLE) > 0""").createOrReplaceTempView("cg_tol")
    spark.sql("""SELECT *, CAST(floor(ST_X(geometry) / tol) AS BIGINT) AS gx,
        CAST(floor(ST_Y(geometry) / tol) AS BIGINT) AS gy FROM cg_tol
        WHERE GeometryType(geometry) = 'POINT'""").createOrReplaceTempView("cg_pt")
    return float(spark.sql("SELECT max(tol) FROM cg_tol").first()[0] or 0.0)


@sedona("topology.duplicate_feature")
def duplicates_on_sedona(spark: Any) -> pd.DataFrame:
    """Same category within its tolerance: points hashed on a tolerance grid, shapes by a spatial join."""
    reach = sedona_tolerances(spark)
    # checkpointed: the category filter cannot be pushed back into the spatial join's condition
    spark.sql(SHAPE_JOIN.format(reach=reach)).localCheckpoint().createOrReplaceTempView("cg_near")
    found = pd.concat([query(spark, POINT_PAIRS), query(spark, SHAPE_PAIRS)], ignore_index=True)
    return found.sort_values(["admin_code", "row"]).drop_duplicates(["admin_code", "row"], ignore_index=True)


@sedona("topology.grid_mismatch")
def grid_mismatch_on_sedona(spark: Any) -> pd.DataFrame:
    """Components outside the grid cell they claim, or claiming one that does not exist."""
    tolerance = settings.grid_tolerance_m
    share = ("CASE WHEN GeometryType(c.geometry) IN ('LINESTRING', 'MULTILINESTRING') "
             "THEN ST_Length(ST_Intersection(c.geometry, g.geometry)) / ST_Length(c.geometry) "
             "WHEN GeometryType(c.geometry) IN ('POLYGON', 'MULTIPOLYGON') "
             "THEN ST_Area(ST_Intersection(c.geometry, g.geometry)) / ST_Area(c.geometry) ELSE 0 END")
    where = (f"c.grid IS NOT NULL AND {LOCATED} AND ST_IsValid(c.geometry) "
             f"AND ST_Intersects(b.geometry, c.geometry) AND (g.code IS NULL OR (ST_Distance(g.geometry, {PROBE}) > "
             f"{tolerance} AND {share} < 0.5))")
    message = ("CASE WHEN g.code IS NULL THEN concat('claims grid cell ', c.grid, ', which does not exist') "
               f"ELSE concat('is ', format_number(ST_Distance(g.geometry, {PROBE}), 1), ' m outside its grid cell ', "
               "c.grid) END")
    joins = ("JOIN cg_boundary b USING (admin_code) "
             "LEFT JOIN cg_grid g ON g.admin_code = c.admin_code AND g.code = c.grid")
    return query(spark, finding("topology.grid_mismatch", where, message, joins))


@sedona("topology.admin_mismatch")
def admin_mismatch_on_sedona(spark: Any) -> pd.DataFrame:
    """Components in another street or community than they claim."""
    spark.sql(f"""SELECT c.admin_code, c.row, c.component_id, c.street, c.street_code, c.community,
        c.community_code, c.geometry, {PROBE} AS probe FROM cg_c c JOIN cg_boundary b USING (admin_code)
        WHERE {LOCATED} AND ST_IsValid(c.geometry)
          AND ST_Intersects(b.geometry, c.geometry)""").localCheckpoint().createOrReplaceTempView("cg_probe")
    for layer, level in (("cg_streets", "street"), ("cg_communities", "community")):
        spark.sql(f"""SELECT admin_code, row, code AS {level}_at, name AS {level}_name_at FROM (
            SELECT p.admin_code, p.row, s.code, s.name, row_number() OVER (PARTITION BY p.admin_code, p.row
                ORDER BY s.code) AS k
            FROM cg_probe p JOIN {layer} s ON ST_Intersects(s.geometry, p.probe)
            WHERE s.admin_code = p.admin_code) WHERE k = 1""").createOrReplaceTempView(f"cg_{level}_at")
    differs = " OR ".join(f"({claimed} IS NOT NULL AND {actual} IS NOT NULL AND {claimed} <> {actual})"
                          for claimed, actual in (("p.street", "s.street_name_at"), ("p.street_code", "s.street_at"),
                                                  ("p.community", "m.community_name_at"),
                                                  ("p.community_code", "m.community_at")))
    table = query(spark, f"""SELECT p.admin_code, p.row, p.component_id, p.street, p.street_code, p.community,
        p.community_code, s.street_at, s.street_name_at, m.community_at, m.community_name_at,
        ST_AsBinary(p.geometry) AS wkb
        FROM cg_probe p LEFT JOIN cg_street_at s USING (admin_code, row) LEFT JOIN cg_community_at m
          USING (admin_code, row) WHERE {differs}""")
    rows = []
    for rec in table.itertuples():
        problems: list[str] = []
        for level, pairs in (("street", ((rec.street, rec.street_name_at), (rec.street_code, rec.street_at))),
                             ("community", ((rec.community, rec.community_name_at),
                                            (rec.community_code, rec.community_at)))):
            for claimed, actual in pairs:
                text = f"claims {level} {claimed} but lies in {actual}"
                if pd.notna(claimed) and pd.notna(actual) and claimed != actual and \
                        text.split(" but")[0] not in "; ".join(problems):
                    problems.append(text)
        rows.append({"rule": "topology.admin_mismatch", "severity": "error", "component_id": rec.component_id,
                     "row": rec.row, "message": "; ".join(problems), "admin_code": rec.admin_code, "wkb": rec.wkb})
    return pd.DataFrame(rows)
