-- 9: history and the commit-time checks per statement, not per row: the same changes recorded and the
-- same rows refused, by one query over each statement's rows (its transition tables) instead of
-- PL/pgSQL run once per row (1.0 s of a 10k-component merge at 420k). The commit-time checks keep
-- their time: a statement queues its rows (citygrid_pending), and one deferred constraint trigger per
-- transaction, on citygrid_commit_checks, checks them as they are at commit

SET search_path = {schema}, public;
SET check_function_bodies = off;
-- history pairs the rows before and after an update by fid: no one changes a component's fid
CREATE OR REPLACE FUNCTION guard_component() RETURNS trigger LANGUAGE plpgsql
    SET search_path = {schema}, public AS $f$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'components are retired, never deleted (component %)', OLD.component_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.fid IS DISTINCT FROM OLD.fid THEN
        RAISE EXCEPTION 'the fid of component % is the registry''s own; it does not change', OLD.component_id
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

-- history: a 'create' per new row; per changed row, a line per field whose value changed (as JSON
-- text, as before), then one for the geometry; in fid order, the fields in the order JSON keeps them
DROP TRIGGER components_history ON components;
CREATE OR REPLACE FUNCTION record_history() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    batch bigint := drawn_batch();
    stamp text := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO citygrid_history (batch_id, component_id, action, changed_at)
        SELECT batch, component_id, 'create', stamp FROM arrived ORDER BY fid;
        RETURN NULL;
    END IF;
    -- each row's fields as JSON (without the geometry, which to_jsonb writes as GeoJSON), once per row
    WITH n AS MATERIALIZED (
        SELECT fid, component_id, geom, {fields_json} AS j FROM arrived r),
    o AS MATERIALIZED (
        SELECT fid, retired_at, geom, {fields_json} AS j FROM departed r)
    INSERT INTO citygrid_history (batch_id, component_id, action, field, old_value, new_value, changed_at)
    SELECT batch, component_id, action, field, old_value, new_value, stamp FROM (
        SELECT n.fid, e.k, n.component_id,
               CASE WHEN e.key = 'retired_at' AND o.retired_at IS NULL THEN 'retire' ELSE 'update' END AS action,
               e.key AS field, o.j ->> e.key AS old_value, n.j ->> e.key AS new_value
        FROM n JOIN o USING (fid) CROSS JOIN LATERAL jsonb_each(n.j) WITH ORDINALITY AS e(key, value, k)
        WHERE o.j -> e.key IS DISTINCT FROM e.value
        UNION ALL
        SELECT n.fid, 1000000000::bigint, n.component_id, 'update', 'geometry', encode(ST_AsBinary(o.geom, 'NDR'), 'hex'),
               encode(ST_AsBinary(n.geom, 'NDR'), 'hex')
        FROM n JOIN o USING (fid)
        WHERE NOT ST_Equals(o.geom, n.geom) OR ST_AsBinary(o.geom) IS DISTINCT FROM ST_AsBinary(n.geom)
    ) AS changed ORDER BY fid, k;
    RETURN NULL;
END $f$;
CREATE TRIGGER components_history_created AFTER INSERT ON components
    REFERENCING NEW TABLE AS arrived FOR EACH STATEMENT EXECUTE FUNCTION record_history();
CREATE TRIGGER components_history_changed AFTER UPDATE ON components
    REFERENCING OLD TABLE AS departed NEW TABLE AS arrived FOR EACH STATEMENT EXECUTE FUNCTION record_history();

-- the commit-time checks: rows queued by transaction, checked together at its commit (or at the
-- statement's end, under SET CONSTRAINTS … IMMEDIATE); no role but the definer's reads or writes the queue
DROP TRIGGER components_relations ON components;
CREATE TABLE citygrid_pending (xid xid8 NOT NULL, fid bigint NOT NULL);
CREATE INDEX citygrid_pending_xid ON citygrid_pending (xid);
CREATE TABLE citygrid_commit_checks (xid xid8 PRIMARY KEY);
REVOKE ALL ON citygrid_pending, citygrid_commit_checks FROM PUBLIC, citygrid_unit, citygrid_admin, citygrid_reader;
CREATE FUNCTION queue_component_checks() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
BEGIN
    INSERT INTO citygrid_pending SELECT pg_current_xact_id(), fid FROM arrived;
    IF FOUND THEN  -- the first statement since the last check asks for one
        INSERT INTO citygrid_commit_checks VALUES (pg_current_xact_id()) ON CONFLICT (xid) DO NOTHING;
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER components_relations_created AFTER INSERT ON components
    REFERENCING NEW TABLE AS arrived FOR EACH STATEMENT EXECUTE FUNCTION queue_component_checks();
CREATE TRIGGER components_relations_changed AFTER UPDATE ON components
    REFERENCING NEW TABLE AS arrived FOR EACH STATEMENT EXECUTE FUNCTION queue_component_checks();
-- each current row queued, as it is now: inside the outline, in the grid cell it claims, each unit's
-- name that of its code; the first row breaking a rule (in fid order) is named
CREATE OR REPLACE FUNCTION check_component_relations() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    queued components[];  -- the current rows queued, read once
    bad text;
BEGIN
    DELETE FROM citygrid_commit_checks WHERE xid = NEW.xid;
    WITH taken AS (DELETE FROM citygrid_pending WHERE xid = NEW.xid RETURNING fid)
    SELECT array_agg(r ORDER BY r.fid) INTO queued FROM components r
    WHERE r.fid = ANY(ARRAY(SELECT fid FROM taken)) AND r.retired_at IS NULL;
    IF queued IS NULL THEN
        RETURN NULL;
    END IF;
    IF to_regclass('boundary') IS NOT NULL THEN
        SELECT r.component_id INTO bad FROM unnest(queued) WITH ORDINALITY AS r
        WHERE NOT EXISTS (SELECT FROM boundary b WHERE ST_Intersects(b.geom, r.geom))
        ORDER BY r.ordinality LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'component % lies outside the district', bad USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF to_regclass('grid') IS NOT NULL THEN
        SELECT format('component %s is not in the grid cell %s it claims', r.component_id, r.grid) INTO bad
        FROM unnest(queued) WITH ORDINALITY AS r
        WHERE r.grid IS NOT NULL AND NOT EXISTS (
            SELECT FROM grid g WHERE g.code = r.grid AND CASE WHEN ST_Dimension(r.geom) = 0
                THEN ST_DWithin(g.geom, r.geom, {grid_tolerance_m}) ELSE ST_Intersects(g.geom, r.geom) END)
        ORDER BY r.ordinality LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    SELECT format('component %s: %s %s is not the unit of code %s', r.component_id, u.role, u.named, u.coded)
    INTO bad
    FROM unnest(queued) WITH ORDINALITY AS r
    CROSS JOIN LATERAL (VALUES (1, 'department', r.department, r.department_code),
                               (2, 'owner', r.owner, r.owner_code),
                               (3, 'maintainer', r.maintainer, r.maintainer_code)) AS u(k, role, named, coded)
    WHERE u.named IS NOT NULL AND u.coded IS NOT NULL
      AND NOT EXISTS (SELECT FROM citygrid_units w WHERE w.code = u.coded AND w.name_zh = u.named)
    ORDER BY r.ordinality, u.k LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER commit_checks AFTER INSERT ON citygrid_commit_checks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_component_relations();
REVOKE ALL ON FUNCTION queue_component_checks(), check_component_relations(), record_history() FROM PUBLIC;
