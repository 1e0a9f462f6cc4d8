"""A registry an earlier citygrid wrote (schema 1): read as it is, never written by an open, upgraded on demand.

``tests/data/schema1.gpkg.gz`` was made by the code of that time, run from its own commit
(``scripts/make_schema1_fixture.py``), not rebuilt by today's code.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import citygrid as cg
from citygrid import synth
from citygrid.errors import AccessDenied
from test_gpkg_conformance import badly_formatted_times, gdal_errors

FIXTURE = Path(__file__).parent / "data" / "schema1.gpkg.gz"
CLI = [sys.executable, "-m", "citygrid.cli"]


@pytest.fixture()
def old(tmp_path) -> Path:
    path = tmp_path / "schema1.gpkg"
    with gzip.open(FIXTURE, "rb") as packed, open(path, "wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _schema(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM citygrid_meta WHERE key = 'schema_version'").fetchone()[0]


def test_an_old_registry_is_read_as_it_is_and_opening_writes_nothing(old):
    before = _digest(old)
    reg = cg.open_registry(old)
    assert _schema(old) == "1"
    assert len(reg.components) == 300 + 10 - 3 and len(reg.components_with_retired()) == 310
    assert list(reg.batches()["source"]) == ["initial load", "2026-W01 schema 1"]
    changed = reg.components.sort_values("version")["component_id"].iloc[-1]
    assert len(reg.history(changed)) >= 2
    assert list(reg.allowed()["note"]) == ["schema 1 allow-list entry"]
    assert reg.validate() is not None and reg.stats().shape[0] > 0
    assert _digest(old) == before  # a WAL file a reader opens holds no frame: nothing was written
    assert all(wal.stat().st_size == 0 for wal in old.parent.glob("*.gpkg-wal"))


def test_an_old_registry_takes_no_change_until_upgraded_and_says_how(old):
    reg = cg.open_registry(old)
    batch = synth.make_batch(synth.make_district(seed=21, n_components=300, reserve=40), new=3, updated=0,
                             retired=0, seed=30)
    with pytest.raises(AccessDenied, match=r"schema 1.*citygrid upgrade"):
        reg.ingest(batch, source="too early")
    with pytest.raises(AccessDenied, match="citygrid upgrade"):
        reg.allow(reg.components["component_id"].iloc[1], "owner.conflict", "x")
    assert _schema(old) == "1"


def test_citygrid_upgrade_brings_it_to_today_and_it_stays_whole(old):
    reg = cg.open_registry(old)
    components, history = reg.components_with_retired(), reg.history(reg.components["component_id"].iloc[0])
    done = subprocess.run([*CLI, "upgrade", str(old)], capture_output=True, text=True,
                          env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert done.returncode == 0 and "from schema 1 to 2" in done.stdout, done.stderr
    assert _schema(old) == "2"
    again = subprocess.run([*CLI, "upgrade", str(old)], capture_output=True, text=True,
                           env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    assert again.returncode == 0 and "at schema 2 already" in again.stdout
    reg = cg.open_registry(old)
    assert reg.store.read_only is None and reg.verify() == []
    assert sorted(reg.components_with_retired()["component_id"]) == sorted(components["component_id"])
    assert len(reg.history(reg.components["component_id"].iloc[0])) == len(history)
    assert gdal_errors(old) == [] and badly_formatted_times(old) == []
    district = synth.make_district(seed=21, n_components=300, reserve=40)
    fresh = synth.make_batch(district, new=3, updated=0, retired=0, seed=31)
    repaired = reg.components.iloc[[5]].assign(status="破损")  # a component of the old file, now broken
    result = reg.ingest(pd.concat([fresh, repaired], ignore_index=True), source="after")
    assert result.accepted and (result.created, result.updated) == (3, 1), result
    assert gdal_errors(old) == [] and badly_formatted_times(old) == []


def test_upgrade_names_what_it_cannot_upgrade(tmp_path):
    with pytest.raises(cg.RegistryNotFound):
        cg.backends.upgrade_store(tmp_path / "none.gpkg")
    (tmp_path / "plain.gpkg").write_bytes(b"not a database")
    done = subprocess.run([*CLI, "upgrade", str(tmp_path / "plain.gpkg")], capture_output=True, text=True,
                          env={**__import__("os").environ, "CITYGRID_LANG": "zh"})
    assert done.returncode == 2 and "Traceback" not in done.stderr and "citygrid" in done.stderr
