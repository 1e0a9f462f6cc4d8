-- 4: the database holds the rules of a component itself, so that plain SQL stores only
-- what citygrid would accept; units create only what they own; no one but the admin
-- renames a component or moves its ownership, name included; serial reservations are capped

SET search_path = {schema}, public;
-- NOT VALID: rows already there are not re-read (an upgrade never fails on old data); every
-- row written from now on is checked
ALTER TABLE components
    ADD CONSTRAINT component_id_given CHECK (component_id IS NOT NULL) NOT VALID,
    ADD CONSTRAINT category_digits CHECK (category ~ '^[0-9]{{4,5}}$') NOT VALID,
    ADD CONSTRAINT component_id_layout CHECK (component_id ~ '^[0-9]+$'
        AND length(component_id) = 12 + length(category)
        AND substr(component_id, 7, length(category)) = category) NOT VALID,
    ADD CONSTRAINT geometry_simple_kind CHECK (GeometryType(geom) IN
        ('POINT', 'MULTIPOINT', 'LINESTRING', 'MULTILINESTRING', 'POLYGON', 'MULTIPOLYGON')) NOT VALID,
    ADD CONSTRAINT geometry_not_empty CHECK (NOT ST_IsEmpty(geom)) NOT VALID,
    ADD CONSTRAINT geometry_valid CHECK (ST_IsValid(geom)) NOT VALID,
    ADD CONSTRAINT status_known CHECK (status IS NULL
        OR status IN ('完好', '破损', '丢失', '占用', '废弃', '移除')) NOT VALID;
CREATE INDEX components_category_id ON components (category, component_id);
-- the catalog decides categories (a trigger, not a foreign key: the column holds CJ/T 214 or
-- GB/T 47678 codes by the registry's layout), their geometry family and the district's code
CREATE FUNCTION check_component() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    kind text;
    drawn text;
    district text := (SELECT value FROM citygrid_meta WHERE key = 'admin_code');
BEGIN
    SELECT geometry INTO kind FROM citygrid_catalog WHERE code = NEW.category OR code_2026 = NEW.category LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'component %: category % is not in the catalog', NEW.component_id, NEW.category
            USING ERRCODE = 'check_violation';
    END IF;
    drawn := CASE ST_Dimension(NEW.geom) WHEN 0 THEN 'point' WHEN 1 THEN 'line' ELSE 'polygon' END;
    IF kind IS DISTINCT FROM drawn THEN
        RAISE EXCEPTION 'component %: category % is a % category, the geometry is a %', NEW.component_id,
            NEW.category, kind, GeometryType(NEW.geom) USING ERRCODE = 'check_violation';
    END IF;
    IF district IS NOT NULL AND left(NEW.component_id, 6) <> district THEN
        RAISE EXCEPTION 'component %: identifiers of this registry begin with the district code %',
            NEW.component_id, district USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER components_check BEFORE INSERT OR UPDATE ON components
    FOR EACH ROW EXECUTE FUNCTION check_component();
CREATE OR REPLACE FUNCTION guard_component() RETURNS trigger LANGUAGE plpgsql
    SET search_path = {schema}, public AS $f$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'components are retired, never deleted (component %)', OLD.component_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT is_admin() AND (NEW.owner_code IS DISTINCT FROM OLD.owner_code OR NEW.owner IS DISTINCT FROM OLD.owner)
    THEN
        RAISE EXCEPTION 'only the registry admin transfers ownership (确权) of component %, its name included',
            OLD.component_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT is_admin() AND (NEW.component_id IS DISTINCT FROM OLD.component_id
                           OR NEW.category IS DISTINCT FROM OLD.category) THEN
        RAISE EXCEPTION 'only the registry admin renames or recategorises component %', OLD.component_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $f$;
-- a unit creates only components it owns; the admin creates them for any unit
DROP POLICY unit_insert ON components;
CREATE POLICY unit_insert ON components FOR INSERT WITH CHECK (owner_code = my_unit());
-- the table's owner (the definer of the functions below) reads every row, for serials in use
CREATE POLICY owner_reads ON components FOR SELECT
    USING (current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'components'::regclass));
CREATE FUNCTION session_is_admin() RETURNS boolean LANGUAGE sql STABLE SET search_path = {schema}, public AS
    $f$ SELECT pg_has_role(session_user, 'citygrid_admin', 'member')
               OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) $f$;
CREATE TABLE citygrid_serial_grants (role_name text, day date, category text, granted integer NOT NULL,
    PRIMARY KEY (role_name, day, category));
-- serials: at most 10,000 a call; a unit cannot move a counter past the serials in use, and
-- gets at most 20,000 a day per category; the admin may reserve above what is in use
DROP FUNCTION reserve_serials(text, integer, integer);
CREATE FUNCTION reserve_serials(cat text, at_least integer, n integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {schema}, public AS $f$
DECLARE
    admin boolean := session_is_admin();
    in_use integer;
    start integer;
    today integer;
BEGIN
    IF NOT (admin OR pg_has_role(session_user, 'citygrid_unit', 'member')) THEN
        RAISE EXCEPTION 'reserving serials needs a citygrid unit or admin role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF n IS NULL OR n < 1 OR n > 10000 THEN
        RAISE EXCEPTION 'reserve 1 to 10,000 serials a call, not %', n USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cat IS NULL OR NOT EXISTS (SELECT FROM citygrid_catalog WHERE code = cat OR code_2026 = cat) THEN
        RAISE EXCEPTION 'category % is not in the catalog', cat USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO citygrid_serials VALUES (cat, 0) ON CONFLICT (category) DO NOTHING;
    SELECT last INTO start FROM citygrid_serials WHERE category = cat FOR UPDATE;
    SELECT COALESCE(substr(max(component_id), 7 + length(cat))::integer, 0) INTO in_use
        FROM components WHERE category = cat AND component_id ~ '^[0-9]+$';
    start := GREATEST(start, in_use, CASE WHEN admin THEN COALESCE(at_least, 0) ELSE 0 END);
    IF start + n > 999999 THEN
        RAISE EXCEPTION 'category % has no % serials left (last %)', cat, n, start USING ERRCODE = 'check_violation';
    END IF;
    IF NOT admin THEN
        INSERT INTO citygrid_serial_grants AS g VALUES (session_user, current_date, cat, n)
        ON CONFLICT (role_name, day, category) DO UPDATE SET granted = g.granted + EXCLUDED.granted
        RETURNING granted INTO today;
        IF today > 20000 THEN
            RAISE EXCEPTION 'role % has reserved % serials of category % today; the limit is 20,000',
                session_user, today, cat USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    UPDATE citygrid_serials SET last = start + n WHERE category = cat;
    RETURN start;
END $f$;
REVOKE ALL ON FUNCTION reserve_serials(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reserve_serials(text, integer, integer) TO citygrid_unit, citygrid_admin;
REVOKE ALL ON FUNCTION my_unit(), read_all(), is_admin(), session_is_admin(), drawn_batch(), check_component(),
    record_history(), stamp_component(), guard_component() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION my_unit(), read_all(), is_admin(), session_is_admin(), drawn_batch()
    TO citygrid_unit, citygrid_admin;
ALTER FUNCTION is_admin() SET search_path = {schema}, public;
REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;
