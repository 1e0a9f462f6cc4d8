"""The shared registry on PostGIS: same API, history by the database, row-level security, concurrency."""

from __future__ import annotations

import threading
import time
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from citygrid import copy_registry, open_registry, synth
from citygrid.errors import RegistryError, RegistryLocked, RegistryUnavailable
from citygrid.registry import Registry

psycopg = pytest.importorskip("psycopg")

from citygrid.backends import postgis  # noqa: E402


@pytest.fixture(scope="module")
def district():
    return synth.make_district(seed=4, n_components=2500, reserve=200)


@pytest.fixture(scope="module")
def source(district, tmp_path_factory):
    return Registry.create(tmp_path_factory.mktemp("pg") / "source.gpkg", district)


@pytest.fixture()
def shared(cluster, source):
    """A fresh database holding a copy of the source registry."""
    url = cluster.create_database(f"r{uuid.uuid4().hex[:12]}")
    return copy_registry(source.path, url)


def _same_frames(a: pd.DataFrame, b: pd.DataFrame, *, stamps: bool = True) -> None:
    """Equal components; with ``stamps=False`` retirement times need only agree on being set."""
    a = a.sort_values("component_id").reset_index(drop=True)
    b = b.sort_values("component_id").reset_index(drop=True)
    assert list(a["component_id"]) == list(b["component_id"])
    for column in a.columns:
        if column == "geometry":
            assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=1e-6).all()
        elif column == "updated_at":
            continue  # the database keeps microseconds, the GeoPackage seconds
        elif column == "retired_at" and not stamps:
            assert (a[column].isna() == b[column].isna()).all()
        else:
            left = a[column].astype(object).where(a[column].notna(), None).tolist()
            right = b[column].astype(object).where(b[column].notna(), None).tolist()
            assert left == right, column


def test_open_and_queries_match_the_geopackage(shared, source):
    assert "PostGIS" in repr(shared)
    assert shared.layout == source.layout and shared.admin_code == source.admin_code
    _same_frames(shared.components, source.components)
    street = source.components["street"].iloc[0]
    assert len(shared.query(street=street)) == len(source.query(street=street))
    pd.testing.assert_frame_equal(shared.stats(by="street"), source.stats(by="street"))
    x, y = shapely.get_coordinates(source.components.geometry.iloc[5])[0]
    near = shared.owner_at(x, y, crs="EPSG:4547", radius=5)
    assert near["component_id"].iloc[0] == source.components["component_id"].iloc[5]
    assert len(shared.district.grid) == len(source.district.grid)
    assert shared.validate().ok == source.validate().ok


def test_history_as_of_exports_and_maps_work_unchanged(shared, district, tmp_path):
    from citygrid import maps

    before = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    batch = synth.make_batch(district, new=5, updated=5, retired=1, seed=41)
    result = shared.ingest(batch, source="week 49")
    past = shared.as_of(before)
    assert len(past) == 2500 and not set(result.new_ids) & set(past["component_id"])
    assert len(shared.components) == 2500 + 5 - 1
    files = shared.export(tmp_path / "maluan.gpkg", street="马峦街道")
    exported = sum(len(gpd.read_file(f, layer=layer)) for f in files if f.suffix == ".gpkg"
                   for layer, _ in pyogrio.list_layers(f) if layer.startswith("components_"))
    assert exported == len(open_registry(shared.store.url).query(street="马峦街道"))
    code = shared.components["category"].value_counts().index[0]
    page = tmp_path / "category.html"
    maps.category_map(shared, code, basemap="none").save(page)
    assert "citygrid.add" in page.read_text(encoding="utf-8")
    assert shared.validate().ok


