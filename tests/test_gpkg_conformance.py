"""Registries are OGC-conformant GeoPackages: GDAL's validator and the spec's value formats agree.

The validator is GDAL's own ``validate_gpkg.py`` (the PyPI ``gdal-utils`` package over Debian's
``python3-gdal``), which ``.ci/run`` installs into ``.gdal-validator/``; set
``CITYGRID_GPKG_VALIDATOR`` to another Python that has ``osgeo_utils`` to use that one.
"""

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from citygrid import synth
from citygrid.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$")  # GeoPackage 1.3, Table 1
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validator() -> list[str] | None:
    candidates = [os.environ.get("CITYGRID_GPKG_VALIDATOR"), str(ROOT / ".gdal-validator" / "bin" / "python")]
    for python in filter(None, candidates):
        if Path(python).exists() and subprocess.run(
                [python, "-c", "import osgeo_utils.samples.validate_gpkg"], capture_output=True).returncode == 0:
            return [python, "-m", "osgeo_utils.samples.validate_gpkg", "-k"]
    if os.environ.get("CI"):
        pytest.fail("GDAL's GeoPackage validator is missing: .ci/run installs it into .gdal-validator/")
    pytest.skip("GDAL's GeoPackage validator is not installed (see .ci/run)")


def gdal_errors(path: Path) -> list[str]:
    run = subprocess.run([*validator(), str(path)], capture_output=True, text=True)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert run.returncode == 0 or lines, run
    return lines if run.returncode else []


def badly_formatted_times(path: Path) -> list[str]:
    """Every DATE/DATETIME value of every table that does not have the spec's form."""
    conn = sqlite3.connect(path)
    bad = []
    try:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")]
        for table in tables:
            for _, column, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")'):
                pattern = {"DATETIME": DATETIME, "DATE": DATE}.get(kind.upper())
                if pattern is None:
                    continue
                for (value,) in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'):
                    if not pattern.match(str(value)):
                        bad.append(f"{table}.{column} = {value!r}")
    finally:
        conn.close()
    return bad


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=4, n_components=1_200, reserve=300)


def test_a_registry_is_conformant_new_after_an_ingest_and_after_a_migration(tmp_path, district):
    path = tmp_path / "registry.gpkg"
    reg = Registry.create(path, district=district)
    assert gdal_errors(path) == [] and badly_formatted_times(path) == []
    batch = synth.make_batch(district, new=40, updated=30, retired=5, seed=2)
    assert reg.ingest(batch, source="week 48").accepted
    reg.allow(batch["component_id"].dropna().iloc[0], "owner.conflict", "确权 done")
    assert gdal_errors(path) == [] and badly_formatted_times(path) == []
    reg.migrate()
    assert gdal_errors(path) == [] and badly_formatted_times(path) == []
