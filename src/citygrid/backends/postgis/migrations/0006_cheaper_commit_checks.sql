-- 6: the same checks at commit, cheaper: each unit's name and code read as columns (not through
-- a JSON copy of the row, made six times per row before), the units found by an index; no
-- search for hidden components by a session that reads them all

SET search_path = {schema}, public;
SET check_function_bodies = off;
CREATE OR REPLACE FUNCTION check_component_relations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    r components%ROWTYPE;
BEGIN
{place_checks}    IF r.department IS NOT NULL AND r.department_code IS NOT NULL
       AND NOT EXISTS (SELECT FROM citygrid_units u WHERE u.code = r.department_code AND u.name_zh = r.department) THEN
        RAISE EXCEPTION 'component %: department % is not the unit of code %', r.component_id, r.department,
            r.department_code USING ERRCODE = 'check_violation';
    END IF;
    IF r.owner IS NOT NULL AND r.owner_code IS NOT NULL
       AND NOT EXISTS (SELECT FROM citygrid_units u WHERE u.code = r.owner_code AND u.name_zh = r.owner) THEN
        RAISE EXCEPTION 'component %: owner % is not the unit of code %', r.component_id, r.owner,
            r.owner_code USING ERRCODE = 'check_violation';
    END IF;
    IF r.maintainer IS NOT NULL AND r.maintainer_code IS NOT NULL
       AND NOT EXISTS (SELECT FROM citygrid_units u WHERE u.code = r.maintainer_code AND u.name_zh = r.maintainer) THEN
        RAISE EXCEPTION 'component %: maintainer % is not the unit of code %', r.component_id, r.maintainer,
            r.maintainer_code USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $f$;
-- a session that reads every component has none hidden: asked once, not per component near a row
CREATE OR REPLACE FUNCTION hidden_near(wkb text[], cat text[], reach float8[])
    RETURNS TABLE (place integer, distance float8) LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
    SELECT b.k::integer, min(ST_Distance(c.geom, b.g))
    FROM (SELECT k, ST_SetSRID(ST_GeomFromWKB(decode(w, 'hex')), {srid}) AS g, t, r
          FROM unnest(wkb, cat, reach) WITH ORDINALITY AS u(w, t, r, k)
          WHERE w IS NOT NULL AND NOT (session_is_admin() OR read_all())) AS b
    JOIN components c ON ST_DWithin(c.geom, b.g, b.r)
    WHERE c.retired_at IS NULL AND c.category = b.t AND NOT session_reads(c.owner_code, c.maintainer_code)
    GROUP BY b.k $f$;
DO $$ BEGIN
    IF to_regclass('citygrid_units') IS NOT NULL THEN
        CREATE INDEX IF NOT EXISTS citygrid_units_code ON citygrid_units (code);
    END IF;
END $$;
