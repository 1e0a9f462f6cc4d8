import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from browser import chromium, console_errors, offline, open_map, requests, screenshot
from citygrid import crs, maps, synth
from citygrid._i18n import using
from citygrid.registry import Registry, open_registry

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    d = synth.make_district(seed=2, n_components=6_000, reserve=5)
    path = tmp_path_factory.mktemp("maps") / "r.gpkg"
    reg = Registry.create(path, district=d)
    batch = synth.make_batch(d, new=1, updated=0, retired=0, seed=1)
    batch["name"] = HOSTILE
    batch["owner"] = "坪山区城市管理和综合执法局"
    batch["owner_code"] = d.units.set_index("name").loc["坪山区城市管理和综合执法局", "code"]  # the unit's own code
    result = reg.ingest(batch, source="hostile")
    assert result.accepted
    reg.hostile_id = result.new_ids[0]
    reg.hostile_category = batch["category"].iloc[0]
    return reg


@pytest.fixture(scope="module")
def driver():
    d = chromium()
    yield d
    d.quit()


def _local(**extra):
    return {"basemap": "none", "assets": str(maps.find_leaflet()), **extra}


def _data(path):
    text = path.read_text(encoding="utf-8")
    match = re.search(r"window\.citygrid\.add\(\w+, (\{.*?\}), \{\"title\"", text, re.S)
    return json.loads(match.group(1))


def test_category_map_renders_every_feature_and_opens_a_popup(tmp_path, reg, driver):
    path = tmp_path / "category.html"
    with using("zh"):  # as a Chinese analyst makes it: popups, legend and search box in Chinese
        maps.category_map(reg, "0104", **_local()).save(path)
    open_map(driver, path)
    expected = len(reg.query(category="0104"))
    drawn = driver.execute_script("return window.citygrid.layers[0].drawn")
    assert drawn == expected
    assert console_errors(driver) == []
    # click on the first component, where it is drawn (after the view has settled)
    data = _data(path)
    ids = data["table"]["values"]["component_id"]
    first_id = ids["dict"][ids["idx"][0]]
    container = driver.find_element(By.CSS_SELECTOR, ".folium-map")
    size = container.size
    popup = ""
    for _ in range(5):
        driver.execute_script("var l = window.citygrid.layers[0]; var p = l.data.points;"
                              "l._map.setView([p.lat[0] / 1e6, p.lon[0] / 1e6], 19, {animate: false});")
        time.sleep(0.3)
        x, y = driver.execute_script("var l = window.citygrid.layers[0]; l.redraw(); return [l._xy[0], l._xy[1]];")
        ActionChains(driver).move_to_element_with_offset(container, x - size["width"] / 2,
                                                         y - size["height"] / 2).click().perform()
        popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").text
        if first_id in popup:
            break
    assert first_id in popup and "雨水箅子" in popup and "权属单位" in popup and "owner" not in popup
    placeholder = driver.find_element(By.CSS_SELECTOR, ".cg-search input").get_attribute("placeholder")
    assert placeholder == "标识码、名称或网格编码"
    screenshot(driver, "category_0104")


def test_street_map_has_a_layer_per_category_and_they_toggle(tmp_path, reg, driver):
    path = tmp_path / "street.html"
    maps.street_map(reg, "马峦街道", **_local()).save(path)
    open_map(driver, path)
    street = reg.query(street="马峦街道")
    points = int((street.geom_type == "Point").sum())
    assert driver.execute_script("return window.citygrid.layers[0].drawn") == points
    assert driver.execute_script("return window.citygrid.layers[0].shapes.length") == len(street) - points
    groups = driver.execute_script("return window.citygrid.layers[0].data.groups.length")
    assert groups == street["category"].nunique()
    driver.execute_script("window.citygrid.layers[0].setGroupVisible(0, false)")
    assert driver.execute_script("return window.citygrid.layers[0].drawn") < points
    assert console_errors(driver) == []
    screenshot(driver, "street_maluan")


def test_hostile_names_show_as_text_and_search_finds_by_id(tmp_path, reg, driver):
    path = tmp_path / "hostile.html"
    maps.category_map(reg, reg.hostile_category, **_local()).save(path)
    assert "<img src=x" not in path.read_text(encoding="utf-8").split("citygrid.add")[1]
    open_map(driver, path)
    box = driver.find_element(By.CSS_SELECTOR, ".cg-search input")
    box.send_keys(reg.hostile_id, Keys.ENTER)
    popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
    assert HOSTILE in popup.get_attribute("textContent")  # also when the popup scrolled it out of view
    assert popup.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return window.alerted === undefined")
    assert console_errors(driver) == []
    screenshot(driver, "hostile_popup")