def test_schema_is_versioned_and_upgrade_is_idempotent(shared):
    with postgis.connect(shared.store.url) as conn:
        assert postgis.schema_version(conn) == len(postgis.MIGRATIONS)
        assert postgis.upgrade(conn) == len(postgis.MIGRATIONS)
        indexes = {r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'citygrid' AND tablename = 'components'")}
    assert any("USING gist (geom)" in i for i in indexes)


def test_ingest_gives_the_same_registry_and_history_as_the_geopackage(shared, source, district, tmp_path):
    local = copy_registry(shared.store.url, tmp_path / "local.gpkg")
    batch = synth.make_batch(district, new=40, updated=30, retired=8, seed=1)
    a = local.ingest(batch.copy(), source="2026-W48")
    b = shared.ingest(batch.copy(), source="2026-W48")
    assert (a.created, a.updated, a.retired) == (b.created, b.updated, b.retired) == (40, a.updated, 8)
    _same_frames(local.components_with_retired(), shared.components_with_retired(), stamps=False)
    changed = batch["component_id"].dropna().iloc[0]
    fields = lambda h: sorted(h.loc[h["action"] != "create", "field"].dropna())  # noqa: E731
    assert fields(local.history(changed)) == fields(shared.history(changed))
    assert shared.batches()["source"].tolist()[-1] == "2026-W48"


def test_copy_out_and_back_loses_nothing(shared, tmp_path, district, cluster):
    shared.ingest(synth.make_batch(district, new=10, updated=10, retired=2, seed=5), source="week")
    local = copy_registry(shared.store.url, tmp_path / "back.gpkg")
    _same_frames(local.components_with_retired(), shared.components_with_retired())
    assert len(local.batches()) == len(shared.batches())
    history = ["batch_id", "component_id", "action", "field", "old_value", "new_value"]
    text = lambda f: f[history].map(lambda v: "" if pd.isna(v) else str(v))  # noqa: E731
    history_of = lambda reg: reg.store.read_bookkeeping()["citygrid_history"].sort_values("change_id")  # noqa: E731
    left = text(history_of(local).reset_index(drop=True))
    right = text(history_of(shared).reset_index(drop=True))
    assert len(left) == len(right)
    differs = left.to_numpy() != right.to_numpy()
    assert not differs.any(), (left[differs.any(axis=1)].head(3), right[differs.any(axis=1)].head(3))
    again = copy_registry(local.path, cluster.create_database(f"r{uuid.uuid4().hex[:12]}"))
    _same_frames(again.components_with_retired(), shared.components_with_retired())
    with pytest.raises(RegistryError, match="already holds a registry"):
        copy_registry(local.path, again.store.url)
    with pytest.raises(ValueError, match="between a GeoPackage path and a postgresql"):
        copy_registry(local.path, tmp_path / "x.gpkg")


def test_plain_sql_changes_are_in_history_and_deleting_is_refused(shared):
    ident = shared.components["component_id"].iloc[0]
    with psycopg.connect(shared.store.url, options="-c search_path=citygrid,public") as conn:
        conn.execute("UPDATE components SET name = %s WHERE component_id = %s", ("<b>新名字</b>", ident))
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="retired, never deleted"):
            conn.execute("DELETE FROM components WHERE component_id = %s", (ident,))
    history = shared.history(ident)
    last = history.iloc[-1]
    assert (last["field"], last["new_value"]) == ("name", "<b>新名字</b>")
    time.sleep(0.6)  # the registry asks the database for its state at most twice a second
    assert shared.components.set_index("component_id").loc[ident, "name"] == "<b>新名字</b>"


def test_a_row_inserted_by_plain_sql_gets_a_batch_and_is_read(shared):
    """QGIS or psql inserts with the columns it knows; every client must still read the registry."""
    before = shared.components
    template = before[before.geom_type == "Point"].iloc[0]
    with psycopg.connect(shared.store.url, options="-c search_path=citygrid,public") as conn:
        conn.execute("INSERT INTO components (component_id, category, department, grid, status, owner, owner_code, "
                     "geom) VALUES (%s, %s, %s, %s, '完好', %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4547))",
                     ("4403100101999990", "0101", template["department"], template["grid"], template["owner"],
                      template["owner_code"], template.geometry.x + 1.0, template.geometry.y))  # in its cell
        conn.execute("UPDATE components SET status = '破损' WHERE component_id = %s", (template["component_id"],))
        conn.commit()
        batches = conn.execute("SELECT batch_id, source, kind FROM citygrid_batches WHERE kind = 'outside'").fetchall()
    assert len(batches) == 1 and batches[0][1] == "outside edit"  # one per transaction
    time.sleep(0.6)  # the registry asks the database for its state at most twice a second
    again = open_registry(shared.store.url)
    rows = again.components.set_index("component_id")
    assert rows.loc["4403100101999990", "batch_id"] == batches[0][0]
    assert rows.loc[template["component_id"], "version"] == template["version"] + 1
    assert rows.loc[template["component_id"], "batch_id"] == batches[0][0]
    assert again.stats(by="street")["count"].sum() == len(before) + 1
    assert again.history("4403100101999990")["batch_id"].tolist() == [batches[0][0]]


def _unit_role(shared, unit_code: str, name: str) -> str:
    postgis.add_unit_role(shared.store.url, name, unit_code)
    return shared.store.url.replace("postgres@", f"{name}@")


