-- CreateItemRequest.request_id: the idempotency key of the create that made the row. Partial, so
-- creates without a key pay nothing for the index.
ALTER TABLE items ADD COLUMN IF NOT EXISTS create_request_id text;
CREATE UNIQUE INDEX IF NOT EXISTS items_create_request_id ON items (create_request_id)
  WHERE create_request_id IS NOT NULL;
