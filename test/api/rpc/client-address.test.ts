// The client address on the gRPC port follows the same rule as on the HTTP port: the peer, or behind a proxy that
// SERVER_TRUST_PROXY trusts, the nearest untrusted x-forwarded-for entry. So callers behind the Gateway get a budget
// each, and a caller that is not a trusted proxy cannot pick its address with forged metadata.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, it } from 'node:test'
import { Code, createClient } from '@connectrpc/connect'
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node'
import { BookService } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import { quickBackend, type RpcService, rpcFailure, startRpcService } from '../../helpers/rpc-clients.ts'

const LIMIT = 3
const DOORS = {
  'native gRPC': (service: RpcService) => createGrpcTransport({ baseUrl: service.grpcUrl }),
  'Connect over HTTP/2': (service: RpcService) =>
    createConnectTransport({ baseUrl: service.grpcUrl, httpVersion: '2' }),
}

/** Calls GetBook `count` times as the client `forwardedFor` names; the codes, OK-or-not as NOT_FOUND counts too. */
async function codesOf(service: RpcService, door: keyof typeof DOORS, forwardedFor: string, count: number) {
  const client = createClient(BookService, DOORS[door](service))
  const codes: string[] = []
  for (let i = 0; i < count; i++) {
    const error = await rpcFailure(
      client.getBook({ id: randomUUID() }, { headers: { 'x-forwarded-for': forwardedFor } }),
    )
    codes.push(Code[error.code])
  }
  return codes
}

const allowed = Array(LIMIT).fill('NotFound')

describe('the client address on the gRPC port', () => {
  describe('behind a trusted proxy', () => {
    let service: RpcService
    before(async () => {
      service = await startRpcService(await quickBackend(), {
        RATE_LIMIT_MAX: String(LIMIT),
        SERVER_TRUST_PROXY: '127.0.0.1',
      })
    })
    after(() => service?.close())

    for (const [index, door] of (Object.keys(DOORS) as (keyof typeof DOORS)[]).entries()) {
      it(`when two clients call through it over ${door}, then each has a budget of its own`, async () => {
        const [first, second] = [`203.0.113.${10 + 2 * index}`, `203.0.113.${11 + 2 * index}`]
        assert.deepEqual(await codesOf(service, door, first, LIMIT + 1), [...allowed, 'ResourceExhausted'])
        assert.deepEqual(await codesOf(service, door, second, LIMIT), allowed, 'the second client is not limited')
        const logged = service.logs.filter((line) => line.message === 'call').map((line) => line.remote_ip)
        assert.ok(logged.includes(first) && logged.includes(second), `logged addresses: ${[...new Set(logged)]}`)
      })
    }
  })

  describe('from a peer that is not a trusted proxy', () => {
    let service: RpcService
    before(async () => {
      service = await startRpcService(await quickBackend(), {
        RATE_LIMIT_MAX: String(LIMIT),
        SERVER_TRUST_PROXY: '10.0.0.0/8',
      })
    })
    after(() => service?.close())

    it('when it forges x-forwarded-for, then the metadata is ignored on either door: one budget, its own', async () => {
      assert.deepEqual(await codesOf(service, 'native gRPC', '198.51.100.1', LIMIT), allowed)
      assert.deepEqual(await codesOf(service, 'native gRPC', '198.51.100.2', 1), ['ResourceExhausted'])
      assert.deepEqual(await codesOf(service, 'Connect over HTTP/2', '198.51.100.3', 1), ['ResourceExhausted'])
      const logged = new Set(service.logs.filter((line) => line.message === 'call').map((line) => line.remote_ip))
      assert.deepEqual([...logged], ['127.0.0.1'])
    })
  })
})
