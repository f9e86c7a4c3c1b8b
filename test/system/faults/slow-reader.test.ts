// Fault: clients that pipeline many requests and never read the answers. The service (a child process, so that
// its resident memory is its own) must hold a bounded amount for each, keep answering everyone else, and close
// each such connection SERVER_TIMEOUT_WRITE after its last byte moved.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, jsonRequest, skipReason } from '../../helpers/service.ts'
import { type ServiceProcess, startServiceProcess } from '../../helpers/service-process.ts'

const WRITE_TIMEOUT_MS = 3000
const BOOKS = 120
const PIPELINED = 1000
const LIST = 'GET /v1/books?q=slow%20reader&pageSize=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0')

/**
 * Follows connections to the service in /proc/net/tcp, where the kernel shows each socket's state and queues: a
 * connection's bytes move while the queues on either end change, and the service has closed it once its end is
 * no longer ESTABLISHED. Polled every 20 ms; bounded by `timeoutMs`.
 */
async function followConnections(servicePort: number, clientPorts: number[], timeoutMs: number) {
  const followed = new Map(
    clientPorts.map((port) => [port, { state: '', lastMovedAt: performance.now(), closedAt: 0 }]),
  )
  const until = performance.now() + timeoutMs
  while (performance.now() < until && [...followed.values()].some(({ closedAt }) => closedAt === 0)) {
    const table = readFileSync('/proc/net/tcp', 'utf8')
    const now = performance.now()
    for (const [clientPort, connection] of followed) {
      if (connection.closedAt !== 0) continue
      const serviceEnd = new RegExp(`:${hex(servicePort)} 0100007F:${hex(clientPort)} (\\w\\w) (\\w+:\\w+)`).exec(table)
      const clientEnd = new RegExp(`:${hex(clientPort)} 0100007F:${hex(servicePort)} \\w\\w (\\w+:\\w+)`).exec(table)
      if (serviceEnd?.[1] !== '01') {
        connection.closedAt = now
        continue
      }
      const state = `${serviceEnd[2]} ${clientEnd?.[1]}`
      if (state !== connection.state) {
        connection.state = state
        connection.lastMovedAt = now
      }
    }
    await sleep(20)
  }
  return followed
}

/** Opens a connection that sends `PIPELINED` list requests at once and never reads a byte of the answers. */
async function neverReadingClient(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  socket.pause()
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(LIST.repeat(PIPELINED))
  return socket
}

