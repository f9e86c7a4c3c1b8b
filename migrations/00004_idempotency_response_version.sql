-- +goose Up
-- A stored answer keeps the book's version, not an HTTP ETag: below the REST adapter there are versions. The ETag
-- column is still written, for replicas of the previous release during a rolling update, which read it.
ALTER TABLE idempotency_keys ADD COLUMN response_version integer;
UPDATE idempotency_keys SET response_version = trim(BOTH '"' FROM response_etag)::int;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN response_version;
