"""Folium maps: of components (a category, a street, a query), of validation issues and of the unit grid.

Large maps stay small and fast because features are not embedded as GeoJSON with a
property dict each. A map carries one compact JSON block: coordinates as integer
micro-degrees, and every attribute as a per-column dictionary (distinct values once,
then one small integer per feature). A Leaflet layer of citygrid's own
(``assets/citygrid_layer.js``) draws the points on a single canvas, lines and polygons
with Leaflet's canvas renderer, and builds a popup only when a feature is clicked, with
every value HTML-escaped. 60,000 manhole covers weigh about 3 MB and draw in well
under a second.

Maps work with no network by default:

- Leaflet 1.9.4 ships with citygrid (``assets/leaflet``, BSD-2-Clause). A map is one
  self-contained HTML file with Leaflet inlined; :func:`write_all` instead copies Leaflet
  once into ``<folder>/_assets/leaflet`` and links it relatively, so the whole folder can
  be copied to a department's PC. ``assets="cdn"`` links a public CDN instead, and
  ``assets=FOLDER_OR_URL`` any other copy (``inline=True`` embeds that copy).
- No background tiles unless asked for (``settings.basemap``, ``CITYGRID_BASEMAP``): the
  map draws the district's own context instead — district, street and community
  outlines with their names, road centre lines with theirs, and on street maps the unit
  grid from zoom 15. Tiles on request: OpenStreetMap, Tianditu vector or imagery (needs
  a key: argument or ``CITYGRID_TIANDITU_KEY``), Amap/Gaode (GCJ-02: the overlay is
  shifted to GCJ-02 so features sit on the right street) or an intranet tile URL.

Examples
--------
>>> import citygrid as cg, tempfile, pathlib
>>> d = cg.synth.make_district(seed=0, n_components=1_000)
>>> reg = cg.Registry.create(pathlib.Path(tempfile.mkdtemp()) / "r.gpkg", district=d)
>>> m = category_map(reg, "0118")
>>> "citygrid.add" in m.get_root().render()
True
>>> m = components_map(reg, reg.query(street="马峦街道", status="完好"), column="owner")
"""

from __future__ import annotations

import base64
import colorsys
import html
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xyzservices.providers as xyz
from branca.element import Element, MacroElement

from citygrid import settings
from citygrid._i18n import N_, _, language
from citygrid.crs import geometries_wgs84_to_gcj02, wgs84_to_gcj02
from citygrid.errors import MapError, MissingFile, writing

if TYPE_CHECKING:
    from citygrid.admin import District
    from citygrid.registry import Registry
    from citygrid.validation import Report

BASEMAPS = ("none", "osm", "tianditu-vec", "tianditu-img", "amap")
COLUMNS = ("status", "category", "owner", "department", "maintainer", "street", "community")
POPUP_FIELDS = (
    ("component_id", N_("identifier")), ("category", N_("category")), ("category_name", N_("kind")),
    ("name", N_("name")), ("department", N_("responsible department")), ("owner", N_("owner")),
    ("maintainer", N_("maintainer")), ("grid", N_("grid cell")), ("street", N_("street")),
    ("community", N_("community")), ("status", N_("status")), ("survey_date", N_("initial date")),
    ("change_date", N_("change date")),
)
"""The columns a component's popup shows, and their labels (translated where shown)."""
ISSUE_FIELDS = (("rule", N_("rule")), ("severity", N_("severity")), ("component_id", N_("identifier")),
                ("row", N_("row")), ("message", N_("message")))
PALETTE = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999",
           "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#17becf")
STATUS_COLOURS = {"完好": "#2b8cbe", "破损": "#e34a33", "丢失": "#756bb1", "占用": "#fdae6b",
                  "废弃": "#636363", "移除": "#bdbdbd"}
PROBLEM_STATUSES = ("破损", "丢失", "占用")
CDN = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist"
_CSS = """<style>.cg-title,.cg-legend,.cg-search{background:#fff;padding:6px 8px;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px/1.4 "Noto Sans CJK SC","Microsoft YaHei",sans-serif}
.cg-legend{max-height:45vh;overflow:auto}.cg-legend summary{cursor:pointer;white-space:nowrap}
.cg-legend label{white-space:nowrap;font-size:12px}.cg-section{margin:2px 0 2px 6px}
.cg-popup th{text-align:left;padding-right:6px;color:#555;font-weight:normal}.cg-popup td{font-weight:bold}
.leaflet-container.cg-plain{background:#f5f3ee}.cg-label{white-space:nowrap;pointer-events:none;
font:12px "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#333;text-shadow:0 0 3px #fff,0 0 3px #fff}
.cg-label-street{font-size:15px;font-weight:bold;color:#222}.cg-label-road{color:#8a6d3b}</style>"""
_SIMPLIFY_M = 1.0  # context outlines are drawn to a metre