def test_a_unit_changes_only_its_own_components(shared, district):
    comps = shared.components
    owner = comps["owner_code"].value_counts().index[0]
    other = comps.loc[(comps["owner_code"] != owner) & (comps["maintainer_code"] != owner)].iloc[0]
    mine = comps.loc[comps["owner_code"] == owner].iloc[0]
    url = _unit_role(shared, owner, f"unit_{uuid.uuid4().hex[:8]}")
    as_unit = open_registry(url)
    assert len(as_unit.components) == len(comps)  # reads all

    own = comps.loc[comps["component_id"] == mine["component_id"]].copy()
    own["status"] = "破损"
    assert as_unit.ingest(own, source="unit edit").accepted
    new = synth.make_batch(district, new=3, updated=0, retired=0, seed=21)  # components it will own
    new["owner_code"], new["owner"] = owner, comps.loc[comps["owner_code"] == owner, "owner"].iloc[0]
    created = as_unit.ingest(new, source="unit survey")
    assert created.accepted and len(created.new_ids) == 3, created.report.summary()
    squat = synth.make_batch(district, new=1, updated=0, retired=0, seed=22)  # owned by another unit
    squat["owner_code"], squat["owner"] = other["owner_code"], other["owner"]
    squat["maintainer_code"], squat["maintainer"] = other["maintainer_code"], other["maintainer"]
    with pytest.raises(PermissionError):
        as_unit.ingest(squat, source="unit survey")
    foreign = comps.loc[comps["component_id"] == other["component_id"]].copy()
    foreign["status"] = "丢失"
    before = shared.history(other["component_id"])
    with pytest.raises(PermissionError, match="may not change"):
        as_unit.ingest(foreign, source="unit edit")
    assert len(shared.history(other["component_id"])) == len(before)

    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        done = conn.execute("UPDATE components SET status = '丢失' WHERE component_id = %s",
                            (other["component_id"],)).rowcount
        assert done == 0  # invisible to the unit's UPDATE
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="ownership"):
            conn.execute("UPDATE components SET owner_code = %s WHERE component_id = %s",
                         (other["owner_code"], mine["component_id"]))
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO citygrid_history (component_id, action) VALUES ('x', 'forged')")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # squatting the next batch numbers
            conn.execute("INSERT INTO citygrid_batches (batch_id, source) "
                         "SELECT n, 'squat' FROM generate_series(100, 150) AS n")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT record_batch('forged', 'x', '', '', 0, 0, 0, 0, 'ingest')")
        conn.rollback()
        conn.execute("SET citygrid.batch_id = '1'")  # filing an edit under the initial load
        conn.execute("UPDATE components SET remarks = 'forged batch' WHERE component_id = %s",
                     (mine["component_id"],))
        conn.commit()
    filed = shared.history(mine["component_id"]).iloc[-1]
    assert filed["new_value"] == "forged batch" and filed["batch_id"] != 1
    again = open_registry(url)
    assert again.ingest(comps.loc[comps["component_id"] == mine["component_id"]].assign(status="占用"),
                        source="after the attempts").accepted
    assert shared.components.set_index("component_id").loc[other["component_id"], "status"] == other["status"]


