"""The Store protocol: one conformance suite every backend passes (GeoPackage, PostGIS, dataset).

The registry speaks to its store only through the protocol's named reads and writes; each
backend is checked here against the same expectations, and against the others where they
hold the same registry.
"""

from __future__ import annotations

import inspect
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest

import citygrid as cg
from citygrid import backends, scale, synth
from citygrid.backends import Store, copy_store, open_store
from citygrid.errors import AccessDenied, RegistryError, UsageError
from citygrid.registry import Registry

SRC = Path(cg.__file__).parent


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=12, n_components=600, reserve=60)


@pytest.fixture(scope="module")
def local(district, tmp_path_factory):
    """A GeoPackage registry with a history: one batch of updates, new components and retirements, one allowed."""
    reg = Registry.create(tmp_path_factory.mktemp("store") / "registry.gpkg", district)
    batch = synth.make_batch(district, new=20, updated=30, retired=5, seed=13)
    assert reg.ingest(batch, source="week 1").accepted
    reg.allow(reg.components["component_id"].iloc[0], "geom.invalid", "checked on site")
    return reg


@pytest.fixture(scope="module", params=["GeoPackage", "PostGIS", "GeoParquet dataset"])
def store(request, local, tmp_path_factory) -> Store:
    if request.param == "GeoPackage":
        return open_store(local.path)
    if request.param == "PostGIS":
        pytest.importorskip("psycopg")
        url = request.getfixturevalue("cluster").create_database(f"s{uuid.uuid4().hex[:12]}")
        return copy_store(local.store, url)
    return open_store(scale.export_dataset(local, tmp_path_factory.mktemp("dataset") / "out"))


def _members() -> tuple[set[str], set[str]]:
    """The protocol's declared attributes and methods."""
    attributes = {name for name, value in vars(Store).items() if isinstance(value, property)}
    methods = {name for name, value in vars(Store).items() if inspect.isfunction(value) and not name.startswith("_")}
    return attributes, methods


def test_every_backend_declares_the_whole_protocol(store):
    attributes, methods = _members()
    assert {"read_batches", "read_history", "read_allowed", "read_catalog", "write", "allow"} <= methods
    assert {"name", "kind", "path", "timeout", "engine", "checks_state", "read_only"} == attributes
    for name in attributes:
        assert hasattr(store, name), name
    for name in methods:
        assert callable(getattr(store, name)), name
    assert isinstance(store.name, str) and isinstance(store.kind, str) and store.kind == store.kind.strip()
    assert store.path is None or isinstance(store.path, Path)
    assert (store.path is None) == (store.kind == "PostGIS")
    assert isinstance(store.timeout, float) and store.engine in ("pyogrio", "fiona")
    assert isinstance(store.checks_state, bool)
    assert store.read_only is None or (isinstance(store.read_only, str) and store.name in store.read_only)


def test_the_backend_that_opens_a_target_is_the_one_that_made_it(store):
    target = store.url if store.kind == "PostGIS" else store.path
    assert backends.backend_for(target).__name__.rsplit(".", 1)[1] == {
        "GeoPackage": "gpkg", "PostGIS": "postgis", "GeoParquet dataset": "dataset"}[store.kind]
    assert type(open_store(target)) is type(store)


def test_meta_state_components_and_district_agree_with_the_registry(store, local):
    meta = store.meta()
    assert meta["admin_code"] == local.admin_code and meta["layout"] == local.layout
    assert meta["district_name"] == local.district.name
    state = store.state()
    assert isinstance(state, str) and state and store.state() == state  # nothing written: the same state
    frame = store.read_components(state)
    expected = local.components_with_retired() if store.kind != "GeoParquet dataset" else local.components
    assert sorted(frame["component_id"]) == sorted(expected["component_id"])
    assert frame.crs.to_epsg() == 4547 and "retired_at" in frame
    district = store.read_district()
    assert district.code == local.admin_code and len(district.grid) == len(local.district.grid)


def test_catalog_and_units_read_as_the_registry_keeps_them(store, local):
    catalog = store.read_catalog()
    assert "fid" not in catalog and sorted(catalog["code"]) == sorted(local.catalog.to_frame()["code"])
    units = store.read_units()
    assert "fid" not in units and "name_zh" in units
    assert sorted(units["code"]) == sorted(local.district.units["code"])


def test_batches_history_aliases_and_allow_list(store, local):
    batches = store.read_batches()
    assert {"batch_id", "source", "started_at", "kind"} <= set(batches.columns)
    assert store.resolve_alias("no such alias") is None
    some = local.batches().query("kind == 'ingest'")
    changed = local.components_with_retired().sort_values("version")["component_id"].iloc[-1]
    if store.kind == "GeoParquet dataset":  # one exported state: nothing kept, said in one line
        assert len(batches) == 0 and len(store.read_allowed()) == 0
        for ask in (lambda: store.read_history([changed]), lambda: store.read_changes_since("2000-01-01"),
                    store.read_bookkeeping):
            with pytest.raises(UsageError, match="not their history"):
                ask()
        return
    assert list(batches["source"]) == list(local.batches()["source"]) and len(some) == 1
    history = store.read_history([changed])
    assert list(history.columns) == ["change_id", "batch_id", "source", "component_id", "action", "field",
                                     "old_value", "new_value", "changed_at"]
    assert len(history) >= 2 and set(history["component_id"]) == {changed}
    assert history["change_id"].is_monotonic_increasing and "week 1" in set(history["source"])
    assert len(store.read_history([])) == 0
    since = store.read_changes_since("2000-01-01T00:00:00.000000")
    assert len(since) == len(store.read_bookkeeping()["citygrid_history"])
    assert len(store.read_changes_since("2999-01-01T00:00:00.000000")) == 0
    allowed = store.read_allowed()
    assert list(allowed.columns) == ["component_id", "rule", "note", "added_at"]
    assert list(allowed["note"]) == ["checked on site"]
    tables = store.read_bookkeeping()
    assert set(tables) == {"citygrid_batches", "citygrid_history", "citygrid_aliases", "citygrid_allow"}


