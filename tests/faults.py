"""Faults made the way field data goes wrong, and the findings a careful reviewer expects.

This module does not know the validator: it imports nothing from ``citygrid.validation``
or ``citygrid._defects``. It takes real registry rows and perturbs them in several shapes per
rule, and it decides what each fault should raise from geometry (shapely predicates on the
district's own polygons) and the catalog's facts (tolerances, geometry kinds, move limits),
never by running a rule. A fault lists the rules it must raise (``rules``) and the rules a
reviewer could argue either way (``maybe``, e.g. a grid claim of a component placed outside
the district); every other finding on its rows is a false alarm, and so is every finding on
a clean row.

Two scenarios:

* :func:`batch_case`: a survey batch checked against a registry (updates, new rows, faults
  of every rule including ``crs.*``, ``owner.conflict``, ``geom.moved_far``, reuse of a
  retired id and duplicates of registered components), and small batches for the
  batch-level ``crs.*`` rules;
* :func:`registry_case`: faulty components and grid cells written into a registry file by
  another program, as QGIS would, then the whole registry validated.

:func:`score` turns a report and the truth into recall and precision per rule.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citygrid.catalog import load_catalog

CATALOG = load_catalog()
KIND = {c.code: c.geometry for c in CATALOG}
TOLERANCE = {c.code: c.tolerance_m for c in CATALOG}
MOVE = {c.code: c.move_m for c in CATALOG}
MARGIN = 0.3  # metres: nearer than this to an edge, a claim is a matter of opinion
LOCATION = ("topology.grid_mismatch", "topology.admin_mismatch")
ADMIN_COLUMNS = ("street", "street_code", "community", "community_code")


@dataclass
class Case:
    """A batch (or registry) with faults, and the truth: one row per fault."""

    frame: gpd.GeoDataFrame
    truth: list[dict] = field(default_factory=list)
    batch_level: list[tuple[gpd.GeoDataFrame, dict, set[str]]] = field(default_factory=list)


class Maker:
    """Takes rows from a clean district and perturbs them; tracks what each row should raise."""

    def __init__(self, district, registered: gpd.GeoDataFrame, spare: gpd.GeoDataFrame, seed: int):
        self.d = district
        self.rng = np.random.default_rng(seed)
        self.registered = registered.reset_index(drop=True)
        self.spare = spare.reset_index(drop=True)
        self.used_reg = np.zeros(len(self.registered), dtype=bool)
        self.used_spare = np.zeros(len(self.spare), dtype=bool)
        self.categories = {id(f): f["category"].to_numpy(dtype=object) for f in (self.registered, self.spare)}
        self.kinds = {key: pd.Series(cats).map(KIND).to_numpy(dtype=object) for key, cats in self.categories.items()}
        self.rows: list[dict] = []
        self.truth: list[dict] = []
        self.ids_in_use = set(registered["component_id"]) | set(spare["component_id"])
        cells = district.grid
        self.cells = dict(zip(cells["code"], cells.geometry))
        self.grid_tree = shapely.STRtree(cells.geometry.to_numpy())
        self.boundary = district.boundary
        self.inner = district.boundary.buffer(-50.0)
        self.units = list(district.units["name"])
        self.unit_codes = dict(zip(district.units["name"], district.units["code"]))

    # --- picking rows -------------------------------------------------------------------
    def _pick(self, frame, used, kind: str | None, category: str | None = None) -> dict:
        mask = ~used
        if kind is not None:
            mask &= self.kinds[id(frame)] == kind
        if category is not None:
            mask &= self.categories[id(frame)] == category
        pool = np.flatnonzero(mask)
        if not len(pool):
            raise ValueError(f"no {kind} row left to perturb; use a bigger district")
        i = int(self.rng.choice(pool))
        used[i] = True
        return frame.iloc[i].to_dict()

    def update(self, kind: str | None = None) -> dict:
        """A registered component, as a resurvey sends it back (its id kept)."""
        row = self._pick(self.registered, self.used_reg, kind)
        row["change_date"] = pd.Timestamp("2026-11-23")
        return row

    def new(self, kind: str | None = None, keep_id: bool = False, category: str | None = None) -> dict:
        """A component not in the registry, as a contractor sends it (no id unless `keep_id`)."""
        row = self._pick(self.spare, self.used_spare, kind, category)
        if not keep_id:
            row["component_id"] = None
        return row

    def fresh_id(self, category: str) -> str:
        """A well-formed identifier nobody uses."""
        while True:
            candidate = f"{self.d.code}{category}{int(self.rng.integers(900_000, 999_999)):06d}"
            if candidate not in self.ids_in_use:
                self.ids_in_use.add(candidate)
                return candidate

    # --- recording ----------------------------------------------------------------------
    def add(self, kind: str, rows: list[dict], rules=(), maybe=()) -> None:
        """Record a fault of shape `kind` on `rows`, with the rules it must and may raise."""
        first = len(self.rows)
        self.rows.extend(rows)
        expected, optional = set(rules), set(maybe)
        for row in rows:
            must, may = self.location_truth(row)
            expected |= must
            optional |= may
        self.truth.append({"kind": kind, "rows": list(range(first + 1, first + len(rows) + 1)),
                           "ids": [r.get("component_id") for r in rows],
                           "rules": expected, "maybe": optional - expected})

    def clean(self, rows: list[dict], kind: str = "clean") -> None:
        self.add(kind, rows)

    # --- what a location should raise, decided from the polygons ---------------------------
    def location_truth(self, row: dict) -> tuple[set[str], set[str]]:
        geom = row.get("geometry")
        if geom is None or shapely.is_empty(geom) or not shapely.is_valid(geom):
            return set(), set()
        if not shapely.intersects(self.boundary, geom):
            return {"geom.outside_district"}, set(LOCATION)
        if not shapely.within(geom, self.boundary):
            return set(), {"geom.outside_district", *LOCATION}
        must, may = set(), set()
        claimed = self.cells.get(row.get("grid"))
        verdict = _inside(geom, claimed) if claimed is not None else False
        if verdict is False:
            must.add("topology.grid_mismatch")
        elif verdict is None:
            may.add("topology.grid_mismatch")
        for level, layer in (("street", self.d.streets), ("community", self.d.communities)):
            hit = layer[(layer["name"] == row.get(level)) | (layer["code"] == row.get(f"{level}_code"))]
            if row.get(level) is None and row.get(f"{level}_code") is None:
                continue
            if len(hit) != 1 or len(set(layer.loc[layer["name"] == row.get(level), "code"])
                                    | ({row.get(f"{level}_code")} - {None})) > 1:
                may.add("topology.admin_mismatch")
                continue
            verdict = _inside(geom, hit.geometry.iloc[0])
            if verdict is False:
                must.add("topology.admin_mismatch")
            elif verdict is None:
                may.add("topology.admin_mismatch")
        return must, may

    def cell_of(self, point: shapely.Point) -> str | None:
        """The code of the cell holding `point` by more than the margin, else None."""
        for i in self.grid_tree.query(point, predicate="intersects"):
            cell = self.d.grid.geometry.iloc[i]
            if _inside(point, cell):
                return self.d.grid["code"].iloc[i]
        return None


def _inside(geom, polygon) -> bool | None:
    """Whether `geom` is in `polygon`: True, False, or None when it is a matter of opinion.

    A point is in when it is deeper than the margin, out when further out than the margin.
    A line or polygon is in when most of it (60 %) is, out when little of it (40 %) is and its
    middle is out too; anything between is opinion.
    """
    if shapely.get_type_id(geom) == 0:
        depth = shapely.distance(polygon.exterior, geom) if hasattr(polygon, "exterior") else \
            shapely.distance(shapely.boundary(polygon), geom)
        if depth <= MARGIN:
            return None
        return bool(shapely.contains(polygon, geom))
    lines = shapely.get_type_id(geom) in (1, 5)
    measure = shapely.length if lines else shapely.area
    share = measure(shapely.intersection(geom, polygon)) / max(measure(geom), 1e-9)
    middle = shapely.line_interpolate_point(geom, 0.5, normalized=True) if lines else shapely.centroid(geom)
    if share >= 0.6:
        return True
    if share <= 0.4 and _inside(middle, polygon) is False and \
            not shapely.contains(polygon, shapely.point_on_surface(geom)):
        return False
    return None


# --- text as careless readers decode it ---------------------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def utf8_read_as_gbk(text: str) -> str:
    return text.encode("utf-8").decode("gbk", errors="replace")


def gbk_read_as_utf8(text: str) -> str:
    return text.encode("gbk").decode("utf-8", errors="replace")


def gbk_read_as_latin1(text: str) -> str:
    return text.encode("gbk").decode("latin-1")


def utf8_read_as_cp1252(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


# --- geometry perturbations ---------------------------------------------------------------

def bow_tie(geom) -> shapely.Polygon:
    x0, y0, x1, y1 = shapely.bounds(geom)
    return shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])


def spike(geom) -> shapely.Polygon:
    ring = list(geom.exterior.coords)[:-1]
    (ax, ay), (bx, by) = ring[0], ring[1]
    mx, my = (ax + bx) / 2, (ay + by) / 2
    out = (mx + (by - ay) * 0.5, my - (bx - ax) * 0.5)  # a zero-width spike out of the first edge
    return shapely.Polygon([ring[0], (mx, my), out, (mx, my), *ring[1:]])


def self_touching(geom) -> shapely.Polygon:
    """A shell that passes twice through one of its vertices (an inverted hole).

    The vertex is repeated, not placed on an edge: a reprojection keeps it touching.
    """
    x0, y0, x1, y1 = shapely.bounds(geom)
    cx = (x0 + x1) / 2
    return shapely.Polygon([(x0, y0), (cx, y0), (x1, y0), (x1, y1), (cx, y0), (x0, y1), (x0, y0)])


def shifted(geom, distance: float, rng) -> object:
    angle = rng.uniform(0, 2 * math.pi)
    return shapely.affinity.translate(geom, distance * math.cos(angle), distance * math.sin(angle))


def outward_point(boundary, distance: float, rng) -> shapely.Point:
    ring = shapely.get_exterior_ring(boundary if boundary.geom_type == "Polygon" else
                                     max(boundary.geoms, key=lambda g: g.area))
    while True:
        at = ring.interpolate(rng.uniform(0, ring.length))
        probe = shifted(at, distance, rng)
        if not shapely.intersects(boundary, probe) and shapely.distance(boundary, probe) > distance * 0.5:
            return probe


# --- the batch scenario -------------------------------------------------------------------

def split(district, spare_share: float = 0.15, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Registered components and spare ones (real rows the registry does not hold)."""
    comps = district.components.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    spare = rng.random(len(comps)) < spare_share
    return comps[~spare].reset_index(drop=True), comps[spare].reset_index(drop=True)


