"""The benchmark cases: the inputs they share, and each case beside the plain way it is measured against.

A case takes the number of components and returns a dict of facts; ``_seconds`` in it, when
present, is the timed part (else the harness times the whole call). :data:`CASES` names them.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
os.environ.setdefault("CITYGRID_CACHE_DIR", str(WORK / "cache"))  # a shared registry's client cache


def _district_file(n: int) -> Path:
    return WORK / f"district_{n}.gpkg"


def _components_file(n: int, suffix: str) -> Path:
    return WORK / f"components_{n}.{suffix}"


BATCH = {"new": 5_000, "updated": 4_500, "retired": 500}


def _registry_file(n: int) -> Path:
    return WORK / f"registry_{n}.gpkg"


def _batch_file(n: int) -> Path:
    return WORK / f"batch_{n}.gpkg"


def _prepare(n: int) -> None:
    """Write the inputs the read benchmarks need, once per n."""
    from citygrid import synth
    from citygrid.registry import Registry, open_registry

    WORK.mkdir(exist_ok=True)
    if not (_district_file(n).exists() and _components_file(n, "parquet").exists()):
        d = synth.make_district(seed=0, n_components=n)
        d.to_file(_district_file(n))
        d.components.to_parquet(_components_file(n, "parquet"))
        points = d.components[d.components.geom_type == "Point"]
        points.to_file(_components_file(n, "gpkg"), layer="components_point", engine="pyogrio")
    if not (_registry_file(n).exists() and _batch_file(n).exists()):
        d = synth.make_district(seed=0, n_components=n, reserve=BATCH["new"])
        Registry.create(_registry_file(n), district=d, overwrite=True)
        batch = synth.make_batch(d, seed=1, **BATCH)
        batch.to_file(_batch_file(n), layer="batch", engine="pyogrio")
    _ = open_registry(_registry_file(n)).components  # a first read keeps the snapshot later opens use


# --- cases: each returns a dict of extra facts; the runner times it -----------------

def case_generate(n: int) -> dict:
    from citygrid import synth

    d = synth.make_district(seed=0, n_components=n)
    return {"components": len(d.components), "grid cells": len(d.grid)}


def case_write_gpkg_citygrid(n: int) -> dict:
    from citygrid.admin import District

    d = District.from_file(_district_file(n))
    start = time.perf_counter()
    d.to_file(WORK / "out_citygrid.gpkg")
    return {"_seconds": time.perf_counter() - start,
            "MB on disk": round((WORK / "out_citygrid.gpkg").stat().st_size / 1e6, 1)}


def _plain_write(n: int, engine: str) -> dict:
    import geopandas as gpd

    points = gpd.read_parquet(_components_file(n, "parquet"))
    points = points[points.geom_type == "Point"]
    target = WORK / f"out_{engine}.gpkg"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    points.to_file(target, layer="components_point", engine=engine)
    return {"_seconds": time.perf_counter() - start, "rows": len(points)}


def case_write_gpkg_pyogrio(n: int) -> dict:
    return _plain_write(n, "pyogrio")


def case_write_gpkg_fiona(n: int) -> dict:
    return _plain_write(n, "fiona")


def case_read_gpkg_citygrid(n: int) -> dict:
    from citygrid.admin import District

    d = District.from_file(_district_file(n))
    return {"components": len(d.components)}


def _plain_read(n: int, engine: str) -> dict:
    import geopandas as gpd

    frame = gpd.read_file(_components_file(n, "gpkg"), engine=engine)
    return {"rows": len(frame)}


def case_read_gpkg_pyogrio(n: int) -> dict:
    return _plain_read(n, "pyogrio")


def case_read_gpkg_fiona(n: int) -> dict:
    return _plain_read(n, "fiona")


def case_write_parquet(n: int) -> dict:
    import geopandas as gpd

    frame = gpd.read_parquet(_components_file(n, "parquet"))
    start = time.perf_counter()
    frame.to_parquet(WORK / "out.parquet")
    return {"_seconds": time.perf_counter() - start,
            "MB on disk": round((WORK / "out.parquet").stat().st_size / 1e6, 1)}


def case_read_parquet(n: int) -> dict:
    import geopandas as gpd

    return {"rows": len(gpd.read_parquet(_components_file(n, "parquet")))}


def case_create_registry(n: int) -> dict:
    from citygrid import synth
    from citygrid.registry import Registry

    d = synth.make_district(seed=0, n_components=n)
    start = time.perf_counter()
    Registry.create(WORK / "created.gpkg", district=d, overwrite=True)
    return {"_seconds": time.perf_counter() - start,
            "MB on disk": round((WORK / "created.gpkg").stat().st_size / 1e6, 1)}


def case_open_registry(n: int) -> dict:
    from citygrid.registry import open_registry

    return {"components": len(open_registry(_registry_file(n)).components)}


def case_open_registry_cold(n: int) -> dict:
    """The first open after another program edited the registry: the layers are read, and kept."""
    from citygrid.backends.gpkg import connect, settle
    from citygrid.registry import open_registry

    target = _gpkg_copy(n, "cold.gpkg")
    conn = connect(target)  # an edit by another GeoPackage program, as QGIS makes one
    conn.execute("UPDATE components_point SET remarks = 'edited in QGIS' WHERE fid = 1")
    conn.close()
    start = time.perf_counter()
    count = len(open_registry(target).components)
    seconds = time.perf_counter() - start
    settle(target)  # a thread writes the snapshot meanwhile: when it is done, for the record
    return {"_seconds": seconds, "components": count,
            "snapshot written after s": round(time.perf_counter() - start, 2)}


def _cli(*args: str) -> float:
    """Seconds a ``citygrid`` command takes, run as a user runs it (a new process, imports included)."""
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("citygrid")), *args], check=True, capture_output=True)
    return time.perf_counter() - start


def case_open_registry_after_ingest(n: int) -> dict:
    """The first open in a new process after ``citygrid ingest`` merged a 10k batch."""
    from citygrid.registry import open_registry

    target = _gpkg_copy(n, "after_ingest.gpkg")
    _cli("ingest", str(_batch_file(n)), "--registry", str(target), "--source", "benchmark")
    start = time.perf_counter()
    count = len(open_registry(target).components)
    return {"_seconds": time.perf_counter() - start, "components": count}


def case_cli_ingest_10k(n: int) -> dict:
    """``citygrid ingest`` of the 10k batch, end to end, on a registry last opened before a change."""
    target = _gpkg_copy(n, "cli_ingest.gpkg")
    return {"_seconds": _cli("ingest", str(_batch_file(n)), "--registry", str(target), "--source", "benchmark")}


def case_cli_stats_after_ingest(n: int) -> dict:
    """``citygrid stats`` end to end, right after ``citygrid ingest`` (the next command a user runs)."""
    target = _gpkg_copy(n, "cli_stats.gpkg")
    _cli("ingest", str(_batch_file(n)), "--registry", str(target), "--source", "benchmark")
    return {"_seconds": _cli("stats", "--registry", str(target), "--by", "street")}


def _million_batch() -> Path:
    """Another synthetic district's million components as a batch (made once, not timed)."""
    batch = WORK / "batch_1m.gpkg"
    if not batch.exists():
        from citygrid import synth

        synth.make_district(seed=7, n_components=1_000_000).components.to_file(batch, layer="batch",
                                                                             engine="pyogrio")
    return batch


