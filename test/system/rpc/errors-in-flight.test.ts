// The "idempotency key in flight" row of the REST ⇄ RPC error table: a retry finds the first attempt still running
// only where two transactions run at once, on the PostgreSQL server (the embedded database runs one at a time).
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { JWT_ENV, signedToken, startRpcService } from '../../helpers/rpc-clients.ts'
import {
  assertRestAnswer,
  assertRpcAnswer,
  book,
  bookMessage,
  type Door,
  openDoor,
  rowOf,
} from '../../helpers/rpc-errors.ts'
import { jsonRequest, skipReason } from '../../helpers/service.ts'

describe('REST ⇄ RPC errors on the PostgreSQL server, with JWT authentication', {
  skip: await skipReason('postgres'),
}, () => {
  let door: Door
  before(async () => {
    const service = await startRpcService('postgres', JWT_ENV)
    door = await openDoor(service, await signedToken('books:read books:write', { subject: 'admin' }))
  })
  after(() => door?.service.close())

  it('when 20 creates with one key race, then one is created and the others replay it or are told it is in flight, by either door', async (t) => {
    const row = rowOf('idempotency key in flight')
    const conflicts = { rest: 0, rpc: 0 }
    // A race may be won before any rival arrives: each door gets a few keys to see one in flight.
    for (let attempt = 0; attempt < 5 && (conflicts.rest === 0 || conflicts.rpc === 0); attempt++) {
      const key = `race-${attempt}`
      const headers = { ...door.auth.headers, 'idempotency-key': `${key}-rest` }
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => door.service.fetch('/v1/books', jsonRequest('POST', book, headers))),
      )
      const created = responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null)
      assert.equal(created.length, 1, responses.map((response) => response.status).join())
      for (const response of responses.filter((candidate) => candidate.status !== 201)) {
        await assertRestAnswer(row, response)
        assert.equal(response.headers.get('retry-after'), '1')
        conflicts.rest++
      }
      for (const response of responses) if (!response.bodyUsed) await response.arrayBuffer()

      const answers = await Promise.allSettled(
        Array.from({ length: 20 }, () =>
          door.clients.grpc.createBook({ book: bookMessage, idempotencyKey: `${key}-rpc` }, door.auth),
        ),
      )
      const fulfilled = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []))
      assert.equal(fulfilled.filter((answer) => !answer.replayed).length, 1, 'one created')
      assert.equal(new Set(fulfilled.map((answer) => answer.book?.id)).size, 1, 'every replay is that book')
      for (const answer of answers) {
        if (answer.status === 'rejected') {
          assertRpcAnswer(row, answer.reason, 'grpc')
          conflicts.rpc++
        }
      }
    }
    t.diagnostic(`in flight: ${conflicts.rest} REST answers 409, ${conflicts.rpc} RPC answers ABORTED`)
    assert.ok(conflicts.rest > 0, 'a REST create saw the key in flight')
    assert.ok(conflicts.rpc > 0, 'an RPC create saw the key in flight')
  })
})