def batch_case(district, registered, spare, retired_ids: list[str], *, per_shape: int = 3,
               seed: int = 0) -> Case:
    """A batch in WGS84 with `per_shape` faults of each shape, clean rows around them."""
    m = Maker(district, registered, spare, seed)
    rng = m.rng
    for _ in range(per_shape):
        _component_faults(m, rng, batch=True)
        # against the registry
        row = m.update()
        others = [u for u in m.units if u != row["owner"]]
        row["owner"] = str(rng.choice(others))
        row["owner_code"] = m.unit_codes[row["owner"]]
        m.add("owner changed", [row], ["owner.conflict"])
        row = m.update()
        others = [u for u in m.units if u != row["maintainer"]]
        row["maintainer"] = str(rng.choice(others))  # the name of one unit beside the code of another
        m.add("maintainer's name and code of two units", [row], ["owner.unknown"])
        for distance in (12.0, 300.0, 2_000.0):
            row = m.update("point")
            row["geometry"] = _somewhere_inside(m, row, distance, rng)
            rules = ["geom.moved_far"] if distance > MOVE[row["category"]] else []
            m.add(f"point moved {distance:g} m", [row], rules)
        row = m.update("point")
        row["geometry"] = _somewhere_inside(m, row, 0.6, rng)
        m.add("survey correction (clean)", [row])
        if retired_ids:
            reused = retired_ids.pop()
            category = reused[6:10]
            same = bool((m.categories[id(m.spare)][~m.used_spare] == category).any())
            row = m.new(category=category) if same else m.new(KIND[category])
            row["component_id"], row["category"] = reused, category
            # a spare row given another category may lie on a registered one of that category
            m.add("retired id reused", [row], ["id.duplicate"], [] if same else ["topology.duplicate_feature"])
        for kind in ("point", "line", "polygon"):
            original = m.update(kind)
            for factor in (0.0, 0.3, 0.9):
                copy = dict(original, component_id=None)
                copy["geometry"] = shifted(original["geometry"], factor * TOLERANCE[original["category"]], rng)
                m.add(f"{kind} copy of a registered one at {factor:g}× tolerance", [copy],
                      ["topology.duplicate_feature"], _overlap_maybe(copy, original))
        registered = m._pick(m.registered, m.used_reg, "polygon")  # stays as registered
        _overlap_fault(m, registered, dict(registered, component_id=None), "a registered polygon overlapped", rng)
        row = m.update()
        row["status"] = "破损"
        m.clean([row], "status changed (clean)")
        row = m.update()
        had = row["survey_date"]
        row["survey_date"] = pd.Timestamp("2026-11-23")  # the resurvey's own date sent as the initial one
        m.add("initial date rewritten", [row], [] if pd.isna(had) or had.date() == row["survey_date"].date()
              else ["schema.initial_date_changed"])
        row = m.update()
        row["component_id"] = _to_2026(row["component_id"])
        m.clean([row], "2026-layout id in an old registry (clean)")
        swapped = m.new()
        swapped["_swap"] = True
        m.add("lon/lat swapped row", [swapped], ["crs.axis_swapped"])
        _amap_rows(m)
    frame = _frame(m.rows, district.crs)
    frame = frame.to_crs(4326)
    geoms = frame.geometry.to_numpy().copy()
    swap = frame.pop("_swap").fillna(False).astype(bool).to_numpy() if "_swap" in frame else None
    if swap is not None and swap.any():
        geoms[swap] = shapely.transform(geoms[swap], lambda c: c[:, ::-1])
    amap = frame.pop("_amap").fillna(False).astype(bool).to_numpy() if "_amap" in frame else None
    if amap is not None and amap.any():
        from citygrid.crs import geometries_wgs84_to_gcj02

        geoms[amap] = geometries_wgs84_to_gcj02(geoms[amap])
    frame = frame.set_geometry(list(geoms), crs=4326)
    case = Case(frame, m.truth)
    case.batch_level = _crs_batches(m, rng)
    return case