def _cli_validate(batch: Path, n: int) -> dict:
    """``citygrid validate BATCH --registry … --json`` end to end: its time, what it found, its peak memory."""
    start = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).with_name("citygrid")), "validate", str(batch), "--registry",
                          str(_registry_file(n)), "--json"], capture_output=True, check=False)
    seconds = time.perf_counter() - start
    summary = json.loads(out.stdout)["summary"]
    return {"_seconds": seconds, "rows": summary["checked"], "issues": summary["errors"] + summary["warnings"],
            "issues listed": summary["listed"], "JSON KB": round(len(out.stdout) / 1024),
            "CLI peak MB": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}


def case_cli_validate_1m(n: int) -> dict:
    """``citygrid validate`` of a batch of a million rows against the registry, end to end, with --json.

    Every row is checked against the registry, and about two million issues are found.
    """
    return _cli_validate(_million_batch(), n)


def case_cli_validate_5m(n: int) -> dict:
    """``citygrid validate`` of five million rows: the million-row batch five times over (made once, not timed).

    Each identifier comes five times, so the batch carries its million rows' issues five times
    and a duplicate for every row besides.
    """
    import pyogrio

    batch = WORK / "batch_5m.gpkg"
    if not batch.exists():
        rows = pyogrio.read_dataframe(_million_batch(), layer="batch", use_arrow=True)
        partial = WORK / "batch_5m.partial.gpkg"
        partial.unlink(missing_ok=True)
        for k in range(5):
            pyogrio.write_dataframe(rows, partial, layer="batch", append=k > 0)
        del rows
        partial.rename(batch)
    return _cli_validate(batch, n)


def case_cli_help(n: int) -> dict:
    return {"_seconds": _cli("--help")}


def _plain_registry_read(n: int, **options) -> dict:
    import geopandas as gpd
    import pandas as pd

    layers = ("components_point", "components_line", "components_polygon")
    frame = pd.concat([gpd.read_file(_registry_file(n), layer=layer, **options) for layer in layers])
    return {"rows": len(frame)}


def case_open_plain_pyogrio(n: int) -> dict:
    return _plain_registry_read(n, engine="pyogrio")


def case_open_plain_arrow(n: int) -> dict:
    return _plain_registry_read(n, engine="pyogrio", use_arrow=True)


def case_open_plain_fiona(n: int) -> dict:
    return _plain_registry_read(n, engine="fiona")


def _timed_calls(func, count: int) -> dict:
    import numpy as np

    times = []
    for i in range(count):
        start = time.perf_counter()
        func(i)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"_seconds": float(np.median(ms) / 1000), "calls": count, "mean ms": round(float(ms.mean()), 2),
            "p95 ms": round(float(np.percentile(ms, 95)), 2)}


def case_query_street(n: int, source: str | None = None) -> dict:
    from citygrid.registry import open_registry

    reg = open_registry(source or _registry_file(n))
    _ = reg.components, reg.district  # warm the caches: timed work starts after open
    streets = reg.district.streets["name"].tolist()
    return _timed_calls(lambda i: reg.query(street=streets[i % len(streets)], category="0118"), 30)


