"""Open a GeoPackage in QGIS (headless) as a user's QGIS does, and say what it finds; run by the system Python.

Usage: python3 qgis_look.py GPKG OUTDIR [--street CODE]
       python3 qgis_look.py PROJECT.qgz OUTDIR               (a project beside an export)
       python3 qgis_look.py http://HOST:PORT OUTDIR --street NAME   (a citygrid serve service)

Prints one JSON object: per layer, the renderer QGIS applied (type, the classified attribute,
categories with their labels), whether labels are on and what they show, and the feature
count; renders the district (all layers) and each layer extent given by ``--street CODE``
to PNG files in OUTDIR.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    QgsApplication,
    QgsFeatureRequest,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def describe(layer: QgsVectorLayer) -> dict:
    renderer = layer.renderer()
    out = {"valid": layer.isValid(), "features": layer.featureCount(),
           "renderer": renderer.type() if renderer else None, "labels": bool(layer.labelsEnabled())}
    if renderer is not None and renderer.type() == "categorizedSymbol":
        out["attribute"] = renderer.classAttribute()
        out["categories"] = [[str(c.value()), c.label(), c.symbol().color().name()] for c in renderer.categories()]
    if layer.labelsEnabled() and layer.labeling() is not None:
        settings = layer.labeling().settings()
        out["label_field"] = settings.fieldName
        out["label_max_scale"] = settings.minimumScale if settings.scaleVisibility else None
    return out


def render(layers: list, extent: QgsRectangle, path: str, scale_width: int = 1200) -> None:
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setOutputSize(QSize(scale_width, int(scale_width * extent.height() / max(extent.width(), 1e-9))))
    settings.setDestinationCrs(layers[0].crs())
    settings.setExtent(extent)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(path, "png")


def served(url: str, out_dir: str, street: str) -> dict:
    """The service's components as QGIS's OGC API – Features provider reads them; the street's drawn to PNG."""
    layer = QgsVectorLayer(f"url='{url}' typename='components'", "components", "OAPIF")
    streets = QgsVectorLayer(f"url='{url}' typename='streets'", "streets", "OAPIF")
    request = QgsFeatureRequest().setFilterExpression(f"\"street\" = '{street}'")
    found = {"valid": layer.isValid(), "features": layer.featureCount(), "crs": layer.crs().authid(),
             "fields": [f.name() for f in layer.fields()], "street": sum(1 for _ in layer.getFeatures(request)),
             "streets": streets.featureCount()}
    outline = [f.geometry().boundingBox() for f in streets.getFeatures(
        QgsFeatureRequest().setFilterExpression(f"\"name\" = '{street}'"))]
    if layer.isValid() and outline:
        render([layer, streets], outline[0], os.path.join(out_dir, "served_street.png"), 1200)
    return found


def project(path: str, out_dir: str) -> dict:
    """What QGIS reads from a project: its CRS, default view, layer tree top to bottom; its view drawn to PNG."""
    loaded = QgsProject.instance()
    found = {"read": loaded.read(path), "crs": loaded.crs().authid(), "title": loaded.title()}
    extent = loaded.viewSettings().defaultViewExtent()
    found["extent"] = [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()]
    layers = [node.layer() for node in loaded.layerTreeRoot().findLayers()]
    found["layers"] = [{"name": layer.name(), "source": layer.source(), **describe(layer)} for layer in layers]
    if layers:
        render(layers, extent, os.path.join(out_dir, "project.png"), 1200)
    return found


def main() -> None:
    path, out_dir, *rest = sys.argv[1:]
    street = rest[rest.index("--street") + 1] if "--street" in rest else None
    app = QgsApplication([], False)
    app.initQgis()
    if path.endswith(".qgz"):
        print(json.dumps(project(path, out_dir), ensure_ascii=False), flush=True)
        os._exit(0)
    if path.startswith("http"):
        print(json.dumps(served(path, out_dir, street or ""), ensure_ascii=False), flush=True)
        os._exit(0)
    names = ["components_point", "components_line", "components_polygon", "grid", "communities", "streets",
             "boundary", "roads"]
    layers = {n: QgsVectorLayer(f"{path}|layername={n}", n, "ogr") for n in names}
    found = {n: describe(layer) for n, layer in layers.items()}
    order = [layers[n] for n in names if layers[n].isValid()]
    render(order, layers["boundary"].extent(), os.path.join(out_dir, "district.png"))
    if street:
        request = QgsFeatureRequest().setFilterExpression(f"\"code\" = '{street}'")
        boxes = [f.geometry().boundingBox() for f in layers["streets"].getFeatures(request)]
        extent = boxes[0]
        for box in boxes[1:]:
            extent.combineExtentWith(box)
        render(order, extent, os.path.join(out_dir, "street.png"), 1600)
    print(json.dumps(found, ensure_ascii=False), flush=True)
    os._exit(0)  # QGIS's own teardown may crash once the layers are gone; all is written


if __name__ == "__main__":
    main()