def _amap_rows(m: Maker) -> None:
    """Rows copied from Amap (GCJ-02) in an otherwise right batch: an update, and a new row with its cell.

    Found when they lie off their registered position, or outside the cell they claim, by the shift.
    """
    from citygrid.crs import geometries_wgs84_to_gcj02

    for update, row in ((True, m.update("point")), (False, m.new("point"))):
        wgs = gpd.GeoSeries([row["geometry"]], crs=m.d.crs).to_crs(4326)
        moved = gpd.GeoSeries(geometries_wgs84_to_gcj02(wgs.to_numpy()), crs=4326).to_crs(m.d.crs).iloc[0]
        if update:
            rules = ["crs.gcj02_suspected"] + (["geom.moved_far"] if MOVE[row["category"]] < 400 else [])
        else:
            rules = ["crs.gcj02_suspected"] if _inside(moved, m.cells.get(row["grid"])) is False else []
        row["_amap"] = True
        m.rows.append(row)
        m.truth.append({"kind": "row copied from Amap", "rows": [len(m.rows)], "ids": [row.get("component_id")],
                        "rules": set(rules),
                        "maybe": {"geom.outside_district", "topology.duplicate_feature", *LOCATION} - set(rules)})


def _component_faults(m: Maker, rng, *, batch: bool) -> None:
    """One fault of each shape that needs no registry; new rows (they get ids in a registry)."""
    def new(kind=None):
        row = m.new(kind)
        if not batch:
            row["component_id"] = m.fresh_id(row["category"])
        return row

    _field_faults(m, rng, new, batch=batch)
    _geometry_faults(m, rng, new, batch=batch)