def find_leaflet() -> Path:
    """The folder holding the ``leaflet.js``, ``leaflet.css`` and ``images/`` maps use.

    citygrid ships Leaflet 1.9.4; ``CITYGRID_LEAFLET_DIR`` points at another copy.

    Raises
    ------
    MissingFile
        If ``CITYGRID_LEAFLET_DIR`` names a folder without Leaflet in it.
    """
    override = os.environ.get("CITYGRID_LEAFLET_DIR")
    folder = Path(override) if override else Path(str(resources.files("citygrid") / "assets" / "leaflet"))
    if not ((folder / "leaflet.js").is_file() and (folder / "leaflet.css").is_file()):
        raise MissingFile(_("no leaflet.js and leaflet.css in {folder} (CITYGRID_LEAFLET_DIR); unset it to use the "
                            "Leaflet citygrid ships.").format(folder=folder))
    return folder


def copy_assets(out_dir: str | Path) -> Path:
    """Copy Leaflet into ``out_dir/_assets/leaflet`` for pages that link it relatively.

    Returns
    -------
    Path
        The folder written.
    """
    target = Path(out_dir) / "_assets" / "leaflet"
    with writing(target):
        shutil.copytree(find_leaflet(), target, dirs_exist_ok=True)
    return target


def _inline_leaflet(folder: Path) -> tuple[str, str]:
    """Leaflet's CSS, with its images as data URIs, and its JS, ready to embed."""
    def data_uri(match: re.Match) -> str:
        image = folder / match.group(1)
        if not image.is_file():
            return match.group(0)
        return f"url(data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, (folder / "leaflet.css").read_text(encoding="utf-8"))
    js = (folder / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.M).replace("</script", "<\\/script")
    return css, js


