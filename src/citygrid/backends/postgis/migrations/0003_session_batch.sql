-- 3: the batch of a transaction is the one its session drew from the sequence (a batch id
-- set by hand is ignored), batches are recorded only through record_batch(), so no role
-- files edits under another batch or squats future ids; an edit made outside citygrid
-- (plain SQL, QGIS) gets a batch of its own, "outside edit", one per transaction, and an
-- update bumps the version, so concurrent ingests see it; history follows what a unit may read

SET search_path = {schema}, public;
CREATE FUNCTION drawn_batch() RETURNS bigint LANGUAGE plpgsql VOLATILE
    SET search_path = {schema}, public AS $f$
DECLARE
    claimed bigint;
BEGIN
    claimed := NULLIF(current_setting('citygrid.batch_id', true), '')::bigint;
    RETURN CASE WHEN claimed = currval('citygrid_batch_ids') THEN claimed END;
EXCEPTION WHEN object_not_in_prerequisite_state OR invalid_text_representation THEN
    RETURN NULL;  -- this session drew no batch, or the setting is not a number
END $f$;
{history_trigger_3}
CREATE FUNCTION record_batch(source text, who text, started text, finished text, created integer,
        updated integer, retired integer, unchanged integer, kind text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, public AS $f$
DECLARE
    batch bigint := drawn_batch();
BEGIN
    IF batch IS NULL THEN
        RAISE EXCEPTION 'a batch is recorded by the session that drew its number'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO citygrid_batches VALUES (batch, source, who, started, finished, created, updated, retired,
                                         unchanged, kind);
    RETURN batch;
END $f$;
REVOKE ALL ON FUNCTION record_batch(text, text, text, text, integer, integer, integer, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION record_batch(text, text, text, text, integer, integer, integer, integer, text)
    TO citygrid_unit, citygrid_admin;
REVOKE INSERT ON citygrid_batches FROM citygrid_unit;
CREATE FUNCTION stamp_component() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
DECLARE
    batch bigint := drawn_batch();
    outside boolean := batch IS NULL OR coalesce(current_setting('citygrid.outside', true), '') = 'on';
BEGIN
    IF NOT outside THEN
        RETURN NEW;
    END IF;
    IF batch IS NULL THEN
        batch := nextval('citygrid_batch_ids');
        INSERT INTO citygrid_batches (batch_id, source, "user", started_at, kind)
        VALUES (batch, 'outside edit', session_user,
                to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), 'outside');
        PERFORM set_config('citygrid.batch_id', batch::text, true);
        PERFORM set_config('citygrid.outside', 'on', true);
    END IF;
    NEW.batch_id := batch;
    NEW.updated_at := clock_timestamp() AT TIME ZONE 'UTC';
    NEW.version := CASE WHEN TG_OP = 'UPDATE' THEN OLD.version + 1 ELSE COALESCE(NEW.version, 1) END;
    RETURN NEW;
END $f$;
CREATE TRIGGER components_stamp BEFORE INSERT OR UPDATE ON components
    FOR EACH ROW EXECUTE FUNCTION stamp_component();
-- with units_read_all false, a unit sees the history of the components it sees, and no other
ALTER TABLE citygrid_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY history_admin ON citygrid_history FOR ALL USING (is_admin()) WITH CHECK (is_admin());
CREATE POLICY history_read ON citygrid_history FOR SELECT
    USING (read_all() OR EXISTS (SELECT FROM components c WHERE c.component_id = citygrid_history.component_id));
