-- +goose Up
-- The author may be left out (null), as in the Go series' V3 contract; a list filtered by author never matches it.
ALTER TABLE books ALTER COLUMN author DROP NOT NULL;

-- +goose Down
-- Refused while any book has no author: the earlier schema has no way to hold one, and inventing a name would be
-- worse.
ALTER TABLE books ALTER COLUMN author SET NOT NULL;
