// Background jobs: work a resource or a shared layer needs done every so often, not per request (the sweep of
// expired idempotency keys, the outbox's retention). Every replica schedules every job; a transaction-scoped
// advisory lock named after the job lets one replica at a time run it, and goes with a crash or a pooler's
// reassignment of the connection.
import type { Database, Queryable } from '../db/database.ts'
import type { Logger } from '../logger.ts'

export interface Job {
  /** Names the lock (myapp:<name>) and the log lines. */
  name: string
  everyMs: number
  /** The work, inside the transaction that holds the lock; how many things it did. */
  run(tx: Queryable): Promise<number>
  /** What the count is, for the log line, e.g. "expired idempotency keys deleted". */
  counts: string
}

const LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('myapp:' || $1, 0)) AS locked"

/** Runs `job` once if no other replica is; how many things it did, or undefined when another replica holds it. */
export function runOnce(database: Database, job: Job): Promise<number | undefined> {
  return database.transaction(async (tx) => {
    const [lock] = await tx.query<{ locked: boolean }>(LOCK, [job.name])
    if (lock?.locked !== true) return undefined
    return job.run(tx)
  })
}

export interface Jobs {
  stop(): void
}

/** Schedules each job every `everyMs`, on this replica, from now until stop(). */
export function startJobs(jobs: readonly Job[], { database, logger }: { database: Database; logger: Logger }): Jobs {
  const timers = jobs.map((job) =>
    setInterval(() => {
      runOnce(database, job).then(
        (count) => {
          if (count !== undefined && count > 0) logger.info({ job: job.name, count }, job.counts)
        },
        (error: unknown) => logger.warn({ err: error, job: job.name }, 'background job failed; next time again'),
      )
    }, job.everyMs).unref(),
  )
  return {
    stop() {
      for (const timer of timers) clearInterval(timer)
    },
  }
}