class _Script(Element):
    """Script text added to the page as it is.

    branca turns every rendered macro into a new Jinja template, which for megabytes
    of data costs half a second of lexing; this text is never parsed as a template.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs) -> str:
        return self.text


def _json(value) -> str:
    # "<" never appears raw in the script, so a hostile value cannot close it or open a tag
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


class _CompactLayer(MacroElement):
    def __init__(self, data: dict, options: dict) -> None:
        super().__init__()
        self._name = "CitygridLayer"
        self.data = _json(data)
        self.options = _json(options)

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # folium's elements render into the root
        script = f"window.citygrid.add({self._parent.get_name()}, {self.data}, {self.options});"  # type: ignore[union-attr]
        root: Any = self.get_root()  # a folium Figure, which branca's stubs type as a bare Element
        root.script.add_child(_Script(script), name=self.get_name())


def _layer_script() -> str:
    return (resources.files("citygrid") / "assets" / "citygrid_layer.js").read_text(encoding="utf-8")


def _web(geoms: gpd.GeoSeries, *, gcj02: bool) -> np.ndarray:
    """Geometries in web lon/lat, shifted to GCJ-02 for an Amap basemap."""
    wgs = (geoms.to_crs(settings.web_crs) if geoms.crs is not None else geoms).to_numpy()
    return geometries_wgs84_to_gcj02(wgs) if gcj02 else wgs


def _flat_lines(geoms: np.ndarray) -> list[list[int]]:
    """Every ring and line of ``geoms`` as a flat list of micro-degree lon, lat."""
    geoms = geoms[~pd.isna(geoms)]
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    lines = shapely.get_parts(np.where(polygonal, shapely.boundary(geoms), geoms))
    lines = shapely.get_parts(lines)  # the boundary of a polygon with holes is a multi-line
    lines = lines[~shapely.is_empty(lines)]
    if not len(lines):
        return []
    coords = np.rint(shapely.get_coordinates(lines) * 1e6).astype(np.int64)
    ends = np.cumsum(shapely.get_num_coordinates(lines))[:-1]
    return [part.ravel().tolist() for part in np.split(coords, ends)]


def _label_points(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    lines = frame.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()
    geoms = frame.geometry.to_numpy()
    at = shapely.point_on_surface(geoms)
    at[lines] = shapely.line_interpolate_point(shapely.line_merge(geoms[lines]), 0.5, normalized=True)
    return gpd.GeoSeries(at, crs=frame.crs)


def _context(district: District | None, *, outline: shapely.Geometry | None, street: str | None = None,
             gcj02: bool) -> dict:
    """What a map without tiles shows around its features: outlines, roads, grid and names.

    The district (or the given outline), its streets, communities and roads with their
    names; for one street, that street's communities, grid cells and road pieces.
    """
    crs = settings.default_crs
    layers: dict[str, gpd.GeoDataFrame] = {}
    if outline is not None:
        layers["district"] = gpd.GeoDataFrame(geometry=[outline], crs=crs)
    if district is not None:
        streets, communities, roads = district.streets, district.communities, district.roads
        if street is not None:
            streets = streets[streets["code"] == street]
            communities = communities[communities["street_code"] == street]
            layers["grid"] = district.grid[district.grid["street_code"] == street]
            if roads is not None:
                roads = roads.assign(geometry=roads.geometry.intersection(outline))
        layers.update(street=streets, community=communities)
        if roads is not None:
            layers["road"] = roads[~roads.geometry.is_empty]
    lines, labels = {}, []
    for kind, frame in layers.items():
        if not len(frame):
            continue
        simple = frame.geometry.simplify(_SIMPLIFY_M)
        lines[kind] = _flat_lines(_web(simple, gcj02=gcj02))
        if "name" in frame.columns and kind != "grid":
            at = shapely.get_coordinates(_web(_label_points(frame), gcj02=gcj02))
            labels += [[kind, str(name), round(x, 6), round(y, 6)]
                       for name, (x, y) in zip(frame["name"], at) if pd.notna(name)]
    return {"lines": lines, "labels": labels}


def _hex(hue: float, lightness: float, saturation: float = 0.65) -> str:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _colours(count: int) -> list[str]:
    """``count`` colours, none repeated.

    The palette when it is long enough, else hues spread over the circle in order, alternating
    in lightness so neighbours differ.
    """
    if count <= len(PALETTE):
        return list(PALETTE[:count])
    return [_hex(k / count, (0.42, 0.58, 0.32)[k % 3]) for k in range(count)]


MAJOR_HUES = {"01": 0.58, "02": 0.08, "03": 0.78, "04": 0.33, "05": 0.0, "06": 0.5, "07": 0.9}
"""The hue of each major class (01 public utilities blue, 02 roads and traffic orange, 03 city
appearance purple, 04 landscaping green, 05 buildings and land red, 06 other facilities teal,
07 a district's extensions pink): a category map reads by class at a glance."""
SHAPES = ("circle", "square", "triangle", "diamond")
"""The symbols kinds take in turn within a class (drawn on the canvas; ● ■ ▲ ◆ in the legend)."""


def family_style(major: str, k: int) -> tuple[str, str]:
    """The colour and symbol of the `k`-th kind of a major class.

    Kinds of a class share its hue family; four symbols, five hue steps and three shades tell
    sixty kinds of one class apart.

    Examples
    --------
    >>> family_style("04", 0), family_style("04", 1), family_style("04", 4)
    (('#36b234', 'circle'), ('#36b234', 'square'), ('#34b248', 'circle'))
    """
    hue = MAJOR_HUES.get(major, (int(major) * 0.137) % 1.0 if major.isdigit() else 0.0)
    step = (k // len(SHAPES)) % 5
    shade = (0.45, 0.32, 0.6)[(k // (5 * len(SHAPES))) % 3]
    return _hex(hue + _HUE_STEPS[step], shade, 0.55), SHAPES[k % len(SHAPES)]


_HUE_STEPS = (0.0, 0.03, -0.03, 0.06, -0.06)


@dataclass(frozen=True)
class Legend:
    """How a map groups its features: a group per feature, and each group's colour, symbol and section.

    Attributes
    ----------
    groups : Series
        The group (its name in the legend) of each feature.
    colours : dict
        Colours of groups; the others get colours of their own.
    sections : dict, optional
        The legend section (e.g. a major class) of each group.
    shapes : dict, optional
        The symbol of each group's points (one of :data:`SHAPES`; default a circle).
    on_top : tuple of str
        Groups drawn over the others (e.g. damaged components).
    """

    groups: pd.Series
    colours: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] | None = None
    shapes: dict[str, str] | None = None
    on_top: tuple[str, ...] = ()


def _encode(frame: gpd.GeoDataFrame, legend: Legend, fields: tuple[tuple[str, str], ...], *,
            gcj02: bool, as_points: bool = False) -> dict:
    """The compact JSON: micro-degree coordinates and dictionary-encoded columns.

    Groups are listed in the order of ``legend.colours`` (then sorted); features of the
    groups in ``legend.on_top`` are drawn last, over the others. With ``as_points`` lines
    and polygons are drawn as a point on them (a whole district's worth of shapes is too
    many for Leaflet).
    """
    geoms = _web(frame.geometry, gcj02=gcj02)
    present = ~pd.isna(geoms)
    present[present] = ~shapely.is_empty(geoms[present])
    names = pd.Series(legend.groups.to_numpy(dtype=object), dtype=object).fillna("—").astype(str)
    counts = names[present].value_counts()
    colours = legend.colours
    order_names = [g for g in colours if g in counts.index] + sorted(g for g in counts.index if g not in colours)
    section_of = [(legend.sections or {}).get(g, "") for g in order_names]
    spread = _colours(len(order_names))
    group_index = {g: k for k, g in enumerate(order_names)}
    kinds = shapely.get_type_id(np.where(present, geoms, shapely.Point()))
    is_point = present & (np.isin(kinds, (0, 4)) | as_points)
    last = names.isin(legend.on_top).to_numpy()
    points = np.concatenate([np.flatnonzero(is_point & ~last), np.flatnonzero(is_point & last)])
    shapes = np.concatenate([np.flatnonzero(present & ~is_point & ~last), np.flatnonzero(present & ~is_point & last)])
    point_geoms = shapely.point_on_surface(geoms[points]) if len(points) else np.array([])
    xy = np.rint(shapely.get_coordinates(point_geoms) * 1e6).astype(np.int64) if len(points) else \
        np.zeros((0, 2), dtype=np.int64)
    shape_list = [{"g": group_index[names[pos]], "t": "polygon" if kinds[pos] in (3, 6) else "line",
                   "c": _flat_lines(np.array([geoms[pos]]))} for pos in shapes]
    rows = np.concatenate([points, shapes])
    table: dict[str, Any] = {"columns": [], "labels": [], "values": {}}
    for column, label in fields:
        if column not in frame.columns:
            continue
        values = frame[column].iloc[rows]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime("%Y-%m-%d")
        codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None), use_na_sentinel=True)
        table["columns"].append(column)
        table["labels"].append(_(label))
        table["values"][column] = {"dict": [str(u) for u in uniques], "idx": codes.tolist()}
    return {
        "groups": [{"name": g, "color": colours.get(g, spread[k]), "count": int(counts[g]), "section": section_of[k],
                    "shape": (legend.shapes or {}).get(g, "circle")}
                   for k, g in enumerate(order_names)],
        "points": {"lon": xy[:, 0].tolist(), "lat": xy[:, 1].tolist(),
                   "group": [group_index[g] for g in names[points]]},
        "shapes": shape_list,
        "table": table,
    }

def _tiles(m: folium.Map, basemap: str, tianditu_key: str | None) -> None:
    if basemap == "osm":
        provider = xyz.OpenStreetMap.Mapnik
        folium.TileLayer(provider.build_url(), attr=provider.html_attribution, name="OpenStreetMap",
                         max_zoom=19).add_to(m)
    elif basemap.startswith("tianditu"):
        key = tianditu_key or settings.tianditu_key
        if not key:
            raise MapError(_("Tianditu tiles need a user key: give --tianditu-key or set CITYGRID_TIANDITU_KEY (apply "
                             "at console.tianditu.gov.cn)."))
        kind, note = ("vec", "cva") if basemap == "tianditu-vec" else ("img", "cia")
        for layer in (kind, note):
            url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                   f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                   f"&TILECOL={{x}}&tk={key}")
            folium.TileLayer(url, attr="&copy; 天地图 Tianditu", name=f"天地图 {layer}",
                             subdomains="01234567", max_zoom=18, overlay=layer == note).add_to(m)
    elif basemap == "amap":
        folium.TileLayer("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                         "&x={x}&y={y}&z={z}", attr="&copy; 高德地图 AutoNavi (GCJ-02)", name="高德 Amap",
                         subdomains="1234", max_zoom=18).add_to(m)
    elif basemap != "none":
        folium.TileLayer(basemap, attr="tiles: " + html.escape(basemap.split("/")[2] if "//" in basemap
                                                                else basemap), name="tiles").add_to(m)


