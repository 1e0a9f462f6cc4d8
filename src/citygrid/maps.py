"""Folium maps: per category, per street, of validation issues and of the unit grid.

Large maps stay small and fast because features are not embedded as GeoJSON with a
property dict each. A map carries one compact JSON block: coordinates as integer
micro-degrees, and every attribute as a per-column dictionary (distinct values once,
then one small integer per feature). A Leaflet layer of citygrid's own
(``assets/citygrid_layer.js``) draws the points on a single canvas, lines and polygons
with Leaflet's canvas renderer, and builds a popup only when a feature is clicked, with
every value HTML-escaped. 60,000 manhole covers weigh about 3 MB and draw in well
under a second.

Basemaps: OpenStreetMap (default), Tianditu vector or imagery with annotation (needs a
key: argument or ``CITYGRID_TIANDITU_KEY``), Amap/Gaode (GCJ-02: the overlay is shifted
to GCJ-02 so features sit on the right street), a custom tile URL (an intranet tile
server) or none. Offline: ``assets=DIR_OR_URL`` points Leaflet's JS/CSS at a local
folder or intranet URL, ``inline=True`` embeds them in the HTML; the files come from an
installed copy of Leaflet (Debian ``libjs-leaflet``, an npm install, or
``CITYGRID_LEAFLET_DIR``), never from the repository.

Examples
--------
>>> import citygrid as cg, tempfile, pathlib
>>> d = cg.synth.make_district(seed=0, n_components=1_000)
>>> reg = cg.Registry.create(pathlib.Path(tempfile.mkdtemp()) / "r.gpkg", district=d)
>>> m = category_map(reg, "0118")
>>> "citygrid.add" in m.get_root().render()
True
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xyzservices.providers as xyz
from branca.element import Element, MacroElement

from citygrid import settings
from citygrid.crs import geometries_wgs84_to_gcj02, wgs84_to_gcj02
from citygrid.errors import MapError, MissingFile, writing

if TYPE_CHECKING:
    from citygrid.registry import Registry
    from citygrid.validation import Report

BASEMAPS = ("osm", "tianditu-vec", "tianditu-img", "amap", "none")
POPUP_FIELDS = (
    ("component_id", "标识码 id"), ("category", "类别 category"), ("category_name", "名称 type"),
    ("name", "名称 name"), ("department", "主管部门 department"), ("owner", "权属单位 owner"),
    ("maintainer", "养护单位 maintainer"), ("grid", "单元网格 grid cell"), ("street", "街道 street"),
    ("community", "社区 community"), ("status", "状态 status"), ("survey_date", "初始日期 surveyed"),
    ("change_date", "变更日期 changed"),
)
ISSUE_FIELDS = (("rule", "规则 rule"), ("severity", "级别 severity"), ("component_id", "标识码 id"),
                ("row", "行 row"), ("message", "说明 message"))
PALETTE = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999",
           "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#17becf")
STATUS_COLOURS = {"完好": "#2b8cbe", "破损": "#e34a33", "丢失": "#756bb1", "占用": "#fdae6b",
                  "废弃": "#636363", "移除": "#bdbdbd"}
_LEAFLET_PLACES = ("/usr/share/javascript/leaflet", "node_modules/leaflet/dist")
_CSS = """<style>.cg-title,.cg-legend,.cg-search{background:#fff;padding:6px 8px;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px/1.4 "Noto Sans CJK SC","Microsoft YaHei",sans-serif}
.cg-legend{max-height:40vh;overflow:auto}.cg-popup th{text-align:left;padding-right:6px;color:#555;
font-weight:normal}.cg-popup td{font-weight:bold}</style>"""


def find_leaflet() -> Path:
    """An installed copy of Leaflet (the folder holding ``leaflet.js`` and ``leaflet.css``).

    Looked for in ``CITYGRID_LEAFLET_DIR``, Debian's ``libjs-leaflet``
    (``/usr/share/javascript/leaflet``) and ``node_modules/leaflet/dist``.

    Raises
    ------
    FileNotFoundError
        Naming the places searched and how to install one.
    """
    places = [os.environ.get("CITYGRID_LEAFLET_DIR", ""), *_LEAFLET_PLACES]
    for place in filter(None, places):
        folder = Path(place)
        if (folder / "leaflet.js").is_file() and (folder / "leaflet.css").is_file():
            return folder
    raise MissingFile(
        "no installed Leaflet found in " + ", ".join(p for p in places if p)
        + "; install Debian's libjs-leaflet, run `npm install leaflet`, or set CITYGRID_LEAFLET_DIR.")


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


class _CompactLayer(MacroElement):
    def __init__(self, data: dict, options: dict) -> None:
        super().__init__()
        self._name = "CitygridLayer"
        # "<" never appears raw in the script, so a hostile value cannot close it or open a tag
        self.data = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
        self.options = json.dumps(options, ensure_ascii=False).replace("<", "\\u003c")

    def render(self, **kwargs) -> None:
        script = f"window.citygrid.add({self._parent.get_name()}, {self.data}, {self.options});"
        self.get_root().script.add_child(_Script(script), name=self.get_name())


def _layer_script() -> str:
    return (resources.files("citygrid") / "assets" / "citygrid_layer.js").read_text(encoding="utf-8")


def _encode(frame: gpd.GeoDataFrame, groups: pd.Series, fields: tuple[tuple[str, str], ...], *,
            gcj02: bool, colours: dict[str, str] | None = None) -> dict:
    """The compact JSON: micro-degree coordinates and dictionary-encoded columns."""
    wgs = frame.to_crs(settings.web_crs) if frame.crs is not None else frame
    geoms = wgs.geometry.to_numpy()
    present = ~pd.isna(geoms)
    present[present] = ~shapely.is_empty(geoms[present])
    if gcj02:
        geoms = geometries_wgs84_to_gcj02(geoms)
    names = pd.Series(groups.to_numpy(dtype=object), dtype=object).fillna("—")
    order_names = list(pd.unique(names[present]))
    counts = names[present].value_counts()
    group_index = {g: k for k, g in enumerate(order_names)}
    kinds = shapely.get_type_id(np.where(present, geoms, shapely.Point()))
    is_point = present & np.isin(kinds, (0, 4))
    points = np.flatnonzero(is_point)
    shapes = np.flatnonzero(present & ~is_point)
    point_geoms = shapely.point_on_surface(geoms[points]) if len(points) else np.array([])
    xy = np.rint(shapely.get_coordinates(point_geoms) * 1e6).astype(np.int64) if len(points) else \
        np.zeros((0, 2), dtype=np.int64)
    shape_list = []
    for pos in shapes:
        geom = geoms[pos]
        rings = []
        for part in shapely.get_parts(geom):
            lines = [part.exterior] if part.geom_type == "Polygon" else [part]
            for line in lines:
                rings.append(np.rint(np.asarray(line.coords)[:, :2] * 1e6).astype(np.int64).ravel().tolist())
        shape_list.append({"g": group_index[names[pos]], "t": "polygon" if kinds[pos] in (3, 6) else "line",
                           "c": rings})
    rows = np.concatenate([points, shapes])
    table = {"columns": [], "labels": [], "values": {}}
    for column, label in fields:
        if column not in frame.columns:
            continue
        values = frame[column].iloc[rows]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime("%Y-%m-%d")
        codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None), use_na_sentinel=True)
        table["columns"].append(column)
        table["labels"].append(label)
        table["values"][column] = {"dict": [str(u) for u in uniques], "idx": codes.tolist()}
    colours = colours or {}
    return {
        "groups": [{"name": str(g), "color": colours.get(g, PALETTE[k % len(PALETTE)]), "count": int(counts[g])}
                   for k, g in enumerate(order_names)],
        "points": {"lon": xy[:, 0].tolist(), "lat": xy[:, 1].tolist(),
                   "group": [group_index[g] for g in names[points]]},
        "shapes": shape_list,
        "table": table,
    }


def _base_map(bounds: tuple[float, float, float, float], *, basemap: str, tianditu_key: str | None,
              assets: str | Path | None, inline: bool, title: str) -> folium.Map:
    minx, miny, maxx, maxy = bounds
    if basemap not in BASEMAPS and "{z}" not in basemap:
        raise MapError(f"basemap={basemap!r} is not known; use one of {BASEMAPS} or a tile URL with {{z}}/{{x}}/{{y}}.")
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, control_scale=False,
                   prefer_canvas=True, zoom_control=True)
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    root.title = html.escape(title)  # a street or category name is data: it must not end the <title>
    if basemap == "osm":
        provider = xyz.OpenStreetMap.Mapnik
        folium.TileLayer(provider.build_url(), attr=provider.html_attribution, name="OpenStreetMap",
                         max_zoom=19).add_to(m)
    elif basemap.startswith("tianditu"):
        key = tianditu_key or settings.tianditu_key
        if not key:
            raise MapError("Tianditu (天地图) tiles need a user key: pass tianditu_key=... or set the "
                           "CITYGRID_TIANDITU_KEY environment variable (apply at console.tianditu.gov.cn).")
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
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    header = root.header
    if inline:
        folder = find_leaflet() if assets is None else Path(assets)
        css = (folder / "leaflet.css").read_text(encoding="utf-8")
        js = (folder / "leaflet.js").read_text(encoding="utf-8")
        header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
        header.add_child(Element(f"<script>{js}</script>"), name="leaflet_js")
    else:
        base = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist" if assets is None else str(assets).rstrip("/")
        header.add_child(Element(f'<link rel="stylesheet" href="{html.escape(base)}/leaflet.css"/>'),
                         name="leaflet_css")
        header.add_child(Element(f'<script src="{html.escape(base)}/leaflet.js"></script>'), name="leaflet_js")
    header.add_child(Element(f"<script>{_layer_script()}</script>" + _CSS), name="citygrid_js")
    header.add_child(Element('<meta charset="utf-8">'), name="charset")
    return m


def _outline(m: folium.Map, geom: shapely.Geometry, name: str, *, gcj02: bool, crs: str) -> None:
    wgs = gpd.GeoSeries([geom], crs=crs).to_crs(settings.web_crs)
    if gcj02:
        wgs = gpd.GeoSeries(geometries_wgs84_to_gcj02(wgs.to_numpy()), crs=settings.web_crs)
    folium.GeoJson(wgs.__geo_interface__, name=name, style_function=lambda _: {
        "color": "#333", "weight": 2, "fill": False, "dashArray": "6 4"}, interactive=False).add_to(m)


def _render(frame: gpd.GeoDataFrame, groups: pd.Series, *, title: str, subtitle: str, outline: shapely.Geometry,
            outline_name: str, fields=POPUP_FIELDS, colours=None, basemap: str = "osm",
            tianditu_key: str | None = None, assets: str | Path | None = None, inline: bool = False) -> folium.Map:
    gcj02 = basemap == "amap"
    bounds = gpd.GeoSeries([outline], crs=settings.default_crs).to_crs(settings.web_crs).total_bounds
    if gcj02:
        (x0, x1), (y0, y1) = wgs84_to_gcj02([bounds[0], bounds[2]], [bounds[1], bounds[3]])
        bounds = (x0, y0, x1, y1)
    m = _base_map(tuple(bounds), basemap=basemap, tianditu_key=tianditu_key, assets=assets, inline=inline,
                  title=title)
    _outline(m, outline, outline_name, gcj02=gcj02, crs=settings.default_crs)
    data = _encode(frame, groups, fields, gcj02=gcj02, colours=colours)
    _CompactLayer(data, {"title": title, "subtitle": subtitle}).add_to(m)
    return m


def category_map(reg: Registry, code: str, **options) -> folium.Map:
    """One category's components over the district, coloured by status.

    Parameters
    ----------
    reg : Registry
    code : str
        Category code (either layout) or Chinese name.
    **options
        ``basemap`` ("osm", "tianditu-vec", "tianditu-img", "amap", "none" or a tile URL),
        ``tianditu_key``, ``assets`` (folder or URL of leaflet.js/css), ``inline``.

    Returns
    -------
    folium.Map
    """
    cat = reg.catalog[code]
    frame = reg.query(category=code)
    return _render(frame, frame["status"], title=f"{cat.name_zh} {cat.name_en} ({cat.code})",
                   subtitle=f"{reg.district.name} · {len(frame):,} 个部件 components · {cat.department}",
                   outline=reg.district.boundary, outline_name=reg.district.name, colours=STATUS_COLOURS,
                   **options)


def street_map(reg: Registry, street: str, **options) -> folium.Map:
    """Every component of one street, a layer per category (see :func:`category_map`)."""
    row = reg.district.street(street)
    frame = reg.query(street=row["code"])
    groups = frame["category"] + " " + frame["category_name"].fillna("")
    return _render(frame, groups, title=f"{row['name']} {reg.district.name}",
                   subtitle=f"{len(frame):,} 个部件 components in {frame['category'].nunique()} categories",
                   outline=row.geometry, outline_name=row["name"], **options)


def grid_map(reg: Registry, street: str | None = None, **options) -> folium.Map:
    """The unit grid cells (of one street, or all), a layer per community."""
    grid = reg.district.grid
    outline = reg.district.boundary
    title = f"{reg.district.name} 单元网格 unit grid"
    if street is not None:
        row = reg.district.street(street)
        grid = grid[grid["street_code"] == row["code"]]
        outline, title = row.geometry, f"{row['name']} 单元网格 unit grid"
    names = dict(zip(reg.district.communities["code"], reg.district.communities["name"]))
    frame = grid.assign(component_id=grid["code"], community=grid["community_code"].map(names))
    return _render(frame, frame["community"], title=title, subtitle=f"{len(grid):,} cells",
                   outline=outline, outline_name=title,
                   fields=(("component_id", "网格编码 cell"), ("community", "社区 community")), **options)


def issues_map(report: Report, *, outline: shapely.Geometry | None = None, **options) -> folium.Map:
    """Validation issues located on a map, a layer per rule.

    Issues without a place are counted in the subtitle only.
    """
    issues = report.issues
    located = issues[~issues.geometry.isna() & ~issues.geometry.is_empty] if len(issues) else issues
    if outline is None:
        outline = shapely.box(*located.total_bounds) if len(located) else shapely.Point(0, 0).buffer(1)
    return _render(located, located["rule"], title="校验问题 validation issues",
                   subtitle=f"{report.source} · {len(issues):,} issues, {len(located):,} located",
                   outline=outline.buffer(50), outline_name="extent", fields=ISSUE_FIELDS, **options)


def write_all(reg: Registry, out_dir: str | Path, **options) -> Path:
    """Write every category map and every street map, and an ``index.html`` linking them.

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
        stats = reg.stats("category")
        links = []
        for code, row in stats.iterrows():
            path = out / "category" / f"{code}.html"
            category_map(reg, code, **options).save(path)
            links.append(("category", f"category/{code}.html", f"{code} {row['name_zh']}", int(row["count"])))
        per_street = reg.components.groupby("street_code").size()
        for street in reg.district.streets.itertuples():
            path = out / "street" / f"{street.code}.html"
            street_map(reg, street.code, **options).save(path)
            links.append(("street", f"street/{street.code}.html", street.name, int(per_street.get(street.code, 0))))
        rows = {kind: "".join(f'<li><a href="{html.escape(href)}">{html.escape(label)}</a> ({count:,})</li>'
                              for k, href, label, count in links if k == kind) for kind in ("street", "category")}
        index = out / "index.html"
        index.write_text(f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(reg.district.name)} 部件地图</title>{_CSS}</head><body style="font-family:sans-serif">
<h1>{html.escape(reg.district.name)} 城市部件地图 component maps</h1>
<h2>街道 streets</h2><ul>{rows['street']}</ul><h2>部件类别 categories</h2><ul>{rows['category']}</ul>
</body></html>""", encoding="utf-8")
    return index
