-- The catalog's items. The columns up to update_time are shared with the peers in shared/peers
-- (schema.sql), which may have created the table already: every statement here tolerates that.
CREATE TABLE IF NOT EXISTS items (
  id          bigserial PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  description text NOT NULL DEFAULT '',
  category    text NOT NULL,
  price_cents bigint NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
  stock       integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
  tags        text[] NOT NULL DEFAULT '{}',
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now()
);

-- Bumped by every write; the etag is derived from it.
ALTER TABLE items ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;

-- Full-text search over name and description (SearchItems), kept by PostgreSQL itself.
ALTER TABLE items ADD COLUMN IF NOT EXISTS search_vector tsvector
  GENERATED ALWAYS AS (to_tsvector('english', name || ' ' || description)) STORED;

-- ListItems/ExportItems by category in id order, GetCategoryStats, and order_by "category,id".
CREATE INDEX IF NOT EXISTS items_category_id ON items (category, id);
CREATE INDEX IF NOT EXISTS items_search_vector ON items USING gin (search_vector);
