-- 5: each unit sees only its own, and no role stalls the others. With units_read_all false the
-- allow-list, batches and role names follow what a unit may read; a unit's merge is checked
-- against every component's place through functions of the definer that say only how far a
-- hidden one lies; the database checks the district outline, the grid claim and that a unit's
-- name goes with its code; units update columns, not the table (LOCK TABLE needs the table's
-- right), and advisory locks are taken only through hold_places()

SET search_path = {schema}, public;
SET check_function_bodies = off;  -- citygrid_catalog is made when a registry is copied in
ALTER TABLE citygrid_allow ENABLE ROW LEVEL SECURITY;
CREATE POLICY allow_admin ON citygrid_allow FOR ALL USING (is_admin()) WITH CHECK (is_admin());
CREATE POLICY allow_read ON citygrid_allow FOR SELECT
    USING (read_all() OR EXISTS (SELECT FROM components c WHERE c.component_id = citygrid_allow.component_id));
ALTER TABLE citygrid_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY batches_admin ON citygrid_batches FOR ALL USING (is_admin()) WITH CHECK (is_admin());
CREATE POLICY batches_read ON citygrid_batches FOR SELECT
    USING (read_all() OR "user" = session_user
           OR EXISTS (SELECT FROM citygrid_history h WHERE h.batch_id = citygrid_batches.batch_id));
ALTER TABLE citygrid_unit_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY roles_admin ON citygrid_unit_roles FOR ALL USING (is_admin()) WITH CHECK (is_admin());
CREATE POLICY roles_own ON citygrid_unit_roles FOR SELECT USING (role_name = session_user);
-- what the session's role may read of components, whatever role a definer function runs as
CREATE FUNCTION session_reads(owner text, maintainer text) RETURNS boolean LANGUAGE sql STABLE
    SET search_path = {schema}, public AS
    $f$ SELECT session_is_admin() OR read_all() OR owner = my_unit() OR maintainer = my_unit() $f$;
CREATE FUNCTION hidden_near(wkb text[], cat text[], reach float8[])
    RETURNS TABLE (place integer, distance float8) LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
    SELECT b.k::integer, min(ST_Distance(c.geom, b.g))
    FROM (SELECT k, ST_SetSRID(ST_GeomFromWKB(decode(w, 'hex')), {srid}) AS g, t, r
          FROM unnest(wkb, cat, reach) WITH ORDINALITY AS u(w, t, r, k) WHERE w IS NOT NULL) AS b
    JOIN components c ON ST_DWithin(c.geom, b.g, b.r)
    WHERE c.retired_at IS NULL AND c.category = b.t AND NOT session_reads(c.owner_code, c.maintainer_code)
    GROUP BY b.k $f$;
CREATE FUNCTION came_near(wkb text[], cat text[], reach float8[], seen text[]) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, public AS $f$
    SELECT CASE WHEN session_reads(c.owner_code, c.maintainer_code) THEN c.component_id ELSE '' END
    FROM unnest(wkb, cat, reach) AS b(w, t, r)
    JOIN components c ON ST_DWithin(c.geom, ST_SetSRID(ST_GeomFromWKB(decode(b.w, 'hex')), {srid}), b.r)
    WHERE c.retired_at IS NULL AND c.category = b.t AND NOT c.component_id = ANY(seen) LIMIT 1 $f$;
CREATE FUNCTION hold_places(keys bigint[]) RETURNS integer LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = {schema}, public AS
    $f$ SELECT count(pg_advisory_lock(k))::integer FROM (SELECT unnest(keys) AS k ORDER BY 1) AS cells $f$;
CREATE FUNCTION verify_components() RETURNS TABLE (what text, n bigint) LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
    SELECT 'id', count(*) FILTER (WHERE component_id IS NULL OR NOT (component_id ~ '^[0-9]+$'
        AND length(component_id) = 12 + length(category) AND substr(component_id, 7, length(category)) = category))
        FROM components
    UNION ALL SELECT 'geometry', count(*) FILTER (WHERE ST_IsEmpty(geom) OR NOT ST_IsValid(geom) OR GeometryType(geom)
        NOT IN ('POINT', 'MULTIPOINT', 'LINESTRING', 'MULTILINESTRING', 'POLYGON', 'MULTIPOLYGON')) FROM components
    UNION ALL SELECT 'category', count(*) FILTER (WHERE NOT EXISTS (SELECT FROM citygrid_catalog k
        WHERE k.code = c.category OR k.code_2026 = c.category)) FROM components c
    UNION ALL SELECT 'batch', count(*) FILTER (WHERE batch_id IS NOT NULL AND batch_id <> {outside_batch}
        AND batch_id NOT IN (SELECT batch_id FROM citygrid_batches)) FROM components
    UNION ALL SELECT 'create', count(*) FILTER (WHERE NOT EXISTS (SELECT FROM citygrid_history h
        WHERE h.component_id = c.component_id AND h.action = 'create')) FROM components c
    UNION ALL SELECT 'history', count(*) FROM citygrid_history WHERE batch_id IS NOT NULL
        AND batch_id NOT IN (SELECT batch_id FROM citygrid_batches) $f$;
-- checked at commit, on the row as it is then: a merge changes a component's fields one statement each
CREATE FUNCTION check_component_relations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    r components%ROWTYPE;
    role text;
    named text;
    coded text;
BEGIN
{place_checks}    FOREACH role IN ARRAY ARRAY['department', 'owner', 'maintainer'] LOOP
        named := to_jsonb(r) ->> role;
        coded := to_jsonb(r) ->> (role || '_code');
        IF named IS NOT NULL AND coded IS NOT NULL
           AND NOT EXISTS (SELECT FROM citygrid_units u WHERE u.code = coded AND u.name_zh = named) THEN
            RAISE EXCEPTION 'component %: % % is not the unit of code %', r.component_id, role, named, coded
                USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER components_relations AFTER INSERT OR UPDATE ON components
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_component_relations();
REVOKE UPDATE ON components FROM citygrid_unit;
GRANT UPDATE ({field_list}, retired_at, version, updated_at, batch_id, geom)
    ON components TO citygrid_unit;
REVOKE ALL ON FUNCTION session_reads(text, text), hidden_near(text[], text[], float8[]),
    came_near(text[], text[], float8[], text[]), hold_places(bigint[]), verify_components(),
    check_component_relations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_reads(text, text), hidden_near(text[], text[], float8[]),
    came_near(text[], text[], float8[], text[]), hold_places(bigint[]), verify_components()
    TO citygrid_unit, citygrid_admin;
DO $$ BEGIN  -- a role with no right at all cannot hold citygrid's places (nor any other)
    EXECUTE 'REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint), '
            'pg_catalog.pg_advisory_lock_shared(bigint), pg_catalog.pg_try_advisory_lock(bigint), '
            'pg_catalog.pg_advisory_xact_lock(bigint) FROM PUBLIC';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'advisory locks stay open to every role: upgrade as a superuser to close them';
END $$;