def _base_map(bounds: tuple[float, float, float, float], *, basemap: str, tianditu_key: str | None,
              assets: str | Path | None, inline: bool, title: str) -> folium.Map:
    minx, miny, maxx, maxy = bounds
    if basemap not in BASEMAPS and "{z}" not in basemap:
        raise MapError(_("basemap {basemap!r} is not known; use one of {known} or a tile URL with {{z}}/{{x}}/{{y}} "
                         "(--basemap).").format(basemap=basemap, known=", ".join(BASEMAPS)))
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, control_scale=False,
                   prefer_canvas=True, zoom_control=True, max_zoom=20)
    m.default_js = []
    m.default_css = []
    root: Any = m.get_root()  # a folium Figure, which branca's stubs type as a bare Element
    root.title = html.escape(title)  # a street or category name is data: it must not end the <title>
    _tiles(m, basemap, tianditu_key)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    header = root.header
    if assets is None or inline:
        css, js = _inline_leaflet(find_leaflet() if assets is None else Path(assets))
        header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
        header.add_child(_Script(f"<script>{js}</script>"), name="leaflet_js")
    else:
        base = CDN if str(assets) == "cdn" else str(assets).rstrip("/")
        header.add_child(Element(f'<link rel="stylesheet" href="{html.escape(base)}/leaflet.css"/>'),
                         name="leaflet_css")
        header.add_child(Element(f'<script src="{html.escape(base)}/leaflet.js"></script>'), name="leaflet_js")
    header.add_child(_Script(f"<script>{_layer_script()}</script>" + _CSS), name="citygrid_js")
    header.add_child(Element('<meta charset="utf-8">'), name="charset")
    return m


