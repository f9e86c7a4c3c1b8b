-- +goose Up
-- Idempotency-Key on POST /v1/books: the first answer per caller and key, kept 24 hours. Written in the same
-- transaction as the book, so neither exists without the other.
CREATE TABLE idempotency_keys (
    created_at    timestamptz NOT NULL DEFAULT now(),
    status_code   integer     NOT NULL,
    caller        text        NOT NULL,
    key           text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash  text        NOT NULL,
    response_body text        NOT NULL,
    response_etag text        NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
