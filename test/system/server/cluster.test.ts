// WEB_CONCURRENCY=2: a primary and two workers on one port, metrics gathered across workers, a dead worker
// replaced, and SIGTERM stopping them all.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseConfig } from '../../../src/config/config.ts'
import { createMigrator } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from '../../helpers/postgres-server.ts'

const SERVER = new URL('../../../src/server.ts', import.meta.url).pathname
const skip = (await postgresServerUnavailable()) ?? false

function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  )
}

/** A GET on a new connection each time, so that requests spread over the workers. */
function getFresh(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    outgoing.on('error', reject)
    outgoing.end()
  })
}

describe('WEB_CONCURRENCY=2 (node:cluster)', { skip }, () => {
  let database: ServerDatabase
  let child: ChildProcess
  let exit: Promise<number | null>
  let port = 0
  const lines: Record<string, unknown>[] = []

  before(async () => {
    database = await createServerDatabase()
    const direct = await openDatabase(parseConfig({ DATABASE_URL: database.url }).database, createLogger('silent'))
    await createMigrator(direct).up()
    await direct.close()
    child = spawn(process.execPath, [SERVER], {
      env: {
        PATH: process.env.PATH,
        SERVER_HOST: '127.0.0.1',
        SERVER_PORT: '0',
        DATABASE_URL: database.url,
        WEB_CONCURRENCY: '2',
        RATE_LIMIT_MAX: '0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    exit = once(child, 'exit').then(([code]) => code as number | null)
    let buffered = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        lines.push(JSON.parse(buffered.slice(0, newline)))
        buffered = buffered.slice(newline + 1)
      }
    })
    // Both workers listening (bounded: 30 s).
    for (let i = 0; i < 300; i++) {
      const listening = lines.filter((line) => /listening at/.test(String(line.message)))
      if (listening.length === 2) {
        port = Number(/:(\d+)$/.exec(String(listening[0]?.message))?.[1])
        break
      }
      await sleep(100)
    }
    assert.ok(port > 0, 'two workers listening')
  })
  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await database?.drop()
  })

  it('when started, then a primary runs two workers that share one port', () => {
    assert.equal(childPids(child.pid as number).length, 2)
    const ports = lines
      .filter((line) => /listening at/.test(String(line.message)))
      .map((line) => /:(\d+)$/.exec(String(line.message))?.[1])
    assert.deepEqual(new Set(ports), new Set([String(port)]))
  })

  it('when requests reach different workers, then /metrics counts all of them', async () => {
    const startTimes = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const answer = await getFresh(port, '/livez')
      assert.equal(answer.status, 200)
    }
    for (let i = 0; i < 10; i++)
      startTimes.add((await getFresh(port, '/metrics')).body.match(/^process_start_time_seconds\S* (\S+)/m)?.[1] ?? '')
    const scrape = (await getFresh(port, '/metrics')).body
    const counted = scrape
      .split('\n')
      .filter((line) => line.startsWith('http_request_duration_seconds_count{') && line.includes('route="/livez"'))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
    assert.equal(counted, 20)
    // process_start_time_seconds of the aggregate is one figure whichever worker answers the scrape.
    assert.equal(startTimes.size, 1)
  })

  it('when a worker is killed, then another takes its place and requests are still served', async () => {
    const [victim] = childPids(child.pid as number)
    process.kill(victim as number, 'SIGKILL')
    let replaced: number[] = []
    for (let i = 0; i < 100; i++) {
      replaced = childPids(child.pid as number)
      if (replaced.length === 2 && !replaced.includes(victim as number)) break
      await sleep(100)
    }
    assert.equal(replaced.length, 2)
    assert.ok(!replaced.includes(victim as number))
    assert.ok(lines.some((line) => line.message === 'worker died unexpectedly; starting another'))
    for (let i = 0; i < 300 && lines.filter((line) => /listening at/.test(String(line.message))).length < 3; i++) {
      await sleep(100)
    }
    for (let i = 0; i < 10; i++) assert.equal((await getFresh(port, '/v1/books')).status, 200)
  })

  it('when the primary gets SIGTERM, then every worker drains and the primary exits 0', async () => {
    const workers = childPids(child.pid as number)
    child.kill('SIGTERM')
    assert.equal(await exit, 0)
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), /ESRCH/)
  })
})
