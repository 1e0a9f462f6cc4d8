"""A QGIS project (``.qgz``) beside a GeoPackage extract: its layers styled, in order, at its extent.

A department that receives ``maluan.gpkg`` double-clicks ``maluan.qgz`` and QGIS opens the
components over the grid cells, communities and street outlines, categorised and labelled
as in the registry (:mod:`citygrid.styles`), at the extract's extent, in EPSG:4547. The
project names the GeoPackage by a relative path, so the two files travel together.

A ``.qgz`` is a zip holding one ``.qgs`` XML document; the one written here carries what
QGIS 3.22 and later read: the project CRS, the layer tree, each layer (its data source, CRS
and the style's renderer and labels) and the default view extent.
"""

from __future__ import annotations

import copy
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pyogrio
import pyproj

from citygrid import settings
from citygrid._vector import write_layer, write_styles
from citygrid.admin import District
from citygrid.catalog import Catalog
from citygrid.errors import writing
from citygrid.styles import registry_styles

__all__ = ["LAYER_TITLES", "ORDER", "write_extract_project", "write_project"]

LAYER_TITLES = {"components_point": "部件（点）Components (points)", "components_line": "部件（线）Components (lines)",
                "components_polygon": "部件（面）Components (polygons)", "grid": "单元网格 Unit grid cells",
                "communities": "社区 Communities", "streets": "街道 Streets", "boundary": "辖区 District",
                "roads": "道路 Roads"}
"""The title each layer has in the project's layer tree."""

ORDER = ("components_point", "components_line", "components_polygon", "grid", "communities", "streets", "boundary")
"""The layers of an extract's project, top to bottom: components over the outlines that place them."""

_GEOMETRY = {"Point": "Point", "MultiPoint": "Point", "LineString": "Line", "MultiLineString": "Line",
             "Polygon": "Polygon", "MultiPolygon": "Polygon"}


def write_extract_project(gpkg: str | Path, district: District, catalog: Catalog, *, layout: str,
                          columns: dict[str, str], street: str | None = None, engine: str = "pyogrio") -> Path:
    """Add the district's outlines and QGIS styles to the GeoPackage extract `gpkg`, and its project beside it.

    Parameters
    ----------
    gpkg : str or Path
        A GeoPackage extract of components (``components_point`` … layers), as
        :func:`citygrid.exports.write_extract` writes it.
    district : District
        The registry's district: its grid cells, communities, streets and boundary are
        added (those of `street` alone, for a street's extract).
    catalog : Catalog
        The categories the components are styled by.
    layout : {"cjt214", "gbt47678"}
        The registry's identifier layout (the category codes the components carry).
    columns : dict
        The extract's name of each citygrid field (see :func:`citygrid.schema.standard_columns`).
    street : str, optional
        The street's code, for a street's extract.
    engine : {"pyogrio", "fiona"}

    Returns
    -------
    Path
        The project, ``gpkg`` with the suffix ``.qgz``.
    """
    gpkg = Path(gpkg)
    outlines = {"grid": district.grid, "communities": district.communities, "streets": district.streets,
                "boundary": district.layers()["boundary"]}
    if street is not None:
        outlines = {name: layer[layer["street_code" if name in ("grid", "communities") else "code"] == street]
                    for name, layer in outlines.items() if name != "boundary"}
    area = outlines["streets"] if street is not None else outlines["boundary"]
    xmin, ymin, xmax, ymax = area.total_bounds
    margin = 0.03 * max(xmax - xmin, ymax - ymin)
    with writing(gpkg):
        for name, layer in outlines.items():
            write_layer(layer, gpkg, name, engine=engine)
        held = dict(pyogrio.list_layers(gpkg))
        styles = [row for row in registry_styles(catalog, layout=layout, columns=columns)
                  if row["f_table_name"] in held]
        write_styles(gpkg, styles)
    qml = {row["f_table_name"]: str(row["styleQML"]) for row in styles}
    layers = [(name, str(held[name]), qml[name]) for name in ORDER if name in qml]
    title = f"{district.name} {street and district.street(street)['name'] or ''}".strip()
    return write_project(gpkg.with_suffix(".qgz"), gpkg, layers, (xmin - margin, ymin - margin, xmax + margin,
                                                                  ymax + margin), title=title)


