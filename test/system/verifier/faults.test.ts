// The verifier through faults, with real parts: nats-server -js, PostgreSQL, the books service (one instance that
// takes the writes and relays the events, another that serves the verifier's gRPC calls on the same database), a
// local image server, and the verifier as a process of its own.
// - The books gRPC instance stopped for 10 s while 500 events wait: every book is verified once it is back, and
//   the breaker opened and closed.
// - The verifier killed (SIGKILL) mid-batch: another picks the unacknowledged events up, and no book is updated
//   twice.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { natsMissing, startNats, type TestNats } from '../../helpers/nats.ts'
import { jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'
import { freePort, until } from '../../helpers/tools.ts'

const MAIN = new URL('../../../src/verifier/main.ts', import.meta.url).pathname
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])

interface Running {
  child: ChildProcess
  port: number
  lines: string[]
}

const skip = natsMissing() || (await skipReason('postgres'))

describe('the verifier through faults', { skip }, () => {
  let nats: TestNats
  let writer: TestService
  let door: TestService | undefined
  let doorPorts: { http: number; grpc: number }
  let images: Server
  let imageBase: string
  let imageDelayMs = 0
  let folder: string

  const startDoor = async () => {
    door = await startService('postgres', {
      DATABASE_URL: writer.serverDatabase?.url as string,
      SERVER_PORT: String(doorPorts.http),
      GRPC_PORT: String(doorPorts.grpc),
    })
  }

  before(async () => {
    nats = await startNats()
    const grpc = await freePort()
    writer = await startService('postgres', { NATS_URL: nats.url, GRPC_PORT: String(grpc) }, { events: true })
    doorPorts = { http: await freePort(), grpc: await freePort() }
    await startDoor()
    images = createServer((_request, response) => {
      setTimeout(() => response.writeHead(200, { 'content-type': 'image/png' }).end(PNG), imageDelayMs)
    })
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve))
    imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`
    folder = mkdtempSync(join(tmpdir(), 'verifier-faults-'))
  })
  after(async () => {
    await door?.close()
    await writer?.close()
    await nats?.remove()
    images?.close()
    rmSync(folder, { recursive: true, force: true })
  })

  async function startVerifier(env: Record<string, string> = {}): Promise<Running> {
    const port = await freePort()
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        NATS_URL: nats.url,
        VERIFIER_BOOKS_URL: `http://127.0.0.1:${doorPorts.grpc}`,
        VERIFIER_BOOKS_PROTOCOL: 'grpc',
        VERIFIER_ALLOW_HOSTS: '127.0.0.1',
        VERIFIER_MAX_DELIVER: '20',
        VERIFIER_REDELIVERY_DELAY: '200ms',
        VERIFIER_ACK_WAIT: '2s',
        SERVER_HOST: '127.0.0.1',
        SERVER_PORT: String(port),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const lines: string[] = []
    child.stdout?.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)))
    await until('the verifier is ready', 20_000, async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined,
    )
    return { child, port, lines }
  }
  const stop = async ({ child }: Running, signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }

  /** Creates `count` books with images, `concurrency` at a time; their ids. */
  async function createBooks(count: number, label: string): Promise<string[]> {
    const ids: string[] = []
    for (let start = 0; start < count; start += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, count - start) }, async (_, offset) => {
          const response = await writer.fetch(
            '/v1/books',
            jsonRequest('POST', {
              title: `${label} ${start + offset}`,
              published_date: '1972-01-01',
              image_url: `${imageBase}/${label}/${start + offset}.png`,
            }),
          )
          assert.equal(response.status, 201)
          return ((await response.json()) as { id: string }).id
        }),
      )
      ids.push(...batch)
    }
    return ids
  }

  /** The status and version of each book, by id, read from the database. */
  const rows = async (ids: string[]) =>
    writer.database.query<{ id: string; status: string; version: number }>(
      'SELECT id, status::text, version FROM books WHERE id = ANY($1::uuid[])',
      [ids],
    )

  it('when the books gRPC door is down for 10 s while 500 events wait, then every book is verified once it is back', async (t) => {
    const verifier = await startVerifier()
    let ids: string[] = []
    try {
      await door?.close()
      door = undefined
      const stoppedAt = performance.now()
      ids = await createBooks(500, 'outage')
      await sleep(Math.max(0, 10_000 - (performance.now() - stoppedAt)))
      await startDoor()
      const back = performance.now()
      await until(
        'all 500 are verified',
        120_000,
        async () => {
          const verified = (await rows(ids)).filter((row) => row.status === 'verified').length
          return verified === 500 ? true : undefined
        },
        500,
      )
      t.diagnostic(`all 500 verified ${((performance.now() - back) / 1000).toFixed(1)} s after the door came back`)
      for (const row of await rows(ids)) assert.equal(row.version, 2, `${row.id} was updated once`)
      const changes = verifier.lines
        .map((line) => JSON.parse(line) as { message?: string; state?: string })
        .filter((line) => line.message === 'circuit breaker of a books replica changed state')
        .map((line) => line.state)
      assert.ok(changes.includes('Open'), `the breaker opened: ${changes.join(', ')}`)
      assert.equal(changes.at(-1), 'Closed', `and closed again: ${changes.join(', ')}`)
      const metrics = await (await fetch(`http://127.0.0.1:${verifier.port}/metrics`)).text()
      assert.match(metrics, /verifier_verifications_total\{outcome="verified",reason="png"\} 500/)
      assert.doesNotMatch(metrics, /verifier_dead_letters_total\{/)
    } catch (error) {
      const pending = (await rows(ids)).filter((row) => row.status !== 'verified')
      const metrics = await (await fetch(`http://127.0.0.1:${verifier.port}/metrics`)).text()
      t.diagnostic(`${pending.length} not verified: ${JSON.stringify(pending.slice(0, 3))}`)
      t.diagnostic(
        metrics
          .split('\n')
          .filter((line) => line.startsWith('verifier_'))
          .join('\n'),
      )
      const about = verifier.lines.filter((line) => pending.some((row) => line.includes(row.id)))
      t.diagnostic(about.slice(-10).join('\n'))
      throw error
    } finally {
      await stop(verifier)
    }
  })

  it('when the verifier is killed mid-batch, then another takes the unacknowledged events and no book is updated twice', async (t) => {
    imageDelayMs = 50
    const first = await startVerifier({ VERIFIER_CONCURRENCY: '8' })
    const ids = await createBooks(200, 'killed')
    await until(
      'some are verified',
      30_000,
      async () => {
        const verified = (await rows(ids)).filter((row) => row.status === 'verified').length
        return verified >= 20 ? verified : undefined
      },
      50,
    )
    await stop(first, 'SIGKILL')
    const atKill = (await rows(ids)).filter((row) => row.status === 'verified').length
    t.diagnostic(`${atKill} of 200 verified when the first verifier was killed`)
    assert.ok(atKill < 200, 'killed mid-batch')
    const second = await startVerifier({ VERIFIER_CONCURRENCY: '8' })
    try {
      await until(
        'all 200 are verified',
        60_000,
        async () => {
          const verified = (await rows(ids)).filter((row) => row.status === 'verified').length
          return verified === 200 ? true : undefined
        },
        250,
      )
      for (const row of await rows(ids)) assert.equal(row.version, 2, `${row.id} was updated once`)
    } finally {
      await stop(second)
      imageDelayMs = 0
    }
  })
})
