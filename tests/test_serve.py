"""`citygrid serve`: the registry read over OGC API – Features, checked by GDAL's client and by the CLI.

The service runs as a user runs it (``citygrid serve REG --port N`` in a subprocess); GDAL's
OAPIF driver, not a client written here, reads its collections.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from citygrid import synth
from citygrid.crs import wgs84_to_gcj02
from citygrid.registry import Registry, copy_registry, open_registry

pytest.importorskip("pygeoapi")
pytest.importorskip("waitress")

CLI = [sys.executable, "-m", "citygrid.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def _json(url: str) -> dict:
    status, body = _get(url)
    assert status == 200, body
    return json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


class Service:
    """``citygrid serve`` in a subprocess, up once its conformance page answers."""

    def __init__(self, target: str, *more: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([*CLI, "serve", target, "--port", str(self.port), *more],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**__import__("os").environ, "CITYGRID_LANG": "en"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.communicate()[1])
            try:
                urllib.request.urlopen(self.base + "/conformance", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the service did not start")

    def url(self, path: str, **params: object) -> str:
        return self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")

    def stop(self) -> tuple[str, str]:
        self.process.terminate()
        return self.process.communicate(timeout=30)


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=7, n_components=3_000)


@pytest.fixture(scope="module")
def registry(district, tmp_path_factory):
    return Registry.create(tmp_path_factory.mktemp("serve") / "served.gpkg", district)


@pytest.fixture(scope="module")
def service(registry):
    served = Service(str(registry.path))
    yield served
    served.stop()


def test_gdal_reads_every_component_of_a_street_as_the_registry_holds_it(registry, service):
    street = registry.district.streets["name"].iloc[2]
    expected = registry.query(street=street).set_index("component_id").sort_index()
    layers = dict(pyogrio.list_layers(f"OAPIF:{service.base}"))
    assert set(layers) == {"components", "streets", "communities", "grid", "catalog"}
    read = pyogrio.read_dataframe(f"OAPIF:{service.base}", layer="components", where=f"street = '{street}'")
    read = read.set_index("component_id").sort_index()
    assert len(read) == len(expected) > 0
    assert list(read.index) == list(expected.index)
    for column in ("category", "category_name", "name", "owner", "owner_code", "maintainer", "department",
                   "street", "community", "grid", "status", "source", "material"):
        served = read[column].astype(object).where(read[column].notna(), None).tolist()
        held = expected[column].astype(object).where(expected[column].notna(), None).tolist()
        assert served == held, column
    assert (read["version"].astype(int) == expected["version"]).all()
    survey = pd.to_datetime(read["survey_date"]).dt.tz_localize(None)
    assert (survey == expected["survey_date"]).all()
    wgs84 = expected.geometry.to_crs(4326).to_numpy()
    assert shapely.equals_exact(read.geometry.to_numpy(), wgs84, tolerance=1e-9).all()
    info = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{service.base}", "components"],
                          capture_output=True, text=True, check=True).stdout
    assert f"Feature Count: {len(registry.components)}" in info
    streets = pyogrio.read_dataframe(f"OAPIF:{service.base}", layer="streets")
    assert sorted(streets["name"]) == sorted(registry.district.streets["name"])


def test_paging_covers_each_component_once_and_bbox_is_the_registry_bbox(registry, service):
    west, south, east, north = registry.components.to_crs(4326).total_bounds
    box = (west, south, west + (east - west) / 3, south + (north - south) / 3)
    expected = set(registry.query(bbox=box, bbox_crs="EPSG:4326")["component_id"])
    seen: list[str] = []
    url = service.url("/collections/components/items", bbox=",".join(map(str, box)), limit=97)
    while url:
        page = _json(url)
        assert page["numberMatched"] == len(expected)
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) and set(seen) == expected
    hits = _json(service.url("/collections/components/items", resulttype="hits", status="破损"))
    assert hits["numberMatched"] == len(registry.query(status="破损")) and hits["features"] == []


def test_queryables_take_names_or_codes_as_the_registry_query_does(registry, service):
    street = registry.district.streets.iloc[1]
    by_name = _json(service.url("/collections/components/items", street=street["name"], limit=1))
    by_code = _json(service.url("/collections/components/items", street=street["code"], limit=1))
    assert by_name["numberMatched"] == by_code["numberMatched"] == len(registry.query(street=street["name"]))
    unit = registry.components["maintainer"].value_counts().index[-1]
    expected = registry.components[(registry.components["owner"] == unit)
                                   | (registry.components["maintainer"] == unit)]
    assert _json(service.url("/collections/components/items", unit=unit, resulttype="hits"))["numberMatched"] \
        == len(expected) > 0
    category = registry.components["category"].iloc[0]
    name = registry.catalog[category].name_zh
    both = _json(service.url("/collections/components/items", category=name, street=street["name"],
                             resulttype="hits"))
    assert both["numberMatched"] == len(registry.query(category=category, street=street["name"]))
    one = registry.components["component_id"].iloc[5]
    item = _json(service.url(f"/collections/components/items/{one}"))
    assert item["id"] == one and item["properties"]["component_id"] == one
    catalog = _json(service.url("/collections/catalog/items", limit=500))
    assert catalog["numberMatched"] == len(registry.catalog) == 136
    queryables = _json(service.url("/collections/components/queryables"))
    assert {"category", "street", "status", "owner"} <= set(queryables["properties"])


def test_collections_have_chinese_titles_and_english_on_request(service, registry):
    district = registry.district.name
    zh = {c["id"]: c["title"] for c in _json(service.url("/collections", lang="zh"))["collections"]}
    en = {c["id"]: c["title"] for c in _json(service.url("/collections", lang="en"))["collections"]}
    assert zh["components"] == f"{district}城市部件" and zh["grid"] == f"{district}单元网格"
    assert en["components"] == f"Components of {district}"
    for tag in ("zh-Hans", "zh-Hant-TW", "fr", "xx-!!", "%FF"):  # pygeoapi alone answers 500 to some of these
        status, body = _get(service.base + f"/collections?lang={tag}")
        assert status == 200 and json.loads(body)["collections"][0]["title"] == zh["components"], tag
    request = urllib.request.Request(service.url("/collections"), headers={"Accept-Language": "en-GB,en;q=0.9"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["collections"][0]["title"] == en["components"]


def _point(registry, row: int) -> tuple[float, float]:
    geom = registry.components.iloc[[row]].to_crs(4326).geometry.representative_point().iloc[0]
    return geom.x, geom.y


def test_whose_is_this_answers_as_the_cli_in_wgs84_and_gcj02(registry, service):
    unnamed = int(np.flatnonzero(registry.components["name"].isna())[0])
    for row in (0, unnamed, 117):
        x, y = _point(registry, row)
        cli = subprocess.run([*CLI, "owner", str(x), str(y), "-r", str(registry.path), "--json"],
                             capture_output=True, text=True, check=True).stdout
        expected = json.loads(cli, parse_constant=lambda c: pytest.fail(f"the CLI printed {c}"))
        assert _json(service.url("/owner", x=x, y=y)) == expected
        gx, gy = wgs84_to_gcj02(x, y)
        shifted = _json(service.url("/owner", x=float(gx), y=float(gy), crs="gcj02"))
        assert shifted["grid"] == expected["grid"]
        assert [c["component_id"] for c in shifted["components"]][:1] == \
            [c["component_id"] for c in expected["components"]][:1]
    assert expected["components"][0]["component_id"] == registry.components["component_id"].iloc[117]


BAD = [
    ("/collections/components/items", {"bbox": "garbage"}, 400, "bbox"),
    ("/collections/components/items", {"bbox": "1,2,3"}, 400, "bbox"),
    ("/collections/components/items", {"limit": 10**9}, 400, "limit"),
    ("/collections/components/items", {"limit": -1}, 400, "limit"),
    ("/collections/components/items", {"offset": "x"}, 400, "offset"),
    ("/collections/nope/items", {}, 404, "collection"),
    ("/collections/components/items", {"street": "'; DROP TABLE components; --"}, 400, "street"),
    ("/collections/components/items", {"category": "0101' OR '1'='1"}, 400, "category"),
    ("/collections/components/items", {"stret": "坑梓街道"}, 400, "stret"),
    ("/collections/components/items", {"filter": "street='x'"}, 400, "filter"),
    ("/collections/components/items/4403100101999999", {}, 404, "4403100101999999"),
    ("/owner", {"x": 2.3522, "y": 48.8566, "crs": "gcj02"}, 400, "outside"),
    ("/owner", {"x": "nan", "y": 22.7}, 400, "finite"),
    ("/owner", {"x": "<script>", "y": 22.7}, 400, "number"),
    ("/owner", {"x": 114.35, "y": 22.7, "crs": "EPSG:99999"}, 400, "crs"),
    ("/owner", {"x": 114.35, "y": 22.7, "radius": 1e9}, 400, "radius"),
    ("/no/such/page", {}, 404, "no such"),
]


@pytest.mark.parametrize(("path", "params", "status", "says"), BAD)
def test_bad_input_gets_a_one_line_json_error_never_a_traceback(service, path, params, status, says):
    code, body = _get(service.url(path, **params))
    assert code == status, body
    assert body.strip().count("\n") == 0 and "Traceback" not in body
    assert says.lower() in json.loads(body)["description"].lower()


def test_the_service_never_writes_and_listens_on_loopback_only(registry, service):
    before = open_registry(registry.path).state
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        request = urllib.request.Request(service.url("/collections/components/items/x"), method=method, data=b"{}")
        try:
            urllib.request.urlopen(request, timeout=10)
            pytest.fail(f"{method} was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 405 and "only reads" in exc.read().decode()
    assert open_registry(registry.path).state == before
    listening = {line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[3] == "0A"}
    assert f"0100007F:{service.port:04X}" in listening
    assert f"00000000:{service.port:04X}" not in listening


def test_a_port_in_use_or_a_missing_registry_is_one_line_naming_the_option(registry, service):
    busy = subprocess.run([*CLI, "serve", str(registry.path), "--port", str(service.port)], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert busy.returncode == 2 and "--port" in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    missing = subprocess.run([*CLI, "serve", "no/such.gpkg"], capture_output=True, text=True, timeout=120,
                             env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_on_postgis_it_serves_as_a_reader_and_refuses_a_writer(cluster, registry):
    from citygrid.backends import postgis

    url = copy_registry(registry.path, cluster.create_database(f"s{uuid.uuid4().hex[:12]}")).store.url
    refused = subprocess.run([*CLI, "serve", url, "--port", str(_free_port())], capture_output=True, text=True,
                             timeout=120, env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert refused.returncode == 2 and "may only read" in refused.stderr
    role = f"reader_{uuid.uuid4().hex[:8]}"
    postgis.add_reader_role(url, role)
    reader = url.replace("postgres@", f"{role}@")
    import psycopg

    with psycopg.connect(reader) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE citygrid.components SET status = '丢失'")
    before = open_registry(url).state
    served = Service(reader)
    try:
        street = registry.district.streets["name"].iloc[0]
        got = _json(served.url("/collections/components/items", street=street, resulttype="hits"))
        assert got["numberMatched"] == len(registry.query(street=street))
        x, y = _point(registry, 3)
        assert _json(served.url("/owner", x=x, y=y))["components"][0]["component_id"] == \
            registry.components["component_id"].iloc[3]
    finally:
        served.stop()
    assert open_registry(url).state == before


def test_qgis_reads_the_service_as_the_guide_says(registry, service, tmp_path):
    """QGIS's own OGC API – Features provider (the guide's Layer > Add WFS / OGC API - Features Layer)."""
    from test_styles import ARTIFACTS, _look, _qgis

    if not _qgis():
        pytest.skip("QGIS is not installed")
    street = registry.district.streets["name"].iloc[3]
    found = _look(service.base, tmp_path, "--street", street)
    assert found["valid"] and found["crs"] == "EPSG:4326"
    assert found["features"] == len(registry.components)
    assert found["street"] == len(registry.query(street=street)) > 0
    assert found["streets"] == len(registry.district.streets)
    assert {"component_id", "category_name", "owner", "maintainer", "grid"} <= set(found["fields"])
    image = tmp_path / "served_street.png"
    assert image.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "qgis_served_street.png").write_bytes(image.read_bytes())


def test_a_merge_by_anyone_is_served_from_the_next_request(registry, tmp_path):
    import shutil

    path = tmp_path / "busy.gpkg"
    shutil.copy(registry.path, path)
    served = Service(str(path))
    try:
        def broken() -> int:
            return _json(served.url("/collections/components/items", status="丢失", resulttype="hits"))["numberMatched"]

        before = broken()
        writer = open_registry(path)
        batch = writer.components[writer.components["status"] != "丢失"].iloc[:40].copy()
        batch["status"] = "丢失"
        result = writer.ingest(batch, source="survey while the service runs")
        assert result.accepted
        assert broken() == before + 40
        one = batch["component_id"].iloc[0]
        assert _json(served.url(f"/collections/components/items/{one}"))["properties"]["status"] == "丢失"
    finally:
        served.stop()
