// Client identity straight to the service (SERVER_TRUST_PROXY): clients on distinct loopback addresses that forge
// X-Forwarded-For or Forwarded, believed only from a trusted hop. The address is what the request log and the rate
// limit see; the same behind nginx is in test/system/http.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { forged, loggedRemoteIp, NGINX_ADDRESS, portOf, rounds, send } from '../../helpers/loopback-clients.ts'
import { BACKENDS, type Backend, skipReason, startService, type TestService } from '../../helpers/service.ts'

// Where the database plays no part: the run's first backend, the server's when selected (it starts several times
// faster).
const anyBackend: Backend = BACKENDS[0] ?? 'embedded'

describe('forwarding headers from clients that reach the service directly', {
  skip: await skipReason(anyBackend),
}, () => {
  // Configured as the services behind nginx are; each test uses client addresses no other test of its service uses.
  let trusted: TestService
  let untrusted: TestService
  let hops: TestService
  // Listens on :: as well, where IPv4 peers appear as ::ffff:127.0.0.x.
  let rangeAndIpv6: TestService
  before(async () => {
    trusted = await startService(anyBackend, { RATE_LIMIT_MAX: '3', SERVER_TRUST_PROXY: NGINX_ADDRESS })
    untrusted = await startService(anyBackend, { RATE_LIMIT_MAX: '3' })
    hops = await startService(anyBackend, { RATE_LIMIT_MAX: '3', SERVER_TRUST_PROXY: '1' })
    rangeAndIpv6 = await startService(anyBackend, { SERVER_HOST: '::', SERVER_TRUST_PROXY: '127.0.0.4/31, ::1' })
  })
  after(async () => {
    await trusted?.close()
    await untrusted?.close()
    await hops?.close()
    await rangeAndIpv6?.close()
  })

  it('when a client talks to the service directly, then forged X-Forwarded-For and Forwarded change neither its bucket nor its logged address', async () => {
    // trusted: the setting is on, but this peer is not the proxy it names.
    for (const [name, service] of [
      ['trusted', trusted],
      ['untrusted', untrusted],
    ] as const) {
      const seen = await rounds(service.baseUrl, service, ['127.0.0.6'], forged)
      assert.deepEqual(seen['127.0.0.6']?.statuses, [200, 200, 200, 429], name)
      assert.deepEqual(seen['127.0.0.6']?.ips, Array(4).fill('127.0.0.6'), name)
    }
  })

  it('when the hop count is 1 and a client reaches the service directly, then its X-Forwarded-For is believed, as documented, and Forwarded is not', async () => {
    // Why a hop count needs a network where only the proxy reaches the service: the nearest hop is trusted
    // whatever its address.
    const seen = await rounds(hops.baseUrl, hops, ['127.0.0.7'], (n) => ({ 'x-forwarded-for': `198.51.100.${n}` }))
    assert.deepEqual(seen['127.0.0.7']?.statuses, [200, 200, 200, 200], 'a new bucket for every forged address')
    assert.deepEqual(seen['127.0.0.7']?.ips, ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'])
    const response = await send(`${hops.baseUrl}/v1/books`, '127.0.0.8', { headers: { forwarded: 'for=203.0.113.1' } })
    assert.equal(await loggedRemoteIp(hops, response), '127.0.0.8')
  })

  it('when a client reaches the service listening on :: directly, then it is its own (IPv4-mapped) socket address', async () => {
    const response = await send(`http://127.0.0.1:${portOf(rangeAndIpv6)}/v1/books`, '127.0.0.6', {
      headers: forged(1),
    })
    assert.equal(await loggedRemoteIp(rangeAndIpv6, response), '::ffff:127.0.0.6')
  })
})
