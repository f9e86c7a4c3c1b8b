// Single reads pipelined on their own few connections; writes, transactions and sessions on the rest of DB_POOL_MAX.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from '../../helpers/postgres-server.ts'

const HOLD_SECONDS = 1.5

async function open(url: string, env: Record<string, string>): Promise<Database> {
  return openDatabase(parseConfig({ DATABASE_URL: url, ...env }).database, createLogger('silent'))
}

/** Milliseconds a read takes while a transaction sleeps HOLD_SECONDS inside database.transaction. */
async function readDuringTransaction(database: Database): Promise<{ readMs: number; transactionMs: number }> {
  const began = performance.now()
  let holding!: () => void
  const held = new Promise<void>((resolve) => {
    holding = resolve
  })
  const transaction = database.transaction(async (tx) => {
    await tx.query('SELECT 1')
    holding()
    await tx.query('SELECT pg_sleep($1)', [HOLD_SECONDS])
  })
  await held
  const started = performance.now()
  const [row] = await database.query<{ answer: number }>('SELECT 42 AS answer')
  const readMs = performance.now() - started
  assert.equal(row?.answer, 42)
  await transaction
  return { readMs, transactionMs: performance.now() - began }
}

describe('the PostgreSQL pools', { skip: await postgresServerUnavailable() }, () => {
  let server: ServerDatabase
  before(async () => {
    server = await createServerDatabase()
  })
  after(() => server?.drop())

  it('when a transaction sleeps, then a single statement beside it answers at once', async () => {
    const database = await open(server.url, { DB_POOL_MAX: '2', DB_POOL_READS: '1' })
    try {
      const { readMs, transactionMs } = await readDuringTransaction(database)
      assert.ok(transactionMs >= HOLD_SECONDS * 1000, `the transaction held its connection (${transactionMs} ms)`)
      assert.ok(readMs < 300, `the read answered in ${readMs.toFixed(0)} ms, not after the transaction`)
    } finally {
      await database.close()
    }
  })

  it('when one pool serves both (no connection left for transactions), then the read waits for the transaction', async () => {
    const database = await open(server.url, { DB_POOL_MAX: '1', DB_POOL_READS: '1' })
    try {
      const { readMs } = await readDuringTransaction(database)
      assert.ok(readMs >= HOLD_SECONDS * 1000 - 100, `the read queued behind the transaction (${readMs} ms)`)
    } finally {
      await database.close()
    }
  })

  it('when a write waits for a row lock, then reads beside it answer at once', async () => {
    const database = await open(server.url, { DB_POOL_MAX: '3', DB_POOL_READS: '1' })
    try {
      await database.query('CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)')
      await database.query('INSERT INTO counters VALUES (1, 0)')
      let locked!: () => void
      const lockHeld = new Promise<void>((resolve) => {
        locked = resolve
      })
      const holder = database.transaction(async (tx) => {
        await tx.query('SELECT n FROM counters WHERE id = 1 FOR UPDATE')
        locked()
        await tx.query('SELECT pg_sleep($1)', [HOLD_SECONDS])
      })
      await lockHeld
      const write = database.query('UPDATE counters SET n = n + 1 WHERE id = 1')
      const started = performance.now()
      const [row] = await database.query<{ n: number }>('SELECT n FROM counters WHERE id = 1')
      const readMs = performance.now() - started
      assert.equal(row?.n, 0)
      assert.ok(readMs < 300, `the read answered in ${readMs.toFixed(0)} ms, not after the blocked write`)
      await Promise.all([holder, write])
      const [updated] = await database.query<{ n: number }>('SELECT n FROM counters WHERE id = 1')
      assert.equal(updated?.n, 1)
    } finally {
      await database.close()
    }
  })

  it('when a session holds its connection, then single statements still answer', async () => {
    const database = await open(server.url, { DB_POOL_MAX: '2', DB_POOL_READS: '1' })
    try {
      const readMs = await database.withSession(async (session) => {
        await session.query('SELECT pg_advisory_lock(4242)')
        const started = performance.now()
        await database.query('SELECT 1')
        const elapsed = performance.now() - started
        await session.query('SELECT pg_advisory_unlock(4242)')
        return elapsed
      })
      assert.ok(readMs < 300, `the read answered in ${readMs.toFixed(0)} ms`)
    } finally {
      await database.close()
    }
  })

  it('when reads and transactions run at once, then the process opens at most DB_POOL_MAX connections', async () => {
    const database = await open(server.url, { DB_POOL_MAX: '4', DB_POOL_READS: '2' })
    try {
      const work = [
        ...Array.from({ length: 200 }, (_, i) => database.query('SELECT $1::int AS n', [i])),
        ...Array.from({ length: 8 }, () => database.transaction((tx) => tx.query('SELECT pg_sleep(0.1)'))),
      ]
      const counted = database.query<{ connections: number }>(
        "SELECT count(*)::int AS connections FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'myapp'",
      )
      await Promise.all(work)
      const [row] = await counted
      assert.ok((row?.connections ?? 0) >= 3, `both pools were in use (${row?.connections} connections)`)
      assert.ok((row?.connections ?? 0) <= 4, `${row?.connections} connections, DB_POOL_MAX is 4`)
    } finally {
      await database.close()
    }
  })
})
