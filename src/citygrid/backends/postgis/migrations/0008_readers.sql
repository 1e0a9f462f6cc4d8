-- 8: a role that may only read (citygrid_reader), for services that serve the registry to other
-- systems (citygrid serve): every table readable as the units read them, nothing writable

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citygrid_reader') THEN
        CREATE ROLE citygrid_reader NOLOGIN; END IF;
END $$;
SET search_path = {schema}, public;
GRANT USAGE ON SCHEMA {schema} TO citygrid_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO citygrid_reader;
GRANT EXECUTE ON FUNCTION my_unit(), read_all(), is_admin(), session_is_admin(), drawn_batch() TO citygrid_reader;