def write_project(path: str | Path, gpkg: str | Path, layers: list[tuple[str, str, str]],
                  extent: tuple[float, float, float, float], *, title: str) -> Path:
    """Write a QGIS project at `path` showing `layers` of the GeoPackage `gpkg`.

    Parameters
    ----------
    path : str or Path
        The ``.qgz`` to write (beside `gpkg`: the project names it relatively).
    gpkg : str or Path
        The GeoPackage holding the layers.
    layers : list of (layer, geometry type, QML)
        Top to bottom: the layer's table name, its geometry type (``"Point"``,
        ``"MultiPolygon"`` …) and its style as a QML document.
    extent : (xmin, ymin, xmax, ymax)
        The view the project opens at, in EPSG:4547.
    title : str
        The project's title.

    Returns
    -------
    Path

    Examples
    --------
    >>> write_project("maluan.qgz", "maluan.gpkg", [("streets", "MultiPolygon", qml)],
    ...               (535000, 2505000, 545000, 2515000), title="马峦街道")  # doctest: +SKIP
    """
    path, gpkg = Path(path), Path(gpkg)
    source = f"./{gpkg.name}" if gpkg.parent.resolve() == path.parent.resolve() else str(gpkg.resolve())
    srs = _srs(settings.default_crs)
    root = ET.Element("qgis", projectname=title, version="3.22.0-Białowieża")
    ET.SubElement(root, "title").text = title
    root.append(_wrapped(srs, "projectCrs"))
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    maps = ET.Element("projectlayers")
    order = ET.Element("layerorder")
    for layer, geometry, qml in layers:
        key = f"{layer}_{uuid.uuid4().hex[:12]}"
        name = LAYER_TITLES.get(layer, layer)
        data = f"{source}|layername={layer}"
        node = ET.SubElement(tree, "layer-tree-layer", id=key, name=name, source=data, providerKey="ogr",
                             checked="Qt::Checked", expanded="0")
        ET.SubElement(node, "customproperties")
        ET.SubElement(order, "layer", id=key)
        maps.append(_map_layer(key, name, data, _GEOMETRY.get(geometry, "Unknown"), srs, qml))
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "meters"
    canvas.append(_extent(extent))
    ET.SubElement(canvas, "rotation").text = "0"
    canvas.append(_wrapped(srs, "destinationsrs"))
    root.append(maps)
    root.append(order)
    view = ET.SubElement(root, "ProjectViewSettings", UseProjectScales="0")
    xmin, ymin, xmax, ymax = (repr(float(v)) for v in extent)
    ET.SubElement(view, "DefaultViewExtent", xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax).append(
        _wrapped(srs))
    properties = ET.SubElement(root, "properties")
    ET.SubElement(ET.SubElement(properties, "Paths"), "Absolute", type="bool").text = "false"
    # QGIS before 3.26 reads the project CRS only with this set
    ET.SubElement(ET.SubElement(properties, "SpatialRefSys"), "ProjectionsEnabled", type="int").text = "1"
    text = ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(root, encoding="unicode"))
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{path.stem}.qgs", text.encode("utf-8"))
    return path


def _map_layer(key: str, name: str, data: str, geometry: str, srs: ET.Element, qml: str) -> ET.Element:
    """A ``<maplayer>``: its source and CRS, and the style's elements (renderer, labels) as a QML holds them."""
    style = ET.fromstring(qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml)
    layer = ET.Element("maplayer", type="vector", geometry=geometry, styleCategories="AllStyleCategories",
                       hasScaleBasedVisibilityFlag="0", minScale="100000000", maxScale="0", readOnly="0",
                       labelsEnabled=style.findtext("labelsEnabled", "0"))
    ET.SubElement(layer, "id").text = key
    ET.SubElement(layer, "datasource").text = data
    ET.SubElement(layer, "layername").text = name
    layer.append(_wrapped(srs, "srs"))
    ET.SubElement(layer, "provider", encoding="UTF-8").text = "ogr"
    layer.extend(child for child in style if child.tag != "labelsEnabled")
    return layer


def _srs(crs: str) -> ET.Element:
    """QGIS's ``<spatialrefsys>`` of `crs`: WKT and authority code."""
    found = pyproj.CRS.from_user_input(crs)
    srs = ET.Element("spatialrefsys", nativeFormat="Wkt")
    auth = found.to_authority()
    for tag, value in (("wkt", found.to_wkt()), ("srsid", "0"), ("srid", auth[1] if auth else "0"),
                       ("authid", ":".join(auth) if auth else ""), ("description", found.name),
                       ("geographicflag", "true" if found.is_geographic else "false")):
        ET.SubElement(srs, tag).text = value
    return srs


def _wrapped(srs: ET.Element, tag: str | None = None) -> ET.Element:
    """A copy of `srs` (a ``<spatialrefsys>``), alone or inside a `tag` element."""
    if tag is None:
        return copy.deepcopy(srs)
    outer = ET.Element(tag)
    outer.append(copy.deepcopy(srs))
    return outer


def _extent(extent: tuple[float, float, float, float]) -> ET.Element:
    node = ET.Element("extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        ET.SubElement(node, tag).text = repr(float(value))
    return node
