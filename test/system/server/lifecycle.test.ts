// The real server process: start-up, a drain on SIGTERM/SIGINT with a request in flight, exit codes.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable } from '../../helpers/postgres-server.ts'
import { startThrowawayPostgres, throwawayPostgresMissing } from '../../helpers/throwaway-postgres.ts'

const noPostgresServer = await postgresServerUnavailable()
const SERVER = new URL('../../../src/server.ts', import.meta.url).pathname
const BOOK = JSON.stringify({ title: 'Dune', author: 'Frank Herbert', published_date: '1965-08-01' })

interface Running {
  child: ChildProcess
  port: number
  lines: Record<string, unknown>[]
  exit: Promise<number | null>
}

async function startServer(env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '0',
      DB_EMBEDDED_PATH: mkdtempSync(join(tmpdir(), 'myapp-server-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines: Record<string, unknown>[] = []
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error('server did not start within 30 s')), 30_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let newline = buffered.indexOf('\n')
      while (newline !== -1) {
        const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>
        lines.push(line)
        const listening = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(String(line.message))
        if (listening) {
          clearTimeout(timer)
          resolve(Number(listening[1]))
        }
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf('\n')
      }
    })
    exit.then((code) => reject(new Error(`server exited with ${code} before listening`)))
  })
  return { child, port, lines, exit }
}

/** Sends the headers and half the body of a POST, leaving the request in flight. */
async function startSlowPost(port: number): Promise<{ socket: Socket; finish(): Promise<string> }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const half = Math.floor(BOOK.length / 2)
  socket.write(
    `POST /v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${BOOK.length}\r\n\r\n${BOOK.slice(0, half)}`,
  )
  let response = ''
  socket.on('data', (chunk: Buffer) => {
    response += chunk.toString()
  })
  const ended = once(socket, 'close')
  return {
    socket,
    async finish() {
      socket.write(BOOK.slice(half))
      await ended
      return response
    },
  }
}

async function waitForLine(running: Running, message: string) {
  for (let i = 0; i < 100; i++) {
    if (running.lines.some((line) => line.message === message)) return
    await sleep(50)
  }
  assert.fail(`no log line "${message}"`)
}

