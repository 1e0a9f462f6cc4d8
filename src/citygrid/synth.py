"""A deterministic synthetic district, realistic enough to exercise every part of citygrid.

:func:`make_district` lays, inside the real outline of the profile's district (Pingshan
by default), a road network along a jittered mesh, unit grid cells of about
``cell_size`` metres bounded by its lines, the profile's streets and communities as a
partition of the cells (recursive bisection with wavy borders, so that each community
holds a similar number of cells and no code passes 999), and components whose counts per
category are skewed like a real city's. Placement guarantees a clean baseline: point
components sit on slots along road edges spaced wider than their category's duplicate
tolerance, lines run along road edges, polygons sit well inside one cell each, and every
component's claimed grid cell, community and street are where it is.

With ``defects=True`` a known set of faults of every registry-level rule of the guide is
injected and returned as ground truth in ``District.defects``.

Everything is vectorised numpy/shapely; no network access.

Examples
--------
>>> d = make_district(seed=1, n_components=2_000)
>>> len(d.components), d.components["category"].nunique(), len(d.streets)
(2000, 136, 6)
"""

from __future__ import annotations

import copy

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid import settings
from citygrid._i18n import _
from citygrid.admin import District, Profile, load_profile
from citygrid.catalog import Catalog, load_catalog
from citygrid.schema import FIELD_NAMES, conform, make_ids

ROAD_EVERY = 2
"""Every second mesh line is a road."""

_ON_ROAD = {"0101", "0102", "0103", "0104", "0105", "0106", "0107", "0108", "0109", "0110",
            "0111", "0112", "0114", "0127", "0128", "0129", "0130"}
"""Point categories lying in the carriageway (covers, grates); others stand beside it."""

_STEPS = {"0118": 16.0, "0402": 9.0, "0210": 20.0, "0203": 26.0, "0305": 40.0, "0113": 77.0, "0407": 4.4,
          "0136": 17.0, "0101": 14.0, "0102": 12.0, "0103": 12.0, "0104": 12.0, "0209": 25.0, "0117": 30.0}
"""Metres between neighbours of a kind along a street (the medians of the spacing table of the project's reference
facts, measured on real street furniture: lamps 16 m apart, trees 9, benches 4.4, bins 41, hydrants 77 …); other
kinds of cover 15 m, the rest 30 m."""
_BESIDE = {"0113": ("0101", 0.24), "0209": ("0118", 0.3), "0136": ("0118", 0.3)}
"""Kinds that share a spot with another kind, and how often: a hydrant beside a water cover, a sign or a camera on a
lamp pole. No other two kinds stand within a metre of each other."""
_PAIRED = {"0101": 0.5}
"""Kinds laid in pairs under a metre apart (water valve pairs), and the share of them in pairs."""
EDGE_MARGIN = 16.0
"""Metres of a road edge left free at each end: the junction, where the kerbs of two roads meet."""

_SHARES = {
    "0104": 0.1452, "0118": 0.1071, "0103": 0.0905, "0102": 0.0810, "0402": 0.0714,
    "0107": 0.0524, "0105": 0.0429, "0209": 0.0286, "0305": 0.0262, "0117": 0.0238,
    "0101": 0.0214, "0741": 0.0190, "0709": 0.0167, "0113": 0.0119, "0405": 0.0095,
    "0213": 0.0095, "0211": 0.0071, "0106": 0.0071, "0111": 0.0060, "0403": 0.0060,
}
"""Share of the largest categories (per 420k: ~61k storm grates, ~45k street lamps …)."""

_ROAD_CLASSES = ("主干道", "次干道", "支路")
_ROAD_STEMS = list(
    "坪山 深汕 丹梓 金牛 锦龙 新横 龙勤 聚龙 东纵 比亚迪 宝梓 青松 翠景 兰竹 沙坣 横岭 "
    "六和 碧岭 汤坑 石井 田头 金辉 秀沙 荔景 燕子岭 南布 环城 创景 行政 飞西 同富 龙兴 "
    "光祖 马峦 江岭 坑梓 老坑 竹坑 沙湖 金田 秀新 锦绣 振环 长隆 翠岭 聚贤 青兰 昌业".split())

_STATUS_P = {"完好": 0.93, "破损": 0.04, "占用": 0.015, "丢失": 0.005, "废弃": 0.01}
_MATERIALS = np.array(["铸铁", "球墨铸铁", "复合材料", "混凝土", "不锈钢"], dtype=object)


