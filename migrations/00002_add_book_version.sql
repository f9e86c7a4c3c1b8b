-- +goose Up
-- A version per book for optimistic concurrency: the ETag, checked by If-Match.
ALTER TABLE books ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- +goose Down
ALTER TABLE books DROP COLUMN version;
