"""Rules on the unit grid itself (run by registry validation): ``grid.*``."""

from __future__ import annotations

import numpy as np
import shapely

from citygrid._i18n import _
from citygrid.validation._engine import Context, Findings, rule

AREA_TOLERANCE_M2 = 1.0
"""Gaps, overlaps and overhangs smaller than this are floating-point noise."""


def _codes_near(grid, geoms: np.ndarray) -> list[str]:
    hit_in, hit_cell = grid.sindex.query(geoms, predicate="intersects")
    codes = grid["code"].to_numpy(dtype=object)
    out = []
    for i in range(len(geoms)):
        near = sorted(set(codes[hit_cell[hit_in == i]]))
        out.append(", ".join(near[:4]) + (" …" if len(near) > 4 else ""))
    return out


def _union(ctx: Context):
    """The union of all grid cells (computed once per validation)."""
    return ctx.memo("grid_union", lambda: shapely.union_all(ctx.known_district.grid.geometry.to_numpy()))


@rule("grid.gap", "error", "part of the district covered by no unit grid cell", needs=("district",), whole=True)
def gap(ctx: Context) -> Findings:
    grid = ctx.known_district.grid
    covered = _union(ctx)
    holes = shapely.get_parts(shapely.difference(ctx.known_district.boundary, covered))
    holes = holes[shapely.area(holes) > AREA_TOLERANCE_M2]
    if not len(holes):
        return Findings.none()
    near = _codes_near(grid, shapely.buffer(holes, 0.5))
    text = _("{area:,.1f} m² covered by no grid cell, next to cells {cells}")
    message = [text.format(area=a, cells=n) for a, n in zip(shapely.area(holes), near)]
    first = [n.split(",")[0] for n in near]
    return Findings(np.arange(len(holes)), np.array(message, dtype=object), geometry=holes,
                    component_id=np.array(first, dtype=object), layer="grid")


@rule("grid.overlap", "error", "unit grid cells overlapping each other", needs=("district",), whole=True)
def overlap(ctx: Context) -> Findings:
    grid = ctx.known_district.grid
    cells = grid.geometry.to_numpy()
    if shapely.area(cells).sum() - shapely.area(_union(ctx)) <= AREA_TOLERANCE_M2:
        return Findings.none()  # the areas add up: no two cells share more than noise
    left, right = grid.sindex.query(cells, predicate="overlaps")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.intersection(cells[left], cells[right])
    big = shapely.area(shared) > AREA_TOLERANCE_M2
    codes = grid["code"].to_numpy(dtype=object)
    text = _("cells {a} and {b} overlap by {area:,.1f} m²")
    message = [text.format(a=a, b=b, area=s)
               for a, b, s in zip(codes[left[big]], codes[right[big]], shapely.area(shared[big]))]
    return Findings(np.arange(int(big.sum())), np.array(message, dtype=object), geometry=shared[big],
                    component_id=np.array([f"{a}|{b}" for a, b in zip(codes[left[big]], codes[right[big]])],
                                          dtype=object), layer="grid")


@rule("grid.outside_parent", "error", "unit grid cell not inside the community it belongs to", needs=("district",),
      whole=True)
def outside_parent(ctx: Context) -> Findings:
    grid = ctx.known_district.grid
    communities = ctx.known_district.communities.set_index("code")
    parent = communities.geometry.reindex(grid["community_code"].to_numpy()).to_numpy()
    cells = grid.geometry.to_numpy()
    codes = grid["code"].to_numpy(dtype=object)
    claimed = grid["community_code"].to_numpy(dtype=object)
    unknown = np.array([p is None for p in parent])
    outside = np.zeros(len(grid))
    ok = ~unknown
    parents = np.array(list(parent[ok]), dtype=object)
    shapely.prepare(parents)
    loose = ~shapely.covers(parents, cells[ok])  # only these can stick out
    outside[np.flatnonzero(ok)[loose]] = shapely.area(shapely.difference(cells[ok][loose], parents[loose]))
    nesting = ~np.array([str(c).startswith(str(p)) for c, p in zip(codes, claimed)])
    bad = unknown | (outside > AREA_TOLERANCE_M2) | nesting
    message = []
    orphan = _("cell {cell} belongs to community {community}, which does not exist")
    sticks_out = _("cell {cell} lies {area:,.0f} m² outside its community {community}")
    badly_coded = _("cell code {cell} does not extend its community's code {community}")
    for i in np.flatnonzero(bad):
        text = orphan if unknown[i] else sticks_out if outside[i] > AREA_TOLERANCE_M2 else badly_coded
        message.append(text.format(cell=codes[i], community=claimed[i], area=outside[i]))
    return Findings(np.flatnonzero(bad), np.array(message, dtype=object), geometry=cells[bad],
                    component_id=codes[bad], layer="grid")
