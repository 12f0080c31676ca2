-- hotpath announces its own writes itself, many per NOTIFY (server/db/change_announcer.h): one
-- NOTIFY per write transaction serialised concurrent commits on PostgreSQL's notify lock. Its
-- pool's sessions set hotpath.announced = on; the triggers now announce only the writes of every
-- other session (psql, batch jobs, migrations, a replica running with --change_feed=false).
DROP TRIGGER IF EXISTS items_announce_inserts ON items;
CREATE TRIGGER items_announce_inserts AFTER INSERT ON items REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT
  WHEN (current_setting('hotpath.announced', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION catalog_announce_item_changes();
DROP TRIGGER IF EXISTS items_announce_updates ON items;
CREATE TRIGGER items_announce_updates AFTER UPDATE ON items REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT
  WHEN (current_setting('hotpath.announced', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION catalog_announce_item_changes();
DROP TRIGGER IF EXISTS items_announce_deletes ON items;
CREATE TRIGGER items_announce_deletes AFTER DELETE ON items REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT
  WHEN (current_setting('hotpath.announced', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION catalog_announce_item_changes();
