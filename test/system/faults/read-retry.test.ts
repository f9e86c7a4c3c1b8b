// A read whose backend is terminated mid-query is retried once on a fresh connection; a write is not.
import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { createMigrator } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import {
  ADMIN_URL,
  createServerDatabase,
  postgresServerUnavailable,
  type ServerDatabase,
} from '../../helpers/postgres-server.ts'

describe('statements interrupted by a terminated backend', {
  skip: (await postgresServerUnavailable()) ?? false,
}, () => {
  let server: ServerDatabase
  let database: Database
  let admin: postgres.Sql
  before(async () => {
    server = await createServerDatabase()
    admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} })
  })
  // A pool per test: a connection terminated by one test may still be closing when the next one starts.
  beforeEach(async () => {
    database = await openDatabase(parseConfig({ DATABASE_URL: server.url }).database, createLogger('silent'))
    await createMigrator(database).up()
  })
  afterEach(async () => {
    await database?.close()
  })
  after(async () => {
    await admin?.end()
    await server?.drop()
  })

  /** Terminates, once it is running, the backend executing a statement that contains `marker`. */
  async function terminateWhenRunning(marker: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const killed = await admin<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity
        WHERE datname = ${server.name} AND state = 'active' AND query LIKE ${`%${marker}%`} AND pid <> pg_backend_pid()`
      if (killed.length > 0) {
        await admin`SELECT pg_terminate_backend(${killed[0]?.pid as number})`
        return killed.length
      }
      await sleep(20)
    }
    return 0
  }

  it('when a SELECT loses its backend, then it is retried and answers', async () => {
    const read = database.query<{ n: number }>('SELECT 1 AS n, pg_sleep(0.5)::text AS marker_read_retry')
    assert.equal(await terminateWhenRunning('marker_read_retry'), 1)
    assert.deepEqual(
      (await read).map((row) => row.n),
      [1],
    )
  })

  it('when a write loses its backend, then the error reaches the caller (it may have committed)', async () => {
    await database.query(
      "INSERT INTO books (id, created_at, updated_at, title, author, published_date) VALUES ('01900000-0000-7000-8000-000000000001', now(), now(), 'T', 'A', '2000-01-01') ON CONFLICT (id) DO NOTHING",
    )
    const write = database.query(
      "UPDATE books SET title = title WHERE pg_sleep(0.5) IS NOT NULL AND 'marker_write_retry' <> '' RETURNING id",
    )
    assert.equal(await terminateWhenRunning('marker_write_retry'), 1)
    await assert.rejects(write, (error: { code?: string }) =>
      ['57P01', 'CONNECTION_CLOSED'].includes(String(error.code)),
    )
  })

  // postgres.js 3.4.9 wrote its ROLLBACK to the closed socket from a timer, and the TypeError ended the process;
  // patches/postgres+3.4.9.patch fails the transaction instead.
  it('when a transaction loses its backend, then the transaction fails, the process lives and the next one commits', async () => {
    const uncaught: unknown[] = []
    const record = (error: unknown) => uncaught.push(error)
    process.on('uncaughtException', record)
    try {
      const work = database.transaction(async (tx) => {
        await tx.query('SELECT 1')
        await tx.query('SELECT pg_sleep(0.5)::text AS marker_transaction_retry')
      })
      assert.equal(await terminateWhenRunning('marker_transaction_retry'), 1)
      await assert.rejects(work, (error: { code?: string }) =>
        ['57P01', 'CONNECTION_CLOSED'].includes(String(error.code)),
      )
      // Past the circuit breaker's half second, which the lost connection opened.
      await sleep(600)
      assert.deepEqual(uncaught, [])
      const committed = await database.transaction((tx) => tx.query<{ n: number }>('SELECT 2 AS n'))
      assert.deepEqual(
        committed.map((row) => row.n),
        [2],
      )
    } finally {
      process.off('uncaughtException', record)
    }
  })
})
