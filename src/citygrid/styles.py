"""How GIS software draws a registry: QGIS styles for its layers, kept in the GeoPackage itself.

QGIS reads the ``layer_styles`` table of a GeoPackage and applies a layer's default style when
the layer is loaded. :func:`registry_styles` gives the rows of that table for a registry: the
components categorised by category (one colour family per major class, a distinct marker per
category within it, the Chinese names in the legend, names or ids as labels at street scale),
the district's streets, communities and grid cells as outlines with their names.
:func:`report_styles` styles a report's issues by severity. Each row also carries the same
symbology as an OGC SLD 1.1 document (``styleSLD``), for software that reads SLD.

Examples
--------
>>> from citygrid.catalog import load_catalog
>>> rows = registry_styles(load_catalog(), layout="cjt214")
>>> [r["f_table_name"] for r in rows][:3]
['components_point', 'components_line', 'components_polygon']
>>> "categorizedSymbol" in rows[0]["styleQML"] and "污水井盖" in rows[0]["styleQML"]
True
"""

from __future__ import annotations

import colorsys
from html import escape

from citygrid._layers import COMPONENT_LAYERS
from citygrid.catalog import Catalog

STYLE_NAME = "citygrid"
"""The name of every style citygrid writes (a layer's default style)."""

MAJOR_HUES = {"01": 0.58, "02": 0.08, "03": 0.33, "04": 0.25, "05": 0.75, "06": 0.92, "07": 0.50}
"""Hue (0–1) of each major class: 公用设施 blue, 道路交通 orange, 市容环境 green, 园林绿化 yellow-green,
房屋土地 violet, 其他设施 pink, 扩展部件 teal; another major class gets grey."""
MARKERS = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross2", "arrowhead",
           "semi_circle", "trapezoid", "parallelogram_right", "shield", "decagon", "octagon", "heart")
"""QGIS simple marker shapes: the categories of one major class take them in turn."""
DASHES = ("solid", "dash", "dot", "dash dot", "dash dot dot")
"""QGIS line styles: the line categories of one major class take them in turn."""
FILLS = ("solid", "b_diagonal", "f_diagonal", "horizontal", "vertical", "cross", "diagonal_x", "dense4")
"""QGIS fill styles: the polygon categories of one major class take them in turn."""
LABEL_SCALE = 5_000
"""Labels show when the map is at this scale or closer (1:5,000: a street)."""

_HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def registry_styles(catalog: Catalog, *, layout: str, columns: dict[str, str] | None = None) -> list[dict[str, object]]:
    """The ``layer_styles`` rows of a registry's layers.

    Parameters
    ----------
    catalog : Catalog
        Its categories (their codes in the registry's `layout` are the values styled).
    layout : {"cjt214", "gbt47678"}
        The registry's identifier layout: which category codes its components carry.
    columns : dict, optional
        The components' column names where they are not citygrid's (an extract with a
        standard's field names): ``category``, ``name`` and ``component_id`` looked up in it.

    Returns
    -------
    list of dict
        One per layer, with the columns of QGIS's ``layer_styles`` table (``f_table_name``,
        ``f_geometry_column``, ``styleName``, ``styleQML``, ``styleSLD``, ``useAsDefault`` …).
    """
    named = {"category": "category", "name": "name", "component_id": "component_id", **(columns or {})}
    rows = [_row(layer, _components_qml(catalog, kind, layout, named), _components_sld(catalog, kind, layout, named),
                 "components by category")
            for kind, layer in COMPONENT_LAYERS.items()]
    outlines = {"boundary": ("40,40,40,255", 0.8, "", None), "streets": ("200,30,30,255", 0.6, "name", None),
                "communities": ("120,60,160,255", 0.35, "name", LABEL_SCALE * 4),
                "grid": ("150,150,150,255", 0.15, "code", LABEL_SCALE)}
    rows += [_row(layer, _outline_qml(colour, width, label, scale), _outline_sld(layer, colour, width), "outlines")
             for layer, (colour, width, label, scale) in outlines.items()]
    rows.append(_row("roads", _line_qml("190,190,190,255", 0.4), _outline_sld("roads", "190,190,190,255", 0.4),
                     "roads"))
    return rows


