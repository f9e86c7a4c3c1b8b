// Fault: a rolling restart. Two instances behind Debian's nginx under steady load; one gets SIGTERM. Not one
// request may fail, and the stopped instance must exit 0 within its grace period.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseConfig } from '../../../src/config/config.ts'
import { createMigrator } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { nginxMissing, type RunningNginx, startNginx } from '../../helpers/nginx.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from '../../helpers/postgres-server.ts'
import { jsonRequest } from '../../helpers/service.ts'
import { freePort } from '../../helpers/tools.ts'

const SERVER = new URL('../../../src/server.ts', import.meta.url).pathname
const skip = nginxMissing() || (await postgresServerUnavailable()) || false

async function startInstance(
  port: number,
  databaseUrl: string,
): Promise<{ child: ChildProcess; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: String(port),
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '0',
      SERVER_SHUTDOWN_DELAY: '1s',
      SERVER_SHUTDOWN_TIMEOUT: '10s',
    },
    stdio: 'ignore',
  })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (response) => response.ok,
        () => false,
      )
    )
      return { child, exit }
    await sleep(100)
  }
  throw new Error(`instance on ${port} did not become ready`)
}

describe('a rolling restart behind nginx', { skip }, () => {
  let database: ServerDatabase
  let nginx: RunningNginx
  let proxy: string
  const instances: { child: ChildProcess; exit: Promise<number | null> }[] = []
  before(async () => {
    database = await createServerDatabase()
    const migrations = await openDatabase(parseConfig({ DATABASE_URL: database.url }).database, createLogger('silent'))
    await createMigrator(migrations).up()
    await migrations.close()
    const [a, b, p] = [await freePort(), await freePort(), await freePort()]
    instances.push(await startInstance(a, database.url), await startInstance(b, database.url))
    proxy = `http://127.0.0.1:${p}`
    nginx = await startNginx(
      `  upstream myapp {
    server 127.0.0.1:${a} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${b} max_fails=1 fail_timeout=5s;
  }
  server {
    listen 127.0.0.1:${p};
    location / {
      proxy_pass http://myapp;
      proxy_connect_timeout 1s;
      # A draining instance answers every request it has read and closes the connections it has not: a POST
      # that met a closed connection was never processed, so passing it on is safe.
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 2;
    }
  }`,
      `${proxy}/livez`,
    )
  })
  after(async () => {
    await nginx?.stop()
    for (const instance of instances) instance.child.kill('SIGKILL')
    await sleep(200)
    await database?.drop()
  })

  it('when one instance gets SIGTERM under steady load, then no request fails and it exits 0 within the grace period', async (t) => {
    const outcomes = new Map<string, number>()
    const record = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    const worker = async (n: number) => {
      // Bounded: 8 workers for 8 s.
      const until = performance.now() + 8000
      for (let i = 0; performance.now() < until; i++) {
        const response =
          i % 4 === 0
            ? await fetch(
                `${proxy}/v1/books`,
                jsonRequest('POST', { title: `Rolling ${n}.${i}`, author: 'Ann Author', published_date: '2000-01-01' }),
              ).catch(() => undefined)
            : await fetch(`${proxy}/v1/books?pageSize=5`).catch(() => undefined)
        if (response === undefined) record('transport error')
        else {
          await response.arrayBuffer()
          record(String(response.status))
        }
      }
    }
    const load = Promise.all(Array.from({ length: 8 }, (_, n) => worker(n)))
    await sleep(2000)
    const victim = instances[0] as (typeof instances)[number]
    const signalledAt = performance.now()
    victim.child.kill('SIGTERM')
    const code = await victim.exit
    const stopExit = { code, ms: performance.now() - signalledAt }
    await load
    t.diagnostic(
      `outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; stopped instance exited ${stopExit.code} after ${stopExit.ms.toFixed(0)} ms`,
    )
    assert.deepEqual(
      [...outcomes.keys()].filter((outcome) => !['200', '201'].includes(outcome)),
      [],
      'every request succeeded',
    )
    assert.ok((outcomes.get('200') ?? 0) + (outcomes.get('201') ?? 0) > 200)
    assert.equal(stopExit.code, 0)
    assert.ok(stopExit.ms < 12_000, 'within SERVER_SHUTDOWN_DELAY + SERVER_SHUTDOWN_TIMEOUT')
  })
})
