// The rows of the REST ⇄ RPC error table that need a database to crash: on a throwaway PostgreSQL cluster, REST
// and both RPC doors answer 503 / UNAVAILABLE with one advised wait; REQUIRE_IF_MATCH's row shares the service.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { Code } from '@connectrpc/connect'
import { describe } from '../../helpers/describe.ts'
import { retryDelayMs, rpcFailure, startRpcService } from '../../helpers/rpc-clients.ts'
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
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'

// startService('postgres') makes its database on the shared server as well, before DATABASE_URL points it away.
describe('REST ⇄ RPC errors on a database that can be stopped, with REQUIRE_IF_MATCH=true', {
  skip: throwawayPostgresMissing() || (await skipReason('postgres')),
}, () => {
  let database: ThrowawayPostgres
  let door: Door
  before(async () => {
    database = await startThrowawayPostgres()
    const service = await startRpcService('postgres', {
      DATABASE_URL: database.url,
      DB_CONNECT_TIMEOUT: '1s',
      DB_QUERY_TIMEOUT: '2s',
      REQUIRE_IF_MATCH: 'true',
    })
    door = await openDoor(service, undefined)
  })
  after(async () => {
    await door?.service.close()
    await database?.destroy()
  })

  it('when a write sends no version, then REST answers 428 and RPC FAILED_PRECONDITION, for replace and delete', async () => {
    const row = rowOf('version required (REQUIRE_IF_MATCH=true), none sent')
    const path = `/v1/books/${door.bookId}`
    await assertRestAnswer(row, await door.service.fetch(path, jsonRequest('PUT', book)))
    await assertRestAnswer(row, await door.service.fetch(path, { method: 'DELETE' }))
    for (const [label, client] of Object.entries(door.clients)) {
      assertRpcAnswer(row, await rpcFailure(client.updateBook({ id: door.bookId, book: bookMessage })), label)
      assertRpcAnswer(row, await rpcFailure(client.deleteBook({ id: door.bookId })), label)
    }
    // With the version, the same write goes through: the missing version was what failed it.
    const { book: replaced } = await door.clients.grpc.updateBook({
      id: door.bookId,
      book: bookMessage,
      expectedVersion: 2,
    })
    assert.equal(replaced?.version, 3)
  })

  it('when the database is down, then REST answers 503 with Retry-After and RPC UNAVAILABLE with RetryInfo', async () => {
    const row = rowOf('database unavailable')
    await database.crash()
    const response = await door.service.fetch(`/v1/books/${door.bookId}`)
    await assertRestAnswer(row, response)
    assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
    for (const [label, client] of Object.entries(door.clients)) {
      const error = await rpcFailure(client.getBook({ id: door.bookId }))
      assertRpcAnswer(row, error, label)
      const delay = retryDelayMs(error)
      assert.ok(delay !== undefined && delay > 0, `${label}: a google.rpc.RetryInfo with a delay`)
      assert.equal(error.metadata.get('retry-after'), String(delay / 1000), `${label}: the metadata says the same`)
    }
  })

  it('when the database is down, then RPC RetryInfo advises the same wait as REST Retry-After', {}, async () => {
    const response = await door.service.fetch(`/v1/books/${door.bookId}`)
    assert.equal(response.status, 503)
    await response.arrayBuffer()
    const error = await rpcFailure(door.clients.grpc.getBook({ id: door.bookId }))
    assert.equal(error.code, Code.Unavailable)
    assert.equal(retryDelayMs(error), Number(response.headers.get('retry-after')) * 1000)
  })
})
