// The verifier's image check against real HTTP servers on loopback: what it reaches, what it refuses before any
// request leaves, redirects, the deadline, how much it reads, and what counts as an image.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, it } from 'node:test'
import { addressRefusal, createImageChecker, parseAllowList } from '../../../src/verifier/image-check.ts'
import { describe } from '../../helpers/describe.ts'

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])
const IMAGES = {
  png: PNG,
  jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]),
  gif: Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'),
  webp: Buffer.concat([Buffer.from('RIFF'), Buffer.from([36, 0, 0, 0]), Buffer.from('WEBPVP8 ')]),
}

/** A server on 127.0.0.1 that counts the requests it sees. */
async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const seen: string[] = []
  const server: Server = createServer((request, response) => {
    seen.push(request.url ?? '')
    handler(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { server, seen, port, url: (path: string, host = '127.0.0.1') => `http://${host}:${port}${path}` }
}

describe('the image check', () => {
  let images: Awaited<ReturnType<typeof serve>>
  let bytesSent = 0
  before(async () => {
    images = await serve((request, response) => {
      const path = request.url ?? '/'
      const kind = path.slice(1) as keyof typeof IMAGES
      if (kind in IMAGES) {
        // Declared as text: the bytes decide, not the content-type.
        response.writeHead(200, { 'content-type': 'text/plain' }).end(IMAGES[kind])
      } else if (path === '/page') response.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image')
      else if (path === '/missing') response.writeHead(404).end()
      else if (path.startsWith('/hop/')) {
        const left = Number(path.slice(5))
        response.writeHead(302, { location: left === 0 ? '/png' : `/hop/${left - 1}` }).end()
      } else if (path === '/to-other-loopback') {
        response.writeHead(307, { location: `http://127.0.0.2:${images.port}/png` }).end()
      } else if (path === '/slow') {
        response.writeHead(200, { 'content-type': 'image/png' })
        response.write(PNG.subarray(0, 2))
      } else if (path === '/endless') {
        response.writeHead(200, { 'content-type': 'image/png' })
        response.write(PNG)
        const chunk = Buffer.alloc(16 * 1024)
        const pump = () => {
          while (!response.destroyed && response.write(chunk)) bytesSent += chunk.length
          if (!response.destroyed && bytesSent < 64 * 1024 * 1024) response.once('drain', pump)
        }
        pump()
      } else response.writeHead(500).end()
    })
  })
  after(() => {
    images?.server.closeAllConnections()
    images?.server.close()
  })

  const local = createImageChecker({ allow: ['127.0.0.1'], deadlineMs: 1000, maxBytes: 4096, maxRedirects: 3 })

  for (const kind of Object.keys(IMAGES)) {
    it(`when the bytes are a ${kind}, then it is an image whatever the content-type`, async () => {
      assert.deepEqual(await local.check(images.url(`/${kind}`)), { outcome: 'image', kind })
    })
  }

  it('when a 2xx answer is no image, or the answer is a 404, then it says so', async () => {
    assert.deepEqual(await local.check(images.url('/page')), { outcome: 'not_image' })
    assert.deepEqual(await local.check(images.url('/missing')), { outcome: 'http_status', status: 404 })
  })

  it('when loopback is not allowed, then neither an address nor a name reaching it is requested', async () => {
    const strict = createImageChecker({ allow: [], deadlineMs: 1000, maxBytes: 4096, maxRedirects: 3 })
    const before = images.seen.length
    for (const url of [images.url('/png'), images.url('/png', 'localhost'), images.url('/png', '[::ffff:127.0.0.1]')]) {
      const verdict = await strict.check(url)
      assert.equal(verdict.outcome, 'refused', url)
    }
    assert.equal(images.seen.length, before, 'the server saw no request')
  })

  it('when a redirect leads outside the allow-list, then it is refused before it is followed', async () => {
    const before = images.seen.length
    const verdict = await local.check(images.url('/to-other-loopback'))
    assert.deepEqual(verdict, { outcome: 'refused', reason: '127.0.0.2 is a loopback address' })
    assert.deepEqual(images.seen.slice(before), ['/to-other-loopback'], 'only the first request was sent')
  })

  it('when there are 3 redirects, then the image is reached; at 4, it is refused', async () => {
    assert.deepEqual(await local.check(images.url('/hop/2')), { outcome: 'image', kind: 'png' })
    assert.deepEqual(await local.check(images.url('/hop/3')), { outcome: 'refused', reason: 'more than 3 redirects' })
  })

  it('when the answer never ends, then the check gives up at its deadline', async () => {
    const started = performance.now()
    const verdict = await local.check(images.url('/slow'))
    assert.equal(verdict.outcome, 'unreachable')
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 900 && elapsed < 3000, `gave up after ${elapsed.toFixed(0)} ms`)
  })

  it('when the body is endless, then a few KiB are read and the connection is closed', async () => {
    assert.deepEqual(await local.check(images.url('/endless')), { outcome: 'image', kind: 'png' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.ok(bytesSent < 8 * 1024 * 1024, `${bytesSent} bytes were sent before the connection closed`)
  })

  it('when the URL is not http or https, or not a URL, then nothing is fetched', async () => {
    assert.equal((await local.check('file:///etc/passwd')).outcome, 'refused')
    assert.equal((await local.check('javascript:alert(1)')).outcome, 'refused')
    assert.equal((await local.check('not a url')).outcome, 'refused')
  })

  it('when an address is private, link-local, CGNAT, multicast, metadata or loopback, then it is refused', () => {
    const none = parseAllowList([])
    for (const address of [
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '127.0.0.1',
      '169.254.169.254',
      '100.100.100.200',
      '224.0.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00:ec2::254',
      'ff02::1',
      '::ffff:10.0.0.1',
    ]) {
      assert.ok(addressRefusal(address, none), `${address} is refused`)
    }
    for (const address of ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']) {
      assert.equal(addressRefusal(address, none), undefined, `${address} is public`)
    }
    assert.equal(addressRefusal('10.1.2.3', parseAllowList(['10.0.0.0/8'])), undefined, 'allowed by CIDR')
  })
})
