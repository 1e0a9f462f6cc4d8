-- 1: tables, indexes, history trigger, row-level security

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS {schema};
SET search_path = {schema}, public;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citygrid_admin') THEN
        CREATE ROLE citygrid_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citygrid_unit') THEN
        CREATE ROLE citygrid_unit NOLOGIN; END IF;
END $$;
CREATE TABLE citygrid_meta (key text PRIMARY KEY, value text);
CREATE TABLE citygrid_batches (batch_id bigint PRIMARY KEY, source text, "user" text, started_at text,
    finished_at text, created integer, updated integer, retired integer, unchanged integer, kind text);
CREATE SEQUENCE citygrid_batch_ids;
CREATE TABLE citygrid_history (change_id bigserial PRIMARY KEY, batch_id bigint, component_id text,
    action text, field text, old_value text, new_value text, changed_at text,
    changed_by text NOT NULL DEFAULT session_user);
CREATE INDEX citygrid_history_component ON citygrid_history (component_id);
CREATE INDEX citygrid_history_time ON citygrid_history (changed_at);
CREATE TABLE citygrid_aliases (alias text PRIMARY KEY, component_id text, kind text);
CREATE TABLE citygrid_allow (component_id text, rule text, note text, added_at text,
    PRIMARY KEY (component_id, rule));
CREATE TABLE citygrid_unit_roles (role_name text PRIMARY KEY, unit_code text NOT NULL);
CREATE TABLE components (
    fid bigserial PRIMARY KEY,
    {field_columns},
    retired_at timestamp,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamp,
    batch_id bigint,
    geom geometry(Geometry, {srid}) NOT NULL
);
CREATE UNIQUE INDEX components_component_id ON components (component_id);
CREATE INDEX components_geom ON components USING gist (geom);
CREATE INDEX components_owner ON components (owner_code);
CREATE INDEX components_maintainer ON components (maintainer_code);

CREATE FUNCTION my_unit() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS
    $f$ SELECT unit_code FROM citygrid_unit_roles WHERE role_name = session_user $f$;
CREATE FUNCTION is_admin() RETURNS boolean LANGUAGE sql STABLE AS
    $f$ SELECT pg_has_role(current_user, 'citygrid_admin', 'member')
               OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) $f$;
CREATE FUNCTION read_all() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS
    $f$ SELECT COALESCE((SELECT value FROM citygrid_meta WHERE key = 'units_read_all'), 'true') = 'true' $f$;

-- history: every change, by whoever makes it; components are retired, never deleted
{history_trigger_1}CREATE TRIGGER components_history AFTER INSERT OR UPDATE ON components
    FOR EACH ROW EXECUTE FUNCTION record_history();

CREATE FUNCTION guard_component() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'components are retired, never deleted (component %)', OLD.component_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT is_admin() AND (NEW.owner_code IS DISTINCT FROM OLD.owner_code) THEN
        RAISE EXCEPTION 'only the registry admin transfers ownership (确权) of component %', OLD.component_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER components_guard BEFORE UPDATE OR DELETE ON components
    FOR EACH ROW EXECUTE FUNCTION guard_component();

ALTER TABLE components ENABLE ROW LEVEL SECURITY;
ALTER TABLE components FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON components FOR ALL USING (is_admin()) WITH CHECK (is_admin());
CREATE POLICY unit_read ON components FOR SELECT
    USING (read_all() OR owner_code = my_unit() OR maintainer_code = my_unit());
CREATE POLICY unit_insert ON components FOR INSERT
    WITH CHECK (owner_code = my_unit() OR maintainer_code = my_unit());
CREATE POLICY unit_update ON components FOR UPDATE
    USING (owner_code = my_unit() OR maintainer_code = my_unit())
    WITH CHECK (owner_code = my_unit() OR maintainer_code = my_unit());

GRANT USAGE ON SCHEMA {schema} TO citygrid_unit, citygrid_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO citygrid_unit, citygrid_admin;
GRANT INSERT, UPDATE ON components TO citygrid_unit, citygrid_admin;
GRANT INSERT ON citygrid_batches TO citygrid_unit;
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO citygrid_admin;
REVOKE DELETE ON components FROM citygrid_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO citygrid_unit, citygrid_admin;
