"""The registry as GIS users open it: QGIS styles in the GeoPackage, read back by QGIS itself.

QGIS runs headless from Debian's ``qgis`` and ``python3-qgis`` (installed by ``.ci/run``) in the
system Python (``qgis_look.py``); without it the QGIS tests are skipped, unless
``CITYGRID_REQUIRE_QGIS`` is set (CI sets it).
"""

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import citygrid as cg
from citygrid import synth
from citygrid.backends import copy_store, open_store, upgrade_store
from citygrid.catalog import load_catalog
from citygrid.styles import MAJOR_HUES, registry_styles

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
SYSTEM_PYTHON = "/usr/bin/python3"


def _qgis() -> bool:
    found = Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True).returncode == 0
    if not found and os.environ.get("CITYGRID_REQUIRE_QGIS"):
        pytest.fail("QGIS is missing: .ci/run installs Debian's qgis and python3-qgis")
    return found


def _look(path: Path, out: Path, *args: str) -> dict:
    """What QGIS finds in the GeoPackage at `path` (and PNGs rendered into `out`)."""
    done = subprocess.run([SYSTEM_PYTHON, str(HERE / "qgis_look.py"), str(path), str(out), *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=0, n_components=3_000)


@pytest.fixture(scope="module")
def registry(district, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("styled") / "registry.gpkg"
    cg.Registry.create(path, district=district)
    return path


@pytest.mark.parametrize("layout", ["cjt214", "gbt47678"])
def test_every_category_has_a_symbol_of_its_own_and_the_documents_parse(layout):
    catalog = load_catalog()
    rows = {r["f_table_name"]: r for r in registry_styles(catalog, layout=layout)}
    for kind in ("point", "line", "polygon"):
        qml = ET.fromstring(rows[f"components_{kind}"]["styleQML"].split("\n", 1)[1])
        categories = qml.findall("./renderer-v2/categories/category")
        wanted = [c.code_2026 if layout == "gbt47678" else c.code for c in catalog if c.geometry == kind]
        assert [c.get("value") for c in categories] == wanted
        symbols = {s.get("name"): s for s in qml.findall("./renderer-v2/symbols/symbol")}
        looks = [tuple(sorted((p.get("k"), p.get("v")) for p in symbols[c.get("symbol")].iter("prop")
                              if p.get("k") in ("color", "name", "line_color", "line_style", "style")))
                 for c in categories]
        assert len(set(looks)) == len(looks), "two categories drawn alike"
        sld = ET.fromstring(rows[f"components_{kind}"]["styleSLD"].split("\n", 1)[1])
        literals = [e.text for e in sld.iter("{http://www.opengis.net/ogc}Literal")]
        assert literals == wanted
    for name in ("boundary", "streets", "communities", "grid", "roads"):
        ET.fromstring(rows[name]["styleQML"].split("\n", 1)[1])
        ET.fromstring(rows[name]["styleSLD"].split("\n", 1)[1])


def test_a_major_class_keeps_one_hue():
    import colorsys

    catalog = load_catalog()
    rows = registry_styles(catalog, layout="cjt214")
    qml = ET.fromstring(rows[0]["styleQML"].split("\n", 1)[1])
    symbols = {s.get("name"): s for s in qml.findall("./renderer-v2/symbols/symbol")}
    hues: dict[str, set] = {}
    for c in qml.findall("./renderer-v2/categories/category"):
        colour = next(p.get("v") for p in symbols[c.get("symbol")].iter("prop") if p.get("k") == "color")
        r, g, b = (int(v) / 255 for v in colour.split(",")[:3])
        hues.setdefault(catalog[c.get("value")].major_code, set()).add(round(colorsys.rgb_to_hls(r, g, b)[0], 2))
    assert all(len(h) == 1 for h in hues.values()), hues
    assert len({h.pop() for major, h in hues.items() if major in MAJOR_HUES}) == len(hues)


def test_the_registry_file_carries_its_styles_for_every_layer(registry):
    with sqlite3.connect(registry) as conn:
        rows = conn.execute("SELECT f_table_name, f_geometry_column, styleName, useAsDefault FROM layer_styles"
                            ).fetchall()
        registered = conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone()
        layers = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_geometry_columns")}
    assert {r[0] for r in rows} == layers
    assert {(r[1], r[2], r[3]) for r in rows} == {("geom", "citygrid", 1)}
    assert registered == ("attributes",)
    assert cg.open_registry(registry).store.verify() == []


def test_a_copy_and_an_upgrade_carry_styles(registry, tmp_path):
    copy = tmp_path / "copy.gpkg"
    copy_store(open_store(str(registry)), str(copy))  # what copy_registry(url, path) does from PostGIS
    old = tmp_path / "schema1.gpkg"
    with gzip.open(HERE / "data" / "schema1.gpkg.gz", "rb") as packed, open(old, "wb") as out:
        shutil.copyfileobj(packed, out)
    with sqlite3.connect(old) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchall()
    upgrade_store(str(old))
    for path in (copy, old):
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM layer_styles WHERE styleName = 'citygrid' AND useAsDefault"
                                ).fetchone()[0] == 8


def test_a_style_a_user_saved_is_kept_and_ours_made_default_again(registry, tmp_path):
    path = tmp_path / "mine.gpkg"
    shutil.copy(registry, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE layer_styles SET useAsDefault = 0")
        conn.execute("INSERT INTO layer_styles (f_table_name, f_geometry_column, styleName, styleQML, useAsDefault) "
                     "VALUES ('streets', 'geom', 'mine', '<qgis/>', 1)")
    from citygrid.backends.gpkg import store_styles

    with sqlite3.connect(path) as conn:
        store_styles(conn, registry_styles(load_catalog(), layout="cjt214"))
        found = conn.execute("SELECT styleName, useAsDefault FROM layer_styles WHERE f_table_name = 'streets' "
                             "ORDER BY styleName").fetchall()
    assert found == [("citygrid", 1), ("mine", 0)]


def _colours(png: Path) -> int:
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"))
    return len(np.unique(image.reshape(-1, 3), axis=0))


def test_qgis_opens_the_registry_styled(registry, district, tmp_path):
    if not _qgis():
        pytest.skip("QGIS (Debian's qgis, python3-qgis) is not installed")
    street = district.streets["code"].iloc[1]
    found = _look(registry, tmp_path, "--street", street)
    catalog = load_catalog()
    for kind in ("point", "line", "polygon"):
        layer = found[f"components_{kind}"]
        assert layer["valid"] and layer["renderer"] == "categorizedSymbol" and layer["attribute"] == "category"
        assert [c[0] for c in layer["categories"]] == [c.code for c in catalog if c.geometry == kind]
        assert all(catalog[c[0]].name_zh in c[1] for c in layer["categories"])  # Chinese names in the legend
        assert layer["labels"] and layer["label_field"] == 'coalesce("name", "component_id")'
        assert layer["label_max_scale"] == 5000
    counts = Counter(district.components.geom_type.map({"Point": "point", "LineString": "line",
                                                        "Polygon": "polygon"}))
    assert found["components_point"]["features"] == counts["point"]
    for name, field in (("streets", "name"), ("communities", "name"), ("grid", "code")):
        assert found[name]["renderer"] == "singleSymbol" and found[name]["label_field"] == field
    ARTIFACTS.mkdir(exist_ok=True)
    for image in ("district", "street"):
        png = tmp_path / f"{image}.png"
        assert png.stat().st_size > 50_000 and _colours(png) > 50, f"{image}.png looks blank"
        shutil.copy(png, ARTIFACTS / f"qgis_{image}.png")


def test_qgis_draws_a_report_by_severity(registry, district, tmp_path):
    if not _qgis():
        pytest.skip("QGIS (Debian's qgis, python3-qgis) is not installed")
    batch = district.components.iloc[:300].copy()
    batch.loc[batch.index[:20], "status"] = "坏了"
    batch.loc[batch.index[20:40], "component_id"] = batch["component_id"].iloc[0]
    report = cg.validate(batch, registry=cg.open_registry(registry))
    path = report.to_file(tmp_path / "issues.gpkg")
    script = ("import os, json, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
              "from qgis.core import QgsApplication, QgsVectorLayer\n"
              "app = QgsApplication([], False); app.initQgis()\n"
              f"layer = QgsVectorLayer({str(path)!r} + '|layername=issues', 'issues', 'ogr')\n"
              "r = layer.renderer()\n"
              "print(json.dumps([r.type(), r.classAttribute(), [c.value() for c in r.categories()],"
              " layer.featureCount()]), flush=True); os._exit(0)\n")
    done = subprocess.run([SYSTEM_PYTHON, "-c", script], capture_output=True, text=True, timeout=300)
    kind, attribute, values, count = json.loads(done.stdout.strip().splitlines()[-1])
    assert (kind, attribute, values, count) == ("categorizedSymbol", "severity", ["error", "warning", "info"],
                                                len(report))


@pytest.mark.parametrize("fields", ["citygrid", "gbt47678"])
def test_an_export_comes_with_a_project_qgis_opens_in_order_at_the_streets_extent(registry, district, tmp_path,
                                                                                  fields):
    from citygrid.project import ORDER
    from citygrid.schema import standard_columns
    from test_gpkg_conformance import gdal_errors

    reg = cg.open_registry(registry)
    street = district.streets.iloc[2]
    files = reg.export(tmp_path / "out" / "street.gpkg", street=street["name"], fields=fields)
    assert [f.name for f in files] == ["street.gpkg", "street.qgz"]
    assert gdal_errors(files[0]) == []
    if not _qgis():
        pytest.skip("QGIS (Debian's qgis, python3-qgis) is not installed")
    moved = tmp_path / "handed over"  # the two files travel together: the project names the GeoPackage relatively
    shutil.copytree(tmp_path / "out", moved)
    found = _look(moved / "street.qgz", tmp_path)
    assert found["read"] and found["crs"] == "EPSG:4547" and street["name"] in found["title"]
    layers = found["layers"]
    assert [layer["source"].rsplit("layername=", 1)[1] for layer in layers] == [
        name for name in ORDER if name != "boundary"]
    assert all(layer["valid"] and str(moved) in layer["source"] for layer in layers)
    expected = reg.query(street=street["name"])
    kinds = Counter(expected.geom_type.map({"Point": "point", "LineString": "line", "Polygon": "polygon"}))
    category = standard_columns(fields)["category"]
    for layer, kind in zip(layers[:3], ("point", "line", "polygon"), strict=True):
        assert layer["features"] == kinds[kind]
        assert layer["renderer"] == "categorizedSymbol" and layer["attribute"] == category
        assert layer["label_field"] == (f'coalesce("{standard_columns(fields)["name"]}", '
                                        f'"{standard_columns(fields)["component_id"]}")')
    assert [layer["features"] for layer in layers[3:]] == [
        int((district.grid["street_code"] == street["code"]).sum()),
        int((district.communities["street_code"] == street["code"]).sum()), 1]
    xmin, ymin, xmax, ymax = district.streets.iloc[[2]].total_bounds
    x0, y0, x1, y1 = found["extent"]
    assert x0 <= xmin and y0 <= ymin and x1 >= xmax and y1 >= ymax  # the street, with a margin
    assert (x1 - x0) < 1.2 * max(xmax - xmin, ymax - ymin)
    png = tmp_path / "project.png"
    assert png.stat().st_size > 50_000 and _colours(png) > 30
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / f"qgis_project_{fields}.png")
