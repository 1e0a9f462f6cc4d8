-- 2: serials of new identifiers reserved per category, so that concurrent ingests
-- creating components of one category never hand out the same identifier

SET search_path = {schema}, public;
CREATE TABLE citygrid_serials (category text PRIMARY KEY, last integer NOT NULL);
CREATE FUNCTION reserve_serials(cat text, at_least integer, n integer) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {schema}, public AS $f$
    INSERT INTO citygrid_serials VALUES (cat, at_least + n)
    ON CONFLICT (category) DO UPDATE SET last = GREATEST(citygrid_serials.last, at_least) + n
    RETURNING last - n $f$;
GRANT SELECT ON citygrid_serials TO citygrid_unit, citygrid_admin;
GRANT EXECUTE ON FUNCTION reserve_serials(text, integer, integer) TO citygrid_unit, citygrid_admin;