def case_query_street_plain(n: int) -> dict:
    """The same question on a GeoDataFrame already in memory: a boolean mask."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    layers = ("components_point", "components_line", "components_polygon")
    frame = gpd.GeoDataFrame(pd.concat([pyogrio.read_dataframe(_registry_file(n), layer=layer, use_arrow=True)
                                        for layer in layers], ignore_index=True))
    names = ["马峦街道", "坪山街道", "碧岭街道", "石井街道", "坑梓街道", "龙田街道"]
    return _timed_calls(lambda i: frame[(frame["street"] == names[i % len(names)]) & (frame["category"] == "0118")],
                        30)


def case_owner_at(n: int, source: str | None = None) -> dict:
    from citygrid.registry import open_registry

    reg = open_registry(source or _registry_file(n))
    sample = reg.components.sample(300, random_state=0).to_crs("EPSG:4326").geometry.representative_point()
    xs, ys = sample.x.to_numpy(), sample.y.to_numpy()
    reg.owner_at(xs[0], ys[0])
    out = _timed_calls(lambda i: reg.owner_at(xs[i], ys[i], radius=10), len(xs))
    found = sum(len(reg.owner_at(x, y, radius=10)) > 0 for x, y in zip(xs[:50], ys[:50]))
    out["found within 10 m"] = f"{found}/50"
    return out


def _gpkg_copy(n: int, name: str) -> Path:
    """A fresh copy of the prepared registry file."""
    import shutil

    target = WORK / name
    shutil.copy(_registry_file(n), target)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    os.sync()  # the copy's own write-back must not land in the timed work's first fsync
    return target


def case_ingest_10k(n: int, source: str | None = None) -> dict:
    from citygrid.io import read_batch
    from citygrid.registry import open_registry

    reg = open_registry(source or _gpkg_copy(n, "ingest.gpkg"))
    _ = reg.components, reg.district  # warm the caches: timed work starts after open
    batch = read_batch(_batch_file(n), layer="batch", catalog=reg.catalog)
    start = time.perf_counter()
    result = reg.ingest(batch, source="benchmark")
    seconds = time.perf_counter() - start
    if not result.accepted:
        raise SystemExit(result.report.summary().to_string())
    kept = {}
    if source is None:  # a thread writes the new state's snapshot meanwhile: when it is done, for the record
        from citygrid.backends.gpkg import settle

        settle(reg.path)
        kept = {"snapshot written after s": round(time.perf_counter() - start, 2)}
    return {"_seconds": seconds, "created": result.created, "updated": result.updated,
            "retired": result.retired, **kept}


def case_validate_registry(n: int) -> dict:
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    _ = reg.components, reg.district  # warm the caches: timed work starts after open
    start = time.perf_counter()
    report = reg.validate()
    return {"_seconds": time.perf_counter() - start, "issues": len(report), "grid cells": len(reg.district.grid)}


def case_validate_batch_10k(n: int) -> dict:
    from citygrid.io import read_batch
    from citygrid.registry import open_registry
    from citygrid.validation import validate

    reg = open_registry(_registry_file(n))
    _ = reg.components, reg.district  # warm the caches: timed work starts after open
    batch = read_batch(_batch_file(n), layer="batch", catalog=reg.catalog)
    start = time.perf_counter()
    report = validate(batch, registry=reg)
    return {"_seconds": time.perf_counter() - start, "rows": len(batch), "issues": len(report)}


# --- validation on faults it did not make (tests/faults.py) -------------------------------

FAULTS_PER_SHAPE = 20


def _faults_files(n: int) -> dict[str, Path]:
    return {"batch_registry": WORK / f"faults_batch_{n}.gpkg", "faulty": WORK / f"faulty_{n}.gpkg",
            "truth": WORK / f"faults_{n}.pkl"}


def _prepare_faults(n: int) -> None:
    """A registry with retired components and a faulty batch for it; a registry edited with faults."""
    import pickle

    from citygrid import synth
    from citygrid.registry import Registry

    files = _faults_files(n)
    if all(f.exists() for f in files.values()):
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    import faults

    d = synth.make_district(seed=0, n_components=n, reserve=40_000)  # spare rows of every kind to perturb
    reg = Registry.create(files["batch_registry"], district=d, overwrite=True)
    gone = d.components.sample(100, random_state=0).assign(action="retire")
    reg.ingest(gone, source="retired before the survey")
    current = d.components[~d.components["component_id"].isin(gone["component_id"])]
    batch = faults.batch_case(d, current, d.reserve, list(gone["component_id"]), per_shape=FAULTS_PER_SHAPE)
    Registry.create(files["faulty"], district=d, overwrite=True)
    edited, grid_faults = faults.registry_case(d, d.components, d.reserve, per_shape=FAULTS_PER_SHAPE)
    faults.write_into(files["faulty"], edited, grid_faults, d.grid)
    with open(files["truth"], "wb") as out:
        pickle.dump({"batch": batch, "registry": edited, "grid_faults": grid_faults, "grid": d.grid}, out)


def _truth(n: int) -> dict:
    import pickle

    sys.path.insert(0, str(HERE.parent / "tests"))
    with open(_faults_files(n)["truth"], "rb") as f:
        return pickle.load(f)


def _table(frame, scenario: str) -> list[dict]:
    return [{"scenario": scenario, **row} for row in frame.to_dict("records")]


def case_validate_faulty_batch(n: int) -> dict:
    import faults
    from citygrid.registry import open_registry
    from citygrid.validation import validate

    truth = _truth(n)
    reg = open_registry(_faults_files(n)["batch_registry"])
    _ = reg.components, reg.district
    case = truth["batch"]
    start = time.perf_counter()
    report = validate(case.frame, registry=reg)
    seconds = time.perf_counter() - start
    table = _table(faults.score(report.issues, case.truth), "survey batch against the registry")
    table += _table(faults.score_batches(case.batch_level, lambda f, **o: validate(f, registry=reg, **o)),
                    f"{len(case.batch_level)} whole batches (CRS)")
    return {"_seconds": seconds, "rows": len(case.frame), "faults": len(case.truth), "issues": len(report),
            "_table": table}


def case_validate_faulty_registry(n: int) -> dict:
    import faults
    from citygrid.registry import open_registry

    truth = _truth(n)
    reg = open_registry(_faults_files(n)["faulty"])
    _ = reg.components, reg.district
    start = time.perf_counter()
    report = reg.validate()
    seconds = time.perf_counter() - start
    issues = report.issues
    components = issues[~issues["rule"].str.startswith("grid.")]
    table = _table(faults.score(components, truth["registry"].truth, key="ids"), "registry edited by QGIS")
    table += _table(faults.score_grid(issues, truth["grid_faults"], truth["grid"]), "registry edited by QGIS")
    return {"_seconds": seconds, "components": len(reg.components), "faults": len(truth["registry"].truth)
            + len(truth["grid_faults"]), "issues": len(report), "_table": table}


def _render_seconds(path: Path) -> float:
    """Seconds until the page has drawn its features in headless Chromium."""
    import sys as _sys

    _sys.path.insert(0, str(HERE.parent / "tests"))
    from browser import chromium

    driver = chromium()
    try:
        start = time.perf_counter()
        driver.get(path.resolve().as_uri())
        done = ("return (window.citygrid && window.citygrid.layers.length && window.citygrid.layers[0]._xy) ? 1 : "
                "(document.querySelectorAll('.leaflet-interactive').length > 1000 ? 1 : 0)")
        while not driver.execute_script(done):
            if time.perf_counter() - start > 120:
                return float("nan")
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        driver.quit()


def case_category_map(n: int) -> dict:
    from citygrid import maps
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    code = reg.components["category"].value_counts().index[0]
    start = time.perf_counter()
    m = maps.category_map(reg, code)  # the defaults: Leaflet inlined, no tiles, the district's outlines
    path = WORK / "category_map.html"
    m.save(path)
    seconds = time.perf_counter() - start
    return {"_seconds": seconds, "features": int((reg.components["category"] == code).sum()),
            "MB": round(path.stat().st_size / 1e6, 2), "render s": round(_render_seconds(path), 2)}


def case_category_map_explore(n: int) -> dict:
    from citygrid import maps
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    code = reg.components["category"].value_counts().index[0]
    fields = [f for f, _ in maps.POPUP_FIELDS]  # the same 13 popup fields as ours
    frame = reg.query(category=code)[[*fields, "geometry"]]
    for column in ("survey_date", "change_date"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    start = time.perf_counter()
    m = frame.explore(tiles=None, popup=fields, tooltip=False)
    # the same local Leaflet as ours, so that it can render offline too
    leaflet = maps.find_leaflet()
    m.default_js = [("leaflet", f"{leaflet}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{leaflet}/leaflet.css")]
    path = WORK / "category_map_explore.html"
    m.save(path)
    seconds = time.perf_counter() - start
    return {"_seconds": seconds, "features": len(frame), "MB": round(path.stat().st_size / 1e6, 2),
            "render s": round(_render_seconds(path), 2)}


def case_street_map(n: int) -> dict:
    """The street with the most components: points, lines and polygons of every category."""
    from citygrid import maps
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    street = reg.components["street_code"].value_counts().index[0]
    start = time.perf_counter()
    path = WORK / "street_map.html"
    maps.street_map(reg, street).save(path)
    seconds = time.perf_counter() - start
    frame = reg.query(street=street)
    return {"_seconds": seconds, "features": len(frame), "polygons": int(frame.geom_type.str.contains("Polygon").sum()),
            "MB": round(path.stat().st_size / 1e6, 2), "render s": round(_render_seconds(path), 2)}


def case_district_map(n: int) -> dict:
    """Every component of the district in one page."""
    from citygrid import maps
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    start = time.perf_counter()
    path = WORK / "district_map.html"
    maps.district_map(reg).save(path)
    seconds = time.perf_counter() - start
    return {"_seconds": seconds, "features": len(reg.components), "MB": round(path.stat().st_size / 1e6, 2),
            "render s": round(_render_seconds(path), 2)}


def case_write_all_maps(n: int) -> dict:
    from citygrid import maps
    from citygrid.registry import open_registry

    reg = open_registry(_registry_file(n))
    _ = reg.components, reg.district  # warm the caches: timed work starts after open
    start = time.perf_counter()
    maps.write_all(reg, WORK / "maps")  # the defaults: one copy of Leaflet in maps/_assets, no tiles
    size = sum(p.stat().st_size for p in (WORK / "maps").rglob("*.html")) / 1e6
    return {"_seconds": time.perf_counter() - start, "maps": len(list((WORK / "maps").rglob("*.html"))) - 1,
            "MB in all": round(size, 1)}


RADII = (4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)


def _event_stream(n: int):
    """100k events (Pingshan's export of 2018 in shape and sub-type frequencies; the apps' with a place) at the 420k
    registry, 5,000 of its point components retired first to stand for components the registry lacks."""
    import dataclasses

    from citygrid.registry import open_registry
    from citygrid.synth import make_events

    reg = open_registry(_gpkg_copy(n, "dispatch.gpkg"))
    comps = reg.components
    held = comps[comps.geom_type == "Point"].sample(5_000, random_state=0)
    assert reg.ingest(held.assign(action="retire"), source="held out for dispatch").accepted
    district = dataclasses.replace(reg.district, components=reg.components)
    district.reserve = held
    events, truth = make_events(district, n=100_000, seed=0)
    return reg, events, truth, held


def case_dispatch_100k(n: int) -> dict:
    reg, events, truth, held = _event_stream(n)
    _ = reg.components, reg.district
    start = time.perf_counter()
    result = reg.dispatch(events)
    return {"_seconds": time.perf_counter() - start, **_dispatch_score(reg, result, truth, events, held)}


def case_dispatch_sample(n: int) -> dict:
    """20k events at the sample district of data/ (20k components, its reserve standing for the unregistered)."""
    from citygrid import synth
    from citygrid.registry import Registry

    district = synth.sample_district()
    path = WORK / "dispatch_sample.gpkg"
    for leftover in WORK.glob("dispatch_sample.gpkg*"):
        leftover.unlink()
    reg = Registry.create(path, district=district)
    events, truth = synth.make_events(district, n=20_000, seed=0)
    _ = reg.components, reg.district
    start = time.perf_counter()
    result = reg.dispatch(events)
    return {"_seconds": time.perf_counter() - start, **_dispatch_score(reg, result, truth, events, district.reserve)}


def _dispatch_score(reg, result, truth, events, unregistered) -> dict:
    """How dispatch did on the events with a place, beside what their place and type allow at best.

    The component each was made from among its candidates, and first; its unit; the unregistered flagged
    (:func:`_what_events_tell` gives the bound).
    """
    import numpy as np
    m = truth.merge(result[["event_id", "component_id", "unit", "nearby", "reason", "confidence", "repeat_of"]],
                    on="event_id", suffixes=("_true", ""))
    m = m[m["placed"] & m["repeat_of"].isna()]  # a repeat is answered once; an event without a place is routed
    has, lacks = m[m["kind"] == "component"], m[m["kind"] == "unregistered"]
    everyone = reg.components_with_retired().set_index("component_id")
    right_unit = has["unit"].to_numpy() == everyone["maintainer"].fillna(everyone["owner"]).reindex(
        has["component_id_true"]).to_numpy()
    right = (has["component_id_true"] == has["component_id"]).to_numpy()
    among = np.array([isinstance(t, str) and c in t for c, t in zip(has["component_id_true"], has["nearby"])])
    flagged = lacks["component_id"].isna().mean()
    sure = (has["confidence"] >= 0.9).to_numpy()
    told, category_known, near_unregistered = _what_events_tell(reg.components, everyone, result, truth, events,
                                                                unregistered)
    bound = told[[t["radius_m"] for t in told].index(f"{result.attrs['radius_m']:g}")]
    told.insert(0, {"radius_m": f"{result.attrs['radius_m']:g} (dispatch, first)",
                    "right component": f"{right.mean():.1%}", "right maintainer": f"{right_unit.mean():.1%}",
                    "unregistered flagged": f"{flagged:.1%}"})
    told.insert(1, {"radius_m": f"{result.attrs['radius_m']:g} (dispatch, among the candidates)",
                    "right component": f"{among.mean():.1%}", "right maintainer": "–", "unregistered flagged": "–"})
    return {"events": len(result), "with a place and a component": len(has),
            "right component among the candidates": f"{among.mean():.1%} ({among.mean() / bound['_right']:.1%} of "
                                                    f"the bound)",
            "right component first": f"{right.mean():.1%}",
            "confidence >= 0.9": f"{sure.mean():.1%} of them, {right[sure].mean():.2%} right",
            "right maintainer": f"{right_unit.mean():.1%} ({right_unit.mean() / bound['_unit']:.1%} of the bound)",
            "unregistered flagged": f"{flagged:.1%} of {len(lacks):,} ({flagged / bound['_flagged']:.1%} of the "
                                    f"bound)",
            "outside flagged": f"{(m.loc[m['kind'] == 'outside', 'reason'] == 'outside the district').mean():.1%}",
            "bound, category known: right component": f"{category_known:.1%}",
            "bound: unregistered with a registered one of its category within 10 m": f"{near_unregistered:.1%}",
            "_told": [{k: v for k, v in t.items() if not k.startswith("_")} for t in told]}


def _what_events_tell(current, everyone, result, truth, events, unregistered):
    """What an event's place and type allow at best, from the truth, the geometry and the event type table alone
    (none of dispatch's matching).

    An event of Pingshan's export tells its sub type, whose categories the shipped table lists, and, from an
    app, its place. Among the events with a place (repeats left out), returns

    - one row per radius: the share of component events whose component is the nearest registered (`current`)
      one of the sub type's categories, within the radius, and the share of unregistered events with no
      registered one of those categories within it;
    - the share of component events whose component is the nearest registered one of its own category (told the
      category, which an event is not);
    - the share of the components standing for the unregistered (`unregistered`) that have a registered
      component of their category within 10 m.

    `everyone` is every component, retired too, by id.
    """
    import numpy as np
    import pandas as pd

    from citygrid.events import load_event_types

    keep = (truth["placed"] & ~events.drop(columns=["REC_ID"]).duplicated(keep="first")).to_numpy()
    kind = truth["kind"].to_numpy()
    ids = truth["component_id"].to_numpy(dtype=object)
    table = load_event_types()
    by_type = dict(zip(table["code"].astype(str), table["categories"]))
    wanted = [list(by_type.get(str(c), [])) for c in events["SUB_TYPE_ID"]]
    asks = pd.DataFrame({"event": np.arange(len(events)), "category": wanted}).explode("category").dropna()
    asks = asks[keep[asks["event"].to_numpy()]]
    points = result.geometry.to_numpy()
    nearest_id = np.full(len(events), None, dtype=object)
    nearest_m = np.full(len(events), np.inf)
    cats = everyone["category"].reindex(ids).to_numpy()
    own = np.zeros(len(events), dtype=bool)
    near = np.zeros(len(unregistered), dtype=bool)
    spots, spot_cats = unregistered.geometry.to_numpy(), unregistered["category"].to_numpy()
    for cat, group in current.groupby("category"):
        comp_ids = group["component_id"].to_numpy()
        ask = asks.loc[asks["category"] == cat, "event"].to_numpy().astype(int)
        if len(ask):
            (_, j), dist = group.sindex.nearest(points[ask], return_all=False, return_distance=True)
            closer = dist < nearest_m[ask]
            nearest_m[ask[closer]], nearest_id[ask[closer]] = dist[closer], comp_ids[j[closer]]
        mine = np.flatnonzero((cats == cat) & (kind == "component") & keep)
        if len(mine):
            own[mine] = comp_ids[group.sindex.nearest(points[mine], return_all=False)[1]] == ids[mine]
        lacking = np.flatnonzero(spot_cats == cat)
        if len(lacking):
            near[lacking[group.sindex.query(spots[lacking], predicate="dwithin", distance=10.0)[0]]] = True
    has, lacks = (kind == "component") & keep, (kind == "unregistered") & keep
    found = nearest_id == ids
    acting = everyone["maintainer"].fillna(everyone["owner"])
    same_unit = acting.reindex(nearest_id).to_numpy(dtype=object) == acting.reindex(ids).to_numpy(dtype=object)
    rows = [{"radius_m": f"{r:g}", "right component": f"{(found & (nearest_m <= r))[has].mean():.1%}",
             "right maintainer": f"{(same_unit & (nearest_m <= r))[has].mean():.1%}",
             "unregistered flagged": f"{(nearest_m[lacks] > r).mean():.1%}",
             "_right": float((found & (nearest_m <= r))[has].mean()), "_flagged": float((nearest_m[lacks] > r).mean()),
             "_unit": float((same_unit & (nearest_m <= r))[has].mean())}
            for r in RADII]
    rows.append({"radius_m": "any", "right component": f"{found[has].mean():.1%}",
                 "right maintainer": f"{same_unit[has].mean():.1%}", "unregistered flagged": "–"})
    return rows, float(own[has].mean()), float(near.mean())


def case_dispatch_plain(n: int) -> dict:
    """The plain geopandas way: explode events by category, one sjoin_nearest per category."""
    import geopandas as gpd
    import pandas as pd

    from citygrid import crs
    from citygrid.events import load_event_types

    reg, events, _, _ = _event_stream(n)
    comps = reg.components
    start = time.perf_counter()
    table = load_event_types()
    by_type = dict(zip(table["code"].astype(str), table["categories"]))
    placed = events[events["经度"].notna()]
    lon, lat = crs.gcj02_to_wgs84(placed["经度"].astype(float).to_numpy(), placed["纬度"].astype(float).to_numpy())
    wanted = placed["SUB_TYPE_ID"].astype(str).map(by_type)
    points = gpd.GeoDataFrame({"event_id": placed["REC_ID"], "category": wanted},
                              geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(comps.crs)
    exploded = points.explode("category").dropna(subset=["category"])
    found = []
    for category, group in exploded.groupby("category"):
        mine = comps[comps["category"] == category]
        if len(mine):
            found.append(gpd.sjoin_nearest(group, mine[["component_id", "maintainer", "geometry"]],
                                           max_distance=10.0, distance_col="distance"))
    joined = pd.concat(found).sort_values("distance").drop_duplicates("event_id")
    return {"_seconds": time.perf_counter() - start, "matched": len(joined)}


def case_routes(n: int) -> dict:
    """Routes learned on the first 70 % of a year of closed events (by CREATE_TIME), measured on the last 30 %."""
    import numpy as np

    from citygrid.events import read_events
    from citygrid.routes import RoutingTable

    _, events, _, _ = _event_stream(n)
    start = time.perf_counter()
    past = read_events(events.drop(columns=["经度", "纬度"]))
    past = past[past["closing_unit"].notna() & past["repeat_of"].isna() & ~past["test_unit"]]
    past = past.sort_values("created_at", kind="stable")
    cut = int(len(past) * 0.7)
    learn, test = past.iloc[:cut], past.iloc[cut:]
    routes = RoutingTable.learn(learn)
    answer = routes.route(test)
    seconds = time.perf_counter() - start
    truth = test["closing_unit"].to_numpy(dtype=object)
    top1 = answer["unit"].to_numpy(dtype=object) == truth
    top3 = top1 | np.array([isinstance(a, str) and any(t == u.rsplit(" (", 1)[0] for u in a.split("; "))
                            for a, t in zip(answer["alternatives"], truth)])
    frequent = learn.groupby("event_type")["closing_unit"].agg(lambda u: u.value_counts().index[0])
    base = test["event_type"].map(frequent).to_numpy(dtype=object) == truth
    ranked = learn.groupby("event_type")["closing_unit"].agg(lambda u: list(u.value_counts().index[:3]))
    base3 = np.array([isinstance(r, list) and t in r for r, t in zip(test["event_type"].map(ranked), truth)])
    levels = answer["level"].value_counts(normalize=True)
    return {"_seconds": seconds, "learned on": f"{len(learn):,} events", "measured on": f"{len(test):,} events",
            "top-1": f"{top1.mean():.1%}", "top-3": f"{top3.mean():.1%}",
            "most frequent unit of the sub type, top-1": f"{base.mean():.1%}",
            "its 3 most frequent, top-3": f"{base3.mean():.1%}",
            "levels used": ", ".join(f"{k} {v:.0%}" for k, v in levels.items()),
            "routes": f"{len(routes.routes):,}"}


def _dataset(n: int) -> Path:
    """The 420k registry as a partitioned GeoParquet dataset (made once)."""
    from citygrid.registry import open_registry
    from citygrid.scale import export_dataset

    folder = WORK / f"dataset_{n}"
    if not (folder / "_citygrid.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        export_dataset(open_registry(_registry_file(n)), folder)
    return folder


CITY_DISTRICTS = int(os.environ.get("CITYGRID_BENCH_DISTRICTS", "10"))
"""Districts of the synthetic city that shows how the two engines scale (``--districts``;
Shenzhen's ten in the whole run)."""
CITY_N = int(os.environ.get("CITYGRID_BENCH_CITY_N", "525000"))
"""Components generated per district of the city (``--city-n``); 5% are held out as the spare
rows the fault generator perturbs, so ten districts register about 5M."""
ONCE = {"check_city_sedona", "serve_load", "cli_validate_5m"}
"""Cases run once whatever ``--repeat`` says (Sedona on the whole city takes half an hour; the load test is 60 s
of many requests)."""


def _city() -> tuple[list[Path], Path]:
    """The city: each district's registry, into which another program wrote faults
    (tests/faults.py), and the city's partitioned dataset (made once)."""
    import dataclasses

    import faults
    from citygrid import synth
    from citygrid.registry import Registry, open_registry
    from citygrid.scale import export_dataset

    paths = [WORK / f"city{CITY_DISTRICTS}_{CITY_N}_{k}.gpkg" for k in range(CITY_DISTRICTS)]
    folder = WORK / f"city{CITY_DISTRICTS}_dataset_{CITY_N}"
    if not (folder / "_citygrid.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        for k, (path, district) in enumerate(zip(paths, synth.make_city(CITY_DISTRICTS, CITY_N, seed=0))):
            registered, spare = faults.split(district, 0.05, seed=k)
            Registry.create(path, district=dataclasses.replace(district, components=registered), overwrite=True)
            case, grid_faults = faults.registry_case(district, registered, spare, per_shape=FAULTS_PER_SHAPE,
                                                     seed=100 + k)
            faults.write_into(path, case, grid_faults, district.grid)
        export_dataset([open_registry(p) for p in paths], folder)
    return paths, folder


def _issue_set(keys: set[tuple[str, str, str]]) -> dict:
    """How many issues, and a digest of which (district, rule, component): equal digests, equal findings."""
    import hashlib

    text = "\n".join("|".join(k) for k in sorted(keys)).encode("utf-8")
    return {"issues": len(keys), "issue set sha256": hashlib.sha256(text).hexdigest()[:12]}


def case_check_city_local(n: int) -> dict:
    """The in-memory validator on each district of the city in turn (it holds one district at a time)."""
    import gc

    from citygrid.registry import open_registry
    from citygrid.scale import SEDONA_RULES

    paths, _ = _city()
    start, keys, components = time.perf_counter(), set(), 0
    for path in paths:
        reg = open_registry(path)
        issues = reg.validate(rules=list(SEDONA_RULES)).issues
        keys |= {(reg.admin_code, r, str(i)) for r, i in zip(issues["rule"], issues["component_id"])}
        components += len(reg.components)
        del reg, issues
        gc.collect()
    return {"_seconds": time.perf_counter() - start, "districts": len(paths), "components": components,
            **_issue_set(keys)}


def _jvm_peak_mb(spark) -> int | None:
    """Peak resident memory of the session's JVM (the peak column counts only the Python process)."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    status = Path(f"/proc/{proc.pid}/status") if proc is not None else None
    if status is None or not status.exists():
        return None
    peak = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
    return int(peak[0]) // 1024 if peak else None


def case_check_city_sedona(n: int) -> dict:
    """Sedona on local[2] on the city's dataset, session start included."""
    from citygrid.scale import check, sedona_session

    _, folder = _city()
    start = time.perf_counter()
    spark = sedona_session("local[2]")
    report = check(folder, engine="sedona", spark=spark)
    seconds = time.perf_counter() - start
    jvm = _jvm_peak_mb(spark)
    spark.stop()
    issues = report.issues
    keys = set(zip(issues["admin_code"], issues["rule"], issues["component_id"].astype(str)))
    return {"_seconds": seconds, "districts": CITY_DISTRICTS, "components": report.checked, **_issue_set(keys),
            "JVM peak MB": jvm}


def case_check_sedona(n: int) -> dict:
    """Sedona on local[2], session start included (what a user pays), on the partitioned dataset."""
    from citygrid.scale import check, sedona_session

    folder = _dataset(n)
    start = time.perf_counter()
    spark = sedona_session("local[2]")
    started = time.perf_counter() - start
    report = check(folder, engine="sedona", spark=spark)
    seconds = time.perf_counter() - start
    jvm = _jvm_peak_mb(spark)
    spark.stop()
    return {"_seconds": seconds, "session start s": round(started, 1), "issues": len(report),
            "components": report.checked, "JVM peak MB": jvm}


def case_check_local(n: int) -> dict:
    """The in-memory validator, the same nine rules, registry opened first."""
    from citygrid.registry import open_registry
    from citygrid.scale import SEDONA_RULES

    start = time.perf_counter()
    reg = open_registry(_registry_file(n))
    report = reg.validate(rules=list(SEDONA_RULES))
    return {"_seconds": time.perf_counter() - start, "issues": len(report), "components": len(reg.components)}


def _client(source: str, n: int, part: int, parts: int, barrier, results) -> None:
    """One department: open the registry, wait for the others, merge its share of the 10k batch."""
    from citygrid.io import read_batch
    from citygrid.registry import open_registry

    reg = open_registry(source, timeout=900)
    batch = read_batch(_batch_file(n), layer="batch", catalog=reg.catalog)
    share = batch.iloc[part::parts]  # every department its own components
    _ = reg.district
    if reg.store.checks_state:  # a GeoPackage merge checks against the components in memory; PostGIS reads by place
        _ = reg.components
    barrier.wait()
    start = time.perf_counter()
    created = 0
    try:
        result = reg.ingest(share, source=f"department {part}")
        error, created = (None, result.created) if result.accepted else ("rejected", 0)
    except Exception as exc:  # reported in the results table
        error = f"{type(exc).__name__}: {exc}"
    results.put((time.perf_counter() - start, len(share), error, created))


def _concurrent(n: int, source: str, clients: int = 8) -> dict:
    """`clients` processes merging disjoint shares of the 10k batch at the same moment."""
    import multiprocessing

    import numpy as np

    from citygrid.registry import open_registry

    before = len(open_registry(source).components_with_retired())
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(clients + 1), spawn.Queue()
    workers = [spawn.Process(target=_client, args=(source, n, i, clients, barrier, results))
               for i in range(clients)]
    for w in workers:
        w.start()
    barrier.wait(timeout=900)
    start = time.perf_counter()
    done = [results.get(timeout=1800) for _ in workers]
    seconds = time.perf_counter() - start
    for w in workers:
        w.join()
    latency = np.array([d[0] for d in done])
    failed = [d[2] for d in done if d[2]]
    after = open_registry(source).components_with_retired()  # every row counted, retired ones too
    return {"_seconds": seconds, "clients": clients,
            "merged rows per s": round(sum(d[1] for d in done if not d[2]) / seconds),
            "p95 merge s": round(float(np.percentile(latency, 95)), 2), "failed": len(failed),
            "rows lost": before + sum(d[3] for d in done) - len(after),
            "ids unique": "yes" if after["component_id"].is_unique else "NO",
            **({"first failure": failed[0][:120]} if failed else {})}


def case_concurrent_gpkg(n: int) -> dict:
    return _concurrent(n, str(_gpkg_copy(n, "concurrent.gpkg")))


# --- the same registry in PostGIS (a throwaway cluster that main() starts and stops) --------
def _pg_url(database: str) -> str:
    return f"{os.environ['CITYGRID_BENCH_PG']}/{database}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_pg_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _pg_fresh(n: int, name: str) -> str:
    """A new database cloned from the prepared registry (a file copy on the server)."""
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "registry_{n}"')
    return _pg_url(name)


def _prepare_pg(n: int) -> None:
    from citygrid.backends.postgis import close_idle_connections
    from citygrid.registry import copy_registry

    _pg_admin(f'CREATE DATABASE "registry_{n}"')
    copy_registry(_registry_file(n), _pg_url(f"registry_{n}"))
    close_idle_connections()  # the cases copy it as a template: no session may be open on it


def case_pg_copy(n: int) -> dict:
    from citygrid.registry import copy_registry

    _pg_admin('DROP DATABASE IF EXISTS "copy_run"')
    _pg_admin('CREATE DATABASE "copy_run"')
    start = time.perf_counter()
    reg = copy_registry(_registry_file(n), _pg_url("copy_run"))
    return {"_seconds": time.perf_counter() - start, "components": len(reg.components_with_retired())}


def case_pg_open(n: int) -> dict:
    """An open by a client that opened the registry before (its cache holds the state): what every command pays."""
    from citygrid.registry import open_registry

    url = _pg_url(f"registry_{n}")
    subprocess.run([sys.executable, "-c", f"import citygrid as cg; len(cg.open_registry({url!r}).components)"],
                   check=True)  # the client's first open, another command before this one: not timed
    start = time.perf_counter()
    count = len(open_registry(url).components)
    return {"_seconds": time.perf_counter() - start, "components": count}


def case_pg_open_cold(n: int) -> dict:
    """An open with no client cache: every component read from the database."""
    from citygrid import settings
    from citygrid.registry import open_registry

    settings.cache_dir = ""
    return {"components": len(open_registry(_pg_url(f"registry_{n}")).components)}


def case_pg_query_street(n: int) -> dict:
    return case_query_street(n, _pg_url(f"registry_{n}"))


def case_pg_owner_at(n: int) -> dict:
    return case_owner_at(n, _pg_url(f"registry_{n}"))


def case_pg_ingest_10k(n: int) -> dict:
    return case_ingest_10k(n, _pg_fresh(n, "ingest_run"))


def case_pg_cli_ingest_10k(n: int) -> dict:
    """``citygrid ingest`` of the 10k batch into the shared registry, end to end."""
    url = _pg_fresh(n, "cli_ingest_run")
    return {"_seconds": _cli("ingest", str(_batch_file(n)), "--registry", url, "--source", "benchmark")}


def case_pg_concurrent(n: int) -> dict:
    return _concurrent(n, _pg_fresh(n, "concurrent_run"))


def case_pg_concurrent_32(n: int) -> dict:
    return _concurrent(n, _pg_fresh(n, "concurrent_32"), clients=32)


def _rss_mb(pid: int) -> float:
    """The resident memory of process `pid` now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load_client(port: int, boxes: list[str], points: list[tuple[float, float]], until: float, seed: int,
                 out: list) -> None:
    """One client: a bbox page, then a "whose is this", again and again on one kept-alive connection."""
    import http.client
    import random

    pick = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.perf_counter() < until:
        if pick.random() < 0.5:
            kind, path = "bbox", f"/collections/components/items?bbox={pick.choice(boxes)}&limit=100"
        else:
            x, y = pick.choice(points)
            kind, path = "owner", f"/owner?x={x:.7f}&y={y:.7f}"
        start = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and body.startswith(b"{")
        except (OSError, http.client.HTTPException):
            ok, body = False, b""
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        out.append((kind, time.perf_counter() - start, ok, len(body)))
    conn.close()


def case_serve_load(n: int, clients: int = 50, seconds: float = 60.0) -> dict:
    """``citygrid serve`` on the registry, 50 clients for 60 s: items in a street-corner bbox and "whose is this".

    The service runs as a user runs it (its own process, 8 threads); each client keeps one
    connection and alternates at random between a page of the components in a ~200 m box
    and an owner lookup at a component. The service's memory is sampled each second.
    """
    import socket
    import threading
    import urllib.request

    import numpy as np

    from citygrid.registry import open_registry

    target = _registry_file(n)
    state = open_registry(target).state
    sample = open_registry(target).components.sample(2_000, random_state=0).to_crs("EPSG:4326")
    points = list(zip(sample.geometry.representative_point().x, sample.geometry.representative_point().y,
                      strict=True))
    boxes = [f"{x - 0.001:.6f},{y - 0.001:.6f},{x + 0.001:.6f},{y + 0.001:.6f}" for x, y in points]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([str(Path(sys.executable).with_name("citygrid")), "serve", str(target), "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/conformance", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(server.stderr.read().decode()[-500:]) from None
            time.sleep(0.1)
    ready = time.perf_counter() - started
    try:
        results: list = []
        memory: list[float] = []
        until = time.perf_counter() + seconds
        threads = [threading.Thread(target=_load_client, args=(port, boxes, points, until, i, results))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        while time.perf_counter() < until:
            memory.append(_rss_mb(server.pid))
            time.sleep(1)
        for thread in threads:
            thread.join()
        memory.append(_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = {kind: np.array([r[1] for r in results if r[0] == kind]) * 1000 for kind in ("bbox", "owner")}
    every = np.concatenate(list(ms.values()))
    warm = memory[min(10, len(memory) - 1)]
    return {"_seconds": float(np.percentile(every, 95) / 1000), "service ready s": round(ready, 2),
            "requests": len(results), "requests/s": round(len(results) / seconds, 1),
            "errors": sum(not r[2] for r in results),
            "p95 ms bbox": round(float(np.percentile(ms["bbox"], 95)), 1),
            "p95 ms owner": round(float(np.percentile(ms["owner"], 95)), 1),
            "median ms": round(float(np.median(every)), 1),
            "KB per bbox page (mean)": round(float(np.mean([r[3] for r in results if r[0] == "bbox"])) / 1024, 1),
            "service MB at 10 s": round(warm), "service MB at end": round(memory[-1]),
            "memory growth after 10 s %": round(100 * (memory[-1] - warm) / warm, 1),
            "state unchanged": open_registry(target).state == state}


# name -> (group, way, function, needs prepared inputs)
CASES: dict[str, tuple[str, str, Callable[[int], dict], bool]] = {
    "generate": ("generate the district", "citygrid", case_generate, False),
    "write_gpkg": ("write GeoPackage", "citygrid (all layers, atomic)", case_write_gpkg_citygrid, True),
    "write_gpkg_pyogrio": ("write GeoPackage", "plain to_file, pyogrio (points only)",
                           case_write_gpkg_pyogrio, True),
    "write_gpkg_fiona": ("write GeoPackage", "plain to_file, fiona (points only)",
                         case_write_gpkg_fiona, True),
    "read_gpkg": ("read GeoPackage", "citygrid District.from_file (all layers)",
                  case_read_gpkg_citygrid, True),
    "read_gpkg_pyogrio": ("read GeoPackage", "plain read_file, pyogrio (points only)",
                          case_read_gpkg_pyogrio, True),
    "read_gpkg_fiona": ("read GeoPackage", "plain read_file, fiona (points only)",
                        case_read_gpkg_fiona, True),
    "write_parquet": ("GeoParquet", "plain to_parquet (all components)", case_write_parquet, True),
    "read_parquet": ("GeoParquet", "plain read_parquet (all components)", case_read_parquet, True),
    "create_registry": ("create registry", "citygrid Registry.create", case_create_registry, False),
    "open_registry": ("open registry, all components", "citygrid open_registry().components",
                      case_open_registry, True),
    "open_registry_cold": ("open registry, all components", "citygrid, first open after an outside edit (QGIS)",
                           case_open_registry_cold, True),
    "open_registry_after_ingest": ("open registry, all components",
                                   "citygrid, first open after `citygrid ingest`", case_open_registry_after_ingest,
                                   True),
    "open_plain_pyogrio": ("open registry, all components", "plain read_file, pyogrio", case_open_plain_pyogrio,
                           True),
    "open_plain_arrow": ("open registry, all components", "plain read_file, pyogrio + Arrow",
                         case_open_plain_arrow, True),
    "open_plain_fiona": ("open registry, all components", "plain read_file, fiona", case_open_plain_fiona, True),
    "query_street": ("query street + category (per call)", "citygrid reg.query() after open", case_query_street,
                     True),
    "query_street_plain": ("query street + category (per call)", "plain mask on a GeoDataFrame in memory",
                           case_query_street_plain, True),
    "owner_at": ("owner lookup (per call)", "citygrid reg.owner_at() after open", case_owner_at, True),
    "ingest_10k": ("validate + ingest 10k batch", "citygrid reg.ingest() after open", case_ingest_10k, True),
    "cli_ingest_10k": ("validate + ingest 10k batch", "`citygrid ingest` end to end", case_cli_ingest_10k, True),
    "cli_stats_after_ingest": ("`citygrid stats` right after `citygrid ingest`", "end to end",
                               case_cli_stats_after_ingest, True),
    "cli_help": ("`citygrid --help`", "end to end", case_cli_help, False),
    "cli_validate_1m": ("validate a 1M-row batch against the registry", "`citygrid validate --json` end to end",
                        case_cli_validate_1m, True),
    "cli_validate_5m": ("validate a 5M-row batch against the registry", "`citygrid validate --json` end to end",
                        case_cli_validate_5m, True),
    "validate_registry": ("validate whole registry + grid", "citygrid reg.validate() after open",
                          case_validate_registry, True),
    "validate_batch_10k": ("validate 10k batch against registry", "citygrid validate() after open",
                           case_validate_batch_10k, True),
    "validate_faulty_batch": ("validate a batch of independent faults", "citygrid validate() after open",
                              case_validate_faulty_batch, True),
    "validate_faulty_registry": ("validate a registry edited with faults", "citygrid reg.validate() after open",
                                 case_validate_faulty_registry, True),
    "category_map": ("largest category map (build + save)", "citygrid maps.category_map", case_category_map, True),
    "category_map_explore": ("largest category map (build + save)", "plain GeoDataFrame.explore(), same popups",
                             case_category_map_explore, True),
    "street_map": ("largest street map (build + save; render in Chromium)", "citygrid maps.street_map",
                   case_street_map, True),
    "district_map": ("whole-district map (build + save; render in Chromium)", "citygrid maps.district_map",
                     case_district_map, True),
    "dispatch_100k": ("dispatch 100k hotline events", "citygrid reg.dispatch()", case_dispatch_100k, True),
    "dispatch_plain": ("dispatch 100k hotline events", "plain geopandas: sjoin_nearest per category",
                       case_dispatch_plain, True),
    "dispatch_sample": ("dispatch 20k hotline events, sample district (20k components)", "citygrid reg.dispatch()",
                        case_dispatch_sample, True),
    "routes": ("route events without a place: 70 % learned, 30 % measured", "citygrid RoutingTable",
               case_routes, True),
    "check_local": ("validate the 9 join rules, whole registry", "citygrid in memory (open + validate)",
                    case_check_local, True),
    "check_sedona": ("validate the 9 join rules, whole registry", "citygrid on Sedona local[2] (session + check)",
                     case_check_sedona, True),
    "check_city_local": (f"validate the 9 join rules, a city of {CITY_DISTRICTS} districts with faults",
                         "citygrid in memory (one district after the other)", case_check_city_local, True),
    "check_city_sedona": (f"validate the 9 join rules, a city of {CITY_DISTRICTS} districts with faults",
                          "citygrid on Sedona local[2] (session + check)", case_check_city_sedona, True),
    "write_all_maps": ("all category + street maps", "citygrid maps.write_all after open", case_write_all_maps,
                       True),
    "concurrent_gpkg": ("8 departments merging at once (10k rows)", "citygrid GeoPackage", case_concurrent_gpkg,
                        True),
    # the shared registry: each beside the GeoPackage row of its group
    "pg_copy": ("copy into PostGIS", "citygrid copy_registry(gpkg, url)", case_pg_copy, True),
    "pg_open": ("open registry, all components", "citygrid PostGIS open_registry(url).components", case_pg_open,
                True),
    "pg_open_cold": ("open registry, all components", "citygrid PostGIS, no client cache (first open)",
                     case_pg_open_cold, True),
    "pg_query_street": ("query street + category (per call)", "citygrid PostGIS reg.query()", case_pg_query_street,
                        True),
    "pg_owner_at": ("owner lookup (per call)", "citygrid PostGIS reg.owner_at()", case_pg_owner_at, True),
    "pg_ingest_10k": ("validate + ingest 10k batch", "citygrid PostGIS reg.ingest()", case_pg_ingest_10k, True),
    "pg_cli_ingest_10k": ("validate + ingest 10k batch", "`citygrid ingest` end to end, PostGIS",
                          case_pg_cli_ingest_10k, True),
    "pg_concurrent": ("8 departments merging at once (10k rows)", "citygrid PostGIS", case_pg_concurrent, True),
    "pg_concurrent_32": ("32 departments merging at once (10k rows)", "citygrid PostGIS", case_pg_concurrent_32,
                         True),
    "serve_load": ("`citygrid serve`, 50 clients for 60 s (bbox pages + owner)", "p95 latency, one service process",
                   case_serve_load, True),
}


