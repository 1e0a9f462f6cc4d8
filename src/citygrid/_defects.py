"""Faults injected into a synthetic district, with their ground truth.

Every registry-level rule of the guide gets ``max(3, n / 2000)`` faults, each in a
different component (or grid cell), chosen so that a fault triggers its own rule and no
other: e.g. a wrong-type geometry stays inside its grid cell, an id with another
category's digits gets a serial no one uses. Batch-level rules (``crs.*``) and
``owner.conflict`` (a batch against a registry) are not registry faults and are not
injected here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from citygrid._i18n import _
from citygrid.admin import District
from citygrid.catalog import Catalog

COMPONENT_RULES = (
    "schema.missing_field", "schema.unknown_category", "schema.bad_value", "schema.mojibake",
    "id.malformed", "id.category_mismatch", "id.duplicate", "geom.missing", "geom.invalid",
    "geom.wrong_type", "geom.outside_district", "topology.duplicate_feature",
    "topology.grid_mismatch", "topology.admin_mismatch", "topology.overlap", "owner.unknown",
)
GRID_RULES = ("grid.gap", "grid.overlap", "grid.outside_parent")
UNKNOWN_UNIT = "坪山区某某物业管理有限公司"


def mojibake(text: str) -> str:
    """GBK bytes of `text` wrongly decoded as Latin-1, as a careless reader produces.

    Examples
    --------
    >>> mojibake("绿地")
    'ÂÌµØ'
    """
    return text.encode("gbk").decode("latin-1")


class _Picker:
    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.free = np.ones(n, dtype=bool)
        self.rng = rng

    def take(self, mask: np.ndarray, k: int, rule: str) -> np.ndarray:
        pool = np.flatnonzero(mask & self.free)
        if len(pool) < k:
            raise ValueError(_("the district is too small to inject {n} {rule!r} faults; use more components.").format(
                n=k, rule=rule))
        rows = np.sort(self.rng.choice(pool, size=k, replace=False))
        self.free[rows] = False
        return rows


def inject_defects(district: District, catalog: Catalog, rng: np.random.Generator) -> None:
    """Inject faults into `district` in place and set ``district.defects``.

    ``district.defects`` has one row per fault: ``layer`` (components/grid), ``row``
    (position in that frame after injection), ``component_id`` (or grid cell code) and
    ``rule``.
    """
    comps = district.held("components").copy()
    n = len(comps)
    k = max(3, n // 2000)
    kinds = comps["category"].map({c.code: c.geometry for c in catalog}).to_numpy()
    point, polygon = kinds == "point", kinds == "polygon"
    centred = comps["category"].between("0710", "0715").to_numpy()
    pick = _Picker(n, rng)
    truth: list[tuple[str, int, str]] = []

    def mark(rows, rule):
        truth.extend(("components", int(r), rule) for r in rows)

    rows = pick.take(np.ones(n, bool), k, "schema.missing_field")
    comps.loc[rows, "department"] = None
    mark(rows, "schema.missing_field")

    rows = pick.take(np.ones(n, bool), k, "schema.unknown_category")
    fake = "0199"
    comps.loc[rows, "category"] = fake
    comps.loc[rows, "component_id"] = comps.loc[rows, "component_id"].str.slice(0, 6) + fake + \
        comps.loc[rows, "component_id"].str.slice(10)
    mark(rows, "schema.unknown_category")

    rows = pick.take(np.ones(n, bool), k, "schema.bad_value")
    comps.loc[rows, "status"] = "良好"
    mark(rows, "schema.bad_value")

    rows = pick.take(np.ones(n, bool), k, "schema.mojibake")
    comps.loc[rows, "name"] = [mojibake(f"{c}{cat}") for c, cat in
                               zip(comps.loc[rows, "community"], comps.loc[rows, "category_name"])]
    mark(rows, "schema.mojibake")

    rows = pick.take(np.ones(n, bool), k, "id.malformed")
    ids = comps.loc[rows, "component_id"]
    comps.loc[rows, "component_id"] = np.where(
        np.arange(len(rows)) % 2 == 0, ids.str.slice(0, 15), ids.str.slice(0, 12) + "O" + ids.str.slice(13))
    mark(rows, "id.malformed")

    rows = pick.take(np.ones(n, bool), k, "id.category_mismatch")
    other = np.where(comps.loc[rows, "category"] == "0101", "0102", "0101")
    comps.loc[rows, "component_id"] = comps.loc[rows, "component_id"].str.slice(0, 6) + other + \
        pd.Series(900_000 + np.arange(len(rows)), index=rows).astype(str)
    mark(rows, "id.category_mismatch")

    by_cat = comps.groupby("category").indices
    candidates = np.zeros(n, bool)
    for members in by_cat.values():
        candidates[members[1:]] = True
    rows = pick.take(candidates, k, "id.duplicate")
    for r in rows:
        members = by_cat[comps.at[r, "category"]]
        comps.at[r, "component_id"] = comps.at[int(members[members < r][0]), "component_id"]
    mark(rows, "id.duplicate")

    rows = pick.take(np.ones(n, bool), k, "geom.missing")
    comps.loc[rows, "geometry"] = np.where(np.arange(len(rows)) % 2 == 0, None, shapely.Point())
    mark(rows, "geom.missing")

    rows = pick.take(polygon, k, "geom.invalid")
    coords = shapely.get_coordinates(comps.geometry.to_numpy()[rows]).reshape(len(rows), 5, 2)
    comps.loc[rows, "geometry"] = shapely.polygons(coords[:, [0, 2, 1, 3, 0]])
    mark(rows, "geom.invalid")

    rows = pick.take(point, k, "geom.wrong_type")
    comps.loc[rows, "geometry"] = shapely.buffer(comps.geometry.to_numpy()[rows], 0.4, quad_segs=1)
    mark(rows, "geom.wrong_type")

    rows = pick.take(point, k, "geom.outside_district")
    minx, _, maxx, _ = district.boundary.bounds
    comps.loc[rows, "geometry"] = shapely.transform(comps.geometry.to_numpy()[rows],
                                                    lambda c: c + [maxx - minx + 2000.0, 0.0])
    mark(rows, "geom.outside_district")

    rows = pick.take(np.ones(n, bool), k, "owner.unknown")
    comps.loc[rows, ["owner", "owner_code"]] = [UNKNOWN_UNIT, None]
    mark(rows, "owner.unknown")

    rows = pick.take(~centred, k, "topology.grid_mismatch")
    cells = district.grid.groupby("community_code")["code"].apply(np.asarray)
    claimed = []
    for r in rows:
        pool = cells[comps.at[r, "community_code"]]
        claimed.append(rng.choice(pool[pool != comps.at[r, "grid"]]))
    comps.loc[rows, "grid"] = claimed
    mark(rows, "topology.grid_mismatch")

    rows = pick.take(np.ones(n, bool), k, "topology.admin_mismatch")
    communities = district.communities.set_index("code")
    for r in rows:
        pool = communities[communities["street_code"] != comps.at[r, "street_code"]]
        code = rng.choice(pool.index.to_numpy())
        comps.loc[r, ["community_code", "community", "street_code"]] = [
            code, pool.at[code, "name"], pool.at[code, "street_code"]]
        comps.loc[r, "street"] = district.streets.set_index("code").at[pool.at[code, "street_code"], "name"]
    mark(rows, "topology.admin_mismatch")

    extra = []
    rows = pick.take(point, k, "topology.duplicate_feature")
    copies = comps.loc[rows].copy()
    tolerance = copies["category"].map(catalog.tolerance()).to_numpy()
    angle = rng.uniform(0, 2 * np.pi, len(rows))
    shift = np.column_stack([np.cos(angle), np.sin(angle)]) * (0.3 * tolerance)[:, None]
    copies["geometry"] = shapely.points(shapely.get_coordinates(copies.geometry.to_numpy()) + shift)
    extra.append((copies, "topology.duplicate_feature", 800_000))

    rows = pick.take(polygon, k, "topology.overlap")
    copies = comps.loc[rows].copy()
    geoms = copies.geometry.to_numpy()
    size = np.sqrt(shapely.area(geoms))
    tolerance = copies["category"].map(catalog.tolerance()).to_numpy()
    shift = np.maximum(0.35 * size, tolerance + 2.0)  # overlapping, yet no duplicate
    moved = np.array([shapely.affinity.translate(g, s, 0.0) for g, s in zip(geoms, shift)])
    cell_of = district.grid.set_index("code").geometry
    inner = shapely.buffer(cell_of.loc[copies["grid"]].to_numpy(), -3.0)
    copies["geometry"] = shapely.intersection(moved, inner)
    extra.append((copies, "topology.overlap", 850_000))

    for copies, rule, base in extra:
        copies["component_id"] = copies["component_id"].str.slice(0, 10) + \
            pd.Series(base + np.arange(len(copies)), index=copies.index).astype(str)
        start = len(comps)
        comps = pd.concat([comps, copies], ignore_index=True)
        mark(range(start, len(comps)), rule)

    district.components = comps.set_crs(district.crs, allow_override=True)
    district.defects = pd.DataFrame(truth, columns=["layer", "row", "rule"])
    district.defects["component_id"] = comps["component_id"].to_numpy()[district.defects["row"]]
    _grid_defects(district, rng)


def _grid_defects(district: District, rng: np.random.Generator) -> None:
    grid = district.grid.copy()
    comps = district.held("components")
    k = max(3, len(grid) // 2000)
    centred_cells = set(comps.loc[comps["category"].between("0710", "0715"), "grid"])
    geoms = grid.geometry.to_numpy()
    parent = district.communities.set_index("code").geometry.loc[grid["community_code"]].to_numpy()
    inner = shapely.contains_properly(parent, shapely.buffer(geoms, 2.0, join_style="mitre"))
    whole = shapely.get_num_coordinates(geoms) == 5
    quiet = whole & inner & ~grid["code"].isin(centred_cells).to_numpy()
    pick = _Picker(len(grid), rng)
    truth = []
    rows = pick.take(quiet, k, "grid.gap")
    grid.loc[rows, "geometry"] = shapely.buffer(geoms[rows], -1.0, join_style="mitre")
    truth += [("grid", int(r), "grid.gap") for r in rows]
    rows = pick.take(quiet, k, "grid.overlap")
    grid.loc[rows, "geometry"] = shapely.buffer(geoms[rows], 1.0, join_style="mitre")
    truth += [("grid", int(r), "grid.overlap") for r in rows]
    touches_other = whole & ~inner
    rows = pick.take(touches_other, k, "grid.outside_parent")
    communities = district.communities
    for r in rows:
        near = communities[communities.intersects(shapely.buffer(geoms[r], 2.0))
                           & (communities["code"] != grid.at[r, "community_code"])]
        if near.empty:
            near = communities[communities["code"] != grid.at[r, "community_code"]]
        grid.loc[r, ["community_code", "street_code"]] = near.iloc[0][["code", "street_code"]].tolist()
    truth += [("grid", int(r), "grid.outside_parent") for r in rows]
    district.grid = grid
    frame = pd.DataFrame(truth, columns=["layer", "row", "rule"])
    frame["component_id"] = grid["code"].to_numpy()[frame["row"]]
    district.defects = pd.concat([district.defects, frame], ignore_index=True)
