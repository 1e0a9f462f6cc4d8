"""The geometry and topology rules decided a second time, by PostGIS, row by row.

The faulty batch of ``faults.py`` and the registry's district go into a throwaway PostGIS
database; SQL (``ST_IsValid``, ``ST_Intersects``, ``ST_DWithin``, ``ST_HausdorffDistance``,
``ST_Covers``, ``ST_Contains``, ``ST_Area``) decides each row by the rules' stated
definitions, and citygrid's findings must be the same rows. The SQL states the definitions
as the README does; it shares no code with the validator.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shapely

import citygrid as cg
import faults
from citygrid import synth
from citygrid.normalise import normalise
from citygrid.registry import Registry

psycopg = pytest.importorskip("psycopg")

GEOMETRY_RULES = ("geom.invalid", "geom.outside_district", "topology.duplicate_feature",
                  "topology.grid_mismatch", "topology.admin_mismatch", "topology.overlap")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    district = synth.make_district(seed=6, n_components=8_000)
    registered, spare = faults.split(district, 0.25, seed=6)
    path = tmp_path_factory.mktemp("oracle") / "registry.gpkg"
    reg = Registry.create(path, district=dataclasses.replace(district, components=registered))
    case = faults.batch_case(district, registered, spare, [], per_shape=4, seed=6)
    return reg, case


@pytest.fixture(scope="module")
def oracle(cluster, world):
    """The batch as citygrid reads it, and the district, loaded into PostGIS."""
    reg, case = world
    url = cluster.create_database("oracle")
    batch = normalise(case.frame, catalog=reg.catalog, layout=reg.layout, district=reg.district)
    current = reg.components[reg.components["retired_at"].isna()]
    standing = current[~current["component_id"].isin(set(batch["component_id"].dropna()))]
    tolerance = {c.code: c.tolerance_m for c in reg.catalog}
    kind = {c.code: c.geometry for c in reg.catalog}
    arriving = batch["action"].ne("retire").fillna(True) if "action" in batch else pd.Series(True, index=batch.index)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE EXTENSION postgis")
    conn.execute("CREATE TABLE b (row int, category text, kind text, tol float8, arriving bool, grid text, "
                 "street text, street_code text, community text, community_code text, geom geometry)")
    conn.execute("CREATE TABLE r (id text, category text, geom geometry)")
    conn.execute("CREATE TABLE boundary (geom geometry)")
    for name in ("cells", "streets", "communities"):
        conn.execute(f"CREATE TABLE {name} (code text, name text, geom geometry)")

    def wkb(geoms):
        with np.errstate(invalid="ignore"):
            return [None if g is None else shapely.to_wkb(g, hex=True, include_srid=False) for g in geoms]

    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO b VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, ST_GeomFromWKB(decode(%s, 'hex')))",
            list(zip(batch["row"].astype(int).tolist(), batch["category"].tolist(),
                     batch["category"].map(kind).tolist(), batch["category"].map(tolerance).tolist(),
                     arriving.astype(bool).tolist(), *[batch[c].astype(object).where(batch[c].notna(), None).tolist()
                                                       for c in ("grid", "street", "street_code", "community",
                                                                 "community_code")],
                     wkb(batch.geometry.to_numpy()))))
        cur.executemany("INSERT INTO r VALUES (%s, %s, ST_GeomFromWKB(decode(%s, 'hex')))",
                        list(zip(standing["component_id"], standing["category"], wkb(standing.geometry.to_numpy()))))
        district = reg.district
        cur.execute("INSERT INTO boundary VALUES (ST_GeomFromWKB(decode(%s, 'hex')))", wkb([district.boundary]))
        for name, layer in (("cells", district.grid.assign(name=None)), ("streets", district.streets),
                            ("communities", district.communities)):
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, ST_GeomFromWKB(decode(%s, 'hex')))",
                            list(zip(layer["code"], layer["name"], wkb(layer.geometry.to_numpy()))))
    for table in ("b", "r", "cells", "streets", "communities"):
        conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
        conn.execute(f"ANALYZE {table}")
    yield conn, batch
    conn.close()


# What each rule means, in PostGIS's words.
USABLE = "b.geom IS NOT NULL AND NOT ST_IsEmpty(b.geom) AND ST_IsValid(b.geom)"
PROBE = "CASE WHEN GeometryType(b.geom) = 'POINT' THEN b.geom ELSE ST_PointOnSurface(b.geom) END"
SHARE = ("CASE WHEN GeometryType(b.geom) IN ('LINESTRING', 'MULTILINESTRING') "
         "THEN ST_Length(ST_Intersection(b.geom, c.geom)) / NULLIF(ST_Length(b.geom), 0) "
         "ELSE ST_Area(ST_Intersection(b.geom, c.geom)) / NULLIF(ST_Area(b.geom), 0) END")
IN_CLAIMED = (f"(ST_Covers(c.geom, {PROBE}) OR ST_DWithin(c.geom, {PROBE}, 0.1) "
              f"OR (GeometryType(b.geom) <> 'POINT' AND {SHARE} >= 0.5))")
INSIDE = f"{USABLE} AND ST_Intersects((SELECT geom FROM boundary), b.geom)"


def _close(other: str) -> str:
    return (f"ST_DWithin(b.geom, {other}.geom, b.tol) AND CASE WHEN GeometryType(b.geom) = 'POINT' "
            f"THEN ST_Distance(b.geom, {other}.geom) <= b.tol "
            f"ELSE ST_HausdorffDistance(b.geom, {other}.geom) <= b.tol END")


def _overlaps(other: str) -> str:
    shared = f"ST_Area(ST_Intersection(b.geom, {other}.geom))"
    return (f"ST_Intersects(b.geom, {other}.geom) AND {shared} > b.tol "
            f"AND {shared} > 0.01 * least(ST_Area(b.geom), ST_Area({other}.geom))")


ORACLE = {
    "geom.invalid": "SELECT row FROM b WHERE b.geom IS NOT NULL AND NOT ST_IsEmpty(b.geom) AND NOT ST_IsValid(b.geom)",
    "geom.outside_district": f"SELECT row FROM b WHERE {USABLE} "
                             "AND NOT ST_Intersects((SELECT geom FROM boundary), b.geom)",
    "topology.duplicate_feature": f"""
        SELECT row FROM b WHERE {USABLE} AND b.arriving AND b.tol IS NOT NULL AND (
          EXISTS (SELECT 1 FROM b AS o WHERE o.row < b.row AND o.arriving AND o.category = b.category
                  AND o.geom IS NOT NULL AND NOT ST_IsEmpty(o.geom) AND ST_IsValid(o.geom) AND {_close("o")})
          OR EXISTS (SELECT 1 FROM r WHERE r.category = b.category AND {_close("r")}))""",
    "topology.grid_mismatch": f"""
        SELECT row FROM b WHERE {INSIDE} AND b.grid IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM cells AS c WHERE c.code = b.grid AND {IN_CLAIMED})""",
    "topology.overlap": f"""
        SELECT row FROM b WHERE {USABLE} AND b.arriving AND b.kind = 'polygon'
          AND GeometryType(b.geom) IN ('POLYGON', 'MULTIPOLYGON') AND (
          EXISTS (SELECT 1 FROM b AS o WHERE o.row < b.row AND o.arriving AND o.category = b.category
                  AND GeometryType(o.geom) IN ('POLYGON', 'MULTIPOLYGON') AND ST_IsValid(o.geom)
                  AND {_overlaps("o")})
          OR EXISTS (SELECT 1 FROM r WHERE r.category = b.category AND {_overlaps("r")}))""",
    # the street and community of the cell holding the component (the claimed one when it
    # holds it), or else of the polygon under its point
    "topology.admin_mismatch": f"""
        WITH placed AS (
          SELECT b.row, b.street, b.street_code, b.community, b.community_code, {PROBE} AS probe,
                 coalesce((SELECT c.geom FROM cells AS c WHERE c.code = b.grid AND {IN_CLAIMED}),
                          (SELECT c.geom FROM cells AS c WHERE ST_Intersects(c.geom, {PROBE}) ORDER BY c.code
                           LIMIT 1)) AS cell
          FROM b WHERE {INSIDE}),
        parent AS (
          SELECT p.*,
            coalesce((SELECT s.code FROM streets s WHERE ST_Contains(s.geom, p.cell) LIMIT 1),
                     (SELECT s.code FROM streets s WHERE ST_Intersects(s.geom, p.probe) ORDER BY s.code LIMIT 1))
              AS at_street,
            coalesce((SELECT m.code FROM communities m WHERE ST_Contains(m.geom, p.cell) LIMIT 1),
                     (SELECT m.code FROM communities m WHERE ST_Intersects(m.geom, p.probe) ORDER BY m.code
                      LIMIT 1)) AS at_community
          FROM placed p)
        SELECT row FROM parent p
        WHERE (p.street_code IS NOT NULL AND p.street_code <> p.at_street)
           OR (p.street IS NOT NULL AND p.street <> (SELECT name FROM streets WHERE code = p.at_street))
           OR (p.community_code IS NOT NULL AND p.community_code <> p.at_community)
           OR (p.community IS NOT NULL
               AND p.community <> (SELECT name FROM communities WHERE code = p.at_community))""",
}


@pytest.mark.parametrize("rule", GEOMETRY_RULES)
def test_postgis_decides_the_same_rows(oracle, world, rule):
    conn, batch = oracle
    reg, case = world
    want = {row for (row,) in conn.execute(ORACLE[rule]).fetchall()}
    issues = cg.validate(case.frame, registry=reg, rules=[rule]).issues
    got = set(issues["row"].astype(int))
    assert want, f"the batch has no {rule} row: the comparison would prove nothing"
    assert got == want, f"citygrid only: {sorted(got - want)}; PostGIS only: {sorted(want - got)}"
