"""Attacks on the shared registry through plain SQL, as a unit's and as the admin's login role.

Each statement is one a hostile or careless client can send with psql or QGIS; each must be
refused by the database itself, whatever library (or none) the client uses.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest

from citygrid import copy_registry, open_registry, synth
from citygrid.registry import Registry

psycopg = pytest.importorskip("psycopg")

from citygrid.backends import postgis  # noqa: E402

REFUSED = (psycopg.errors.CheckViolation, psycopg.errors.InsufficientPrivilege, psycopg.errors.NotNullViolation,
           psycopg.errors.InvalidParameterValue, psycopg.errors.RaiseException)


@pytest.fixture(scope="module")
def shared(cluster, tmp_path_factory):
    district = synth.make_district(seed=9, n_components=1500)
    source = Registry.create(tmp_path_factory.mktemp("attack") / "source.gpkg", district)
    return copy_registry(source.path, cluster.create_database(f"a{uuid.uuid4().hex[:12]}"))


@pytest.fixture(scope="module")
def roles(shared):
    comps = shared.components
    unit = comps["owner_code"].value_counts().index[0]
    names = {"unit": f"unit_{uuid.uuid4().hex[:8]}", "admin": f"admin_{uuid.uuid4().hex[:8]}"}
    postgis.add_unit_role(shared.store.url, names["unit"], unit)
    postgis.add_unit_role(shared.store.url, names["admin"], unit, admin=True)
    return {k: shared.store.url.replace("postgres@", f"{v}@") for k, v in names.items()} | {"unit_code": unit}


def _sql(url: str, statement: str, params: tuple = ()) -> int:
    """Run one statement in its own transaction as the role of `url`; the rows it touched."""
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        return conn.execute(statement, params).rowcount


def _row(shared, **values) -> tuple[str, tuple]:
    """An INSERT of a component like a registered one, with `values` changed."""
    base = shared.components.iloc[0]
    names = dict(zip(shared.district.units["code"], shared.district.units["name"]))
    owner = values.get("owner_code", base["owner_code"])
    row = {"component_id": base["component_id"][:-6] + "999001", "category": base["category"],
           "owner_code": owner, "owner": names.get(owner, base["owner"]), "status": "完好",
           "geom": f"POINT ({base.geometry.x + 3} {base.geometry.y})"} | values
    columns = ", ".join(f'"{c}"' for c in row)
    holes = ", ".join("ST_GeomFromText(%s, 4547)" if c == "geom" and v is not None else "%s"
                      for c, v in row.items())
    return f"INSERT INTO components ({columns}) VALUES ({holes})", tuple(row.values())


@pytest.mark.parametrize("who", ["unit", "admin"])
@pytest.mark.parametrize("attack", [
    {"component_id": "JUNK1"},
    {"category": "../../../tmp/pwn"},
    {"component_id": None},
    {"geom": "POINT EMPTY"},
    {"geom": "GEOMETRYCOLLECTION (POINT (527000 2506000))"},
    {"geom": "POLYGON ((527000 2506000, 527010 2506010, 527010 2506000, 527000 2506010, 527000 2506000))"},
    {"status": "良好"},
    {"category": "0199"},
], ids=["junk id", "path as category", "null id", "empty point", "collection", "bow-tie", "bad status",
        "unknown category"])
def test_plain_sql_cannot_store_what_citygrid_would_reject(shared, roles, who, attack):
    if "component_id" not in attack and "category" in attack:
        attack = attack | {"component_id": "440310" + attack["category"][:4] + "999001"}
    statement, params = _row(shared, owner_code=roles["unit_code"], **attack)
    with pytest.raises(REFUSED):
        _sql(roles[who], statement, params)
    assert len(shared.components) == 1500


def test_the_wrong_geometry_family_for_the_category_is_refused(shared, roles):
    line_category = shared.catalog.to_frame().query("geometry == 'line'")["code"].iloc[0]
    statement, params = _row(shared, component_id=f"440310{line_category}999001", category=line_category,
                             owner_code=roles["unit_code"])
    with pytest.raises(psycopg.errors.CheckViolation, match="line category"):
        _sql(roles["admin"], statement, params)


def test_a_unit_creates_only_what_it_owns(shared, roles):
    other = shared.components.query("owner_code != @roles['unit_code']").iloc[0]
    statement, params = _row(shared, owner_code=other["owner_code"], owner=other["owner"],
                             maintainer_code=roles["unit_code"])  # names itself maintainer only
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        _sql(roles["unit"], statement, params)
    statement, params = _row(shared, owner_code=roles["unit_code"])
    assert _sql(roles["unit"], statement, params) == 1  # its own: accepted, in history
    time.sleep(0.6)  # a PostGIS registry looks at the database's state twice a second
    created = shared.components.query("component_id.str.endswith('999001')")
    assert len(created) == 1 and len(shared.history(created["component_id"].iloc[0])) == 1


@pytest.mark.parametrize("statement", [
    "UPDATE components SET owner = '某某物业公司' WHERE owner_code = %(unit)s",
    "UPDATE components SET component_id = '4403100101777777' WHERE owner_code = %(unit)s",
    "DELETE FROM components WHERE owner_code = %(unit)s",
    "UPDATE citygrid_meta SET value = 'true' WHERE key = 'units_read_all'",
    "INSERT INTO citygrid_meta VALUES ('schema_version', '99')",
    "INSERT INTO citygrid_catalog (code) VALUES ('9999')",
    "UPDATE citygrid_history SET new_value = 'forged'",
    "DELETE FROM citygrid_history",
    "INSERT INTO citygrid_batches (batch_id, source) VALUES (424242, 'squat')",
    "INSERT INTO citygrid_unit_roles VALUES (session_user, 'X')",
    "UPDATE citygrid_serials SET last = 999999",
    "SELECT setval('citygrid_batch_ids', 1)",
    "ALTER TABLE components DISABLE TRIGGER ALL",
    "ALTER TABLE components DISABLE ROW LEVEL SECURITY",
    "DROP TRIGGER components_history_changed ON components",
    "DROP TRIGGER commit_checks ON citygrid_commit_checks",
    "INSERT INTO citygrid_commit_checks VALUES (pg_current_xact_id())",
    "DELETE FROM citygrid_pending",
    "SET session_replication_role = replica",
    "CREATE FUNCTION citygrid.is_admin2() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE TABLE citygrid.shadow (x int)",
    "SELECT reserve_serials('0101', 999990, 5)",
    "SELECT reserve_serials('0101', 0, 1000000)",
    "SELECT reserve_serials('../pwn', 0, 1)",
], ids=lambda s: s[:48])
def test_a_unit_role_is_refused(shared, roles, statement):
    before = (len(shared.components_with_retired()), len(shared.batches()))
    try:
        touched = _sql(roles["unit"], statement, {"unit": roles["unit_code"]})
    except psycopg.errors.Error as exc:
        assert isinstance(exc, (*REFUSED, psycopg.errors.UndefinedTable, psycopg.errors.InvalidParameterValue)) \
            or "permission denied" in str(exc) or "must be owner" in str(exc), exc
    else:
        if statement.startswith("SELECT reserve_serials('0101', 999990"):
            assert touched == 1  # allowed, but it does not jump: see the next test
        else:
            assert touched == 0, f"{statement} touched {touched} rows"
    assert (len(shared.components_with_retired()), len(shared.batches())) == before


def test_serials_cannot_be_exhausted_by_a_unit(shared, roles):
    cat = shared.components["category"].value_counts().index[0]
    in_use = int(shared.components.query("category == @cat")["component_id"].max()[-6:])
    with psycopg.connect(roles["unit"], options="-c search_path=citygrid,public", autocommit=True) as conn:
        start = conn.execute("SELECT reserve_serials(%s, 999990, 5)", (cat,)).fetchone()[0]
        assert in_use <= start < in_use + 10_000  # the counter did not move to 999,990
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="1 to 10,000"):
            conn.execute("SELECT reserve_serials(%s, 0, 10001)", (cat,))
        conn.execute("SELECT reserve_serials(%s, 0, 10000)", (cat,))
        conn.execute("SELECT reserve_serials(%s, 0, 9990)", (cat,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="limit is 20,000"):
            conn.execute("SELECT reserve_serials(%s, 0, 10)", (cat,))
    # the daily cap was this role's: the library, as the admin, still creates components of the category
    admin = open_registry(roles["admin"])
    kin = shared.query(category=cat)
    kin = kin[kin.geometry.buffer(60).within(shared.district.boundary)].iloc[:1]
    batch = kin.assign(component_id=None, grid=None, street=None, community=None, street_code=None,
                       community_code=None, geometry=kin.geometry.translate(30, 0))
    result = admin.ingest(batch, source="after the attack")
    assert result.accepted, result.why()
    assert int(result.new_ids[0][-6:]) < 100_000


def test_security_definer_functions_pin_their_search_path_and_are_not_public(shared):
    with psycopg.connect(shared.store.url) as conn:
        rows = conn.execute(
            "SELECT p.proname, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE') "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'citygrid' AND p.prosecdef").fetchall()
    assert {r[0] for r in rows} >= {"record_batch", "reserve_serials", "record_history", "check_component",
                                    "my_unit", "read_all", "stamp_component"}
    for name, config, public in rows:
        assert any(c.startswith("search_path=citygrid") for c in config or []), name
        assert not public, f"{name} is executable by PUBLIC"


# --- each unit sees only its own (units_read_all false), and no role stalls the others ------------

@pytest.fixture(scope="module")
def closed(cluster, tmp_path_factory):
    """A shared registry whose units read only their own components, two units and a role with no right."""
    district = synth.make_district(seed=10, n_components=1500)
    source = Registry.create(tmp_path_factory.mktemp("closed") / "source.gpkg", district)
    url = cluster.create_database(f"c{uuid.uuid4().hex[:12]}")
    shared = copy_registry(source.path, url)
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        conn.execute("INSERT INTO citygrid_meta VALUES ('units_read_all', 'false') "
                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        conn.execute("CREATE ROLE nobody_at_all LOGIN")
    counts = shared.components["owner_code"].value_counts()
    units = {"a": counts.index[0], "b": counts.index[1]}
    urls = {}
    for key, code in units.items():
        name = f"unit_{key}_{uuid.uuid4().hex[:6]}"
        postgis.add_unit_role(url, name, code)
        urls[key] = url.replace("postgres@", f"{name}@")
    shared.allow(shared.components.query("owner_code == @units['b']")["component_id"].iloc[0], "geom.moved_far",
                 "secret note of unit b")
    return {"shared": shared, "url": url, "units": units, "as": urls,
            "nobody": url.replace("postgres@", "nobody_at_all@")}


def test_a_unit_reads_only_its_own_allow_list_batches_and_role(closed):
    with psycopg.connect(closed["as"]["a"], options="-c search_path=citygrid,public") as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM citygrid_allow")]
        roles = [r[0] for r in conn.execute("SELECT role_name FROM citygrid_unit_roles")]
        whose = {r[0] for r in conn.execute("SELECT DISTINCT owner_code FROM components")}
    assert "secret note of unit b" not in notes
    assert roles == [closed["as"]["a"].split("//")[1].split("@")[0]]
    assert whose <= {closed["units"]["a"]} | {None} or len(whose) < 5  # its own and those it maintains
    with psycopg.connect(closed["url"], options="-c search_path=citygrid,public") as conn:
        assert len(conn.execute("SELECT role_name FROM citygrid_unit_roles").fetchall()) >= 2  # the admin sees all


def test_a_unit_cannot_register_a_duplicate_of_a_component_it_cannot_see(closed):
    shared, a = closed["shared"], closed["units"]["a"]
    hidden = shared.components.query("owner_code == @closed['units']['b'] and maintainer_code != @a")
    hidden = hidden[hidden.geom_type == "Point"].iloc[[0]]
    names = dict(zip(shared.district.units["code"], shared.district.units["name"]))
    copy = hidden.assign(component_id=None, owner_code=a, owner=names[a], maintainer_code=a, maintainer=names[a],
                         geometry=hidden.geometry.translate(0.2, 0))
    as_a = open_registry(closed["as"]["a"])
    assert hidden["component_id"].iloc[0] not in set(as_a.components["component_id"])  # it cannot see it
    result = as_a.ingest(copy, source="a's survey")
    assert not result.accepted
    said = result.report.issues
    assert said["rule"].tolist() == ["topology.duplicate_feature"]
    assert "you may not read" in said["message"].iloc[0] and hidden["component_id"].iloc[0] not in \
        said["message"].iloc[0]


@pytest.mark.parametrize("who", ["a", "admin"])
@pytest.mark.parametrize("attack", ["outside", "grid", "owner name"])
def test_plain_sql_cannot_store_a_false_place_or_unit(closed, who, attack):
    shared, a = closed["shared"], closed["units"]["a"]
    mine = shared.components.query("owner_code == @a")
    mine = mine[mine.geom_type == "Point"].iloc[0]
    names = dict(zip(shared.district.units["code"], shared.district.units["name"]))
    other = next(n for c, n in names.items() if c != a)
    x, y, grid, owner = mine.geometry.x + 0.5, mine.geometry.y, mine["grid"], names[a]
    if attack == "outside":
        x, grid = x + 80_000, None
    elif attack == "grid":
        grid = next(g for g in shared.district.grid["code"] if g != mine["grid"])
    else:
        owner = other
    url = closed["as"]["a"] if who == "a" else closed["url"]
    conn = psycopg.connect(url, options="-c search_path=citygrid,public")
    try:
        with pytest.raises(REFUSED):  # at the statement, or at commit (the checks that read other tables)
            conn.execute("INSERT INTO components (component_id, category, department, grid, status, owner, "
                         "owner_code, geom) VALUES (%s, %s, %s, %s, '完好', %s, %s, "
                         "ST_SetSRID(ST_MakePoint(%s, %s), 4547))",
                         (mine["component_id"][:-6] + "998877", mine["category"], mine["department"], grid, owner,
                          a, x, y))
            conn.commit()
    finally:
        conn.close()


def _count(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_the_checks_at_commit_see_every_row_of_every_statement_as_it_is_then(closed):
    """Statements queue their rows; the database checks them together at commit (or at once, if asked)."""
    shared = closed["shared"]
    mine = shared.components[shared.components["owner_code"] == closed["units"]["a"]]
    mine = mine[(mine.geom_type == "Point") & mine["maintainer_code"].notna()].sort_values("component_id").iloc[:30]
    ids = mine["component_id"].tolist()
    other_cell = next(g for g in shared.district.grid["code"] if g not in set(mine["grid"]))
    far = mine["component_id"].iloc[-1]
    for who in ("a", "admin"):
        url = closed["as"]["a"] if who == "a" else closed["url"]
        with psycopg.connect(url, options="-c search_path=citygrid,public") as conn:
            # one statement moving 30 components, the last of them 80 km away: refused whole, at commit
            conn.execute("UPDATE components SET geom = ST_Translate(geom, CASE WHEN component_id = %s THEN 80000 "
                         "ELSE 0.5 END, 0) WHERE component_id = ANY(%s)", (far, ids))
            with pytest.raises(psycopg.errors.CheckViolation, match=f"component {far} lies outside the district"):
                conn.commit()
            # a false cell claimed and put right in the next statement: the row at commit is what counts
            conn.execute("UPDATE components SET grid = %s WHERE component_id = %s", (other_cell, ids[0]))
            conn.execute("UPDATE components SET grid = %s WHERE component_id = %s", (mine["grid"].iloc[0], ids[0]))
            conn.commit()
            # checked at the statement when the session asks for it
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with pytest.raises(psycopg.errors.CheckViolation, match=f"{ids[1]} is not in the grid cell {other_cell}"):
                conn.execute("UPDATE components SET grid = %s WHERE component_id = %s", (other_cell, ids[1]))
            conn.rollback()
            # a false row inside a savepoint rolled back leaves nothing to refuse; one after it is refused
            with conn.transaction():
                conn.execute("UPDATE components SET status = '破损' WHERE component_id = %s", (ids[2],))
                with contextlib.suppress(RuntimeError), conn.transaction():
                    conn.execute("UPDATE components SET grid = %s WHERE component_id = %s", (other_cell, ids[3]))
                    raise RuntimeError("rolled back to the savepoint")
            conn.execute("UPDATE components SET maintainer = %s WHERE component_id = %s", ("某某物业公司", ids[4]))
            with pytest.raises(psycopg.errors.CheckViolation, match=f"{ids[4]}: maintainer 某某物业公司 is not"):
                conn.commit()
    assert _count(closed["url"], "SELECT count(*) FROM components WHERE component_id = ANY(%s) AND "
                  "(grid IS DISTINCT FROM (SELECT g FROM unnest(%s::text[], %s::text[]) AS m(i, g) "
                  "WHERE m.i = component_id) OR maintainer = '某某物业公司' OR ST_X(geom) > 600000)",
                  (ids, ids, mine["grid"].tolist())) == 0
    assert _count(closed["url"], "SELECT count(*) FROM components WHERE component_id = %s AND status = '破损'",
                  (ids[2],)) == 1
    assert _count(closed["url"], "SELECT count(*) FROM citygrid_pending") == 0


def test_verify_as_a_unit_finds_what_the_admin_finds(closed):
    with psycopg.connect(closed["url"], options="-c search_path=citygrid,public") as conn:
        b = closed["units"]["b"]
        a = closed["units"]["a"]
        hidden = conn.execute("SELECT component_id FROM components WHERE owner_code = %s AND maintainer_code <> %s "
                              "LIMIT 1", (b, a)).fetchone()[0]
        conn.execute("INSERT INTO citygrid_history (batch_id, component_id, action, changed_at) "
                     "VALUES (777777, %s, 'update', '2026-12-01T00:00:00')", (hidden,))
    admin = open_registry(closed["url"]).verify()
    unit = open_registry(closed["as"]["a"]).verify()
    assert admin and unit == admin


def test_no_role_can_lock_the_registry_and_a_held_place_is_one_line(closed, tmp_path):
    import subprocess
    import sys

    with psycopg.connect(closed["as"]["a"], options="-c search_path=citygrid,public") as conn:
        for mode in ("ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"LOCK TABLE components IN {mode} MODE")
            conn.rollback()
    with psycopg.connect(closed["nobody"]) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT pg_advisory_lock(1)")
    # unit b holds the places unit a would merge at, and keeps them
    shared, a = closed["shared"], closed["units"]["a"]
    names = dict(zip(shared.district.units["code"], shared.district.units["name"]))
    mine = shared.components.query("owner_code == @a")
    mine = mine[mine.geom_type == "Point"].iloc[[0]]
    batch = mine.assign(component_id=None, maintainer_code=a, maintainer=names[a],
                        geometry=mine.geometry.translate(0, 40))
    batch = batch.drop(columns=["grid", "street", "community", "street_code", "community_code"])
    batch.to_file(tmp_path / "batch.gpkg", layer="batch")
    places = batch.assign(reach=5.0)[["category", "reach", "geometry"]]
    keys = postgis.place_keys(places.assign(category=mine["category"].iloc[0]))
    holder = psycopg.connect(closed["as"]["b"], options="-c search_path=citygrid,public", autocommit=True)
    try:
        holder.execute("SELECT hold_places(%s::bigint[])", (keys,))
        done = subprocess.run([sys.executable, "-m", "citygrid.cli", "ingest", str(tmp_path / "batch.gpkg"), "-r",
                               closed["as"]["a"], "--wait", "2"], capture_output=True, text=True, timeout=120,
                              env={**__import__("os").environ, "CITYGRID_LANG": "en"})
    finally:
        holder.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "same places" in done.stderr or "holds a lock" in done.stderr