def report_styles(layer: str = "issues") -> list[dict[str, object]]:
    """The ``layer_styles`` row of a report's issues layer: red errors, orange warnings, blue info."""
    colours = {"error": "215,25,28,255", "warning": "253,174,97,255", "info": "44,123,182,255"}
    categories = [(value, value, _marker(colour, "circle", 3.0)) for value, colour in colours.items()]
    qml = _categorised("severity", categories, label='"rule"', scale=LABEL_SCALE)
    rules: list[tuple[str | None, str, str]] = [(value, value, _sld_point(colour, "circle"))
                                                for value, colour in colours.items()]
    sld = _sld(layer, rules, "severity")
    return [_row(layer, qml, sld, "issues by severity")]


def _row(layer: str, qml: str, sld: str, description: str) -> dict[str, object]:
    return {"f_table_catalog": "", "f_table_schema": "", "f_table_name": layer, "f_geometry_column": "geom",
            "styleName": STYLE_NAME, "styleQML": qml, "styleSLD": sld, "useAsDefault": True,
            "description": f"citygrid: {description}", "owner": "citygrid", "ui": ""}


def category_colours(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Colour (``"r,g,b,a"``) and pattern of each category code, both codes given.

    Categories of one major class share its hue; those of one geometry within it differ in
    lightness and pattern: a marker shape (:data:`MARKERS`) for points, a dash pattern
    (:data:`DASHES`) for lines, a fill pattern (:data:`FILLS`) for polygons.
    """
    out: dict[str, tuple[str, str]] = {}
    groups: dict[tuple[str, str], list] = {}
    for category in catalog:
        groups.setdefault((category.major_code, category.geometry), []).append(category)
    patterns = {"point": MARKERS, "line": DASHES, "polygon": FILLS}
    for (major, kind), members in groups.items():
        hue = MAJOR_HUES.get(major)
        for k, category in enumerate(members):
            light = 0.3 + 0.4 * ((k * 7) % 11) / 10
            r, g, b = colorsys.hls_to_rgb(hue if hue is not None else 0.0, light, 0.75 if hue is not None else 0.0)
            shapes = patterns.get(kind, MARKERS)
            style = (f"{round(r * 255)},{round(g * 255)},{round(b * 255)},255", shapes[k % len(shapes)])
            out[category.code] = out[category.code_2026] = style
    return out


def _categories(catalog: Catalog, kind: str, layout: str) -> list[tuple[str, str, str, str]]:
    """``(value, legend label, colour, marker)`` of the categories drawn on the layer of geometry `kind`."""
    styles = category_colours(catalog)
    out = []
    for category in catalog:
        if category.geometry != kind:
            continue
        code = category.code_2026 if layout == "gbt47678" else category.code
        colour, marker = styles[code]
        out.append((code, f"{category.name_zh} {category.name_en} ({code})", colour, marker))
    return out


def _components_qml(catalog: Catalog, kind: str, layout: str, named: dict[str, str]) -> str:
    symbol = {"point": lambda c, m: _marker(c, m, 2.2), "line": lambda c, m: _line(c, 0.6, m),
              "polygon": lambda c, m: _fill(c, pattern=m)}[kind]
    categories = [(value, label, symbol(colour, marker))
                  for value, label, colour, marker in _categories(catalog, kind, layout)]
    label = f'coalesce("{named["name"]}", "{named["component_id"]}")'
    return _categorised(named["category"], categories, label=label, scale=LABEL_SCALE)


def _categorised(field: str, categories: list[tuple[str, str, str]], *, label: str, scale: int) -> str:
    """A QML document: a categorised renderer on `field`, and the expression `label` shown at `scale` or closer."""
    rows = "".join(f'      <category render="true" value="{escape(value)}" label="{escape(text)}" symbol="{k}"/>\n'
                   for k, (value, text, _symbol) in enumerate(categories))
    symbols = "".join(symbol.replace("<symbol ", f'<symbol name="{k}" ', 1)
                      for k, (_value, _text, symbol) in enumerate(categories))
    return (f'{_HEADER}<qgis version="3.22" styleCategories="Symbology|Labeling">\n'
            f'  <renderer-v2 type="categorizedSymbol" attr="{escape(field)}" symbollevels="0" forceraster="0" '
            f'enableorderby="0">\n    <categories>\n{rows}    </categories>\n    <symbols>\n{symbols}    </symbols>\n'
            f'  </renderer-v2>\n{_labels(label, expression=True, scale=scale)}</qgis>\n')


def _outline_qml(colour: str, width: float, label: str, scale: int | None) -> str:
    symbol = _fill(colour, outline_width=width, filled=False).replace("<symbol ", '<symbol name="0" ', 1)
    labels = _labels(label, expression=False, scale=scale) if label else ""
    return (f'{_HEADER}<qgis version="3.22" styleCategories="Symbology|Labeling">\n'
            f'  <renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" enableorderby="0">\n'
            f"    <symbols>\n{symbol}    </symbols>\n  </renderer-v2>\n{labels}</qgis>\n")


def _line_qml(colour: str, width: float) -> str:
    symbol = _line(colour, width).replace("<symbol ", '<symbol name="0" ', 1)
    return (f'{_HEADER}<qgis version="3.22" styleCategories="Symbology">\n'
            f'  <renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" enableorderby="0">\n'
            f"    <symbols>\n{symbol}    </symbols>\n  </renderer-v2>\n</qgis>\n")


def _props(values: dict[str, object]) -> str:
    return "".join(f'        <prop k="{k}" v="{escape(str(v))}"/>\n' for k, v in values.items())


def _marker(colour: str, shape: str, size: float) -> str:
    props = _props({"name": shape, "color": colour, "outline_color": "35,35,35,255", "outline_width": "0.2",
                    "outline_width_unit": "MM", "size": size, "size_unit": "MM", "angle": "0"})
    return (f'      <symbol type="marker" alpha="1" clip_to_extent="1" force_rhr="0">\n'
            f'        <layer class="SimpleMarker" enabled="1" pass="0" locked="0">\n{props}        </layer>\n'
            f"      </symbol>\n")


def _line(colour: str, width: float, dash: str = "solid") -> str:
    props = _props({"line_color": colour, "line_width": width, "line_width_unit": "MM", "line_style": dash,
                    "capstyle": "round", "joinstyle": "round"})
    return (f'      <symbol type="line" alpha="1" clip_to_extent="1" force_rhr="0">\n'
            f'        <layer class="SimpleLine" enabled="1" pass="0" locked="0">\n{props}        </layer>\n'
            f"      </symbol>\n")


def _fill(colour: str, *, outline_width: float = 0.26, filled: bool = True, pattern: str = "solid") -> str:
    fill = colour.rsplit(",", 1)[0] + (",110" if pattern == "solid" else ",255") if filled else "0,0,0,0"
    props = _props({"color": fill, "style": pattern if filled else "no", "outline_color": colour,
                    "outline_style": "solid", "outline_width": outline_width, "outline_width_unit": "MM"})
    return (f'      <symbol type="fill" alpha="1" clip_to_extent="1" force_rhr="0">\n'
            f'        <layer class="SimpleFill" enabled="1" pass="0" locked="0">\n{props}        </layer>\n'
            f"      </symbol>\n")


def _labels(field: str, *, expression: bool, scale: int | None) -> str:
    # QGIS reads scaleMax as the zoomed-out end: labels from 1:`scale` inwards
    visible = f'scaleVisibility="1" scaleMin="1" scaleMax="{scale}"' if scale else 'scaleVisibility="0"'
    return (f'  <labeling type="simple">\n    <settings calloutType="simple">\n'
            f'      <text-style fieldName="{escape(field)}" isExpression="{int(expression)}" fontSize="8" '
            f'fontFamily="Noto Sans CJK SC" textColor="40,40,40,255" namedStyle="Regular" fontSizeUnit="Point">\n'
            f'        <text-buffer bufferDraw="1" bufferSize="0.8" bufferSizeUnits="MM" '
            f'bufferColor="255,255,255,255"/>\n'
            f"      </text-style>\n"
            f'      <placement placement="1" dist="1" distUnits="MM"/>\n'
            f"      <rendering {visible} obstacle=\"1\" limitNumLabels=\"0\" maxNumLabels=\"2000\"/>\n"
            f"    </settings>\n  </labeling>\n  <labelsEnabled>1</labelsEnabled>\n")


def _hex(colour: str) -> str:
    r, g, b = (int(v) for v in colour.split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


_SLD_SHAPES = {"circle": "circle", "square": "square", "triangle": "triangle", "star": "star", "cross2": "x"}


def _sld_point(colour: str, shape: str) -> str:
    return (f"<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>{_SLD_SHAPES.get(shape, 'circle')}"
            f'</se:WellKnownName><se:Fill><se:SvgParameter name="fill">{_hex(colour)}</se:SvgParameter></se:Fill>'
            f'<se:Stroke><se:SvgParameter name="stroke">#232323</se:SvgParameter></se:Stroke></se:Mark>'
            f"<se:Size>8</se:Size></se:Graphic></se:PointSymbolizer>")


def _sld_line(colour: str, width: float) -> str:
    return (f'<se:LineSymbolizer><se:Stroke><se:SvgParameter name="stroke">{_hex(colour)}</se:SvgParameter>'
            f'<se:SvgParameter name="stroke-width">{width * 3.78:.1f}</se:SvgParameter></se:Stroke>'
            f"</se:LineSymbolizer>")


def _sld_polygon(colour: str, width: float, *, filled: bool) -> str:
    fill = f'<se:Fill><se:SvgParameter name="fill">{_hex(colour)}</se:SvgParameter>' \
           f'<se:SvgParameter name="fill-opacity">0.43</se:SvgParameter></se:Fill>' if filled else ""
    return (f'<se:PolygonSymbolizer>{fill}<se:Stroke><se:SvgParameter name="stroke">{_hex(colour)}'
            f'</se:SvgParameter><se:SvgParameter name="stroke-width">{width * 3.78:.1f}</se:SvgParameter>'
            f"</se:Stroke></se:PolygonSymbolizer>")


def _components_sld(catalog: Catalog, kind: str, layout: str, named: dict[str, str]) -> str:
    def symbolizer(colour: str, marker: str) -> str:
        return {"point": lambda: _sld_point(colour, marker), "line": lambda: _sld_line(colour, 0.6),
                "polygon": lambda: _sld_polygon(colour, 0.26, filled=True)}[kind]()

    rules: list[tuple[str | None, str, str]] = [(value, label, symbolizer(colour, marker))
                                                for value, label, colour, marker in _categories(catalog, kind, layout)]
    return _sld(COMPONENT_LAYERS[kind], rules, named["category"])


def _outline_sld(layer: str, colour: str, width: float) -> str:
    symbolizer = _sld_line(colour, width) if layer == "roads" else _sld_polygon(colour, width, filled=False)
    return _sld(layer, [(None, layer, symbolizer)], None)


def _sld(layer: str, rules: list[tuple[str | None, str, str]], field: str | None) -> str:
    """An SLD 1.1 document: one rule per value of `field` (or one rule for all when `field` is None)."""
    body = ""
    for value, title, symbolizer in rules:
        test = (f'<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>{escape(field)}</ogc:PropertyName>'
                f"<ogc:Literal>{escape(value)}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>"
                if field is not None and value is not None else "")
        body += f"<se:Rule><se:Name>{escape(title)}</se:Name>{test}{symbolizer}</se:Rule>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:se="http://www.opengis.net/se" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1.0">'
            f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle><se:Name>{STYLE_NAME}</se:Name>"
            f"<se:FeatureTypeStyle>{body}</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n")