def category_counts(catalog: Catalog, n: int, rng: np.random.Generator) -> pd.Series:
    """Counts per category summing to `n`.

    The big ones get fixed shares, the rest a geometric tail in a seeded order, each at
    least 1 (3 when ``n`` allows).

    Examples
    --------
    >>> counts = category_counts(load_catalog(), 420_000, np.random.default_rng(0))
    >>> int(counts.sum()), int(counts.max()), counts.idxmax()
    (420000, 60928, '0104')
    """
    codes = catalog.codes
    if n < len(codes):
        raise ValueError(_("n_components={n} is fewer than the {k} categories; use at least {k}.").format(
            n=n, k=len(codes)))
    rest = [c for c in codes if c not in _SHARES]
    order = rng.permutation(len(rest))
    tail = np.exp(-np.arange(len(rest)) / 16.0)
    tail = tail / tail.sum() * (1.0 - sum(_SHARES.values()))
    weights = pd.Series(_SHARES, dtype=float)
    weights = pd.concat([weights, pd.Series(tail[np.argsort(order)], index=rest)])[codes]
    floor = min(3, n // len(codes))
    raw = weights * (n - floor * len(codes))
    counts = np.floor(raw).astype(int)
    short = int(n - floor * len(codes) - counts.sum())
    counts.iloc[np.argsort(-(raw - counts).to_numpy(), kind="stable")[:short]] += 1
    return counts + floor


def _mesh(boundary: shapely.Geometry, cell: float, rng: np.random.Generator):
    minx, miny, maxx, maxy = boundary.bounds
    nx = int(np.ceil((maxx - minx) / cell)) + 3
    ny = int(np.ceil((maxy - miny) / cell)) + 3
    gx, gy = np.meshgrid(minx - cell + cell * np.arange(nx), miny - cell + cell * np.arange(ny),
                         indexing="ij")
    jitter = rng.uniform(-0.18 * cell, 0.18 * cell, size=(2, nx, ny))
    return gx + jitter[0], gy + jitter[1]


def _quads(vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """(nx-1, ny-1, 5, 2) corner coordinates of the mesh cells, counter-clockwise."""
    corners = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]
    x = np.stack([vx[a:vx.shape[0] - 1 + a, b:vx.shape[1] - 1 + b] for a, b in corners], axis=-1)
    y = np.stack([vy[a:vy.shape[0] - 1 + a, b:vy.shape[1] - 1 + b] for a, b in corners], axis=-1)
    return np.stack([x, y], axis=-1)


def _cells(boundary, vx, vy, cell):
    """Grid cells: mesh quads inside the boundary, clipped ones merged when small."""
    quads = _quads(vx, vy)
    ni, nj = quads.shape[:2]
    polys = shapely.polygons(quads.reshape(-1, 5, 2))
    shapely.prepare(boundary)
    inside = shapely.contains_properly(boundary, polys)
    crossing = ~inside & shapely.intersects(boundary, polys)
    geoms = np.where(inside, polys, None)
    clipped = shapely.intersection(polys[crossing], boundary)
    clipped = np.array([shapely.union_all([p for p in shapely.get_parts(g)
                                           if p.geom_type == "Polygon"]) for g in clipped],
                       dtype=object)
    geoms[crossing] = clipped
    area = shapely.area(geoms)
    area = np.where(np.isnan(area), 0.0, area)
    small = np.flatnonzero(crossing & (area < 0.25 * cell * cell))
    ij = np.column_stack(np.unravel_index(np.arange(ni * nj), (ni, nj)))
    for k in small[np.argsort(area[small])]:
        if geoms[k] is None or shapely.is_empty(geoms[k]):
            continue
        i, j = ij[k]
        best, best_len = -1, 0.0
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= i + di < ni and 0 <= j + dj < nj:
                m = (i + di) * nj + j + dj
                if geoms[m] is not None and area[m] >= 0.25 * cell * cell:
                    shared = shapely.length(shapely.intersection(geoms[k].boundary, geoms[m].boundary))
                    if shared > best_len:
                        best, best_len = m, shared
        if best >= 0:
            geoms[best] = shapely.union(geoms[best], geoms[k])
            area[best] += area[k]
            geoms[k], area[k] = None, 0.0
    keep = np.array([g is not None and not shapely.is_empty(g) and shapely.area(g) > 1.0
                     for g in geoms])
    return geoms, keep, inside.reshape(ni, nj)


def _bisect(points: np.ndarray, weights: list[float], rng: np.random.Generator) -> np.ndarray:
    """Split points into groups of sizes proportional to `weights`.

    Recursive cuts across the principal axis, with a wavy border.
    """
    labels = np.zeros(len(points), dtype=int)
    if len(weights) == 1:
        return labels
    half = len(weights) // 2
    share = sum(weights[:half]) / sum(weights)
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred[:: max(1, len(points) // 2000)], full_matrices=False)
    angle = np.arctan2(axes[0, 1], axes[0, 0]) + rng.uniform(-0.35, 0.35)
    along = centred @ np.array([np.cos(angle), np.sin(angle)])
    across = centred @ np.array([-np.sin(angle), np.cos(angle)])
    extent = np.ptp(along) + 1.0
    along = along + 0.06 * extent * np.sin(2 * np.pi * across / (0.6 * extent) + rng.uniform(0, 6.3))
    first = along <= np.quantile(along, share)
    labels[first] = _bisect(points[first], weights[:half], rng)
    labels[~first] = half + _bisect(points[~first], weights[half:], rng)
    return labels


def _hierarchy(profile: Profile, geoms, rng):
    centres = shapely.get_coordinates(shapely.centroid(geoms))
    communities = profile.communities
    per_street = communities.groupby("street_code", sort=False).size()
    street_codes = profile.streets["code"].tolist()
    weights = [per_street.get(s, 1) * rng.uniform(0.85, 1.15) for s in street_codes]
    street_label = _bisect(centres, weights, rng)
    community_code = np.empty(len(geoms), dtype=object)
    for s, code in enumerate(street_codes):
        members = np.flatnonzero(street_label == s)
        own = communities[communities["street_code"] == code]["code"].tolist()
        sub = _bisect(centres[members], [rng.uniform(0.8, 1.2) for _ in own], rng)
        community_code[members] = np.asarray(own, dtype=object)[sub]
    order = np.lexsort((np.round(centres[:, 0], -1), -np.round(centres[:, 1], -2)))
    frame = pd.DataFrame({"community_code": community_code[order], "pos": order})
    serial = frame.groupby("community_code").cumcount() + 1
    if serial.max() > 999:
        raise ValueError(_("a community would hold {n} grid cells, more than the 999 a 3-digit serial allows; use a "
                           "larger cell_size or a profile with more communities.").format(n=serial.max()))
    codes = np.empty(len(geoms), dtype=object)
    codes[order] = (frame["community_code"] + serial.astype(str).str.zfill(3)).to_numpy()
    return codes, community_code


def _roads(vx, vy, boundary, rng):
    """Road lines along every ROAD_EVERY-th mesh line, clipped to the district."""
    lines, klass, index = [], [], []
    for axis in (0, 1):
        n = vx.shape[axis]
        for i in range(0, n, ROAD_EVERY):
            xs = vx[i] if axis == 0 else vx[:, i]
            ys = vy[i] if axis == 0 else vy[:, i]
            lines.append(shapely.linestrings(np.column_stack([xs, ys])))
            klass.append(0 if i % 10 == 0 else 1 if i % 4 == 0 else 2)
            index.append((axis, i))
    clipped = shapely.intersection(np.array(lines, dtype=object), boundary)
    names = _road_names(len(lines), np.array(klass), rng)
    frame = gpd.GeoDataFrame(
        {"name": names, "road_class": np.asarray(_ROAD_CLASSES, dtype=object)[klass],
         "axis": [a for a, _ in index], "line": [i for _, i in index]},
        geometry=clipped, crs=settings.default_crs)
    frame = frame[~frame.geometry.is_empty].explode(index_parts=False)
    frame = frame[frame.geometry.geom_type == "LineString"].reset_index(drop=True)
    return frame


def _road_names(n: int, klass: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    stems = np.asarray(_ROAD_STEMS, dtype=object)[rng.permutation(len(_ROAD_STEMS))]
    suffix = np.array(["大道", "路", "街"], dtype=object)[klass]
    names = np.array([stems[k % len(stems)] for k in range(n)], dtype=object) + suffix
    rounds = np.arange(n) // len(stems)
    extra = np.array(["", "东", "西", "南", "北", "中", "一", "二"], dtype=object)
    return np.where(rounds > 0, names.astype(str) + extra[rounds % len(extra)].astype(str), names)


def _edges(vx, vy, full, roads_index):
    """Road edges between mesh vertices whose two neighbouring cells are both whole."""
    ni, nj = full.shape
    out = []
    # edges along constant-i lines (axis 0) run in +j; cells left of them are (i-1, j)
    for axis in (0, 1):
        if axis == 0:
            i, j = np.meshgrid(np.arange(0, vx.shape[0], ROAD_EVERY), np.arange(vx.shape[1] - 1),
                               indexing="ij")
            p0 = (i, j)
            p1 = (i, j + 1)
            left, right = (i - 1, j), (i, j)
        else:
            i, j = np.meshgrid(np.arange(vx.shape[0] - 1), np.arange(0, vx.shape[1], ROAD_EVERY),
                               indexing="ij")
            p0 = (i, j)
            p1 = (i + 1, j)
            left, right = (i, j), (i, j - 1)
        line = p0[axis].ravel()
        cells = []
        for ci, cj in (left, right):
            ok = (ci >= 0) & (ci < ni) & (cj >= 0) & (cj < nj)
            flat = np.where(ok, np.clip(ci, 0, ni - 1) * nj + np.clip(cj, 0, nj - 1), -1).ravel()
            cells.append(np.where(ok.ravel() & full.ravel()[np.maximum(flat, 0)], flat, -1))
        good = (cells[0] >= 0) & (cells[1] >= 0)
        out.append(pd.DataFrame({
            "x0": vx[p0].ravel(), "y0": vy[p0].ravel(), "x1": vx[p1].ravel(), "y1": vy[p1].ravel(),
            "cell_left": cells[0], "cell_right": cells[1], "axis": axis, "line": line,
        })[good])
    edges = pd.concat(out, ignore_index=True)
    edges = edges.merge(roads_index, on=["axis", "line"], how="left")
    return edges


def make_district(
    seed: int = 0,
    n_components: int = 420_000,
    *,
    defects: bool = False,
    profile: Profile | None = None,
    catalog: Catalog | None = None,
    cell_size: float = 100.0,
    reserve: int = 0,
) -> District:
    """Generate a synthetic district with its grid, roads and components.

    Parameters
    ----------
    seed : int, default 0
        Same seed, same district (byte for byte).
    n_components : int, default 420_000
        Number of components (at least one per category).
    defects : bool, default False
        Inject faults of every registry-level rule and return their ground truth in
        ``District.defects`` (see :func:`inject_defects`).
    profile : Profile, optional
        District profile; default Pingshan (:func:`citygrid.admin.load_profile`).
    catalog : Catalog, optional
        Categories; default the shipped 136.
    cell_size : float, default 100.0
        Nominal unit grid cell size in metres.
    reserve : int, default 0
        Also lay this many more components, kept apart in ``District.reserve``: places
        :func:`make_batch` can survey as new without duplicating a registered one.

    Returns
    -------
    District

    Raises
    ------
    ValueError
        If `n_components` is smaller than the number of categories, or a category has
        more components than the district has room for.

    Examples
    --------
    >>> d = make_district(seed=0, n_components=500)
    >>> d.components.crs.to_string(), sorted(d.components.geom_type.unique())
    ('EPSG:4547', ['LineString', 'Point', 'Polygon'])
    """
    rng = np.random.default_rng(seed)
    profile = profile or load_profile()
    catalog = catalog or load_catalog()
    vx, vy = _mesh(profile.boundary, cell_size, rng)
    geoms, keep, full = _cells(profile.boundary, vx, vy, cell_size)
    cell_ids = np.flatnonzero(keep)
    grid_code, community_code = _hierarchy(profile, geoms[cell_ids], rng)
    street_of = dict(zip(profile.communities["code"], profile.communities["street_code"]))
    grid = gpd.GeoDataFrame(
        {"code": grid_code, "community_code": community_code,
         "street_code": pd.Series(community_code).map(street_of).to_numpy()},
        geometry=geoms[cell_ids], crs=settings.default_crs)
    communities = grid.dissolve(by="community_code", method="coverage").reset_index()
    communities = profile.communities.merge(
        communities[["community_code", "geometry"]].rename(columns={"community_code": "code"}),
        on="code", how="left")
    communities = gpd.GeoDataFrame(communities.drop(columns="provisional"),
                                   geometry="geometry", crs=settings.default_crs)
    streets = grid.dissolve(by="street_code", method="coverage").reset_index()
    streets = gpd.GeoDataFrame(
        profile.streets.merge(streets[["street_code", "geometry"]].rename(
            columns={"street_code": "code"}), on="code", how="left"),
        geometry="geometry", crs=settings.default_crs)
    roads = _roads(vx, vy, profile.boundary, rng)
    road_index = roads.drop_duplicates(["axis", "line"])[["axis", "line", "name", "road_class"]]
    cell_row = np.full(full.size, -1)
    cell_row[cell_ids] = np.arange(len(cell_ids))
    edges = _edges(vx, vy, full, road_index)
    edges["cell_left"] = cell_row[edges["cell_left"]]
    edges["cell_right"] = cell_row[edges["cell_right"]]
    whole_cells = cell_row[np.flatnonzero(full.ravel())]
    whole_cells = whole_cells[whole_cells >= 0]
    components = _components(profile, catalog, grid, edges, whole_cells,
                             _quads(vx, vy).reshape(-1, 5, 2)[cell_ids], n_components + reserve, rng)
    spare = None
    if reserve:
        held = np.zeros(len(components), dtype=bool)
        held[rng.choice(len(components), size=reserve, replace=False)] = True
        spare = components[held].reset_index(drop=True)
        components = components[~held].reset_index(drop=True)
    district = District(
        code=profile.code, name=profile.name, boundary=profile.boundary, streets=streets,
        communities=communities, grid=grid, units=profile.units,
        roads=roads.drop(columns=["axis", "line"]), components=components)
    district.reserve = spare
    if defects:
        from citygrid._defects import inject_defects

        inject_defects(district, catalog, rng)
    return district


def _components(profile, catalog, grid, edges, whole_cells, cell_quads, n, rng):
    counts = category_counts(catalog, n, rng)
    for code, room in _road_rooms(edges).items():
        excess = max(0, int(counts[code]) - room)
        counts[code] -= excess
        counts[counts.idxmax()] += excess
    parts = []
    placed = _Spots()
    points = [code for code in counts.index if catalog[code].geometry == "point"]
    for code in sorted(points, key=lambda c: (c in _BESIDE, -counts[c])):  # hosts before what stands on them
        geom, cell, road = _points(catalog[code], int(counts[code]), edges, placed, rng)
        parts.append(pd.DataFrame({"category": code, "geometry": geom, "cell": cell, "road": road}))
    for code, count in counts.items():
        cat = catalog[code]
        if cat.geometry == "line":
            geom, cell, road = _lines(cat, count, edges, rng)
        elif cat.geometry == "polygon":
            geom, cell, road = _polygons(cat, count, whole_cells, cell_quads, rng)
        else:
            continue
        parts.append(pd.DataFrame({"category": code, "geometry": geom, "cell": cell, "road": road}))
    frame = pd.concat(parts, ignore_index=True)
    order = {code: k for k, code in enumerate(counts.index)}
    frame = frame.sort_values("category", key=lambda c: c.map(order), kind="stable", ignore_index=True)
    return _attributes(frame, profile, catalog, grid, rng)


class _Spots:
    """Where point components stand so far, by category, on a one-metre grid (to keep kinds apart)."""

    def __init__(self) -> None:
        self.taken = np.empty(0, dtype=np.int64)  # sorted cell keys of every component laid
        self.keys: dict[str, np.ndarray] = {}
        self.xy: dict[str, np.ndarray] = {}

    @staticmethod
    def _key(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.floor(x).astype(np.int64) * 10_000_000 + np.floor(y).astype(np.int64)

    def crowded(self, x: np.ndarray, y: np.ndarray, but: str | None = None) -> np.ndarray:
        """Points with a component laid before (not of kind `but`) in their one-metre cell or a neighbouring one."""
        taken = self.taken if but is None else np.sort(np.concatenate(
            [np.empty(0, dtype=np.int64), *(k for code, k in self.keys.items() if code != but)]))
        out = np.zeros(len(x), dtype=bool)
        if not len(taken):
            return out
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                key = self._key(x + dx, y + dy)
                at = np.minimum(np.searchsorted(taken, key), len(taken) - 1)
                out |= taken[at] == key
        return out

    def add(self, code: str, x: np.ndarray, y: np.ndarray) -> None:
        self.keys[code] = self._key(x, y)
        self.taken = np.sort(np.concatenate([self.taken, self.keys[code]]))
        self.xy[code] = np.column_stack([x, y])


def _pick(n_slots: int, count: int, what: str, rng) -> np.ndarray:
    if count > n_slots:
        raise ValueError(_("category {what} needs {n} places but the district has room for {room}; lower "
                           "n_components or use a smaller cell_size.").format(what=what, n=count, room=n_slots))
    return rng.choice(n_slots, size=count, replace=False)


def _points(cat, count, edges, placed: _Spots, rng):
    """`count` components of a point category along road edges, a run per edge side at the kind's step.

    A run starts at a random place and goes on at the step, jittered by a tenth; covers and grates
    lie in the carriageway, the rest beside it. A kind of :data:`_BESIDE` stands by its host as
    often as real ones do, a kind of :data:`_PAIRED` comes in pairs, and no component stands within
    a metre of one of another kind otherwise (candidates that would are dropped, and more laid).
    """
    low, high = (1.5, 3.5) if cat.code in _ON_ROAD else (5.5, 9.0)
    step = max(_STEPS.get(cat.code, 15.0 if cat.code in _ON_ROAD else 30.0), cat.tolerance_m + 1.0)
    length = np.hypot(edges["x1"] - edges["x0"], edges["y1"] - edges["y0"]).to_numpy()
    usable = np.maximum(length - 2 * EDGE_MARGIN, 1.0)
    host, share = _BESIDE.get(cat.code, (None, 0.0))
    beside = int(round(count * share)) if host in placed.xy else 0
    x, y, e, side = _beside(cat, host, beside, placed, edges, rng) if host and beside else (np.empty(0),) * 4
    pairs = _PAIRED.get(cat.code, 0.0)
    room_at_most = 2 * int(np.maximum(1, np.floor(usable / (cat.tolerance_m + 1.0))).sum())
    stalled = 0
    while len(x) < count:
        if count > room_at_most or stalled >= 5:
            raise ValueError(_("category {what} needs {n} places but the district has room for {room}; lower "
                               "n_components or use a smaller cell_size.").format(
                what=cat.code, n=count, room=min(room_at_most, len(x))))
        while True:  # runs on edge sides; a kind too many for its step closes up towards its tolerance
            per_side = np.maximum(1, np.floor(usable / step)).astype(int)
            if per_side.sum() * 2 >= 1.3 * (count - len(x)) or step <= cat.tolerance_m + 1.0:
                break
            step = max(cat.tolerance_m + 1.0, step * 0.8)
        room = count - len(x)
        ce, cside, ct = _runs(edges, per_side, step, length, int(np.ceil(1.5 * room / per_side.mean())) + 8, rng)
        coff = cside * rng.uniform(low, high, size=len(ce))
        cx, cy = _along(edges, ce, ct, coff)
        if pairs and len(cx):
            cx, cy, ce, cside = _with_pairs(cx, cy, ce, cside, edges, pairs, rng)
        keep = ~placed.crowded(cx, cy) & ~_near_taken(cx, cy, x, y, cat.tolerance_m + 0.5)
        cx, cy, ce, cside = cx[keep], cy[keep], ce[keep], cside[keep]
        x, y = np.concatenate([x, cx[:room]]), np.concatenate([y, cy[:room]])
        e, side = np.concatenate([e, ce[:room]]).astype(int), np.concatenate([side, cside[:room]])
        stalled = stalled + 1 if len(cx) < 0.01 * room else 0  # the kind's places are as good as full
    placed.add(cat.code, x, y)
    cell = np.where(side > 0, edges["cell_left"].to_numpy()[e], edges["cell_right"].to_numpy()[e])
    return shapely.points(x, y), cell, edges["name"].to_numpy()[e]


def _runs(edges, per_side: np.ndarray, step: float, length: np.ndarray, n_sides: int, rng):
    """Candidate places: on `n_sides` edge sides picked at random, a run at `step` from a random start each."""
    chosen = rng.choice(2 * len(edges), size=min(n_sides, 2 * len(edges)), replace=False)
    sides = chosen // 2
    sign = np.where(chosen % 2 == 0, 1.0, -1.0)
    n = per_side[sides]
    e = np.repeat(sides, n)
    side = np.repeat(sign, n)
    k = np.arange(len(e)) - np.repeat(np.cumsum(n) - n, n)
    start = rng.uniform(0, 1, size=len(sides))[np.repeat(np.arange(len(sides)), n)]
    usable = np.maximum(length[e] - 2 * EDGE_MARGIN, 1.0)
    spare = usable - step * (per_side[e] - 1)
    along = start * np.maximum(spare, 0) + k * step + rng.uniform(-0.1, 0.1, size=len(e)) * step
    t = (EDGE_MARGIN + np.clip(along, 0, usable)) / length[e]
    return e, side, t


def _near_taken(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, within: float) -> np.ndarray:
    """Candidates within `within` metres of a component of the same kind laid already."""
    if not len(tx) or not len(x):
        return np.zeros(len(x), dtype=bool)
    tree = shapely.STRtree(shapely.points(tx, ty))
    hit = tree.query(shapely.points(x, y), predicate="dwithin", distance=within)[0]
    out = np.zeros(len(x), dtype=bool)
    out[hit] = True
    return out


def _with_pairs(x, y, e, side, edges, share: float, rng):
    """A `share` of the places doubled, the twin 0.5–0.9 m along the road (a water valve pair)."""
    twins = np.flatnonzero(rng.random(len(x)) < share / (1 + share))
    dx, dy = (edges["x1"] - edges["x0"]).to_numpy()[e[twins]], (edges["y1"] - edges["y0"]).to_numpy()[e[twins]]
    norm = np.hypot(dx, dy)
    gap = rng.uniform(0.5, 0.9, size=len(twins))
    order = np.argsort(np.concatenate([np.arange(len(x)), twins + 0.5]), kind="stable")
    x, y = np.concatenate([x, x[twins] + gap * dx / norm]), np.concatenate([y, y[twins] + gap * dy / norm])
    return x[order], y[order], np.concatenate([e, e[twins]])[order], np.concatenate([side, side[twins]])[order]


def _beside(cat, host: str, n: int, placed: _Spots, edges, rng):
    """`n` places standing by components of `host` (0.2–0.9 m off), on the host's edge side."""
    xy = placed.xy[host]
    pick = rng.choice(len(xy), size=min(n, len(xy)), replace=False)
    angle = rng.uniform(0, 2 * np.pi, size=len(pick))
    gap = rng.uniform(0.2, 0.9, size=len(pick))
    x, y = xy[pick, 0] + gap * np.cos(angle), xy[pick, 1] + gap * np.sin(angle)
    a, b = shapely.STRtree(shapely.points(x, y)).query(shapely.points(x, y), predicate="dwithin",
                                                        distance=cat.tolerance_m + 0.5)
    alone = ~placed.crowded(x, y, but=host)  # by its host, and by nothing else
    alone[b[a < b]] = False  # by hosts that stand close (a pair of water covers): one of the two
    x, y = x[alone], y[alone]
    mids = np.column_stack([(edges["x0"] + edges["x1"]) / 2, (edges["y0"] + edges["y1"]) / 2])
    tree = shapely.STRtree(shapely.linestrings(np.stack([edges[["x0", "y0"]].to_numpy(),
                                                         edges[["x1", "y1"]].to_numpy()], axis=1)))
    e = tree.query_nearest(shapely.points(x, y), all_matches=False)[1]
    dx, dy = (edges["x1"] - edges["x0"]).to_numpy()[e], (edges["y1"] - edges["y0"]).to_numpy()[e]
    side = np.where(dx * (y - mids[e, 1]) - dy * (x - mids[e, 0]) > 0, 1.0, -1.0)
    return x, y, e, side


def _along(edges, e, t, offset):
    x0, y0 = edges["x0"].to_numpy()[e], edges["y0"].to_numpy()[e]
    dx, dy = edges["x1"].to_numpy()[e] - x0, edges["y1"].to_numpy()[e] - y0
    length = np.hypot(dx, dy)
    nx, ny = -dy / length, dx / length
    return x0 + t * dx + offset * nx, y0 + t * dy + offset * ny


_ROAD_CATEGORIES = {"0713": "主干道", "0714": "次干道", "0715": "支路"}
"""Line categories that are road segments of one class (one per road edge)."""


def _road_rooms(edges) -> dict[str, int]:
    per_class = edges["road_class"].value_counts()
    return {code: int(per_class.get(kind, 0)) for code, kind in _ROAD_CATEGORIES.items()}


def _lines(cat, count, edges, rng):
    road_kind = _ROAD_CATEGORIES.get(cat.code)
    allowed = np.flatnonzero(edges["road_class"].to_numpy() == road_kind) if road_kind \
        else np.arange(len(edges))
    centred = cat.code.startswith("071") and cat.code <= "0715"
    sides = 1 if centred else 2
    slot = _pick(len(allowed) * sides, count, cat.code, rng)
    e = allowed[slot // sides]
    side = np.where(slot % sides == 0, 1.0, -1.0)
    # a centre line would lie on the border of two cells: keep it 5 cm inside the left one
    offset = 0.05 if centred else side * max(2.0, cat.tolerance_m)
    xa, ya = _along(edges, e, 0.25, offset)
    xb, yb = _along(edges, e, 0.75, offset)
    coords = np.stack([np.column_stack([xa, ya]), np.column_stack([xb, yb])], axis=1)
    cell = np.where(side > 0, edges["cell_left"].to_numpy()[e], edges["cell_right"].to_numpy()[e])
    return shapely.linestrings(coords), cell, edges["name"].to_numpy()[e]


def _polygons(cat, count, whole_cells, cell_quads, rng):
    cell = whole_cells[_pick(len(whole_cells), count, cat.code, rng)]
    quads = cell_quads[cell]
    centre = quads[:, :4].mean(axis=1, keepdims=True)
    shift = rng.uniform(-0.08, 0.08, size=(count, 1, 2)) * 100.0
    scale = rng.uniform(0.2, 0.42, size=(count, 1, 1))
    return shapely.polygons(centre + shift + scale * (quads - centre)), cell, None


def _attributes(frame, profile, catalog, grid, rng):
    n = len(frame)
    cats = catalog.to_frame()
    units = profile.units.set_index("name")
    cell = frame["cell"].to_numpy()
    located = grid.iloc[cell]
    names = dict(zip(profile.communities["code"], profile.communities["name"]))
    names.update(zip(profile.streets["code"], profile.streets["name"]))
    street_name = located["street_code"].map(names).to_numpy(dtype=object)
    department = cats.loc[frame["category"], "department"].to_numpy(dtype=object)
    owner = department.copy()
    is_district = units.loc[department, "level"].to_numpy() == "district"
    # a fifth of the district's components are handed to the street office, by area (a grid cell's
    # together, as handovers go), not one by one: neighbours of a kind mostly share their owner
    roll = rng.random(n)
    first_in_cell = pd.Series(np.arange(n)).groupby(cell).transform("min").to_numpy()
    to_street = is_district & (roll[first_in_cell] < 0.2)
    owner[to_street] = (pd.Series(street_name[to_street]) + "办事处").to_numpy(dtype=object)
    maintainer = units.loc[owner, "maintainer"].to_numpy(dtype=object)
    maintainer = np.where(maintainer == "", owner, maintainer)
    survey = np.datetime64("2019-03-01") + rng.integers(0, 240, n).astype("timedelta64[D]")
    changed = rng.random(n) < 0.25
    change = survey + rng.integers(30, 2700, n).astype("timedelta64[D]")
    change = np.where(changed & (change < np.datetime64("2026-11-01")), change,
                      np.datetime64("NaT"))
    shuffled = pd.Series(rng.permutation(n)).groupby(frame["category"].to_numpy()).rank(
        method="first").astype(int).to_numpy()
    ids = make_ids(profile.code, frame["category"].to_numpy(dtype=object), shuffled)
    status_p = np.array(list(_STATUS_P.values()))
    name = np.full(n, None, dtype=object)
    cat_code = frame["category"].to_numpy()
    bus = cat_code == "0203"
    name[bus] = (pd.Series(frame["road"].to_numpy()[bus], dtype=object).astype(str) + "站").to_numpy()
    for code, word in (("0201", "停车场"), ("0405", "绿地"), ("0602", "工地"), ("0750", "口袋公园")):
        sel = cat_code == code
        name[sel] = (pd.Series(located["community_code"].map(names).to_numpy()[sel]).str[:-2]
                     + word + pd.Series(shuffled[sel]).astype(str)).to_numpy()
    covers = np.isin(cat_code, list(_ON_ROAD))
    photo = np.where(rng.random(n) < 0.4, "photos/" + pd.Series(ids).astype(str) + ".jpg", None)
    out = {
        "component_id": ids,
        "category": cat_code,
        "category_name": cats.loc[cat_code, "name_zh"].to_numpy(),
        "name": name,
        "department_code": units.loc[department, "code"].to_numpy(),
        "department": department,
        "owner_code": units.loc[owner, "code"].to_numpy(),
        "owner": owner,
        "maintainer_code": units.loc[maintainer, "code"].to_numpy(),
        "maintainer": maintainer,
        "street_code": located["street_code"].to_numpy(),
        "street": street_name,
        "community_code": located["community_code"].to_numpy(),
        "community": located["community_code"].map(names).to_numpy(),
        "grid": located["code"].to_numpy(),
        "status": np.asarray(list(_STATUS_P), dtype=object)[
            rng.choice(len(status_p), size=n, p=status_p / status_p.sum())],
        "survey_date": survey.astype("datetime64[ms]"),
        "change_date": change.astype("datetime64[ms]"),
        "source": ("2019年部件普查·" + pd.Series(street_name) + "标段").to_numpy(),
        "remarks": np.full(n, None, dtype=object),
        "photo": photo,
        "material": np.where(covers, _MATERIALS[rng.integers(0, len(_MATERIALS), n)], None),
    }
    assert list(out) == list(FIELD_NAMES)
    return gpd.GeoDataFrame(conform(pd.DataFrame(out)), geometry=frame["geometry"].to_numpy(),
                            crs=settings.default_crs)


def make_batch(
    district: District,
    components: gpd.GeoDataFrame | None = None,
    *,
    new: int = 500,
    updated: int = 400,
    retired: int = 100,
    seed: int = 0,
    source: str = "2026-W48 外业普查",
) -> gpd.GeoDataFrame:
    """A weekly field-survey batch against a district's registered components.

    New components come from ``district.reserve`` (identifiers left empty, as a
    contractor sends them); updated ones change status, maintainer or position by a few
    centimetres; retired ones carry ``action = "retire"``.

    Parameters
    ----------
    district : District
        Made with ``reserve >= new``.
    components : GeoDataFrame, optional
        The registered components (default ``district.components``).
    new, updated, retired : int
        Rows of each kind.
    seed : int, default 0
        Same seed, same batch.
    source : str
        The ``source`` field of every row.

    Returns
    -------
    geopandas.GeoDataFrame
        citygrid field names plus ``action``, in EPSG:4547.

    Raises
    ------
    ValueError
        If the reserve or the registered components are too few.

    Examples
    --------
    >>> d = make_district(seed=0, n_components=1_000, reserve=50)
    >>> b = make_batch(d, new=20, updated=10, retired=5)
    >>> len(b), int(b["component_id"].isna().sum()), int((b["action"] == "retire").sum())
    (35, 20, 5)
    """
    rng = np.random.default_rng(seed)
    registered = district.held("components") if components is None else components
    spare = district.reserve
    if spare is None or len(spare) < new:
        raise ValueError(_("new={n} needs a district made with reserve >= {n}.").format(n=new))
    if len(registered) < updated + retired:
        raise ValueError(_("updated + retired = {n} is more than the {k} registered components.").format(
            n=updated + retired, k=len(registered)))
    fresh = spare.iloc[rng.choice(len(spare), size=new, replace=False)].copy()
    fresh["component_id"] = None
    fresh["survey_date"] = pd.Timestamp("2026-11-23")
    fresh["change_date"] = pd.NaT
    picked = rng.choice(len(registered), size=updated + retired, replace=False)
    changed = registered.iloc[picked[:updated]].copy()
    changed["change_date"] = pd.Timestamp("2026-11-23")
    what = rng.integers(0, 3, size=updated)
    changed.loc[what == 0, "status"] = "破损"
    changed.loc[what == 1, "maintainer"] = "坪山区市政设施管理中心"  # a new maintainer: its name and its code
    codes = dict(zip(district.units["name"], district.units["code"]))
    changed.loc[what == 1, "maintainer_code"] = codes.get("坪山区市政设施管理中心")
    moved = (what == 2) & (changed.geom_type == "Point").to_numpy()  # points sit >= 1.5 m inside their cell
    changed.loc[moved, "geometry"] = shapely.transform(changed.geometry.to_numpy()[moved],
                                                       lambda c: c + 0.05)
    gone = registered.iloc[picked[updated:]].copy()
    gone["action"] = "retire"
    batch = pd.concat([fresh, changed, gone], ignore_index=True)
    batch["source"] = source
    keep = list(FIELD_NAMES) + ["action", "geometry"]
    batch = batch.reindex(columns=keep)
    return gpd.GeoDataFrame(batch, geometry="geometry", crs=settings.default_crs)


SAMPLE_SEED = 0
SAMPLE_SIZE = 20_000
SAMPLE_RESERVE = 400
"""The small sample registry (``citygrid demo --small``) and the sample batches share these."""


def sample_district() -> District:
    """The district of ``citygrid demo --small``: 20,000 components plus a reserve for batches."""
    return make_district(seed=SAMPLE_SEED, n_components=SAMPLE_SIZE, reserve=SAMPLE_RESERVE)


def sample_batches(district: District, *, seed: int = 0) -> dict[str, gpd.GeoDataFrame]:
    """The sample survey batches, in WGS84 as contractors send them.

    A clean one, one with every kind of row-level defect, and one copied from Amap (GCJ-02).

    Returns
    -------
    dict
        ``{"clean": frame, "defects": frame, "gcj02": frame}``; the defect frame carries a
        ``truth`` column naming the rule each bad row should trigger.
    """
    from citygrid._defects import mojibake
    from citygrid.crs import geometries_wgs84_to_gcj02

    # each batch its own third of the reserve and its own registered components, so that they
    # can be validated and ingested in any order: merging one leaves the others' findings as they were
    reserve = district.held("reserve")
    third = len(reserve) // 3
    part = [copy.copy(district) for _ in range(3)]
    for k, view in enumerate(part):
        view.reserve = reserve.iloc[k * third:(k + 1) * third]
    registered = district.held("components")
    clean = make_batch(part[0], registered.iloc[0::2], new=120, updated=60, retired=20, seed=seed)
    clean = clean[clean.geom_type == "Point"].reset_index(drop=True)
    bad = make_batch(part[1], registered.iloc[1::2], new=120, updated=60, retired=0, seed=seed + 1)
    bad = bad[bad.geom_type == "Point"].reset_index(drop=True)
    bad["truth"] = None
    rows = iter(range(len(bad)))

    def mark(rule: str) -> int:
        i = next(rows)
        bad.loc[i, "truth"] = rule
        return i

    new_rows = bad.index[bad["component_id"].isna()]
    known = bad.index[bad["component_id"].notna()]
    rows = iter(new_rows)
    bad.loc[mark("schema.mojibake"), "name"] = mojibake("东纵路公交站")
    bad.loc[mark("schema.bad_value"), "status"] = "良好"
    bad.loc[mark("schema.missing_field"), "department"] = None
    i = mark("schema.unknown_category")
    bad.loc[i, ["category", "category_name"]] = ["0199", None]
    bad.loc[mark("id.malformed"), "component_id"] = "44031001O1000001"
    i = mark("geom.outside_district")
    bad.loc[i, "geometry"] = shapely.Point(bad.geometry[i].x + 40_000, bad.geometry[i].y)
    i = mark("topology.grid_mismatch")
    bad.loc[i, "grid"] = district.grid["code"].iloc[0] if bad.loc[i, "grid"] != district.grid["code"].iloc[0] \
        else district.grid["code"].iloc[1]
    i = mark("owner.unknown")
    bad.loc[i, "owner"] = "某某物业公司"
    i = mark("topology.duplicate_feature")
    twin = registered.iloc[1::2][registered.iloc[1::2].geom_type == "Point"].iloc[5]
    bad.loc[i, ["category", "category_name"]] = [twin["category"], twin["category_name"]]
    for column in ("grid", "street", "street_code", "community", "community_code"):
        bad.loc[i, column] = twin[column]
    bad.loc[i, "geometry"] = shapely.Point(twin.geometry.x + 0.2, twin.geometry.y)
    i = known[0]
    bad.loc[i, "truth"] = "owner.conflict"
    bad.loc[i, "owner"] = "坑梓街道办事处" if bad.loc[i, "owner"] != "坑梓街道办事处" else "龙田街道办事处"
    gcj = make_batch(part[2], new=80, updated=0, retired=0, seed=seed + 2)
    gcj = gcj[gcj.geom_type == "Point"].reset_index(drop=True).to_crs(settings.web_crs)
    gcj = gcj.set_geometry(list(geometries_wgs84_to_gcj02(gcj.geometry.to_numpy())), crs=settings.web_crs)
    return {"clean": clean.to_crs(settings.web_crs), "defects": bad.to_crs(settings.web_crs), "gcj02": gcj}


EVENT_CHANNELS = {"@坪山": (1, 3983, True), "美丽深圳": (2, 1954, True), "12345": (3, 1618, False),
                  "12319": (4, 1548, False), "政府信箱": (5, 470, False), "固话投诉": (6, 427, False)}
"""Where Pingshan's events came from in 2018: id, events, and whether the channel gives a place (the apps do;
phone and mailbox reports do not)."""
EVENT_EXPORT_COLUMNS = (
    "REC_ID", "CREATE_TIME", "EVENT_SRC_ID", "EVENT_SRC_NAME", "EVENT_PROPERTY_ID", "EVENT_PROPERTY_NAME",
    "EVENT_TYPE_ID", "EVENT_TYPE_NAME", "MAIN_TYPE_ID", "MAIN_TYPE_NAME", "SUB_TYPE_ID", "SUB_TYPE_NAME",
    "DISTRICT_ID", "DISTRICT_NAME", "STREET_ID", "STREET_NAME", "COMMUNITY_ID", "COMMUNITY_NAME", "OCCUR_PLACE",
    "DISPOSE_UNIT_ID", "DISPOSE_UNIT_NAME", "REPORT_NUM", "OPERATE_NUM", "INTIME_ARCHIVE_NUM",
    "OVERTIME_ARCHIVE_NUM", "INTIME_TO_ARCHIVE_NUM")
"""The 26 columns of Pingshan's event export of 2018."""
TEST_UNIT = "区测试责任单位一"


def make_events(  # noqa: PLR0913 - the shape of the export, keyword-only
        district: District, n: int = 10_000, *, seed: int = 0, gps_m: float = 3.0,
                coords: str = "gcj02", unregistered: float = 0.05, outside: float = 0.01, repeats: float = 0.007,
                start: str = "2026-02-08", days: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An event export shaped as Pingshan's of 2018, with the truth of each event.

    Sub types follow their real frequencies of 2018 (``events_2018`` of the event type
    table), channels theirs: the apps (@坪山, 美丽深圳) give a place, as 经度/纬度 beside the
    26 columns (GCJ-02 as WeChat and Amap give them, or ``coords="bd09"``/``"wgs84"``, with
    GPS noise of `gps_m` metres per axis); phone and mailbox reports do not (OCCUR_PLACE is
    ``-`` in every row, as in the real export). A component event lies at a registered
    component of its sub type's categories; a share `unregistered` at one the registry lacks
    (``district.reserve`` when there is one); a share `outside` 5–20 km outside the district.
    Street and community are those of the place. A closed event names the unit that
    disposed of it: for a component, its maintainer (else its owner) most of the time; for
    other events one of a few units per sub type, mostly the same one in a street. A share
    `repeats` of the rows are sent twice (the same but for REC_ID), one sub type is written
    with HTML entities in some rows, and a few events went to a test unit.

    Returns
    -------
    (DataFrame, DataFrame)
        The export and the truth: ``event_id, component_id`` (None when none is
        registered), ``kind`` (``component``, ``unregistered``, ``not_component``,
        ``outside``) and ``unit`` (the unit that acts).
    """
    from citygrid.crs import transformer, wgs84_to_bd09, wgs84_to_gcj02
    from citygrid.events import load_event_types

    rng = np.random.default_rng(seed)
    table = load_event_types()
    weights = table["events_2018"].astype(float).to_numpy()
    types = table.iloc[rng.choice(len(table), size=n, p=weights / weights.sum())].reset_index(drop=True)
    comps = district.held("components")
    spare = district.reserve if district.reserve is not None else comps.iloc[:0]
    at_comp = shapely.point_on_surface(comps.geometry.to_numpy())
    by_cat = {c: np.flatnonzero(comps["category"].to_numpy() == c) for c in comps["category"].unique()}
    spare_by_cat = {c: np.flatnonzero(spare["category"].to_numpy() == c) for c in spare["category"].unique()}
    minx, miny, maxx, maxy = district.boundary.bounds
    x, y = np.empty(n), np.empty(n)
    truth_id = np.full(n, None, dtype=object)
    kind = np.full(n, "not_component", dtype=object)
    unit = np.full(n, None, dtype=object)
    roll = rng.random(n)
    maintainer = comps["maintainer"].fillna(comps["owner"]).to_numpy(dtype=object)
    for k, cats in enumerate(types["categories"]):
        cats = [c for c in cats if len(by_cat.get(c, ())) or len(spare_by_cat.get(c, ()))]
        place = None
        if roll[k] < outside:
            kind[k] = "outside"
        elif cats and roll[k] < outside + unregistered:
            kind[k] = "unregistered"
            pool = [c for c in cats if len(spare_by_cat.get(c, ()))]
            if pool:
                row = spare.iloc[rng.choice(spare_by_cat[pool[rng.integers(len(pool))]])]
                place = shapely.point_on_surface(row.geometry)
                unit[k] = row["maintainer"] if isinstance(row["maintainer"], str) else row["owner"]
        elif cats:
            sizes = np.array([len(by_cat.get(c, ())) for c in cats], dtype=float)
            if sizes.sum():
                cat = cats[rng.choice(len(cats), p=sizes / sizes.sum())]
                pos = by_cat[cat][rng.integers(len(by_cat[cat]))]
                place, truth_id[k], kind[k], unit[k] = at_comp[pos], comps["component_id"].iloc[pos], "component", \
                    maintainer[pos]
        while place is None or not district.boundary.contains(place):
            place = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        x[k], y[k] = place.x, place.y
        if kind[k] == "outside":
            angle, far = rng.uniform(0, 2 * np.pi), rng.uniform(5_000, 20_000)
            x[k], y[k] = x[k] + far * np.cos(angle), y[k] + far * np.sin(angle)
            while district.boundary.contains(shapely.Point(x[k], y[k])):
                x[k] += 5_000
    area = district.locate(shapely.points(x, y))
    unit = _dispose_units(district, types, area, unit, kind, rng)
    x, y = x + rng.normal(0, gps_m, n), y + rng.normal(0, gps_m, n)
    lon, lat = transformer(settings.default_crs, settings.web_crs).transform(x, y)
    lon, lat = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}.get(coords, lambda a, b: (a, b))(lon, lat)
    names = list(EVENT_CHANNELS)
    share = np.array([EVENT_CHANNELS[c][1] for c in names], dtype=float)
    channel = np.array(names, dtype=object)[rng.choice(len(names), size=n, p=share / share.sum())]
    placed = np.array([EVENT_CHANNELS[c][2] for c in channel], dtype=bool)
    created = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, days * 24 * 3600, n)).round(), unit="s")
    on_time = rng.random(n) < 0.93
    sub_name = types["name_zh"].to_numpy(dtype=object).copy()
    escaped = (sub_name == "路灯(灯光)井盖") & (rng.random(n) < 0.05)
    sub_name[escaped] = "路灯&#40;灯光&#41;井盖"
    test = rng.random(n) < 0.001
    unit[test] = TEST_UNIT
    street_code = area["street_code"].to_numpy(dtype=object)
    export = pd.DataFrame({
        "REC_ID": np.arange(1, n + 1) * 7 + 1_000_000, "CREATE_TIME": created.strftime("%Y-%m-%d %H:%M:%S"),
        "EVENT_SRC_ID": [EVENT_CHANNELS[c][0] for c in channel], "EVENT_SRC_NAME": channel,
        "EVENT_PROPERTY_ID": 1, "EVENT_PROPERTY_NAME": "投诉",
        "EVENT_TYPE_ID": types["type_code"].to_numpy(), "EVENT_TYPE_NAME": types["type_name"].to_numpy(),
        "MAIN_TYPE_ID": types["main_code"].to_numpy(), "MAIN_TYPE_NAME": types["main_name"].to_numpy(),
        "SUB_TYPE_ID": types["code"].to_numpy(), "SUB_TYPE_NAME": sub_name,
        "DISTRICT_ID": district.code, "DISTRICT_NAME": district.name,
        "STREET_ID": street_code, "STREET_NAME": area["street"].to_numpy(dtype=object),
        "COMMUNITY_ID": area["community_code"].to_numpy(dtype=object),
        "COMMUNITY_NAME": area["community"].to_numpy(dtype=object), "OCCUR_PLACE": "-",
        "DISPOSE_UNIT_ID": pd.array([1_000 + sum(map(ord, u)) % 9_000 if isinstance(u, str) else None for u in unit],
                                    dtype="Int64"),
        "DISPOSE_UNIT_NAME": unit, "REPORT_NUM": 1, "OPERATE_NUM": 1, "INTIME_ARCHIVE_NUM": on_time.astype(int),
        "OVERTIME_ARCHIVE_NUM": (~on_time).astype(int), "INTIME_TO_ARCHIVE_NUM": on_time.astype(int),
        "经度": np.where(placed, np.round(lon, 7), np.nan), "纬度": np.where(placed, np.round(lat, 7), np.nan)})
    truth = pd.DataFrame({"event_id": export["REC_ID"].astype(str).to_numpy(), "component_id": truth_id,
                          "kind": kind, "unit": unit, "placed": placed})
    again = np.flatnonzero(rng.random(n) < repeats)
    if len(again):
        copies = export.iloc[again].assign(REC_ID=np.arange(len(again)) * 7 + 9_000_001)
        export = pd.concat([export, copies]).sort_values("CREATE_TIME", kind="stable", ignore_index=True)
        truth = pd.concat([truth, truth.iloc[again].assign(event_id=copies["REC_ID"].astype(str).to_numpy())])
        truth = truth.set_index("event_id").loc[export["REC_ID"].astype(str)].reset_index()
    return export, truth


def _dispose_units(district: District, types: pd.DataFrame, area: pd.DataFrame, unit: np.ndarray, kind: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """The unit that closed each event: a component's own (most of the time), else one of its sub type's.

    Every sub type has a home unit among the district's, and the street offices act on most events of
    street-level sub types; a fifth of the events go elsewhere, as real ones do.
    """
    units = district.units["name"].to_numpy(dtype=object)
    offices = {name[:-len("办事处")]: name for name in units if name.endswith("街道办事处")}  # 坪山街道: its office
    street_office = area["street"].map(offices)
    out = np.array([u if isinstance(u, str) else None for u in unit], dtype=object)
    agencies = np.array([u for u in units if not u.endswith("街道办事处")], dtype=object)
    home = {code: agencies[int(rng.integers(len(agencies)))] for code in types["code"].unique()}
    local = {code: rng.random() < 0.5 for code in types["code"].unique()}
    for k, code in enumerate(types["code"].to_numpy()):
        if out[k] is not None and rng.random() < 0.85:
            continue
        if local[code] and isinstance(street_office.iloc[k], str) and rng.random() < 0.8:
            out[k] = street_office.iloc[k]
        elif rng.random() < 0.8:
            out[k] = home[code]
        else:
            out[k] = units[int(rng.integers(len(units)))]
    out[kind == "outside"] = None
    return out


SHENZHEN = (("440310", "坪山区"), ("440307", "龙岗区"), ("440309", "龙华区"), ("440311", "光明区"),
            ("440306", "宝安区"), ("440305", "南山区"), ("440304", "福田区"), ("440303", "罗湖区"),
            ("440308", "盐田区"), ("440343", "大鹏新区"))
"""Division codes and names given to the districts of a synthetic city, Pingshan first."""


def make_city(n_districts: int = 2, n_components: int = 25_000, *, seed: int = 0,
              spacing_m: float = 40_000.0) -> list[District]:
    """A synthetic city: several districts made by the same generator.

    Each is a copy of Pingshan's outline shifted `spacing_m` further east, under its own
    division code (:data:`SHENZHEN`). Every code that carries the district's (streets,
    communities, grid cells, component identifiers) is rewritten, so the districts share no
    identifier.

    Examples
    --------
    >>> city = make_city(2, 1_000)
    >>> [d.code for d in city]
    ['440310', '440307']
    """
    if not 1 <= n_districts <= len(SHENZHEN):
        raise ValueError(_("n_districts={n}: 1 to {k}.").format(n=n_districts, k=len(SHENZHEN)))
    city = []
    for k, (code, name) in enumerate(SHENZHEN[:n_districts]):
        d = make_district(seed=seed + k, n_components=n_components)
        city.append(d if k == 0 else _moved(d, code, name, k * spacing_m))
    return city


def _moved(d: District, code: str, name: str, dx: float) -> District:
    """`d` shifted `dx` metres east under the division code `code`."""
    import dataclasses

    def recode(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
        frame = frame.copy()
        for column in columns:
            if column in frame:
                text = frame[column].astype(object)
                frame[column] = text.where(text.isna(), code + text.str.slice(len(d.code)))
        geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
        if geometry is not None:
            frame[geometry] = frame.geometry.translate(dx, 0)
        return frame

    codes = ("code", "street_code", "community_code", "grid", "component_id")
    return dataclasses.replace(
        d, code=code, name=name, boundary=shapely.affinity.translate(d.boundary, dx, 0),
        streets=recode(d.streets, codes), communities=recode(d.communities, codes), grid=recode(d.grid, codes),
        roads=None if d.roads is None else recode(d.roads, ()), components=recode(d.components, codes),
        defects=None, reserve=None)
