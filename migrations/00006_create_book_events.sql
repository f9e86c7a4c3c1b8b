-- +goose Up
-- The transactional outbox: one row per committed change of a book, inserted by the change's own statement
-- (src/books/repository.ts), so that a rolled-back write leaves no event. The relay (src/events/relay.ts)
-- publishes unpublished rows in position order and marks them; the feed (GET /v1/events) reads them in
-- transaction order. Rows are deleted EVENTS_RETENTION after the change: with a relay only once published,
-- without one regardless.
CREATE TABLE book_events (
    position     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. A position is drawn before its transaction commits, so positions become visible
    -- out of order; transaction ids below the oldest running one are final, which is what the feed waits for.
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    id           uuid        NOT NULL,
    book_id      uuid        NOT NULL,
    book_version integer     NOT NULL,
    type         text        NOT NULL,
    traceparent  text,
    data         jsonb       NOT NULL
);
-- What the relay reads: the unpublished rows, oldest first; published ones leave the index.
CREATE INDEX book_events_unpublished_idx ON book_events (position) WHERE published_at IS NULL;
-- What the feed reads: transaction order, from a cursor.
CREATE INDEX book_events_feed_idx ON book_events (xid, position);

-- +goose Down
DROP TABLE book_events;