def test_issues_map_has_a_layer_per_rule(tmp_path, driver):
    d = synth.make_district(seed=1, n_components=6_000, defects=True)
    from citygrid.validation import validate

    report = validate(d.components, district=d)
    path = tmp_path / "issues.html"
    maps.issues_map(report, outline=d.boundary, **_local()).save(path)
    open_map(driver, path)
    located = report.issues[~report.issues.geometry.isna() & ~report.issues.geometry.is_empty]
    names = driver.execute_script("return window.citygrid.layers[0].data.groups.map(g => g.name)")
    assert set(names) == set(located["rule"])
    total = driver.execute_script("var l = window.citygrid.layers[0]; return l.n + l.shapes.length")
    assert total == len(located)
    assert console_errors(driver) == []
    screenshot(driver, "issues")


def test_grid_map_and_inline_single_file(tmp_path, reg, driver):
    path = tmp_path / "grid.html"
    maps.grid_map(reg, street="坑梓街道", **_local(inline=True)).save(path)
    text = path.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in text and "unpkg" not in text and "<script src=" not in text
    open_map(driver, path)
    cells = (reg.district.grid["street_code"] == "440310005").sum()
    assert driver.execute_script("return window.citygrid.layers[0].shapes.length") == cells
    assert console_errors(driver) == []
    screenshot(driver, "grid_kengzi")