def test_a_unit_that_may_not_read_all_sees_no_other_history(shared):
    comps = shared.components
    owner = comps["owner_code"].value_counts().index[-1]
    mine = comps.loc[comps["owner_code"] == owner, "component_id"].iloc[0]
    other = comps.loc[(comps["owner_code"] != owner) & (comps["maintainer_code"] != owner), "component_id"].iloc[0]
    with psycopg.connect(shared.store.url, options="-c search_path=citygrid,public") as conn:
        conn.execute("INSERT INTO citygrid_meta VALUES ('units_read_all', 'false') "
                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
    as_unit = open_registry(_unit_role(shared, owner, f"unit_{uuid.uuid4().hex[:8]}"))
    assert len(as_unit.history(mine)) >= 1
    with pytest.raises(KeyError, match="no component .* you may read"):  # as if it were not there
        as_unit.history(other)
    seen = set(as_unit.store.read_bookkeeping()["citygrid_history"]["component_id"])
    assert other not in seen and mine in seen
    assert len(shared.history(other)) >= 1  # the admin sees it all


def test_a_client_keeps_what_it_read_until_the_state_changes(shared, monkeypatch):
    url = shared.store.url
    first = open_registry(url).components_with_retired()
    copies = []
    real = postgis.read_components
    monkeypatch.setattr(postgis, "read_components", lambda *a, **k: copies.append(1) or real(*a, **k))
    again = open_registry(url).components_with_retired()  # another client of the same role: from its cache
    assert copies == []
    _same_frames(first, again)
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:  # another program edits
        conn.execute("UPDATE components SET name = 'renamed by SQL' WHERE fid = (SELECT min(fid) FROM components)")
    after = open_registry(url).components_with_retired()
    assert copies == [1] and "renamed by SQL" in set(after["name"])


def test_a_units_cache_never_holds_more_than_it_may_read_now(shared):
    comps = shared.components
    owner = comps["owner_code"].value_counts().index[-1]
    unit = _unit_role(shared, owner, f"unit_{uuid.uuid4().hex[:8]}")
    assert len(open_registry(unit).components) == len(comps)  # units read all: cached so
    with psycopg.connect(shared.store.url, options="-c search_path=citygrid,public") as conn:
        conn.execute("INSERT INTO citygrid_meta VALUES ('units_read_all', 'false') "
                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")  # writes no history
    mine = open_registry(unit).components
    assert 0 < len(mine) < len(comps)
    assert ((mine["owner_code"] == owner) | (mine["maintainer_code"] == owner)).all()


def test_an_ingest_reads_only_the_components_near_its_batch_and_finds_the_same(cluster, tmp_path, monkeypatch):
    """A department's client does not read the whole registry to merge a batch: it reads the
    components the batch names and those within the largest tolerance, and its report is the
    one the GeoPackage gives from every component. The faults come from tests/faults.py."""
    import faults

    district = synth.make_district(seed=7, n_components=2_500, reserve=900)
    local = Registry.create(tmp_path / "local.gpkg", district)
    shared = copy_registry(local.path, cluster.create_database(f"r{uuid.uuid4().hex[:12]}"))
    case = faults.batch_case(district, local.components, district.reserve.reset_index(drop=True), [],
                             per_shape=2, seed=9)
    whole = []
    monkeypatch.setattr(shared.store, "read_components", lambda state: whole.append(state))
    near = shared.ingest(case.frame, source="survey", dry_run=True).report.issues
    everything = local.ingest(case.frame, source="survey", dry_run=True).report.issues
    assert whole == []
    columns = ["row", "rule", "message"]
    assert len(near) > 20 and near[columns].sort_values(columns).values.tolist() == \
        everything[columns].sort_values(columns).values.tolist()


def test_two_departments_at_once(shared, district):
    comps = shared.components.reset_index(drop=True)
    first, second, third = (comps.iloc[[i]].copy() for i in (0, 1, 2))
    first["status"], second["status"] = "破损", "丢失"
    readers = [open_registry(shared.store.url) for _ in range(2)]
    for r in readers:
        _ = r.components  # both plan against the same snapshot
    errors: list[Exception] = []

    def run(reg, batch):
        try:
            reg.ingest(batch, source="concurrent")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r, b)) for r, b in zip(readers, (first, second))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []  # different components: both succeed
    now = open_registry(shared.store.url).components.set_index("component_id")
    assert now.loc[first["component_id"].iloc[0], "status"] == "破损"
    assert now.loc[second["component_id"].iloc[0], "status"] == "丢失"

    stale = [open_registry(shared.store.url) for _ in range(2)]
    rows = stale[1].store.read_near(third["component_id"].to_numpy(dtype=object), third.geometry.to_numpy(),
                                    third["category"].to_numpy(dtype=object), [10.0])
    stale[1].store.read_near = lambda *_: rows  # it plans on what it read before the other's commit, as in a race
    a, b = third.copy(), third.copy()
    a["status"], b["status"] = "破损", "丢失"
    stale[0].ingest(a, source="first")
    with pytest.raises(postgis.RegistryConflict, match="changed by another writer"):
        stale[1].ingest(b, source="second")
    assert open_registry(shared.store.url).components.set_index("component_id").loc[
        third["component_id"].iloc[0], "status"] == "破损"