describe('server lifecycle', () => {
  it('when SIGTERM arrives with a request in flight, then the request completes and the process exits 0', async () => {
    const running = await startServer()
    const slow = await startSlowPost(running.port)
    await sleep(200)
    running.child.kill('SIGTERM')
    await waitForLine(running, 'shutting down: draining in-flight requests')
    // New connections are refused while draining…
    await assert.rejects(fetch(`http://127.0.0.1:${running.port}/livez`))
    // …but the request already in flight is served in full.
    const response = await slow.finish()
    assert.match(response, /^HTTP\/1\.1 201 Created\r\n/)
    assert.match(response, /"title":"Dune"/)
    assert.equal(await running.exit, 0)
    assert.ok(running.lines.some((line) => line.message === 'stopped'))
  })

  it('when SERVER_SHUTDOWN_DELAY is set, then /readyz is 503 at once while requests are still served', async () => {
    const running = await startServer({ SERVER_SHUTDOWN_DELAY: '1s' })
    const url = `http://127.0.0.1:${running.port}`
    const slow = await startSlowPost(running.port)
    await sleep(100)
    running.child.kill('SIGTERM')
    await waitForLine(running, 'shutting down: not ready, still serving')
    const readiness = await fetch(`${url}/readyz`)
    assert.equal(readiness.status, 503)
    assert.equal(((await readiness.json()) as { detail: string }).detail, 'shutting down')
    assert.equal(readiness.headers.get('connection'), 'close')
    assert.equal((await fetch(`${url}/livez`)).status, 200)
    assert.equal((await fetch(`${url}/v1/books`)).status, 200)
    const response = await slow.finish()
    assert.match(response, /^HTTP\/1\.1 201 Created\r\n/)
    assert.match(response, /\r\nconnection: close\r\n/i)
    assert.equal(await running.exit, 0)
  })

  it('when SIGINT arrives while idle, then the process exits 0 promptly', async () => {
    const running = await startServer()
    assert.equal((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status, 200)
    const started = performance.now()
    running.child.kill('SIGINT')
    assert.equal(await running.exit, 0)
    assert.ok(performance.now() - started < 5000)
  })

  it('when migrations are pending on a server database, then it serves and warns once listening', {
    skip: noPostgresServer,
  }, async () => {
    const database = await createServerDatabase()
    let running: Awaited<ReturnType<typeof startServer>> | undefined
    try {
      running = await startServer({ DATABASE_URL: database.url })
      assert.equal((await fetch(`http://127.0.0.1:${running.port}/livez`)).status, 200)
      for (let i = 0; i < 100 && !running.lines.some((line) => Array.isArray(line.pending)); i++) await sleep(50)
      const warning = running.lines.find((line) => Array.isArray(line.pending))
      assert.match(String(warning?.message), /migrations are pending/)
      // Every migration of the repository, in order: the database is new.
      const migrations = readdirSync(new URL('../../../migrations/', import.meta.url))
        .filter((name) => name.endsWith('.sql'))
        .sort()
      assert.ok(migrations.length >= 9)
      assert.deepEqual(warning?.pending, migrations)
      running.child.kill('SIGTERM')
      assert.equal(await running.exit, 0)
    } finally {
      // A failed assertion must not leave the server running, and the test file with it.
      if (running?.child.exitCode === null) running.child.kill('SIGKILL')
      await database.drop()
    }
  })

  it('when an in-flight request outlives the grace period, then connections are cut and the exit code is 1', async () => {
    const running = await startServer({ SERVER_SHUTDOWN_TIMEOUT: '1s', SERVER_TIMEOUT_READ: '30s' })
    const stuck = await startSlowPost(running.port)
    await sleep(200)
    const started = performance.now()
    running.child.kill('SIGTERM')
    assert.equal(await running.exit, 1)
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 900 && elapsed < 5000, `exited after ${elapsed.toFixed(0)} ms`)
    assert.ok(running.lines.some((line) => line.message === 'grace period over; closing the remaining connections'))
    stuck.socket.destroy()
  })

  it('when the database is down at start-up, then the process waits with backoff and serves once it is up', {
    skip: throwawayPostgresMissing(),
  }, async () => {
    const database = await startThrowawayPostgres()
    await database.crash()
    const child = spawn(process.execPath, [SERVER], {
      env: {
        PATH: process.env.PATH,
        SERVER_HOST: '127.0.0.1',
        SERVER_PORT: '0',
        DATABASE_URL: database.url,
        DB_MIGRATE_ON_START: 'true',
        DB_CONNECT_TIMEOUT: '1s',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const lines: Record<string, unknown>[] = []
    let buffered = ''
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop() as string
      for (const part of parts) lines.push(JSON.parse(part))
    })
    const exit = once(child, 'exit')
    try {
      for (
        let i = 0;
        i < 100 && lines.filter((line) => line.message === 'database not reachable at start-up; waiting').length < 2;
        i++
      ) {
        await sleep(100)
      }
      const waits = lines.filter((line) => line.message === 'database not reachable at start-up; waiting')
      assert.ok(waits.length >= 2, 'it waited more than once')
      assert.ok((waits[1]?.retry_in_ms as number) > (waits[0]?.retry_in_ms as number), 'with a growing delay')
      assert.equal(child.exitCode, null, 'and did not exit')
      await database.start()
      let port: number | undefined
      for (let i = 0; i < 150 && port === undefined; i++) {
        const listening = lines
          .map((line) => /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(String(line.message)))
          .find(Boolean)
        if (listening) port = Number(listening[1])
        else await sleep(100)
      }
      assert.ok(port, 'it started serving after the database came up')
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
      assert.ok(lines.some((line) => line.message === 'migrations applied'))
      child.kill('SIGTERM')
      assert.equal((await exit)[0], 0)
    } finally {
      child.kill('SIGKILL')
      await database.destroy()
    }
  })

  it('when the configuration is invalid, then it exits 78 naming every bad variable', async () => {
    const child = spawn(process.execPath, [SERVER], {
      env: { PATH: process.env.PATH, SERVER_PORT: 'http', DB_POOL_MAX: '0', DB_PASS: 'hunter2', DB_HOST: 'db' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    const [code] = await once(child, 'exit')
    assert.equal(code, 78)
    for (const expected of ['SERVER_PORT: must be an integer', 'DB_POOL_MAX: must be >= 1', 'DB_USER: required']) {
      assert.ok(output.includes(expected), `${expected} in ${output}`)
    }
    assert.doesNotMatch(output, /hunter2/)
  })
})