def _field_faults(m: Maker, rng, new, *, batch: bool) -> None:
    """Faults of the attributes and identifiers; `new` makes a new row."""
    for column in ("department", "status", "survey_date"):
        row = new()
        row[column] = None
        m.add(f"{column} empty", [row], ["schema.missing_field"])
    for code in ("0999", "9901", "不存在的部件"):
        row = new()
        row["category"] = code  # in a registry the id keeps its category digits: they disagree too
        m.add(f"category {code}", [row], ["schema.unknown_category"], maybe=["id.category_mismatch"])
    for status in ("好的", "OK", "1"):
        row = new()
        row["status"] = status
        m.add(f"status {status!r}", [row], ["schema.bad_value"])
    for text, garble in (("东纵路公交站", utf8_read_as_gbk), ("坪山河东岸", gbk_read_as_utf8),
                         ("龙田街道办事处旁", gbk_read_as_latin1), ("马峦山郊野公园", utf8_read_as_cp1252)):
        row = new()
        row["name"] = garble(text)
        m.add(f"name mojibake ({garble.__name__})", [row], ["schema.mojibake"])
    for how in ("letter O", "15 digits", "other district", "inner space"):
        row = m.new(keep_id=True)
        good = row["component_id"]
        row["component_id"] = {"letter O": good[:10] + "O" + good[11:], "15 digits": good[:-1],
                               "other district": "440307" + good[6:], "inner space": good[:10] + " " + good[10:]}[how]
        m.add(f"id with {how}", [row], ["id.malformed"])
    row = m.new(keep_id=True)
    other = str(rng.choice([c.code for c in CATALOG if c.code != row["category"]]))
    row["component_id"] = m.fresh_id(other)
    m.add("id with another category's digits", [row], ["id.category_mismatch"])
    if batch:  # a registry's unique index refuses a second row with an id
        first = m.new(keep_id=True)
        second = m.new(keep_id=True, category=first["category"])  # the id of the neighbouring manhole copied
        second["component_id"] = first["component_id"]
        m.add("one id on two rows", [first, second], ["id.duplicate"])


