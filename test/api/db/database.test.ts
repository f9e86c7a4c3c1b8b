// The Database seam: same results from both backends, and DB_DEBUG statement logs without parameters.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

for (const backend of BACKENDS) {
  describe(`the ${backend} database with DB_DEBUG=true`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend, { DB_DEBUG: 'true' })
    })
    after(() => service?.close())

    it('when a request runs SQL, then each statement is logged with its duration but never its parameters', async () => {
      const secretTitle = 'Unpublished Memoir 7f3a'
      const response = await service.fetch(
        '/v1/books',
        jsonRequest('POST', { title: secretTitle, author: 'Anonymous', published_date: '2020-02-02' }),
      )
      assert.equal(response.status, 201)
      const statements = service.logs.filter((line) => line.component === 'db')
      // The insert writes its event in the same statement: WITH changed AS (INSERT INTO books …), event AS (…).
      const insert = statements.find((line) => /\bINSERT INTO books\b/.test(String(line.sql)))
      assert.ok(insert, 'the INSERT is logged')
      assert.equal(typeof insert.duration_ms, 'number')
      assert.doesNotMatch(JSON.stringify(statements), new RegExp(secretTitle))
    })

    it('when types round-trip, then dates stay calendar dates and timestamps are instants', async () => {
      const [row] = await service.database.query<{ day: unknown; at: unknown; id: unknown; n: unknown }>(
        "SELECT date '0999-12-31' AS day, timestamptz '2024-02-29 23:59:59.123+00' AS at, " +
          "'01900000-0000-7000-8000-000000000000'::uuid AS id, 42::int AS n",
      )
      assert.deepEqual(row, {
        day: '0999-12-31',
        at: new Date('2024-02-29T23:59:59.123Z'),
        id: '01900000-0000-7000-8000-000000000000',
        n: 42,
      })
      const listed = await bodyOf(await service.fetch('/v1/books'))
      assert.equal(listed[0].published_date, '2020-02-02')
    })
  })
}
