// The service through Debian's PgBouncer in transaction mode, as in the Kubernetes deployment (CloudNativePG Pooler).
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import type { App } from '../../../src/app.ts'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { createMigrator } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { createMetrics } from '../../../src/observability/metrics.ts'
import { createService } from '../../../src/service.ts'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from '../../helpers/postgres-server.ts'
import { bodyOf, jsonRequest } from '../../helpers/service.ts'
import { freePort, programMissing } from '../../helpers/tools.ts'

const PGBOUNCER = '/usr/sbin/pgbouncer'
const skip = programMissing(PGBOUNCER, 'apt-get install pgbouncer') || (await postgresServerUnavailable()) || false

describe('through PgBouncer in transaction mode', { skip }, () => {
  let server: ServerDatabase
  let bouncer: ChildProcess
  let database: Database
  let app: App
  let base: string

  before(async () => {
    server = await createServerDatabase()
    // Migrations take a session-level advisory lock: they talk to PostgreSQL directly, never through the pooler.
    const direct = await openDatabase(parseConfig({ DATABASE_URL: server.url }).database, createLogger('silent'))
    await createMigrator(direct).up()
    await direct.close()

    const folder = mkdtempSync(join(tmpdir(), 'myapp-pgbouncer-'))
    // Writable by the postgres user PgBouncer switches to, for its log file.
    chmodSync(folder, 0o777)
    const port = await freePort()
    writeFileSync(join(folder, 'users.txt'), '"postgres" ""\n')
    writeFileSync(
      join(folder, 'pgbouncer.ini'),
      [
        '[databases]',
        `${server.name} = host=127.0.0.1 port=5432 dbname=${server.name}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${join(folder, 'users.txt')}`,
        'pool_mode = transaction',
        'default_pool_size = 3',
        'max_client_conn = 200',
        `logfile = ${join(folder, 'pgbouncer.log')}`,
        '',
      ].join('\n'),
    )
    // PgBouncer refuses to run as root; -u drops to the postgres user.
    bouncer = spawn(PGBOUNCER, ['-u', 'postgres', join(folder, 'pgbouncer.ini')], { stdio: 'inherit' })
    const url = `postgres://postgres@127.0.0.1:${port}/${server.name}`
    for (let attempt = 0; attempt < 50; attempt++) {
      const probe = postgres(url, { max: 1, connect_timeout: 1, prepare: false, onnotice: () => {} })
      const up = await probe`SELECT 1`.then(
        () => true,
        () => false,
      )
      await probe.end()
      if (up) break
      await sleep(100)
    }

    const config = parseConfig({
      DATABASE_URL: url,
      DB_PREPARED_STATEMENTS: 'false',
      DB_STATEMENT_TIMEOUT: '0',
      DB_POOL_MAX: '20',
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '0',
    })
    const logger = createLogger('silent')
    const metrics = createMetrics()
    database = await openDatabase(config.database, logger, { metrics })
    app = (await createService({ config, database, logger, metrics })).app
    await app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  })
  after(async () => {
    await app?.close()
    await database?.close()
    bouncer?.kill('SIGTERM')
    await sleep(200)
    await server?.drop()
  })

  it('when 60 books are created at once over 20 client and 3 server connections, then every call succeeds', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        fetch(
          `${base}/v1/books`,
          jsonRequest('POST', { title: `Pooled ${i}`, author: 'Ann Leckie', published_date: '2013-10-01' }),
        ),
      ),
    )
    const failures = await Promise.all(
      results.filter((response) => response.status !== 201).map(async (response) => await response.text()),
    )
    assert.deepEqual(failures, [])
    const list = await fetch(`${base}/v1/books?pageSize=100&author=ann%20leckie`, {
      headers: { prefer: 'count=exact' },
    })
    assert.equal(list.headers.get('x-total-count'), '60')
  })

  it('when a book is read, updated, listed and deleted, then each answer is right', async () => {
    const created = await bodyOf(
      await fetch(
        `${base}/v1/books`,
        jsonRequest('POST', { title: 'Ancillary Justice', author: 'Ann Leckie', published_date: '2013-10-01' }),
      ),
    )
    assert.equal((await bodyOf(await fetch(`${base}/v1/books/${created.id}`))).title, 'Ancillary Justice')
    const updated = await fetch(
      `${base}/v1/books/${created.id}`,
      jsonRequest('PUT', {
        title: 'Ancillary Justice',
        author: 'Ann Leckie',
        published_date: '2013-10-01',
        status: 'verified',
      }),
    )
    assert.equal((await bodyOf(updated)).status, 'verified')
    assert.equal(
      (await fetch(`${base}/v1/books?status=verified`, { headers: { prefer: 'count=exact' } })).headers.get(
        'x-total-count',
      ),
      '1',
    )
    assert.equal((await fetch(`${base}/v1/books/${created.id}`, { method: 'DELETE' })).status, 204)
    assert.equal((await fetch(`${base}/readyz`)).status, 200)
  })
})
