-- +goose Up
-- The outbox holds the events of any resource: book_events becomes outbox, each row naming its aggregate (the
-- resource's kind and id) and the version the change left it at. The rows, positions and indexes stay as they are.
ALTER TABLE book_events RENAME TO outbox;
ALTER TABLE outbox RENAME COLUMN book_id TO aggregate_id;
ALTER TABLE outbox RENAME COLUMN book_version TO aggregate_version;
ALTER TABLE outbox ADD COLUMN aggregate_type text NOT NULL DEFAULT 'book';
ALTER INDEX book_events_unpublished_idx RENAME TO outbox_unpublished_idx;
ALTER INDEX book_events_feed_idx RENAME TO outbox_feed_idx;
-- Replicas of the previous release write and relay through the old name during a rolling update: a view of the
-- books' rows, which PostgreSQL updates through (the default above fills in their aggregate). The next release
-- that changes the outbox drops the view and the default.
CREATE VIEW book_events AS
    SELECT position, xid, occurred_at, published_at, id, aggregate_id AS book_id,
           aggregate_version AS book_version, type, traceparent, data
    FROM outbox
    WHERE aggregate_type = 'book';

-- +goose Down
DROP VIEW book_events;
DELETE FROM outbox WHERE aggregate_type <> 'book';
ALTER TABLE outbox DROP COLUMN aggregate_type;
ALTER INDEX outbox_feed_idx RENAME TO book_events_feed_idx;
ALTER INDEX outbox_unpublished_idx RENAME TO book_events_unpublished_idx;
ALTER TABLE outbox RENAME COLUMN aggregate_version TO book_version;
ALTER TABLE outbox RENAME COLUMN aggregate_id TO book_id;
ALTER TABLE outbox RENAME TO book_events;