def _texts() -> dict[str, str]:
    """What the page itself says (legend, search box), in the language in use."""
    return {"legend": _("Legend"), "search": _("identifier, name or grid cell")}


@dataclass(frozen=True)
class _View:
    """What one map shows: its titles, extent, context, and how its features look."""

    title: str
    subtitle: str
    extent: shapely.Geometry
    district: District | None
    outline: shapely.Geometry | None
    street: str | None = None
    fields: tuple[tuple[str, str], ...] = POPUP_FIELDS
    radius: float = 1.0
    as_points: bool = False


@dataclass(frozen=True)
class Page:
    """How a map's page is made: the keyword options every map function takes.

    Attributes
    ----------
    basemap : str, optional
        "none" by default (see ``settings.basemap``); "osm", "tianditu-vec", "tianditu-img",
        "amap" or a tile URL.
    tianditu_key : str, optional
        The key Tianditu's tiles need.
    assets : str or Path, optional
        Where Leaflet comes from: None inlines it; "cdn"; or a folder or URL, relative to
        the page, holding leaflet.js/css.
    inline : bool
        Embed the Leaflet of ``assets`` in the page.
    """

    basemap: str | None = None
    tianditu_key: str | None = None
    assets: str | Path | None = None
    inline: bool = False


def _render(frame: gpd.GeoDataFrame, legend: Legend, view: _View, page: Page) -> folium.Map:
    basemap, tianditu_key, assets, inline = page.basemap or settings.basemap, page.tianditu_key, page.assets, \
        page.inline
    gcj02 = basemap == "amap"
    title, fields = view.title, view.fields
    bounds = gpd.GeoSeries([view.extent], crs=settings.default_crs).to_crs(settings.web_crs).total_bounds
    if gcj02:
        (x0, x1), (y0, y1) = wgs84_to_gcj02([bounds[0], bounds[2]], [bounds[1], bounds[3]])
        bounds = (x0, y0, x1, y1)
    m = _base_map(tuple(bounds), basemap=basemap, tianditu_key=tianditu_key, assets=assets, inline=inline,
                  title=title)
    context = _context(view.district, outline=view.outline, street=view.street, gcj02=gcj02)
    data = _encode(frame, legend, fields, gcj02=gcj02, as_points=view.as_points)
    _CompactLayer(data, {"title": title, "subtitle": view.subtitle, "radius": view.radius, "context": context,
                         "plain": basemap == "none", "texts": _texts()}).add_to(m)
    return m


def _legend(reg: Registry, frame: gpd.GeoDataFrame, column: str) -> Legend:
    """What colours the features: a group per value; colours, symbols and sections where they mean something."""
    if column not in COLUMNS or column not in frame.columns:
        raise MapError(_("cannot colour by {column!r}; use one of {known} (--column).").format(
            column=column, known=", ".join(COLUMNS)))
    if column == "status":
        return Legend(frame["status"], STATUS_COLOURS, on_top=PROBLEM_STATUSES)
    if column == "category":
        zh = language() == "zh"
        names = frame["category"] + " " + frame["category_name"].fillna("")
        sections, colours, shapes = {}, {}, {}
        per_major: dict[str, int] = {}
        for code, label in sorted(set(zip(frame["category"], names))):
            if code not in reg.catalog:
                continue
            cat = reg.catalog[code]
            sections[label] = f"{cat.major_code} {cat.major_name_zh if zh else cat.major_name_en}"
            k = per_major.get(cat.major_code, 0)
            per_major[cat.major_code] = k + 1
            colours[label], shapes[label] = family_style(cat.major_code, k)
        order = sorted(colours)
        return Legend(names, {label: colours[label] for label in order}, sections, shapes)
    return Legend(frame[column])


