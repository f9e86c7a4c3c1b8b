// The outbox SQL: how a resource's write records its event in the same statement as the change, what the relay and
// the feed read, and the retention sweep. One table holds every resource's events, each naming its aggregate (the
// resource's kind and id).
import { v7 as uuidv7 } from 'uuid'
import type { Database, Queryable } from '../db/database.ts'
import { rfc3339Utc } from '../db/sql.ts'
import type { Job } from '../jobs/jobs.ts'
import type { OutboxBacklog } from '../observability/metrics.ts'
import type { CloudEvent, EventCatalog, EventRow } from './cloudevents.ts'
import { activeTraceparent } from './trace-context.ts'

/** What a write records about each row it changed: SQL expressions over that row (the CTE `changed`). */
export interface EventOfChange {
  /** The resource's aggregate type, e.g. 'book'. */
  aggregate: string
  /** The CloudEvents type. */
  type: string
  /** The aggregate's id, e.g. `id`. */
  id: string
  /** The version the change left the aggregate at, e.g. `version`. */
  version: string
  /** The event's data as a jsonb expression. */
  data: string
}

/**
 * A write and its event as one statement: `change` (a data-modifying statement with RETURNING) runs first, one
 * event is inserted per row it returned (so a write that matched no row records none), and the statement answers
 * `select` over those rows. `eventId` and `traceparent` are the placeholders that eventParameters() fills.
 */
export function withEvent(
  change: string,
  event: EventOfChange,
  { select, eventId, traceparent }: { select: string; eventId: string; traceparent: string },
): string {
  return `WITH changed AS (
       ${change}
     ), event AS (
       INSERT INTO outbox (id, aggregate_type, type, aggregate_id, aggregate_version, traceparent, data)
       SELECT ${eventId}::uuid, '${event.aggregate}', '${event.type}', ${event.id}, ${event.version}, ${traceparent}::text,
              ${event.data}
       FROM changed
     )
     SELECT ${select} FROM changed`
}

/** The values of a write's eventId and traceparent placeholders: a new UUID v7, and the active trace. */
export function eventParameters(): { eventId: string; traceparent: string | null } {
  return { eventId: uuidv7(), traceparent: activeTraceparent() }
}

// bigint and xid8 as text, which both drivers give exactly, and occurred_at as RFC 3339 text to the microsecond,
// which a driver's Date would drop. The statements below order by the qualified columns: a bare name would be
// this text, and sort "10" before "9".
const EVENT_COLUMNS =
  'position::text AS position, xid::text AS xid, id, type, aggregate_type, aggregate_id, aggregate_version, ' +
  `${rfc3339Utc('occurred_at')} AS occurred_at, traceparent, data`

/** Rows deleted per statement, so that one sweep never holds many row locks at once. */
const SWEEP_BATCH = 5000
/** Where the counted depth stops, so that a scrape's cost stays bounded however long a backlog grows. */
export const DEPTH_BOUND = 100_000

export const OUTBOX_SQL = {
  // One relay at a time across replicas; the lock is the batch transaction's, so it goes with a crash.
  lockRelay: "SELECT pg_try_advisory_xact_lock(hashtextextended('myapp:events-relay', 0)) AS locked",
  // A relay that stops answering mid-batch (a hung process, a lost network) gives the lock up after this.
  boundRelayBatch: "SELECT set_config('idle_in_transaction_session_timeout', '10s', true)",
  // Each with how long it has waited so far, by the clock that set occurred_at (the database's): the relay adds its
  // own elapsed time to that, so no skew between the two hosts' clocks enters the lag.
  unpublished: `SELECT ${EVENT_COLUMNS},
       extract(epoch FROM clock_timestamp() - occurred_at)::float8 AS waited_seconds
     FROM outbox
     WHERE published_at IS NULL
     ORDER BY outbox.position
     LIMIT $1`,
  // By position, never by range: a row below the last one read may have committed since, unpublished.
  markPublished: 'UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])',
  // Transaction ids below the oldest one still running are final: no event can appear among them any more, so a
  // cursor that has passed them never misses one.
  // $4: the aggregates the reader may see, or null for all of them.
  feedAfter: `SELECT ${EVENT_COLUMNS} FROM outbox
     WHERE (xid, position) > ($1::text::xid8, $2::bigint)
       AND xid < pg_snapshot_xmin(pg_current_snapshot())
       AND ($4::text[] IS NULL OR aggregate_type = ANY($4::text[]))
     ORDER BY outbox.xid, outbox.position
     LIMIT $3`,
  // What a scrape reads, both parts from the partial index on the unpublished rows. The age is that of the first in
  // position order: the one the relay publishes next, and so the one it is stuck on when it is.
  backlog: `SELECT
       (SELECT count(*)::int FROM (
          SELECT FROM outbox WHERE published_at IS NULL ORDER BY outbox.position LIMIT $1
        ) AS unpublished) AS depth,
       coalesce((SELECT extract(epoch FROM clock_timestamp() - occurred_at)::float8 FROM outbox
          WHERE published_at IS NULL ORDER BY outbox.position LIMIT 1), 0) AS oldest_age_seconds`,
  cursorAt: 'SELECT xid::text AS xid, position::text AS position FROM outbox WHERE position = $1::bigint',
  // With a relay, an event is kept until published, however old.
  deleteExpired: `DELETE FROM outbox
     WHERE position IN (
       SELECT position FROM outbox
       WHERE occurred_at < now() - make_interval(secs => $1::double precision / 1000)
         AND (published_at IS NOT NULL OR NOT $2::boolean)
       ORDER BY position
       LIMIT $3)
     RETURNING position`,
} as const

