-- Takes over a database that the Go service (learning-cloud-native-go/myapp) made and migrated with goose to
-- version 1: its books table becomes what 00001_create_books.sql makes, and every row is kept. The migrator runs
-- this instead of 00001 when goose_db_version is at version 1 and schema_migrations records nothing, in one
-- transaction with the record of 00001; goose_db_version is left as it is.
-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE book_status AS ENUM ('pending', 'verified');

-- Existing rows take the default. The columns keep the Go table's order rather than 00001's; no statement
-- depends on the order.
ALTER TABLE books ADD COLUMN status book_status NOT NULL DEFAULT 'pending';

-- The Go table has none of these checks, so a row it holds may break one. NOT VALID: every row written from now
-- on is checked, the rows already there are kept as they are and not scanned. Once they are known to comply,
-- `ALTER TABLE books VALIDATE CONSTRAINT <name>` makes a check cover them too. The names are the ones
-- PostgreSQL gives 00001's inline checks.
ALTER TABLE books
    ADD CONSTRAINT books_title_check CHECK (char_length(title) BETWEEN 1 AND 255) NOT VALID,
    ADD CONSTRAINT books_author_check CHECK (char_length(author) BETWEEN 1 AND 255) NOT VALID,
    ADD CONSTRAINT books_image_url_check CHECK (char_length(image_url) <= 2048) NOT VALID,
    ADD CONSTRAINT books_description_check CHECK (char_length(description) <= 5000) NOT VALID;

-- 00001's indexes, with the names it gives them.
CREATE INDEX books_created_at_id_idx ON books (created_at, id);
CREATE INDEX books_published_date_id_idx ON books (published_date, id);
CREATE INDEX books_title_id_idx ON books (title, id);
CREATE INDEX books_lower_author_idx ON books (lower(author));
CREATE INDEX books_status_created_at_id_idx ON books (status, created_at, id);
CREATE INDEX books_title_trgm_idx ON books USING gin (title gin_trgm_ops);
