-- Cache coherence across replicas (server/db/change_feed.h): every statement that changes items
-- announces the ids it touched on channel hotpath_catalog_items; PostgreSQL delivers it at commit
-- (never for a rollback) to every replica's listener, which drops those items and the list pages.
-- One notification per statement, not per row: a COPY of a million rows sends one "*" (drop
-- everything). Payload: the ids, comma-separated, or "*" past 256 of them (a payload must stay
-- under 8000 bytes). Writes from anywhere (psql, a batch job, another version) are announced too.
CREATE OR REPLACE FUNCTION catalog_announce_item_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  touched int;
  ids text;
BEGIN
  SELECT count(*), string_agg(id::text, ',') INTO touched, ids
    FROM (SELECT id FROM changed LIMIT 257) AS first_ones;
  IF touched > 0 THEN
    PERFORM pg_notify('hotpath_catalog_items', CASE WHEN touched > 256 THEN '*' ELSE ids END);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS items_announce_inserts ON items;
CREATE TRIGGER items_announce_inserts AFTER INSERT ON items REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION catalog_announce_item_changes();
DROP TRIGGER IF EXISTS items_announce_updates ON items;
CREATE TRIGGER items_announce_updates AFTER UPDATE ON items REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION catalog_announce_item_changes();
DROP TRIGGER IF EXISTS items_announce_deletes ON items;
CREATE TRIGGER items_announce_deletes AFTER DELETE ON items REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION catalog_announce_item_changes();