/** A place in the feed: after the event of this transaction and position. */
export interface FeedCursor {
  xid: string
  position: string
}

/** Before the oldest event. */
export const FEED_START: FeedCursor = Object.freeze({ xid: '0', position: '0' })

/** An unpublished row, and how long it has waited so far (seconds). */
export interface UnpublishedRow extends EventRow {
  waited_seconds: number
}

export interface FeedEntry {
  position: string
  event: CloudEvent
}

export function createOutbox(database: Database, catalog: EventCatalog) {
  return {
    /**
     * Where a reader that last saw the event at `position` goes on from; the start when it saw none, or when that
     * event is past the retention (the reader then gets every event still kept).
     */
    async cursorAfter(position: string | undefined): Promise<FeedCursor> {
      if (position === undefined) return FEED_START
      const [row] = await database.query<FeedCursor>(OUTBOX_SQL.cursorAt, [position])
      return row ?? FEED_START
    },

    /**
     * Up to `limit` events after `cursor`, in transaction order, and the cursor after them; only of `aggregates`
     * when given.
     */
    async readAfter(
      cursor: FeedCursor,
      limit: number,
      aggregates?: readonly string[],
    ): Promise<{ entries: FeedEntry[]; cursor: FeedCursor }> {
      const rows = await database.query<EventRow>(OUTBOX_SQL.feedAfter, [
        cursor.xid,
        cursor.position,
        limit,
        aggregates === undefined ? null : [...aggregates],
      ])
      const last = rows.at(-1)
      return {
        entries: rows.map((row) => ({ position: row.position, event: catalog.toCloudEvent(row) })),
        cursor: last === undefined ? cursor : { xid: last.xid, position: last.position },
      }
    },

    /** How many events wait for the relay (up to DEPTH_BOUND), and how long the oldest has. */
    async backlog(): Promise<OutboxBacklog> {
      const [row] = await database.query<{ depth: number; oldest_age_seconds: number }>(OUTBOX_SQL.backlog, [
        DEPTH_BOUND,
      ])
      return { depth: row?.depth ?? 0, oldestAgeSeconds: row?.oldest_age_seconds ?? 0 }
    },
  }
}
export type Outbox = ReturnType<typeof createOutbox>

const SWEEP_MS = 10 * 60_000

/**
 * The job that keeps the outbox to its retention: deletes events older than `retentionMs` (with a relay, only
 * published ones), in batches.
 */
export function outboxSweep(retentionMs: number, { relayed }: { relayed: boolean }): Job {
  return {
    name: 'events-sweep',
    everyMs: SWEEP_MS,
    counts: 'expired events deleted from the outbox',
    async run(tx) {
      let deleted = 0
      for (;;) {
        const rows = await tx.query(OUTBOX_SQL.deleteExpired, [retentionMs, relayed, SWEEP_BATCH])
        deleted += rows.length
        if (rows.length < SWEEP_BATCH) return deleted
      }
    },
  }
}

/** The relay's side of the outbox, inside its batch transaction. */
export const relayBatch = {
  /** Takes the relay lock for this transaction; false when another replica's relay holds it. */
  async lock(tx: Queryable): Promise<boolean> {
    const [lock] = await tx.query<{ locked: boolean }>(OUTBOX_SQL.lockRelay)
    if (lock?.locked !== true) return false
    await tx.query(OUTBOX_SQL.boundRelayBatch)
    return true
  },
  unpublished: (tx: Queryable, limit: number): Promise<UnpublishedRow[]> =>
    tx.query<UnpublishedRow>(OUTBOX_SQL.unpublished, [limit]),
  async markPublished(tx: Queryable, positions: string[]): Promise<void> {
    if (positions.length > 0) await tx.query(OUTBOX_SQL.markPublished, [positions])
  },
}