async function timed(url: string): Promise<number> {
  const started = performance.now()
  const response = await fetch(url)
  await response.arrayBuffer()
  assert.equal(response.status, 200)
  return performance.now() - started
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

for (const backend of BACKENDS) {
  describe(`clients that never read (${backend})`, { skip: await skipReason(backend) }, () => {
    let service: ServiceProcess
    before(async () => {
      service = await startServiceProcess(backend, { SERVER_TIMEOUT_WRITE: `${WRITE_TIMEOUT_MS}ms`, LOG_LEVEL: 'warn' })
      // Large answers: 100 books of about 4 KB each, 430 KB a page.
      for (let i = 0; i < BOOKS; i++) {
        const book = {
          title: `Slow reader ${i}`,
          author: 'Ann Author',
          published_date: '2000-01-01',
          description: 'A long description. '.repeat(200),
        }
        const response = await fetch(`${service.baseUrl}/v1/books`, jsonRequest('POST', book))
        assert.equal(response.status, 201)
      }
      // The same requests, read, so that what is measured next is the attack and not first-use allocation.
      for (let i = 0; i < 20; i++) await timed(`${service.baseUrl}/v1/books?q=slow%20reader&pageSize=100`)
    })
    after(() => service?.stop())

    it('when one client pipelines 1,000 list requests and never reads, then memory grows less than 50 MiB, others are answered within 100 ms and the connection closes SERVER_TIMEOUT_WRITE after its last byte moved', async (t) => {
      await sleep(500)
      const rssBefore = service.rssMiB()
      const client = await neverReadingClient(service.port)
      const openedAt = performance.now()
      const following = followConnections(service.port, [client.localPort as number], 3 * WRITE_TIMEOUT_MS)
      let rssPeak = rssBefore
      const sampling = setInterval(() => {
        rssPeak = Math.max(rssPeak, service.rssMiB())
      }, 50)
      const latencies: number[] = []
      for (let i = 0; i < 5; i++) {
        await sleep(300)
        latencies.push(await timed(`${service.baseUrl}/v1/books?pageSize=10`))
      }
      const [connection] = [...(await following).values()]
      clearInterval(sampling)
      client.destroy()
      await sleep(1000)
      const rssAfter = service.rssMiB()
      assert.ok(connection)
      const closedAfter = connection.closedAt - connection.lastMovedAt
      t.diagnostic(
        `RSS ${rssBefore.toFixed(0)} MiB before, ${rssPeak.toFixed(0)} MiB at most during (+${(rssPeak - rssBefore).toFixed(1)}), ${rssAfter.toFixed(0)} MiB after; other client ${latencies.map((ms) => ms.toFixed(1)).join(', ')} ms (median ${median(latencies).toFixed(1)}); closed ${closedAfter.toFixed(0)} ms after the last byte moved (SERVER_TIMEOUT_WRITE ${WRITE_TIMEOUT_MS} ms)`,
      )
      assert.ok(rssPeak - rssBefore < 50, `RSS grew by ${(rssPeak - rssBefore).toFixed(1)} MiB`)
      assert.ok(median(latencies) < 100, `the other client waited ${median(latencies).toFixed(1)} ms (median)`)
      assert.notEqual(connection.closedAt, 0, 'the connection was closed')
      // Not late: within 10 % of the timeout after the last movement this test sees. Not early: the kernels also
      // move bytes between the two sockets' queues, which the service cannot see (it counts what it reads and what
      // its kernel takes), so a close can follow such a move closely; it never comes before the timeout has passed
      // since the connection was opened.
      assert.ok(closedAfter <= WRITE_TIMEOUT_MS * 1.1, `closed ${closedAfter.toFixed(0)} ms after the last byte moved`)
      assert.ok(
        connection.closedAt - openedAt >= WRITE_TIMEOUT_MS * 0.9,
        `closed ${(connection.closedAt - openedAt).toFixed(0)} ms after it was opened`,
      )
    })

    it('when 50 such clients pipeline at once, then memory per connection stays bounded and every connection is closed about SERVER_TIMEOUT_WRITE after its last byte moved', async (t) => {
      await sleep(1000)
      const rssBefore = service.rssMiB()
      const clients = await Promise.all(Array.from({ length: 50 }, () => neverReadingClient(service.port)))
      const following = followConnections(
        service.port,
        clients.map((client) => client.localPort as number),
        6 * WRITE_TIMEOUT_MS,
      )
      let rssPeak = rssBefore
      const sampling = setInterval(() => {
        rssPeak = Math.max(rssPeak, service.rssMiB())
      }, 50)
      const connections = [...(await following).values()]
      clearInterval(sampling)
      for (const client of clients) client.destroy()
      await sleep(1000)
      const rssAfter = service.rssMiB()
      const closedAfter = connections.map(({ closedAt, lastMovedAt }) => closedAt - lastMovedAt)
      const perConnection = (rssPeak - rssBefore) / clients.length
      t.diagnostic(
        `RSS ${rssBefore.toFixed(0)} MiB before, ${rssPeak.toFixed(0)} MiB at most during (+${(rssPeak - rssBefore).toFixed(0)}, ${perConnection.toFixed(1)} MiB a connection), ${rssAfter.toFixed(0)} MiB after; closed ${Math.min(...closedAfter).toFixed(0)}–${Math.max(...closedAfter).toFixed(0)} ms after the last byte moved`,
      )
      assert.ok(
        connections.every(({ closedAt }) => closedAt !== 0),
        'every connection was closed',
      )
      assert.ok(perConnection < 16, `RSS grew by ${perConnection.toFixed(1)} MiB a connection`)
      // Bounded, not precise: with 50 connections of 1,000 requests each torn down at nearly the same moment, both
      // the service's timer and this test's view of each socket's last byte are coarse. The single-client test
      // above holds the close to within 10 %.
      // On PGlite the 50 clients' queries run one at a time on the event loop the sweep shares, so a close can come
      // seconds late there (6.2 s and 9.2 s seen in CI on a loaded machine); a connection never closed, or closed
      // past 2.5 timeouts on PostgreSQL or 4 embedded, still fails.
      const bound = WRITE_TIMEOUT_MS * (backend === 'embedded' ? 4 : 2.5)
      for (const ms of closedAfter) {
        assert.ok(ms <= bound, `closed ${ms.toFixed(0)} ms after the last byte moved`)
      }
      assert.equal((await fetch(`${service.baseUrl}/livez`)).status, 200)
    })
  })
}
