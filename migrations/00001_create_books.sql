-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE book_status AS ENUM ('pending', 'verified');

-- Columns ordered by alignment (16- and 8-byte first, then 4-byte, then variable length)
-- so rows carry no padding.
CREATE TABLE books (
    id             uuid        PRIMARY KEY,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    published_date date        NOT NULL,
    status         book_status NOT NULL DEFAULT 'pending',
    title          text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 255),
    author         text        NOT NULL CHECK (char_length(author) BETWEEN 1 AND 255),
    image_url      text        CHECK (char_length(image_url) <= 2048),
    description    text        CHECK (char_length(description) <= 5000)
);

-- One index per list sort; id breaks ties so pages never overlap.
CREATE INDEX books_created_at_id_idx ON books (created_at, id);
CREATE INDEX books_published_date_id_idx ON books (published_date, id);
CREATE INDEX books_title_id_idx ON books (title, id);
-- Filters: exact author ignoring case, status, substring of title ignoring case.
CREATE INDEX books_lower_author_idx ON books (lower(author));
CREATE INDEX books_status_created_at_id_idx ON books (status, created_at, id);
CREATE INDEX books_title_trgm_idx ON books USING gin (title gin_trgm_ops);

-- +goose Down
DROP TABLE books;
DROP TYPE book_status;
