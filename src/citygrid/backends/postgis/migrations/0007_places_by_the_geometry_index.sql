-- 7: the components near a merge's places (came_near: did another merge put one there; hidden_near:
-- which may this session not read) found through the geometry index alone, the category compared
-- after an OFFSET 0 fence: the planner combined the index with one of every component of the
-- category, which read tens of thousands of rows per place (4 s for a 10k batch at 420k)

SET search_path = {schema}, public;
SET check_function_bodies = off;
CREATE OR REPLACE FUNCTION came_near(wkb text[], cat text[], reach float8[], seen text[]) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, public AS $f$
    SELECT CASE WHEN session_reads(near.owner_code, near.maintainer_code) THEN near.component_id ELSE '' END
    FROM (SELECT c.component_id, c.category, c.owner_code, c.maintainer_code, b.t
          FROM unnest(wkb, cat, reach) AS b(w, t, r)
          JOIN components c ON ST_DWithin(c.geom, ST_SetSRID(ST_GeomFromWKB(decode(b.w, 'hex')), {srid}), b.r)
          WHERE c.retired_at IS NULL OFFSET 0) AS near
    WHERE near.category = near.t AND NOT near.component_id = ANY(seen) LIMIT 1 $f$;
CREATE OR REPLACE FUNCTION hidden_near(wkb text[], cat text[], reach float8[])
    RETURNS TABLE (place integer, distance float8) LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = {schema}, public AS $f$
    SELECT near.k::integer, min(near.d)
    FROM (SELECT b.k, b.t, c.category, c.owner_code, c.maintainer_code, ST_Distance(c.geom, b.g) AS d
          FROM (SELECT k, ST_SetSRID(ST_GeomFromWKB(decode(w, 'hex')), {srid}) AS g, t, r
                FROM unnest(wkb, cat, reach) WITH ORDINALITY AS u(w, t, r, k)
                WHERE w IS NOT NULL AND NOT (session_is_admin() OR read_all())) AS b
          JOIN components c ON ST_DWithin(c.geom, b.g, b.r)
          WHERE c.retired_at IS NULL OFFSET 0) AS near
    WHERE near.category = near.t AND NOT session_reads(near.owner_code, near.maintainer_code)
    GROUP BY near.k $f$;