def _geometry_faults(m: Maker, rng, new, *, batch: bool) -> None:
    """Faults of the geometries, owners and spreadsheet habits; `new` makes a new row."""
    for empty in (None, shapely.Point(), shapely.Polygon()):
        row = new()
        row["geometry"] = empty
        m.add(f"geometry {'null' if empty is None else empty.wkt}", [row], ["geom.missing"])
    for shape in (bow_tie, spike, self_touching):
        row = new("polygon")
        row["geometry"] = shape(row["geometry"])
        m.add(f"polygon {shape.__name__}", [row], ["geom.invalid"])
    row = new("line")
    start = shapely.get_coordinates(row["geometry"])[0]
    row["geometry"] = shapely.LineString([start, start])
    m.add("line of one repeated point", [row], ["geom.invalid"])
    with np.errstate(invalid="ignore"):
        for coords in ((np.nan, np.nan), (np.inf, 2_500_000.0)):
            row = new("point")
            row["geometry"] = shapely.points(*coords)
            # POINT (NaN NaN) is how a GeoPackage and PostGIS store an empty point
            m.add(f"point {coords}", [row], ["geom.missing" if np.isnan(coords).all() else "geom.invalid"])
    row = new("point")
    row["geometry"] = row["geometry"].buffer(0.5)
    m.add("point category drawn as a polygon", [row], ["geom.wrong_type"])
    row = new("polygon")
    row["geometry"] = shapely.get_exterior_ring(row["geometry"])
    m.add("polygon category drawn as its outline", [row], ["geom.wrong_type"])
    row = new("point")
    p = row["geometry"]
    row["geometry"] = shapely.MultiPoint([p, shapely.Point(p.x + 0.4, p.y)])
    m.add("point category as a multipoint", [row], ["geom.wrong_type"])
    for distance in (20.0, 5_000.0):
        row = new("point")
        row["geometry"] = outward_point(m.boundary, distance, rng)
        m.add(f"point {distance:g} m outside the district", [row])
    row = new("polygon")
    c = shapely.centroid(row["geometry"])
    target = outward_point(m.boundary, 2_000.0, rng)
    row["geometry"] = shapely.affinity.translate(row["geometry"], target.x - c.x, target.y - c.y)
    m.add("polygon 2 km outside the district", [row])
    row = new("point")
    row["geometry"] = _over_the_edge(m, row, rng)
    m.add("point just over its cell's edge", [row])
    row = new("point")
    cells = m.d.grid
    far = cells[cells["community_code"] != row["community_code"]]
    row["grid"] = str(rng.choice(far["code"].to_numpy()))
    m.add("claims a cell in another community", [row])
    row = new("point")
    streets = m.d.communities[m.d.communities["street_code"] != row["street_code"]]
    pick = streets.iloc[int(rng.integers(len(streets)))]
    row["community"], row["community_code"] = pick["name"], pick["code"]
    m.add("claims a community of another street", [row])
    for kind in ("point", "line", "polygon"):
        original = new(kind)
        copy = dict(original, component_id=None if batch else m.fresh_id(original["category"]))
        copy["geometry"] = shifted(original["geometry"], 0.3 * TOLERANCE[original["category"]], rng)
        m.add(f"{kind} twice in one delivery", [original, copy], ["topology.duplicate_feature"],
              _overlap_maybe(copy, original))
    original = new("polygon")
    copy = dict(original, component_id=None if batch else m.fresh_id(original["category"]))
    _overlap_fault(m, original, copy, "polygons overlapping", rng, both=True)
    row = new()
    row["owner"] = "坪山区某某物业管理有限公司"
    m.add("owner not in the unit list", [row], ["owner.unknown"])
    row = new()
    row["maintainer"] = row["maintainer"][:-1] + "居" if row["maintainer"] else "坪山区水务居"
    m.add("maintainer with a typo", [row], ["owner.unknown"])
    for how in ("check character", "17 characters", "letter O"):
        row = new()
        code = row["owner_code"] or m.d.units["code"].iloc[0]
        row["owner_code"] = {"check character": code[:17] + ("1" if code[17] != "1" else "2"),
                             "17 characters": code[:17], "letter O": "O" + code[1:]}[how]
        m.add(f"owner code: {how}", [row], ["owner.bad_code"])
    row = new()
    m.clean([row], "new component (clean)")
    row = new("polygon")
    row["geometry"] = shapely.MultiPolygon([row["geometry"]])
    m.clean([row], "polygon as a one-part multipolygon (clean)")
    row = new("point")
    row["geometry"] = shapely.Point(row["geometry"].x, row["geometry"].y, 35.2)
    m.add("point with a height", [row], ["geom.flattened"])
    row = new()
    row["category"] = row["category"].lstrip("0")  # a spreadsheet's number column
    m.add("category without its leading zero", [row], ["schema.unknown_category"], maybe=["id.category_mismatch"])
    if not batch:
        return
    # habits of spreadsheets: read right, and said how
    row = new()
    row["category"] = row["category"].translate(FULL_WIDTH)
    m.add("category in full-width digits", [row], ["schema.read_as"])
    row = new()
    day = row["survey_date"]
    row["survey_date"] = f"{day.year}年{day.month}月{day.day}日"
    m.add("initial date as a Chinese date", [row], ["schema.read_as"])
    row = new()
    row["department"] = "\u3000" + row["department"] + " "
    m.add("department between spaces", [row], ["schema.read_as"])