def test_history_is_the_same_on_every_backend_that_keeps_it(store, local):
    if store.kind == "GeoParquet dataset":
        pytest.skip("a dataset keeps no history (tested above)")
    ids = list(local.components_with_retired()["component_id"].iloc[::50])
    columns = ["batch_id", "component_id", "action", "field", "old_value", "new_value"]
    text = lambda f: f[columns].astype(object).where(f[columns].notna(), None).values.tolist()  # noqa: E731
    assert text(store.read_history(ids)) == text(local.store.read_history(ids))


def test_a_read_only_store_refuses_every_write_in_its_own_words(store, local, district):
    reg = Registry(store)
    if store.read_only is None:
        assert store.kind in ("GeoPackage", "PostGIS")
        return
    batch = synth.make_batch(district, new=2, updated=2, retired=0, seed=14)
    for write in (lambda: reg.ingest(batch, source="x"), lambda: reg.ingest(batch, source="x", dry_run=True),
                  lambda: reg.allow(local.components["component_id"].iloc[0], "geom.invalid"),
                  lambda: reg.migrate()):
        with pytest.raises(AccessDenied, match=re.escape(store.read_only)):
            write()


def test_verify_and_backup(store, tmp_path):
    assert store.verify() == []
    copy = store.backup(tmp_path / ("copy" + {"GeoPackage": ".gpkg", "PostGIS": ".dump"}.get(store.kind, "")))
    assert copy.exists() and (copy.is_dir() or copy.stat().st_size > 0)
    if store.kind != "PostGIS":  # a database's backup is a pg_dump archive (tests/test_postgis.py restores one)
        assert type(open_store(copy)) is type(store) and open_store(copy).meta()["admin_code"] == store.meta()[
            "admin_code"]


def test_a_shared_registry_is_created_like_a_file_one_and_never_over_another(cluster, district, local):
    pytest.importorskip("psycopg")
    url = cluster.create_database(f"c{uuid.uuid4().hex[:12]}")
    shared = Registry.create(url, district)
    made = Registry.create(local.path.with_name("fresh.gpkg"), district)
    assert shared.store.kind == "PostGIS" and len(shared.components) == len(made.components) == 600
    assert sorted(shared.components["component_id"]) == sorted(made.components["component_id"])
    assert list(shared.batches()["kind"]) == list(made.batches()["kind"]) == ["create"]
    with pytest.raises(RegistryError, match="already holds a registry"):
        Registry.create(url, district)
    with pytest.raises(UsageError, match="never overwritten"):
        Registry.create(url, district, overwrite=True)


def test_a_dataset_is_never_created_or_copied_into(local, tmp_path):
    folder = scale.export_dataset(local, tmp_path / "ds")
    with pytest.raises(UsageError, match="GeoParquet dataset"):
        backends.create_store(folder, None)
    with pytest.raises(UsageError, match="GeoParquet dataset"):
        copy_store(local.store, folder)


def test_no_sql_on_the_registry_outside_the_backends():
    """The store boundary: only ``backends/`` writes SQL on the registry's own tables and layers."""
    tables = re.compile(r"\b(FROM|INTO|UPDATE|JOIN|TABLE)\s+\"?(citygrid_\w+|components\w*|sqlite_master|gpkg_\w+)")
    found = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py") if "backends" not in path.parts
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if tables.search(line)]
    assert found == []
    assert not hasattr(Store, "read"), "the store takes named reads, not SQL"
    planted = 'rows = store.read_rows("SELECT * FROM citygrid_history")'
    assert tables.search(planted)  # the check sees SQL where it is


def test_a_missing_file_and_a_non_registry_are_named(tmp_path):
    with pytest.raises(cg.RegistryNotFound, match="does not exist"):
        open_store(tmp_path / "none.gpkg")
    (tmp_path / "plain.gpkg").write_bytes(b"not a database")
    with pytest.raises(RegistryError, match="is not a citygrid registry"):
        open_store(tmp_path / "plain.gpkg")
    assert isinstance(pd.DataFrame(), pd.DataFrame)


def test_the_postgis_migrations_are_sql_files_whose_applied_text_never_changes():
    """A database that ran version N ran that text: the files (package data) render it unchanged, forever."""
    import hashlib
    from importlib import resources

    from citygrid.backends import postgis

    files = sorted(f.name for f in (resources.files("citygrid.backends.postgis") / "migrations").iterdir()
                   if f.name.endswith(".sql"))
    assert [name[:4] for name in files] == [f"{k:04d}" for k in range(1, len(postgis.MIGRATIONS) + 1)]
    applied = [re.sub(r"\A(--[^\n]*\n)+", "", text) for text in postgis.MIGRATIONS]
    assert all(text.startswith(f"-- {k}: ") for k, text in enumerate(postgis.MIGRATIONS, 1))
    assert [hashlib.sha256(text.encode()).hexdigest()[:16] for text in applied] == [
        "75af66ff598f8d4b", "1385730307ef9dd6", "753419b27aa6b271", "49a103c3e7094e45", "a648a640ec5b11ab",
        "f4218016a6557b6d", "7677bf3dfdece644", "e7d080b4a1ce4566", "2edb472c8f5eb706"]
    assert "{" + "schema}" not in "".join(applied)  # every value rendered