def components_map(  # noqa: PLR0913 - what to draw, then how the page is made; all keyword-only
        reg: Registry, frame: gpd.GeoDataFrame, *, column: str = "status", title: str | None = None,
        street: str | None = None, as_points: bool | None = None, basemap: str | None = None,
        tianditu_key: str | None = None, assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Components on a map, e.g. the result of ``reg.query(...)``, coloured by a column.

    Parameters
    ----------
    reg : Registry
        Gives the district drawn around them.
    frame : geopandas.GeoDataFrame
        Components, as ``reg.query`` or ``reg.components`` return them.
    column : str
        What colours them: ``"status"`` (default; 破损, 丢失, 占用 are drawn on top),
        ``"category"`` (a hue family per major class, a colour and symbol per kind within
        it, the legend grouped by class), ``"owner"``, ``"department"``, ``"maintainer"``,
        ``"street"`` or ``"community"``.
    title : str, optional
    street : str, optional
        Street name or code: draw that street's outline, communities and grid around them.
    as_points : bool, optional
        Draw lines and polygons as a point on them; default when more than 100,000
        components are drawn (a whole district), where they are points at that zoom anyway.
    basemap, tianditu_key, assets, inline
        How the page is made: its tiles and where its Leaflet comes from (see :class:`Page`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = components_map(reg, reg.query(status="破损"), column="owner")  # doctest: +SKIP
    >>> m.save("broken.html")  # doctest: +SKIP
    """
    legend = _legend(reg, frame, column)
    extent = reg.district.boundary
    if street is not None:
        row = reg.district.street(street)
        street, extent = row["code"], row.geometry
    subtitle = _("{district} · {n:,} components").format(district=reg.district.name, n=len(frame))
    return _render(frame, legend, _View(
        title=title or _("{district}: components").format(district=reg.district.name), subtitle=subtitle,
        extent=extent, district=reg.district, outline=extent, street=street,
        as_points=len(frame) > 100_000 if as_points is None else as_points),
        Page(basemap, tianditu_key, assets, inline))


def category_map(reg: Registry, code: str, *, column: str = "status",
                 basemap: str | None = None, tianditu_key: str | None = None,
                 assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """One category's components over the district, coloured by status (see :func:`components_map`).

    Parameters
    ----------
    reg : Registry
    code : str
        Category code (either layout) or Chinese name.
    column : str
        What colours them (see :func:`components_map`).
    basemap, tianditu_key, assets, inline
        As for :func:`components_map` (see :class:`Page`).

    Returns
    -------
    folium.Map
    """
    cat = reg.catalog[code]
    name = cat.name_zh if language() == "zh" else f"{cat.name_en} {cat.name_zh}"
    return components_map(reg, reg.query(category=code), column=column,
                          title=f"{name} ({cat.code}) · {cat.department}",
                          **asdict(Page(basemap, tianditu_key, assets, inline)))


def street_map(reg: Registry, street: str, *, column: str = "category",
               basemap: str | None = None, tianditu_key: str | None = None,
               assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Every component of one street, a layer per category grouped by major class (see :func:`components_map`)."""
    row = reg.district.street(street)
    return components_map(reg, reg.query(street=row["code"]), column=column, street=row["code"],
                          title=f"{row['name']} · {reg.district.name}",
                          **asdict(Page(basemap, tianditu_key, assets, inline)))


def district_map(reg: Registry, *, column: str = "category",
                 basemap: str | None = None, tianditu_key: str | None = None,
                 assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Every current component of the district in one page (see :func:`components_map`)."""
    return components_map(reg, reg.components, column=column,
                          title=_("{district}: all components").format(district=reg.district.name),
                          **asdict(Page(basemap, tianditu_key, assets, inline)))


def grid_map(reg: Registry, street: str | None = None, *, basemap: str | None = None, tianditu_key: str | None = None,
             assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """The unit grid cells (of one street, or all), a layer per community; search finds a cell by code."""
    grid = reg.district.grid
    extent, street_code = reg.district.boundary, None
    title = _("{place}: unit grid").format(place=reg.district.name)
    if street is not None:
        row = reg.district.street(street)
        street_code = row["code"]
        grid = grid[grid["street_code"] == street_code]
        extent, title = row.geometry, _("{place}: unit grid").format(place=row["name"])
    names = dict(zip(reg.district.communities["code"], reg.district.communities["name"]))
    frame = grid.assign(component_id=grid["code"], community=grid["community_code"].map(names))
    return _render(frame, Legend(frame["community"]), _View(
        title=title, subtitle=_("{n:,} cells").format(n=len(grid)), extent=extent, district=reg.district,
        outline=extent, fields=(("component_id", N_("grid cell")), ("community", N_("community")))),
                   Page(basemap, tianditu_key, assets, inline))


def issues_map(report: Report, *, district: District | None = None, outline: shapely.Geometry | None = None,
               basemap: str | None = None, tianditu_key: str | None = None,
               assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Validation issues located on a map, a layer per rule, the view fitted to them.

    Parameters
    ----------
    report : Report
    district : District, optional
        Drawn around the issues (outlines, roads, names).
    outline : shapely.Geometry, optional
        An outline to draw when there is no district (e.g. a survey area).
    basemap, tianditu_key, assets, inline
        As for :func:`components_map` (see :class:`Page`).

    Issues without a place are counted in the subtitle only.
    """
    from citygrid.validation.report import severity_name

    issues = report.issues
    located = issues[~issues.geometry.isna() & ~issues.geometry.is_empty] if len(issues) else issues
    if outline is None:
        outline = district.boundary if district is not None else None
    if len(located):
        extent = shapely.box(*located.total_bounds).buffer(50)
    else:
        extent = outline if outline is not None else shapely.Point(0, 0).buffer(1)
    shown = located.assign(severity=located["severity"].map(severity_name))
    return _render(shown, Legend(located["rule"]), _View(
        title=_("Validation issues"), subtitle=_("{source} · {n:,} issues, {located:,} located").format(
            source=report.source, n=len(issues), located=len(located)),
        extent=extent, district=district, outline=outline, fields=ISSUE_FIELDS, radius=2.0),
                   Page(basemap, tianditu_key, assets, inline))


EVENT_FIELDS = (("event_id", N_("event")), ("event_type", N_("event type")), ("description", N_("description")),
                ("created_at", N_("reported")), ("component_id", N_("component")),
                ("category_name", N_("kind")), ("distance_m", N_("distance (m)")), ("confidence", N_("confidence")),
                ("maintainer", N_("maintainer")), ("owner", N_("owner")), ("grid", N_("grid cell")),
                ("reason", N_("why not")))
MATCHES = {"matched": (N_("matched"), "#1a9850"), "no_component": (N_("no component"), "#d73027"),
           "outside": (N_("outside"), "#7b3294"), "not_component": (N_("not a component event"), "#bababa"),
           "other": (N_("other"), "#fdae61"), "link": (N_("link to component"), "#636363")}
"""Outcomes of dispatch as an events map shows them: name and colour."""
_LINKS_MAX = 20_000  # lines from events to their components, beyond which a map grows heavy


def _match_group(outcome: pd.Series) -> pd.Series:
    """The events map's group of each dispatch outcome."""
    key = outcome.where(outcome.isin(["matched", "no_component", "outside", "not_component"]), "other")
    return key.map(lambda k: _(MATCHES[k][0]))


def events_map(reg: Registry, result: gpd.GeoDataFrame, *, column: str = "match",
               basemap: str | None = None, tianditu_key: str | None = None,
               assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Dispatched hotline events: coloured by outcome (or unit), each linked to its component.

    Parameters
    ----------
    reg : Registry
    result : GeoDataFrame
        What :func:`citygrid.dispatch.dispatch` returned.
    column : {"match", "maintainer", "owner", "department", "event_type"}
        What colours the events: the outcome (matched, no component, outside, not a
        component event) or the unit that must act.
    basemap, tianditu_key, assets, inline
        As for :func:`components_map` (see :class:`Page`).
    """
    if column != "match" and column not in result.columns:
        raise MapError(_("cannot colour events by {column!r}; use match, maintainer, owner, department or event_type "
                         "(--column).").format(column=column))
    events = result[result.geometry.notna()]
    groups = _match_group(events["outcome"]) if column == "match" else events[column].fillna("—")
    matched = events[events["component_id"].notna()].head(_LINKS_MAX)
    parts = reg.components.set_index("component_id").geometry
    ends = shapely.point_on_surface(parts.reindex(matched["component_id"]).to_numpy())
    links = gpd.GeoDataFrame(matched.drop(columns="geometry"),
                             geometry=shapely.linestrings(np.stack([
                                 np.column_stack([shapely.get_x(matched.geometry.to_numpy()), shapely.get_x(ends)]),
                                 np.column_stack([shapely.get_y(matched.geometry.to_numpy()), shapely.get_y(ends)])],
                                 axis=2)), crs=events.crs)
    frame = pd.concat([events, links], ignore_index=True)
    link = _(MATCHES["link"][0])
    names = pd.concat([groups, pd.Series(link, index=links.index)], ignore_index=True)
    counts = groups.value_counts()
    colours = {_(name): colour for name, colour in MATCHES.values()} if column == "match" else {}
    return _render(frame, Legend(names, colours), _View(
        title=_("Hotline events to the unit that must act"),
        subtitle=" · ".join(f"{k} {v:,}" for k, v in counts.items()), extent=reg.district.boundary,
        district=reg.district, outline=reg.district.boundary, fields=EVENT_FIELDS, radius=1.5),
                   Page(basemap, tianditu_key, assets, inline))


def unmatched_map(reg: Registry, result: gpd.GeoDataFrame, *,
                  basemap: str | None = None, tianditu_key: str | None = None,
                  assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    """Grid cells coloured by the component events that found no registered component: gaps in the registry."""
    from citygrid.dispatch import unmatched_cells

    cells = unmatched_cells(result, reg)
    bins = pd.cut(cells["unmatched"], [0, 1, 3, 9, np.inf], labels=["1", "2–3", "4–9", "10+"])
    colours = {"1": "#fee5d9", "2–3": "#fcae91", "4–9": "#fb6a4a", "10+": "#cb181d"}
    frame = cells.assign(component_id=cells["grid"], name=cells["community"])
    return _render(frame, Legend(bins.astype(str), colours), _View(
                   title=_("Events with no registered component"),
                   subtitle=_("{n:,} events in {cells:,} grid cells").format(n=int(cells["unmatched"].sum()),
                                                                          cells=len(cells)),
                   extent=reg.district.boundary, district=reg.district, outline=reg.district.boundary,
                   fields=(("component_id", N_("grid cell")), ("community", N_("community")),
                           ("street", N_("street")), ("unmatched", N_("events")))),
                   Page(basemap, tianditu_key, assets, inline))


def _file_name(code: str, number: int) -> str:
    """``<code>.html`` for a code of digits, else ``_<number>.html``: data never steers a path."""
    return f"{code}.html" if re.fullmatch(r"[0-9]{1,20}", str(code)) else f"_{number:03d}.html"


def write_all(reg: Registry, out_dir: str | Path, *, progress: Callable[[int, int, str], None] | None = None,
              basemap: str | None = None, tianditu_key: str | None = None,
              assets: str | Path | None = None, inline: bool = False) -> Path:
    """Write every category map and every street map, and an ``index.html`` linking them.

    Leaflet is copied once into ``out_dir/_assets/leaflet`` and linked relatively (unless
    ``assets`` or ``inline`` say otherwise), so the folder works offline wherever it is copied.

    Parameters
    ----------
    reg : Registry
    out_dir : str or Path
    progress : callable, optional
        Called as ``progress(done, total, name)`` after each map (e.g. to move a progress bar).
    basemap, tianditu_key, assets, inline
        As for :func:`components_map` (see :class:`Page`).

    Returns
    -------
    Path
        The index page.

    Raises
    ------
    OutputError
        If the folder cannot be written.
    """
    out = Path(out_dir)
    with writing(out):
        (out / "category").mkdir(parents=True, exist_ok=True)
        (out / "street").mkdir(parents=True, exist_ok=True)
        if assets is None and not inline:
            copy_assets(out)
            assets = "../_assets/leaflet"
        options = asdict(Page(basemap, tianditu_key, assets, inline))
        stats = reg.stats("category")
        total = len(stats) + len(reg.district.streets)
        links, unknown = [], []
        for number, (code, row) in enumerate(stats.iterrows()):
            if code not in reg.catalog:  # edited outside citygrid: listed, not mapped
                unknown.append(f"<li>{html.escape(str(code))} ({int(row['count']):,})</li>")
                continue
            path = out / "category" / _file_name(code, number)
            category_map(reg, code, **options).save(path)
            links.append(("category", path.relative_to(out).as_posix(), f"{code} {row['name_zh']}", int(row["count"])))
            if progress:
                progress(len(links), total, f"{code} {row['name_zh']}")
        per_street = reg.components.groupby("street_code").size()
        for number, street in enumerate(reg.district.streets.itertuples()):
            path = out / "street" / _file_name(street.code, number)
            street_map(reg, street.code, **options).save(path)
            links.append(("street", path.relative_to(out).as_posix(), f"{street.name} ({street.code})",
                          int(per_street.get(street.code, 0))))
            if progress:
                progress(len(links), total, street.name)
        rows = {kind: "".join(f'<li><a href="{html.escape(href)}">{html.escape(label)}</a> ({count:,})</li>'
                              for k, href, label, count in links if k == kind) for kind in ("street", "category")}
        index = out / "index.html"
        title = html.escape(_("{district}: component maps").format(district=reg.district.name))
        lost = (f"<h2>{html.escape(_('Categories not in the catalog'))}</h2><ul>{''.join(unknown)}</ul>"
                if unknown else "")
        index.write_text(f"""<!DOCTYPE html><html lang="{'zh-CN' if language() == 'zh' else 'en'}"><head>
<meta charset="utf-8"><title>{title}</title>{_CSS}</head><body style="font-family:sans-serif">
<h1>{title}</h1>
<h2>{html.escape(_("Streets"))}</h2><ul>{rows['street']}</ul>
<h2>{html.escape(_("Categories"))}</h2><ul>{rows['category']}</ul>
{lost}
</body></html>""", encoding="utf-8")
    return index
