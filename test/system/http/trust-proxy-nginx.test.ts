// Client identity behind proxies (SERVER_TRUST_PROXY): clients on distinct loopback addresses through Debian's
// nginx, alone and chained, over IPv4 and IPv6. The address is what the request log, the rate limit and the
// idempotency scope see; nginx connects to the services from 127.0.0.4, an address no client uses.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { forged, loggedRemoteIp, NGINX_ADDRESS, portOf, rounds, send } from '../../helpers/loopback-clients.ts'
import { nginxMissing, type RunningNginx, startNginx } from '../../helpers/nginx.ts'
import { BACKENDS, type Backend, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { freePort } from '../../helpers/tools.ts'

const noNginx = nginxMissing()
// Where the database plays no part: the run's first backend, the server's when selected (it starts several times
// faster).
const anyBackend: Backend = BACKENDS[0] ?? 'embedded'
const skipAnyBackend = noNginx || (await skipReason(anyBackend))

/** An nginx server on `port` passing everything to `upstream` from `bind`, with the usual forwarding headers. */
function proxyServer(port: number, upstream: string, bind = NGINX_ADDRESS): string {
  return `  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${upstream};
      proxy_bind ${bind};
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }`
}

describe('rate-limit buckets and the request log behind nginx', { skip: skipAnyBackend }, () => {
  // RATE_LIMIT_MAX=3 everywhere; each test uses client addresses no other test of its service uses.
  let trusted: TestService
  let untrusted: TestService
  let hops: TestService
  let nginx: RunningNginx
  const via = { trusted: '', untrusted: '', hops: '' }
  before(async () => {
    trusted = await startService(anyBackend, { RATE_LIMIT_MAX: '3', SERVER_TRUST_PROXY: NGINX_ADDRESS })
    untrusted = await startService(anyBackend, { RATE_LIMIT_MAX: '3' })
    hops = await startService(anyBackend, { RATE_LIMIT_MAX: '3', SERVER_TRUST_PROXY: '1' })
    const [t, u, h] = [await freePort(), await freePort(), await freePort()]
    nginx = await startNginx(
      [
        proxyServer(t, `127.0.0.1:${portOf(trusted)}`),
        proxyServer(u, `127.0.0.1:${portOf(untrusted)}`),
        proxyServer(h, `127.0.0.1:${portOf(hops)}`),
      ].join('\n'),
      `http://127.0.0.1:${t}/livez`,
    )
    via.trusted = `http://127.0.0.1:${t}`
    via.untrusted = `http://127.0.0.1:${u}`
    via.hops = `http://127.0.0.1:${h}`
  })
  after(async () => {
    await nginx?.stop()
    await trusted?.close()
    await untrusted?.close()
    await hops?.close()
  })

  it('when two clients come through nginx and nginx is trusted, then each has its own bucket and logs its own address', async (t) => {
    const seen = await rounds(via.trusted, trusted, ['127.0.0.2', '127.0.0.3'])
    t.diagnostic(`SERVER_TRUST_PROXY=${NGINX_ADDRESS}: ${JSON.stringify(seen)}`)
    for (const client of ['127.0.0.2', '127.0.0.3']) {
      assert.deepEqual(seen[client]?.statuses, [200, 200, 200, 429], client)
      assert.deepEqual(seen[client]?.ips, Array(4).fill(client))
    }
  })

  it('when two clients come through nginx and SERVER_TRUST_PROXY is unset, then they share the proxy’s bucket and address', async (t) => {
    const seen = await rounds(via.untrusted, untrusted, ['127.0.0.2', '127.0.0.3'])
    t.diagnostic(`unset: ${JSON.stringify(seen)}`)
    assert.deepEqual(seen['127.0.0.2']?.statuses, [200, 200, 429, 429])
    assert.deepEqual(seen['127.0.0.3']?.statuses, [200, 429, 429, 429])
    for (const client of ['127.0.0.2', '127.0.0.3']) assert.deepEqual(seen[client]?.ips, Array(4).fill(NGINX_ADDRESS))
  })

  it('when a client forges X-Forwarded-For and Forwarded through the trusted nginx, then only the address nginx saw counts', async () => {
    const seen = await rounds(via.trusted, trusted, ['127.0.0.5'], forged)
    assert.deepEqual(seen['127.0.0.5']?.statuses, [200, 200, 200, 429])
    assert.deepEqual(seen['127.0.0.5']?.ips, Array(4).fill('127.0.0.5'))
  })

  it('when the hop count is 1 and clients come through nginx, then each has its own bucket, whatever they forged', async () => {
    const seen = await rounds(via.hops, hops, ['127.0.0.2', '127.0.0.3'], forged)
    for (const client of ['127.0.0.2', '127.0.0.3']) {
      assert.deepEqual(seen[client]?.statuses, [200, 200, 200, 429], client)
      assert.deepEqual(seen[client]?.ips, Array(4).fill(client))
    }
  })
})

for (const backend of BACKENDS) {
  const skip = noNginx || (await skipReason(backend))
  describe(`idempotency keys behind nginx (${backend})`, { skip }, () => {
    let trusted: TestService
    let untrusted: TestService
    let nginx: RunningNginx
    const via = { trusted: '', untrusted: '' }
    before(async () => {
      trusted = await startService(backend, { SERVER_TRUST_PROXY: NGINX_ADDRESS })
      untrusted = await startService(backend)
      const [t, u] = [await freePort(), await freePort()]
      nginx = await startNginx(
        [proxyServer(t, `127.0.0.1:${portOf(trusted)}`), proxyServer(u, `127.0.0.1:${portOf(untrusted)}`)].join('\n'),
        `http://127.0.0.1:${t}/livez`,
      )
      via.trusted = `http://127.0.0.1:${t}`
      via.untrusted = `http://127.0.0.1:${u}`
    })
    after(async () => {
      await nginx?.stop()
      await trusted?.close()
      await untrusted?.close()
    })

    const book = { title: 'Shared Key', author: 'Ann Author', published_date: '2001-02-03' }
    const create = async (url: string, from: string, key: string) => {
      const response = await send(`${url}/v1/books`, from, {
        method: 'POST',
        headers: { 'idempotency-key': key },
        body: book,
      })
      assert.equal(response.status, 201)
      const { id } = (await response.json()) as { id: string }
      return { id, replayed: response.headers.get('idempotent-replayed') === 'true' }
    }

    it('when a second client sends the first one’s Idempotency-Key and body through the trusted nginx, then it gets a book of its own and each retry replays its own', async () => {
      const first = await create(via.trusted, '127.0.0.2', 'key-1')
      const second = await create(via.trusted, '127.0.0.3', 'key-1')
      assert.equal(second.replayed, false)
      assert.notEqual(second.id, first.id)
      assert.deepEqual(await create(via.trusted, '127.0.0.2', 'key-1'), { id: first.id, replayed: true })
      assert.deepEqual(await create(via.trusted, '127.0.0.3', 'key-1'), { id: second.id, replayed: true })
    })

    it('when nginx is not trusted, then the second client is replayed the first one’s answer (what the setting prevents)', async () => {
      const first = await create(via.untrusted, '127.0.0.2', 'key-2')
      assert.deepEqual(await create(via.untrusted, '127.0.0.3', 'key-2'), { id: first.id, replayed: true })
    })

    it('when a create and a list come back through the trusted nginx with a forged host, then Location and Link are paths, with no host or scheme from any header', async () => {
      const headers = { host: 'forged.example', 'x-forwarded-host': 'forged.example', 'x-forwarded-proto': 'https' }
      const created = await send(`${via.trusted}/v1/books`, '127.0.0.5', { method: 'POST', headers, body: book })
      assert.equal(created.status, 201)
      assert.match(created.headers.get('location') ?? '', /^\/v1\/books\/[0-9a-f-]{36}$/)
      const listed = await send(`${via.trusted}/v1/books?pageSize=1`, '127.0.0.5', { headers })
      assert.equal(listed.status, 200)
      for (const link of (listed.headers.get('link') ?? '').split(', '))
        assert.match(link, /^<\/v1\/books\?[^>]+>; rel="/)
    })
  })
}

describe('chains of proxies and IPv6 hops', { skip: skipAnyBackend }, () => {
  // outer nginx (from 127.0.0.5) → inner nginx (from 127.0.0.4) → service; and nginx → [::1] → service.
  let nearestOnly: TestService
  // Listens on :: as well, where IPv4 peers appear as ::ffff:127.0.0.4 and must still match 127.0.0.4/31.
  let rangeAndIpv6: TestService
  let nginx: RunningNginx
  const via = { nearestOnly: '', range: '', ipv6: '' }
  before(async () => {
    nearestOnly = await startService(anyBackend, { SERVER_TRUST_PROXY: NGINX_ADDRESS })
    rangeAndIpv6 = await startService(anyBackend, { SERVER_HOST: '::', SERVER_TRUST_PROXY: '127.0.0.4/31, ::1' })
    const [outer1, inner1, outer2, inner2, v6] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ]
    nginx = await startNginx(
      [
        proxyServer(outer1, `127.0.0.1:${inner1}`, '127.0.0.5'),
        proxyServer(inner1, `127.0.0.1:${portOf(nearestOnly)}`),
        proxyServer(outer2, `127.0.0.1:${inner2}`, '127.0.0.5'),
        proxyServer(inner2, `127.0.0.1:${portOf(rangeAndIpv6)}`),
        proxyServer(v6, `[::1]:${portOf(rangeAndIpv6)}`, '::1'),
      ].join('\n'),
      `http://127.0.0.1:${outer1}/livez`,
    )
    via.nearestOnly = `http://127.0.0.1:${outer1}`
    via.range = `http://127.0.0.1:${outer2}`
    via.ipv6 = `http://127.0.0.1:${v6}`
  })
  after(async () => {
    await nginx?.stop()
    await nearestOnly?.close()
    await rangeAndIpv6?.close()
  })

  const remoteIpVia = async (url: string, service: TestService) => {
    const response = await send(`${url}/v1/books`, '127.0.0.2', { headers: forged(1) })
    assert.equal(response.status, 200)
    return loggedRemoteIp(service, response)
  }

  it('when only the inner proxy is trusted, then the walk from the right stops at the outer one, which is the client', async () => {
    assert.equal(await remoteIpVia(via.nearestOnly, nearestOnly), '127.0.0.5')
  })

  it('when a CIDR range covers both proxies, then the client is the address the outer proxy saw, not what it forged', async () => {
    assert.equal(await remoteIpVia(via.range, rangeAndIpv6), '127.0.0.2')
  })

  it('when the proxy reaches the service over IPv6 and ::1 is trusted, then the IPv4 client behind it is the client', async () => {
    assert.equal(await remoteIpVia(via.ipv6, rangeAndIpv6), '127.0.0.2')
  })
})
