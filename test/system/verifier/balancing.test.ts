// The books client's load balancing with two real books instances behind one name (127.0.0.1 and 127.0.0.2 on one
// port; a second loopback address, which Linux has and not every system does): calls alternate between them, and
// with one of them gone every call still succeeds, on the other.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { createBooksClient } from '../../../src/verifier/books-client.ts'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'
import { freePort } from '../../helpers/tools.ts'

const MISSING = '01900000-0000-7000-8000-000000000000'
const ADDRESSES = ['127.0.0.1', '127.0.0.2']

describe('the books client over two replicas', () => {
  let replicas: TestService[]
  let port: number
  before(async () => {
    port = await freePort()
    replicas = await Promise.all(
      ADDRESSES.map((address) => startService('embedded', { SERVER_HOST: address, SERVER_PORT: String(port) })),
    )
  })
  after(async () => {
    for (const replica of replicas ?? []) await replica.close().catch(() => undefined)
  })

  const client = () =>
    createBooksClient({
      baseUrl: `http://books.test:${port}`,
      protocol: 'connect',
      token: undefined,
      callTimeoutMs: 1000,
      retry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 50 },
      breaker: { consecutiveFailures: 5, halfOpenAfterMs: 1000 },
      resolveEveryMs: 60_000,
      // Both replicas under one name, as a headless Service's DNS name gives them.
      resolve: async (host) => (host === 'books.test' ? ADDRESSES : []),
    })
  const callsTo = (replica: TestService) =>
    replica.logs.filter((line) => line.rpc_method === 'books.v1.BookService/UpdateBook').length

  it('when 10 calls are made, then each replica serves 5', async () => {
    const books = client()
    const before = replicas.map(callsTo)
    for (let call = 0; call < 10; call++) assert.equal(await books.setStatus(MISSING, 'verified', 1), 'not_found')
    assert.deepEqual(
      replicas.map((replica, index) => callsTo(replica) - (before[index] as number)),
      [5, 5],
    )
    assert.deepEqual(books.addresses(), ADDRESSES)
  })

  it('when one replica is gone, then every call still succeeds, on the other', async () => {
    const books = client()
    await replicas[1]?.close()
    const before = callsTo(replicas[0] as TestService)
    for (let call = 0; call < 10; call++) assert.equal(await books.setStatus(MISSING, 'verified', 1), 'not_found')
    assert.equal(callsTo(replicas[0] as TestService) - before, 10)
  })
})