def _overlap_fault(m: Maker, original: dict, copy: dict, kind: str, rng, both: bool = False) -> None:
    """`copy` moved to overlap `original` by part of it, further than the duplicate tolerance."""
    width = math.sqrt(shapely.area(original["geometry"]))
    copy["geometry"] = shifted(original["geometry"], max(0.35 * width, TOLERANCE[original["category"]] * 1.5), rng)
    share = shapely.area(shapely.intersection(copy["geometry"], original["geometry"])) / shapely.area(
        original["geometry"])
    rows = [original, copy] if both else [copy]
    if share > 0.05:
        m.add(kind, rows, ["topology.overlap"])
    elif share == 0:
        m.add(kind.replace("overlap", "apart"), rows)
    else:
        m.add(kind, rows, maybe=["topology.overlap"])


def _over_the_edge(m: Maker, row: dict, rng) -> shapely.Point:
    """The point moved 0.5–2 m beyond the nearest edge of its cell."""
    cell = m.cells[row["grid"]]
    point = row["geometry"]
    edge = shapely.get_exterior_ring(cell)
    on = edge.interpolate(edge.project(point))
    dx, dy = on.x - point.x, on.y - point.y
    length = math.hypot(dx, dy) or 1.0
    beyond = rng.uniform(0.5, 2.0)
    return shapely.Point(on.x + dx / length * beyond, on.y + dy / length * beyond)


def _somewhere_inside(m: Maker, row: dict, distance: float, rng) -> shapely.Point:
    """The row's point moved by `distance` (a short move stays in its cell)."""
    for _ in range(200):
        moved = shifted(row["geometry"], distance, rng)
        if shapely.within(moved, m.inner) and (distance > 5 or m.cell_of(moved) == row["grid"]):
            return moved
    raise ValueError("no place inside the district at that distance")


def _overlap_maybe(a: dict, b: dict) -> list[str]:
    if KIND.get(a["category"]) != "polygon":
        return []
    shared = shapely.area(shapely.intersection(a["geometry"], b["geometry"]))
    return ["topology.overlap"] if shared > 0 else []


def _to_2026(component_id: str) -> str:
    code = CATALOG[component_id[6:10]].code_2026
    return component_id[:6] + code + component_id[10:]


def _frame(rows: list[dict], crs) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows).drop(columns=["_swapped_only"], errors="ignore")
    for column in ("survey_date", "change_date"):
        frame[column] = frame[column].astype(object)
    return gpd.GeoDataFrame(frame, geometry=list(frame.pop("geometry")), crs=crs)


def _crs_batches(m: Maker, rng) -> list[tuple[gpd.GeoDataFrame, dict, set[str]]]:
    """Small whole batches for the batch-level rules: (frame, read options, rules expected)."""
    from citygrid.crs import geometries_wgs84_to_gcj02

    def rows(n=40):
        return _frame([m.update("point") for _ in range(n)], m.d.crs).to_crs(4326)

    out = []
    clean = rows()
    out.append((clean, {}, set()))
    out.append((rows().to_crs(m.d.crs), {}, set()))
    gcj = rows()
    out.append((gcj.set_geometry(list(geometries_wgs84_to_gcj02(gcj.geometry.to_numpy())), crs=4326), {},
                {"crs.gcj02_suspected"}))
    no_prj = rows()
    out.append((no_prj.set_crs(None, allow_override=True), {}, {"crs.missing"}))
    metric = rows().to_crs(m.d.crs)
    out.append((metric.set_crs(None, allow_override=True), {}, {"crs.missing"}))
    both = rows()
    shifted_ = geometries_wgs84_to_gcj02(both.geometry.to_numpy())
    out.append((both.set_geometry(list(shifted_), crs=4326).set_crs(None, allow_override=True), {},
                {"crs.missing", "crs.gcj02_suspected"}))
    swapped = rows()
    out.append((swapped.set_geometry(list(shapely.transform(swapped.geometry.to_numpy(), lambda c: c[:, ::-1])),
                                     crs=4326), {}, {"crs.axis_swapped"}))
    out.append((rows(), {"crs": "EPSG:4326"}, set()))
    few = _frame([m.update("point")] + [m.new("point") for _ in range(4)], m.d.crs).to_crs(4326)
    out.append((few.set_geometry(list(geometries_wgs84_to_gcj02(few.geometry.to_numpy())), crs=4326), {},
                {"crs.gcj02_suspected"}))  # five rows copied from Amap: too few to judge as a whole

    def table(frame):  # a spreadsheet's 经度/纬度
        plain = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        return plain.assign(经度=frame.geometry.x.to_numpy(), 纬度=frame.geometry.y.to_numpy())

    out.append((table(rows()), {}, {"crs.assumed"}))
    out.append((table(rows()).assign(井盖材质说明="球墨铸铁"), {}, {"crs.assumed", "schema.unknown_column"}))
    return out


# --- the registry scenario ----------------------------------------------------------------