def test_amap_basemap_shifts_the_overlay_to_gcj02(tmp_path, reg):
    path = tmp_path / "amap.html"
    maps.category_map(reg, "0118", basemap="amap").save(path)
    data = _data(path)
    lamps = reg.query(category="0118").to_crs("EPSG:4326")
    points = lamps[lamps.geom_type == "Point"]
    lon, lat = crs.wgs84_to_gcj02(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    ids = data["table"]["values"]["component_id"]
    drawn = [ids["dict"][k] for k in ids["idx"][:len(data["points"]["lon"])]]
    at = pd.Series(range(len(points)), index=points["component_id"]).loc[drawn].to_numpy()
    assert np.abs(np.array(data["points"]["lon"]) / 1e6 - lon[at]).max() < 2e-6
    assert np.abs(np.array(data["points"]["lat"]) / 1e6 - lat[at]).max() < 2e-6
    shift = np.hypot((lon - points.geometry.x) * 102_800, (lat - points.geometry.y) * 110_800)
    assert 400 < shift.min() and shift.max() < 700
    text = path.read_text(encoding="utf-8")
    assert "autonavi.com" in text and "AutoNavi (GCJ-02)" in text


def test_basemaps_and_their_errors(tmp_path, reg, monkeypatch):
    monkeypatch.delenv("CITYGRID_TIANDITU_KEY", raising=False)
    monkeypatch.setattr("citygrid.settings.tianditu_key", None)
    with pytest.raises(maps.MapError, match="need a user key: give --tianditu-key"):
        maps.category_map(reg, "0118", basemap="tianditu-vec")
    html = maps.category_map(reg, "0118", basemap="tianditu-img", tianditu_key="abc").get_root().render()
    assert "img_w" in html and "cia_w" in html and "tk=abc" in html and "Tianditu" in html
    osm = maps.category_map(reg, "0118", basemap="osm").get_root().render()
    assert "openstreetmap" in osm.lower() and "OpenStreetMap" in osm
    custom = maps.category_map(reg, "0118", basemap="http://intranet.local/tiles/{z}/{x}/{y}.png").get_root().render()
    assert "intranet.local" in custom
    with pytest.raises(maps.MapError, match="basemap 'google' is not known.*--basemap"):
        maps.category_map(reg, "0118", basemap="google")


@pytest.mark.slow
def test_write_all_links_every_map(tmp_path, reg):
    index = maps.write_all(reg, tmp_path / "maps", **_local())
    text = index.read_text(encoding="utf-8")
    assert text.count('href="category/') == reg.components["category"].nunique()
    assert text.count('href="street/') == 6
    assert (tmp_path / "maps" / "street" / "440310002.html").exists()


def test_empty_category_still_makes_a_map(reg):
    html = maps.category_map(open_registry(reg.path), "0101").get_root().render()
    assert "citygrid.add" in html


def test_a_wrong_leaflet_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYGRID_LEAFLET_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no leaflet.js and leaflet.css in .*unset it"):
        maps.find_leaflet()


def test_shipped_leaflet_is_the_published_release():
    """The shipped files are Leaflet 1.9.4 as npm publishes it, with its licence."""
    folder = maps.find_leaflet()
    js = (folder / "leaflet.js").read_text(encoding="utf-8")
    assert 't.version="1.9.4"' in js
    assert "BSD 2-Clause" in (folder / "LICENSE").read_text(encoding="utf-8")
    for image in ("layers.png", "layers-2x.png", "marker-icon.png"):
        assert (folder / "images" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compact_encoding_is_small(reg):
    frame = reg.query(category="0104")
    data = maps._encode(frame, maps.Legend(frame["status"]), maps.POPUP_FIELDS, gcj02=False)
    assert len(data["points"]["lon"]) == int((frame.geom_type == "Point").sum())
    size = len(json.dumps(data, ensure_ascii=False))
    assert size / len(frame) < 120  # bytes per feature, popups included


TITLE_ATTACK = "</title><script>window.pwned=1</script>"


def test_hostile_street_and_category_names_stay_text_in_titles(tmp_path, reg, driver):
    """Names are data: in the page <title>, the title box and the legend they are shown, never run."""
    import sqlite3

    from citygrid.backends import gpkg

    path = tmp_path / "r.gpkg"
    with sqlite3.connect(reg.path) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    street = reg.district.streets["code"].iloc[0]
    conn = gpkg.connect(path)  # as QGIS edits them: the R-tree triggers need the GeoPackage functions
    conn.execute("UPDATE streets SET name = ? WHERE code = ?", (f"马峦{TITLE_ATTACK}", street))
    conn.execute("UPDATE citygrid_catalog SET name_zh = ? WHERE code = ?",
                 (f"井盖{TITLE_ATTACK}", reg.hostile_category))
    conn.close()
    hostile = open_registry(path)
    pages = {"street": maps.street_map(hostile, street, **_local()),
             "category": maps.category_map(hostile, reg.hostile_category, **_local()),
             "grid": maps.grid_map(hostile, **_local())}
    for kind, page in pages.items():
        out = tmp_path / f"{kind}.html"
        page.save(out)
        assert "<script>window.pwned" not in out.read_text(encoding="utf-8"), kind
        open_map(driver, out)
        assert driver.execute_script("return window.pwned === undefined"), kind
        assert console_errors(driver) == [], kind
    assert TITLE_ATTACK in driver.title or "unit grid" in driver.title


def test_csv_reports_and_exports_do_not_run_as_formulas(tmp_path, reg):
    """A spreadsheet runs a cell starting with = + - @; citygrid's CSV files lead such text with '."""
    import csv

    import citygrid as cg

    batch = reg.components.head(2).drop(columns=["retired_at", "version", "updated_at", "batch_id"]).copy()
    batch["component_id"] = ['=HYPERLINK("http://x.invalid","点我")', "@SUM(1+1)"]
    batch["name"] = ["+cmd|' /C calc'!A0", "-2+3"]
    report = cg.validate(batch, registry=reg)
    report.to_file(tmp_path / "issues.csv")
    reg.export(tmp_path / "export.csv", category=reg.hostile_category)
    with open(tmp_path / "issues.csv", encoding="utf-8-sig", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert "'=HYPERLINK(\"http://x.invalid\",\"点我\")" in cells and "'@SUM(1+1)" in cells
    with open(tmp_path / "export.csv", encoding="utf-8-sig", newline="") as f:
        exported = [cell for row in csv.reader(f) for cell in row]
    assert HOSTILE in exported  # text that is no formula stays as it is
    for cells_of_file in (cells, exported):
        assert not [c for c in cells_of_file if c[:1] in ("=", "+", "@")], cells_of_file


@pytest.fixture()
def offline_driver(driver):
    offline(driver)
    requests(driver)  # forget what earlier tests asked for
    yield driver
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


def _check_offline(driver, path, name):
    """The page draws with the network blocked: features, outlines, names, the layer icon, no request out."""
    open_map(driver, path)
    time.sleep(0.3)
    sent = [u for u in requests(driver) if not u.startswith(("file:", "data:"))]
    assert sent == [], f"{name} asked the network for {sent[:3]}"
    assert console_errors(driver) == [], name
    drawn = driver.execute_script("var l = window.citygrid.layers[0]; return l.drawn + l.shapes.length")
    assert drawn > 0, name
    assert driver.execute_script("return document.querySelectorAll('.cg-label').length") > 0, name
    context = driver.execute_script("return document.querySelectorAll('.leaflet-cg-context-pane canvas').length")
    assert context == 1, name
    icon = driver.execute_script("""var t = document.querySelector('.leaflet-control-layers-toggle');
        return t ? getComputedStyle(t).backgroundImage : 'no control';""")
    assert icon == "no control" or icon.startswith(('url("data:image/png', 'url("file:')), (name, icon[:60])
    screenshot(driver, f"offline_{name}")


def test_every_kind_of_map_draws_offline_by_default(tmp_path, reg, offline_driver):
    """Defaults only: Leaflet inlined, no tiles; the district's outlines, roads and names give context."""
    report = cg_validate(reg)
    pages = {"category": maps.category_map(reg, "0104"), "street": maps.street_map(reg, "马峦街道"),
             "grid": maps.grid_map(reg, street="坑梓街道"), "issues": maps.issues_map(report, district=reg.district),
             "district": maps.district_map(reg),
             "query": maps.components_map(reg, reg.query(street="马峦街道", status="完好"), column="owner")}
    for name, page in pages.items():
        path = tmp_path / f"{name}.html"
        page.save(path)
        text = path.read_text(encoding="utf-8")
        assert "https://" not in text.split("window.citygrid.add")[0].split("leaflet.js")[0] or name, name
        _check_offline(offline_driver, path, name)


def cg_validate(reg):
    import citygrid as cg

    batch = reg.query(street="马峦街道").head(40).assign(owner_code="91440300MA5XXXXXXX")
    return cg.validate(batch, registry=reg)


@pytest.mark.slow
def test_a_maps_folder_copied_to_another_pc_works_offline(tmp_path, reg, offline_driver):
    """write_all links a copy of Leaflet relatively: the folder moved elsewhere still draws."""
    import shutil

    maps.write_all(reg, tmp_path / "maps")
    moved = tmp_path / "department-pc" / "地图"
    shutil.copytree(tmp_path / "maps", moved)
    shutil.rmtree(tmp_path / "maps")
    text = (moved / "street" / "440310002.html").read_text(encoding="utf-8")
    assert 'src="../_assets/leaflet/leaflet.js"' in text and str(tmp_path) not in text
    _check_offline(offline_driver, moved / "street" / "440310002.html", "copied_street")
    _check_offline(offline_driver, moved / "category" / "0104.html", "copied_category")


def test_problem_statuses_are_drawn_on_top_and_every_legend_entry_shows(reg):
    frame = reg.query(category="0104")
    legend = maps.Legend(frame["status"], maps.STATUS_COLOURS, on_top=maps.PROBLEM_STATUSES)
    data = maps._encode(frame, legend, maps.POPUP_FIELDS, gcj02=False)
    names = [data["groups"][g]["name"] for g in data["points"]["group"]]
    problem = [n in maps.PROBLEM_STATUSES for n in names]
    assert any(problem) and problem == sorted(problem)  # all problem points come after the others
    street = maps.street_map(reg, "马峦街道").get_root().render()
    groups = json.loads(re.search(r'"groups":(\[.*?\]),"points"', street).group(1))
    symbols = [(g["color"], g["shape"]) for g in groups]
    present = reg.query(street="马峦街道")["category_name"].nunique()  # every kind in the street, one symbol each
    assert len(groups) == present > 60 and len(set(symbols)) == len(symbols)
    assert [g["name"] for g in groups] == sorted(g["name"] for g in groups)
    assert groups[0]["section"] == "01 Public utilities"


def test_colouring_by_an_unknown_column_names_the_choices(reg):
    with pytest.raises(maps.MapError, match="cannot colour by 'colour'.*status, category, owner.*--column"):
        maps.components_map(reg, reg.query(category="0104"), column="colour")


def test_search_finds_by_name_and_by_grid_cell(tmp_path, reg, driver):
    street = reg.components.set_index("component_id").loc[reg.hostile_id, "street_code"]
    path = tmp_path / "street.html"
    maps.street_map(reg, street, **_local()).save(path)
    open_map(driver, path)
    cell = reg.query(street=street)["grid"].iloc[0]
    box = driver.find_element(By.CSS_SELECTOR, ".cg-search input")
    for text in (HOSTILE, cell):
        box.clear()
        box.send_keys(text, Keys.ENTER)
        time.sleep(0.3)
        popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").text
        assert text in popup


TRAVERSALS = ["../../../tmp/citygrid-pwn", "..\\..\\evil", "CON", "NUL.txt", "a" * 300, "x\x00y", "/etc/passwd",
              "地图/../../逃逸"]


@pytest.mark.slow
def test_write_all_keeps_every_file_in_its_folder_whatever_the_codes_say(tmp_path, reg):
    """Street and category codes are data: traversal strings, reserved Windows names, 300 characters
    and NUL bytes in them never steer where a map is written. A registry whose street codes are of
    no code's form does not open; categories the catalog does not know get maps of safe names."""
    import sqlite3

    from citygrid.backends import gpkg
    from citygrid.errors import DistrictError

    def copy(name):
        path = tmp_path / name
        with sqlite3.connect(reg.path) as source, sqlite3.connect(path) as target:
            source.backup(target)
        return path

    streets = copy("streets.gpkg")
    conn = gpkg.connect(streets)
    for code, hostile in zip(reg.district.streets["code"], TRAVERSALS):
        conn.execute("UPDATE streets SET code = ?, name = ? WHERE code = ?", (hostile, hostile, code))
    conn.close()
    with pytest.raises(DistrictError, match="street code"):
        maps.write_all(open_registry(streets), tmp_path / "refused")
    assert not list((tmp_path / "refused").rglob("*.html"))
    path = copy("r.gpkg")
    conn = gpkg.connect(path)
    ids = reg.components.groupby("category")["component_id"].first()
    for component, hostile in zip(ids, TRAVERSALS):  # categories the catalog does not know
        for layer in ("components_point", "components_line", "components_polygon"):
            conn.execute(f"UPDATE {layer} SET category = ? WHERE component_id = ?", (hostile, component))
    conn.close()
    out = tmp_path / "out" / "maps"
    index = maps.write_all(open_registry(path), out)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".html"]
    assert written and all(out in p.parents or p == index for p in written)
    assert not any(Path(p).exists() for p in ("/tmp/citygrid-pwn.html", "/etc/passwd.html"))
    names = [p.name for p in written]
    assert len(names) == len(set(p.relative_to(out).as_posix() for p in written))  # no collisions
    assert all(len(n) <= 40 and "\x00" not in n and n.split(".")[0].upper() not in ("CON", "NUL") for n in names)
    text = index.read_text(encoding="utf-8")
    assert text.count('href="street/') == 6 and "not in the catalog" in text


def test_the_district_map_tells_classes_and_kinds_apart_and_folds_its_legend(tmp_path, reg, driver):
    """A hue family per major class, a colour and symbol per kind within it; dots grow with the zoom; the legend
    is grouped by class, folded, and a class's box hides all its kinds."""
    import colorsys

    path = tmp_path / "district.html"
    with using("zh"):
        maps.district_map(reg, **_local()).save(path)
    groups = _data(path)["groups"]
    assert len(groups) > 100 and len({(g["color"], g["shape"]) for g in groups}) == len(groups)
    hue = {}
    for g in groups:
        r, gr, b = (int(g["color"][k:k + 2], 16) / 255 for k in (1, 3, 5))
        hue.setdefault(g["section"][:2], []).append(colorsys.rgb_to_hls(r, gr, b)[0])
    for major, hues in hue.items():  # within a class the hues stay within 0.07 of the class's
        centre = maps.MAJOR_HUES[major]
        assert max(min(abs(h - centre), 1 - abs(h - centre)) for h in hues) < 0.07, major
    assert groups[0]["section"] == "01 公用设施"
    open_map(driver, path)
    sizes = driver.execute_script("return [12, 14, 16, 18].map(window.citygrid.radiusAt)")
    assert sizes == sorted(sizes) and sizes[0] >= 2 and sizes[-1] > 2 * sizes[0]
    sections = driver.find_elements(By.CSS_SELECTOR, ".cg-legend details.cg-section")
    assert len(sections) == len(hue) and not any(s.get_attribute("open") for s in sections)
    legend = driver.find_element(By.CSS_SELECTOR, ".cg-legend > details > summary")
    assert legend.text.startswith("图例")
    legend.click()  # unfold the legend, then the first class
    sections[0].find_element(By.TAG_NAME, "summary").click()
    screenshot(driver, "district_by_class")
    before = driver.execute_script("return window.citygrid.layers[0].drawn")
    sections[0].find_element(By.CSS_SELECTOR, "input[data-section]").click()
    after = driver.execute_script("return window.citygrid.layers[0].drawn")
    in_first = sum(g["count"] for g in groups if g["section"] == groups[0]["section"])
    assert 0 < before - after <= in_first
    assert console_errors(driver) == []
