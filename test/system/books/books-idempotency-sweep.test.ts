// The sweep of expired idempotency keys across replicas: every replica schedules it and PostgreSQL lets one run at a
// time, so one that finds another sweeping skips its turn. (The embedded database has a single process.)
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { booksResource } from '../../../src/books/resource.ts'
import { type Job, runOnce } from '../../../src/jobs/jobs.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { jsonRequest, skipReason, startService } from '../../helpers/service.ts'

const book = { title: 'Piranesi', author: 'Susanna Clarke', published_date: '2020-09-15' }

describe('the sweep of expired idempotency keys on postgres', { skip: await skipReason('postgres') }, () => {
  it('when another replica is sweeping, then this one skips, and sweeps once the other has finished', async () => {
    const service = await startService('postgres')
    try {
      const { jobs = [] } = booksResource.build({
        database: service.database,
        logger: createLogger('silent'),
        writes: { requireIfMatch: false },
      })
      const sweep = jobs.find((job) => job.name === 'idempotency-sweep') as Job
      const post = (key: string) => service.fetch('/v1/books', jsonRequest('POST', book, { 'idempotency-key': key }))
      for (const key of ['sweep-1', 'sweep-2', 'sweep-3']) assert.equal((await post(key)).status, 201)
      await service.database.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
      let release = () => {}
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      let holding = () => {}
      const held = new Promise<void>((resolve) => {
        holding = resolve
      })
      // The other replica: its sweep's lock, held in a transaction of its own until released.
      const other = service.database.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('myapp:idempotency-sweep', 0))")
        holding()
        await released
      })
      await held
      assert.equal(await runOnce(service.database, sweep), undefined)
      const waiting = await service.database.query('SELECT 1 FROM idempotency_keys')
      assert.equal(waiting.length, 3, 'nothing deleted while the other replica holds the lock')
      release()
      await other
      assert.equal(await runOnce(service.database, sweep), 3)
    } finally {
      await service.close()
    }
  })
})