def registry_case(district, registered, spare, *, per_shape: int = 3, seed: int = 1) -> tuple[Case, list[dict]]:
    """Faulty components (with ids) and grid faults, to be written into a registry by another program.

    The truth covers the registered components too: those a grid fault leaves outside
    their claimed cell must raise ``topology.grid_mismatch``.
    """
    rng = np.random.default_rng(seed)
    grid_faults = _grid_faults(district, rng, per_shape)
    edited = dataclasses.replace(district, grid=apply_grid_faults(district.grid, grid_faults).reset_index(drop=True))
    m = Maker(edited, registered, spare, seed)
    for _ in range(per_shape):
        _component_faults(m, m.rng, batch=False)
    frame = _frame(m.rows, district.crs)
    truth = m.truth
    touched = shapely.union_all([shapely.buffer(district.grid.geometry[district.grid["code"] == f["code"]].iloc[0], 1.0)
                                 for f in grid_faults])
    near = registered[registered.intersects(touched)]
    for row in near.to_dict("records"):
        must, may = m.location_truth(row)
        if must or may:
            truth.append({"kind": "registered, its cell edited", "rows": [], "ids": [row["component_id"]],
                          "rules": must, "maybe": may - must})
    return Case(frame, truth), grid_faults


def _grid_faults(district, rng, per_shape: int) -> list[dict]:
    """Edits of grid cells: ``code``, the new geometry (None: deleted), new community, rules."""
    grid = district.grid
    chosen = rng.choice(len(grid), size=5 * per_shape, replace=False)
    faults = []
    communities = district.communities
    for n, i in enumerate(chosen):
        code, geom = grid["code"].iloc[i], grid.geometry.iloc[i]
        shape = ("deleted", "shrunk", "grown", "shifted", "wrong community")[n % 5]
        if shape == "deleted":
            faults.append({"code": code, "kind": shape, "geometry": None, "rules": {"grid.gap"}})
        elif shape == "shrunk":
            faults.append({"code": code, "kind": shape, "geometry": geom.buffer(-1.5, join_style="mitre"),
                           "rules": {"grid.gap"}})
        elif shape == "grown":
            faults.append({"code": code, "kind": shape, "geometry": geom.buffer(2.0, join_style="mitre"),
                           "rules": {"grid.overlap"}})
        elif shape == "shifted":
            faults.append({"code": code, "kind": shape, "geometry": shapely.affinity.translate(geom, 3.0, 0.0),
                           "rules": {"grid.overlap", "grid.gap"}})
        else:
            own = grid["community_code"].iloc[i]
            other = communities[(communities["code"] != own)
                                & ~communities.geometry.intersects(geom.buffer(1.0))]
            faults.append({"code": code, "kind": shape, "geometry": geom,
                           "community_code": str(rng.choice(other["code"].to_numpy())),
                           "rules": {"grid.outside_parent"}})
    own = dict(zip(communities["code"], communities.geometry))
    for fault, i in zip(faults, chosen):
        parent = own.get(grid["community_code"].iloc[i])
        sticks_out = fault["geometry"] is not None and parent is not None and \
            shapely.area(shapely.difference(fault["geometry"], parent)) > 0.01
        fault["maybe"] = {"grid.outside_parent"} if sticks_out and "community_code" not in fault else set()
    return faults


def apply_grid_faults(grid: gpd.GeoDataFrame, faults: list[dict]) -> gpd.GeoDataFrame:
    """The grid with the faults applied (deleted cells dropped)."""
    grid = grid.copy()
    for fault in faults:
        at = grid.index[grid["code"] == fault["code"]]
        if fault["geometry"] is None:
            grid = grid.drop(index=at)
            continue
        grid.loc[at, "geometry"] = gpd.GeoSeries([fault["geometry"]] * len(at), index=at, crs=grid.crs)
        if "community_code" in fault:
            grid.loc[at, "community_code"] = fault["community_code"]
    return grid


# --- scoring ------------------------------------------------------------------------------

def score(issues: pd.DataFrame, truth: list[dict], *, key: str = "row") -> pd.DataFrame:
    """Recall and precision per rule of `issues` (one row per issue) against `truth`.

    `key` is ``"row"`` (batch rows, 1-based) or ``"ids"`` (component ids, a registry). A fault
    is found by a rule when the rule reports any of its rows. A finding is right when its
    row belongs to a fault that must or may raise that rule.
    """
    must: dict[str, list[set]] = {}
    allowed: dict[object, set[str]] = {}
    for fault in truth:
        keys = set(fault["rows"] if key == "row" else fault["ids"])
        for rule in fault["rules"]:
            must.setdefault(rule, []).append(keys)
        for k in keys:
            allowed.setdefault(k, set()).update(fault["rules"] | fault["maybe"])
    column = "row" if key == "row" else "component_id"
    found = issues[["rule", column]].dropna()
    found_by: dict[str, set] = {}
    for rule, k in zip(found["rule"], found[column]):
        found_by.setdefault(rule, set()).add(int(k) if key == "row" else k)
    rows = []
    for rule in sorted(set(must) | set(found_by)):
        faults = must.get(rule, [])
        hits = sum(bool(keys & found_by.get(rule, set())) for keys in faults)
        reported = found_by.get(rule, set())
        right = sum(rule in allowed.get(k, set()) for k in reported)
        rows.append({"rule": rule, "faults": len(faults), "found": hits, "findings": len(reported),
                     "false": len(reported) - right,
                     "recall": hits / len(faults) if faults else float("nan"),
                     "precision": right / len(reported) if reported else float("nan")})
    return pd.DataFrame(rows)