def _new_rows(rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reserve components as a survey sends them: no identifier (see synth.make_batch)."""
    return rows.assign(component_id=None, change_date=pd.NaT, action=None).reset_index(drop=True)


def test_concurrent_ingests_of_new_components_get_distinct_identifiers(shared, district):
    spare = district.reserve
    twice = spare[spare["category"].duplicated(keep=False)].sort_values("category", kind="stable")
    cats = twice["category"].unique()[:6]
    twice = twice[twice["category"].isin(cats)].groupby("category").head(2)
    first = _new_rows(twice.groupby("category").nth(0))  # the same categories, other places
    second = _new_rows(twice.groupby("category").nth(1))
    planners = [open_registry(shared.store.url) for _ in range(2)]
    rows = planners[1].store.read_near(second["component_id"].to_numpy(dtype=object), second.geometry.to_numpy(),
                                       second["category"].to_numpy(dtype=object), [10.0] * len(second))
    planners[1].store.read_near = lambda *_: rows  # both plan on the same state, as in a race
    a = planners[0].ingest(first, source="one")
    b = planners[1].ingest(second, source="two")
    assert set(a.new_ids).isdisjoint(b.new_ids) and len(set(a.new_ids) | set(b.new_ids)) == 12
    ids = open_registry(shared.store.url).components["component_id"]
    assert ids.is_unique and set(a.new_ids) | set(b.new_ids) <= set(ids)


def _same_new_cover(district, seed: int):
    """One new point component surveyed by two departments: the second 10 cm from the first."""
    first = synth.make_batch(district, new=10, updated=0, retired=0, seed=seed)
    first = first[first.geom_type == "Point"].iloc[[0]]
    return first, first.assign(geometry=first.geometry.translate(0.1, 0.0))


def _stale_once(reg, batch) -> None:
    """`reg` validates its next batch against what it reads now, before another merge commits (a race)."""
    store, real = reg.store, reg.store.read_near
    before = real(batch["component_id"].to_numpy(dtype=object), batch.geometry.to_numpy(),
                  batch["category"].to_numpy(dtype=object), [10.0] * len(batch))
    calls: list[int] = []

    def read_near(*args):
        calls.append(1)
        return before if len(calls) == 1 else real(*args)

    store.read_near = read_near


def _current_within(url: str, row, metres: float) -> int:
    """The database's own count of current components of `row`'s category within `metres` of it."""
    with postgis.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM components WHERE retired_at IS NULL AND category = %s AND "
                            "ST_DWithin(geom, ST_SetSRID(ST_GeomFromText(%s), 4547), %s)",
                            (row["category"], row.geometry.wkt, metres)).fetchone()[0]


def test_a_component_another_merge_put_there_after_the_batch_was_read_makes_it_a_duplicate(shared, district):
    first, second = _same_new_cover(district, seed=51)
    planners = [open_registry(shared.store.url) for _ in range(2)]
    _stale_once(planners[1], second)
    assert planners[0].ingest(first, source="department A").accepted
    late = planners[1].ingest(second, source="department B")
    assert not late.accepted and late.report.issues["rule"].tolist() == ["topology.duplicate_feature"]
    assert _current_within(shared.store.url, first.iloc[0], 1.0) == 1


def test_two_merges_placing_the_same_component_at_once_are_serialised(shared, district, monkeypatch):
    """The second waits while the first holds the place, then finds its component there."""
    first, second = _same_new_cover(district, seed=52)
    planners = [open_registry(shared.store.url) for _ in range(2)]
    _stale_once(planners[1], second)
    inside, release = threading.Event(), threading.Event()
    write = postgis.write_components

    def held(conn, rows):
        write(conn, rows)
        if threading.current_thread().name == "A":  # written, not yet committed
            inside.set()
            release.wait(30)

    monkeypatch.setattr(postgis, "write_components", held)
    results = {}
    merges = [threading.Thread(name=who, target=lambda r=reg, b=batch, w=who: results.__setitem__(
        w, r.ingest(b, source=f"department {w}"))) for who, reg, batch in (("A", planners[0], first),
                                                                           ("B", planners[1], second))]
    merges[0].start()
    assert inside.wait(30)
    merges[1].start()
    merges[1].join(2.0)
    waited = merges[1].is_alive()
    release.set()
    [m.join(60) for m in merges]
    assert waited and results["A"].accepted and not results["B"].accepted, results
    assert results["B"].report.issues["rule"].tolist() == ["topology.duplicate_feature"]
    assert _current_within(shared.store.url, first.iloc[0], 1.0) == 1


def test_a_place_held_longer_than_the_timeout_is_a_clear_error_and_nothing_is_written(shared, district):
    batch, _ = _same_new_cover(district, seed=53)
    reg = open_registry(shared.store.url, timeout=1.0)
    tolerance = reg.catalog[batch["category"].iloc[0]].tolerance_m
    keys = postgis.place_keys(batch[["category", "geometry"]].assign(reach=tolerance))
    before = len(reg.components)
    with postgis.connect(shared.store.url) as holder:  # another writer holds the place
        holder.autocommit = True
        holder.execute("SELECT count(pg_advisory_lock(k)) FROM unnest(%s::bigint[]) AS k", (keys,))
        with pytest.raises(RegistryLocked, match="merging components at the same places"):
            reg.ingest(batch, source="held")
    assert len(open_registry(shared.store.url).components) == before


def test_an_older_schema_is_named_and_upgraded(cluster, source, monkeypatch):
    url = cluster.create_database(f"v{uuid.uuid4().hex[:12]}")
    monkeypatch.setattr(postgis, "MIGRATIONS", postgis.MIGRATIONS[:1])  # as an earlier citygrid left it
    copy_registry(source.path, url)
    monkeypatch.undo()
    latest = len(postgis.MIGRATIONS)
    with pytest.raises(RegistryError, match=f"schema version 1, this citygrid uses {latest}.*upgrade"):
        open_registry(url)
    with postgis.connect(url) as conn:
        assert postgis.upgrade(conn) == len(postgis.MIGRATIONS)
    assert len(open_registry(url).components) == len(source.components)
    with postgis.connect(url) as conn:
        conn.execute("UPDATE citygrid_meta SET value = '99' WHERE key = 'schema_version'")
        conn.commit()
    with pytest.raises(RegistryError, match="schema version 99.*upgrade citygrid"):
        open_registry(url)


def test_bad_urls_give_clear_errors(cluster):
    with pytest.raises(RegistryError, match="holds no citygrid registry"):
        open_registry(cluster.create_database(f"e{uuid.uuid4().hex[:12]}"))
    with pytest.raises(RegistryUnavailable, match='cannot reach .*database "no_such_db" does not exist'):
        open_registry(f"postgresql://postgres@127.0.0.1:{cluster.port}/no_such_db")
    with pytest.raises(RegistryUnavailable, match="Check that the server runs"):
        open_registry("postgresql://postgres@127.0.0.1:1/registry")
    with pytest.raises(ValueError, match="letters, digits"):
        postgis.add_unit_role(cluster.url(), "x; DROP TABLE y", "1")


def test_numbers_are_kept_as_numbers(shared):
    frame = shared.components_with_retired()
    assert frame["version"].dtype == np.int64 and frame["batch_id"].dtype == np.int64


def test_copying_out_converts_each_column_once_not_once_per_history_row(shared, district, tmp_path, monkeypatch):
    from citygrid.backends import gpkg

    batch = synth.make_batch(district, new=200, updated=200, retired=0, seed=40)
    assert shared.ingest(batch, source="more history").accepted
    rows = len(shared.store.read_bookkeeping()["citygrid_history"])
    conversions = []
    for module, name in ((postgis, "_values"), (gpkg, "sql_columns")):
        convert = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _convert=convert, **k: conversions.append(1) or _convert(*a, **k))
    local = copy_registry(shared.store.url, tmp_path / "out.gpkg")
    assert len(local.store.read_bookkeeping()["citygrid_history"]) == rows > 2_500
    assert len(conversions) < 100  # per table or column, whatever the number of rows


def test_backup_restores_into_another_database_whole_and_verify_names_breaks(shared, cluster, tmp_path):
    import subprocess

    assert shared.verify() == []
    dump = shared.backup(tmp_path / "registry.dump")
    target = cluster.create_database(f"r{uuid.uuid4().hex[:12]}")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    restored = subprocess.run([str(cluster.bin / "pg_restore"), "--no-owner", f"--dbname={target}", str(dump)],
                              capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    back = open_registry(target)
    _same_frames(back.components_with_retired(), shared.components_with_retired())
    assert back.verify() == [] and len(back.batches()) == len(shared.batches())
    with pytest.raises(FileExistsError):
        shared.backup(dump)
    with psycopg.connect(shared.store.url, options="-c search_path=citygrid,public") as conn:
        conn.execute("ALTER TABLE components DISABLE TRIGGER components_history_changed")  # as the owner may
        conn.execute("INSERT INTO citygrid_history (batch_id, component_id, action) VALUES (999, 'x', 'update')")
    found = "\n".join(shared.verify())
    assert "trigger missing or disabled: components_history_changed" in found
    assert "history: 1 change(s) in batches that are not recorded" in found


@pytest.mark.slow
def test_the_server_dying_mid_ingest_loses_nothing_and_says_so(tmp_path):
    """`pg_ctl stop -m immediate` while `citygrid ingest` is inserting: a clear one-line error,
    nothing of the batch in the registry after the server recovers, and the same batch merges then."""
    import subprocess
    import sys
    from pathlib import Path

    import psycopg

    from postgres import Cluster

    district = synth.make_district(seed=4, n_components=2_500, reserve=1_500)
    local = Registry.create(tmp_path / "local.gpkg", district)
    batch = district.reserve.copy()
    batch["component_id"] = None
    batch.to_file(tmp_path / "batch.gpkg", layer="batch")
    server = Cluster()
    try:
        url = server.create_database("crash")
        copy_registry(local.path, url)
        command = [str(Path(sys.executable).with_name("citygrid")), "ingest", str(tmp_path / "batch.gpkg"),
                   "--registry", url, "--source", "crash"]
        for _ in range(5):  # until the crash lands inside the merge's transaction
            ingest = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            inside = False
            with psycopg.connect(server.url(), autocommit=True) as conn:
                while ingest.poll() is None and not inside:
                    inside = any("INTO components" in q or "arriving" in q for (q,) in conn.execute(
                        "SELECT query FROM pg_stat_activity WHERE datname = 'crash' AND state = 'active'"))
            if inside:
                break
            ingest.wait()
            server.crash()  # it merged before the crash: start again on a fresh copy
            server.start()
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute('DROP DATABASE "crash"')
            url = server.create_database("crash")
            copy_registry(local.path, url)
        assert inside, "the merge never was inside its transaction when looked at"
        server.crash()
        out, err = ingest.communicate(timeout=120)
        assert ingest.returncode == 2 and "Traceback" not in err, err
        assert "broke" in err and "Nothing of this merge was written" in err
        with pytest.raises(RegistryUnavailable, match="cannot reach the registry's database"):
            open_registry(url)
        server.start()
        after = open_registry(url)
        assert len(after.components_with_retired()) == 2_500 and len(after.batches()) == 1
        assert after.validate().ok
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert len(open_registry(url).components) == 2_500 + 1_500
    finally:
        server.stop()


def test_the_binary_read_gives_what_the_csv_read_gives_in_the_same_snapshot(shared):
    """The components over ADBC's binary protocol, held to psycopg's COPY CSV read; both see one snapshot only."""
    url = shared.store.url
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            plain = postgis.read_components(conn)
            with psycopg.connect(url, options="-c search_path=citygrid,public", autocommit=True) as other:
                other.execute("UPDATE components SET status = '破损' WHERE component_id = %s",
                              (plain["component_id"].iloc[0],))  # committed after the snapshot began
            binary = postgis.read_components(conn, url=url)
    assert len(binary) == len(plain) and binary.columns.tolist() == plain.columns.tolist()
    _same_frames(binary, plain)
    assert (binary.dtypes == plain.dtypes).all()
    assert open_registry(url).components.set_index("component_id").loc[plain["component_id"].iloc[0],
                                                                      "status"] == "破损"


def test_points_read_as_coordinates_give_what_postgis_wkb_gives(shared):
    """Over the binary protocol points come as x, y and other shapes as WKB, dates and numbers in their types:
    every geometry (a multipoint written by plain SQL among them) and value is what PostGIS's WKB and text give."""
    url = shared.store.url
    before = shared.components
    template = before[before.geom_type == "Point"].iloc[0]
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        conn.execute("INSERT INTO components (component_id, category, department, grid, status, owner, owner_code, "
                     "survey_date, geom) VALUES (%s, %s, %s, %s, '完好', %s, %s, '2019-05-01', "
                     "ST_SetSRID(ST_Multi(ST_MakePoint(%s, %s)), 4547))",
                     ("4403100101999970", template["category"], template["department"], template["grid"],
                      template["owner"], template["owner_code"], template.geometry.x + 0.125, template.geometry.y))
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            text = postgis.read_components(conn)
            binary = postgis.read_components(conn, url=url)
    assert {"Point", "MultiPoint", "LineString", "Polygon"} <= set(binary.geom_type)
    assert list(binary.geometry.to_wkb()) == list(text.geometry.to_wkb())  # bit for bit, not within a tolerance
    for column in ("survey_date", "change_date", "retired_at", "updated_at", "version", "batch_id"):
        assert binary[column].equals(text[column]), column
    row = binary.set_index("component_id").loc["4403100101999970"]
    assert (row["survey_date"], row["version"]) == (pd.Timestamp("2019-05-01"), 1)


def _plain_sql_edits(url: str, comps: gpd.GeoDataFrame) -> None:
    """Edits as psql or QGIS makes them: many rows and fields in one statement, a rename, a move, a retirement."""
    points = comps[comps.geom_type == "Point"].sort_values("component_id")
    some = points["component_id"].iloc[:40].tolist()
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        conn.execute("UPDATE components SET status = '破损', remarks = '<i>井盖松动</i>', change_date = '2026-11-30' "
                     "WHERE component_id = ANY(%s)", (some,))
        conn.execute("UPDATE components SET geom = ST_Translate(geom, 0.5, 0), material = NULL "
                     "WHERE component_id = ANY(%s)", (some[5:15],))
        conn.execute("UPDATE components SET retired_at = '2026-12-01 08:00:00', status = '移除' "
                     "WHERE component_id = ANY(%s)", (some[30:],))
        conn.execute("UPDATE components SET name = name WHERE component_id = ANY(%s)", (some,))  # no change
        conn.execute("UPDATE components SET geom = ST_GeomFromText(ST_AsText(geom), 4547) "
                     "WHERE component_id = %s", (some[0],))  # the same point written again: no change
        conn.commit()
    time.sleep(0.6)  # the registry asks the database for its state at most twice a second


def test_history_per_statement_records_what_the_row_trigger_recorded(cluster, source, monkeypatch):
    """Schema 9 writes history per statement; the same plain-SQL edits give the same lines as schema 8's trigger."""
    older = cluster.create_database(f"h{uuid.uuid4().hex[:12]}")
    monkeypatch.setattr(postgis, "MIGRATIONS", postgis.MIGRATIONS[:8])  # history per row, as schema 8 made it
    copy_registry(source.path, older)
    monkeypatch.undo()
    newer = cluster.create_database(f"h{uuid.uuid4().hex[:12]}")
    copy_registry(source.path, newer)
    histories = []
    for url in (older, newer):
        with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
            before = conn.execute("SELECT max(change_id) FROM citygrid_history").fetchone()[0]
        _plain_sql_edits(url, source.components)
        with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
            rows = conn.execute("SELECT component_id, action, field, old_value, new_value FROM citygrid_history "
                                "WHERE change_id > %s ORDER BY change_id", (before,)).fetchall()
        histories.append(sorted(rows, key=lambda r: r[0]))  # by component (stable: each one's lines in order)
    assert histories[1] == histories[0]
    said = pd.Series([(r[1], r[2]) for r in histories[1]]).value_counts()
    assert said[("retire", "retired_at")] == 10 and said[("update", "geometry")] == 10  # the rewrite: none
    assert said[("update", "remarks")] == 40 and len(histories[1]) > 100
    with psycopg.connect(newer, options="-c search_path=citygrid,public") as conn:
        assert conn.execute("SELECT count(*) FROM citygrid_pending").fetchone()[0] == 0  # the checks took their queue


def _backend(url: str) -> int:
    with postgis.connect(url) as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_client_reuses_its_connections_as_new_ones_and_never_across_urls_or_processes(tmp_path, district):
    import multiprocessing

    from postgres import Cluster

    server = Cluster()
    try:
        url = server.create_database("pool")
        copy_registry(Registry.create(tmp_path / "local.gpkg", district).path, url)
        first = _backend(url)
        assert _backend(url) == first  # the session of the last call, not a new one
        with postgis.connect(url) as conn:  # what a caller leaves set is not what the next one gets
            conn.autocommit = True
            conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        with postgis.connect(url) as conn:
            assert (conn.autocommit, conn.isolation_level) == (False, None)
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
            assert conn.execute("SHOW jit").fetchone()[0] == "off"
        with pytest.raises(psycopg.errors.UndefinedTable), postgis.connect(url) as conn:
            conn.execute("SELECT * FROM no_such_table")  # a failed transaction is rolled back, not kept
        with postgis.connect(url) as conn, postgis.connect(url) as other:  # two at once: two sessions
            pids = {conn.execute("SELECT pg_backend_pid()").fetchone()[0],
                    other.execute("SELECT pg_backend_pid()").fetchone()[0]}
            assert len(pids) == 2
        postgis.add_reader_role(url, "reader_of_pool")
        assert _backend(url.replace("postgres@", "reader_of_pool@")) not in pids  # another role, another session
        fork = multiprocessing.get_context("fork")
        with fork.Pool(1) as child:  # a forked child opens its own; the parent's sessions live on
            assert child.apply(_backend, (url,)) not in pids
        assert _backend(url) in pids
        server.crash()
        server.start()  # every session the client kept has died
        assert len(open_registry(url).components) == len(district.components)
    finally:
        server.stop()