BATCH_LEVEL = ("crs.", "schema.unknown_column")
"""Rules that judge a batch as a whole (their code or family)."""


def score_batches(batches: list[tuple[gpd.GeoDataFrame, dict, set[str]]], check) -> pd.DataFrame:
    """Recall and precision of the batch-level rules (:data:`BATCH_LEVEL`) over whole batches.

    `check(frame, **options)` returns the report of one batch. A batch counts once per rule:
    found when the rule reports anything in it.
    """
    rows = {}
    for frame, options, expected in batches:
        got = {r for r in check(frame, **options).issues["rule"] if r.startswith(BATCH_LEVEL)}
        for rule in expected | got:
            row = rows.setdefault(rule, {"rule": rule, "faults": 0, "found": 0, "findings": 0, "false": 0})
            row["faults"] += rule in expected
            row["found"] += rule in expected and rule in got
            row["findings"] += rule in got
            row["false"] += rule in got and rule not in expected
    out = pd.DataFrame(list(rows.values()), columns=["rule", "faults", "found", "findings", "false"])
    out["recall"] = out["found"] / out["faults"].where(out["faults"] > 0)
    out["precision"] = (out["findings"] - out["false"]) / out["findings"].where(out["findings"] > 0)
    return out.sort_values("rule").reset_index(drop=True)


def write_into(path, case: Case, grid_faults: list[dict], grid: gpd.GeoDataFrame) -> None:
    """Write the faulty components and grid into a registry file as another program would.

    Components are appended to the layer of their geometry (a missing one to the point
    layer) with the bookkeeping columns a careful editor fills; the grid layer is rewritten.
    """
    import pyogrio

    frame = case.frame.copy()
    for column in ("survey_date", "change_date"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    frame["version"] = 1
    frame["batch_id"] = 1
    frame["updated_at"] = pd.Timestamp("2026-11-30T08:00:00")
    types = shapely.get_type_id(frame.geometry.to_numpy())
    layer = np.select([np.isin(types, (1, 2, 5)), np.isin(types, (3, 6))], ["components_line", "components_polygon"],
                      "components_point")
    for name in np.unique(layer):
        part = frame[layer == name].copy()
        if name != "components_point":
            multi = shapely.get_type_id(part.geometry.to_numpy()) < 4
            geoms = part.geometry.to_numpy().copy()
            kind = shapely.MultiLineString if name == "components_line" else shapely.MultiPolygon
            geoms[multi] = [kind([g]) if not g.is_empty else g for g in geoms[multi]]
            part = part.set_geometry(list(geoms), crs=frame.crs)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: a MultiPoint in a point layer
            pyogrio.write_dataframe(part, path, layer=str(name), append=True)
    edited = apply_grid_faults(grid, grid_faults)
    pyogrio.write_dataframe(edited, path, layer="grid")


def score_grid(issues: pd.DataFrame, grid_faults: list[dict], grid: gpd.GeoDataFrame) -> pd.DataFrame:
    """Recall and precision of the ``grid.*`` rules against the edited cells."""
    footprint = {f["code"]: grid.geometry[grid["code"] == f["code"]].iloc[0].buffer(1.0) for f in grid_faults}
    rows = []
    for rule in ("grid.gap", "grid.overlap", "grid.outside_parent"):
        faults = [f for f in grid_faults if rule in f["rules"]]
        found = issues[issues["rule"] == rule]

        def names(issue, codes, rule=rule):
            if rule == "grid.gap":
                return any(shapely.intersects(issue.geometry, footprint[c]) for c in codes)
            return bool(set(str(issue.component_id).split("|")) & set(codes))

        hits = sum(any(names(i, [f["code"]]) for i in found.itertuples()) for f in faults)
        either = [f["code"] for f in grid_faults if rule in f["rules"] | f["maybe"]]
        right = sum(names(i, either) for i in found.itertuples())
        rows.append({"rule": rule, "faults": len(faults), "found": hits, "findings": len(found),
                     "false": len(found) - right, "recall": hits / len(faults) if faults else float("nan"),
                     "precision": right / len(found) if len(found) else float("nan")})
    return pd.DataFrame(rows)
