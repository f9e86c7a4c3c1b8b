// Migrations on the PostgreSQL server: replicas that run up at once apply the set once between them (the embedded
// database has a single process), and the migrate command reports pending, up and down on the server.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { parseConfig } from '../../../src/config/config.ts'
import { createMigrator, listMigrationFiles } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { migrate } from '../../helpers/migrate-command.ts'
import { createServerDatabase } from '../../helpers/postgres-server.ts'
import { skipReason } from '../../helpers/service.ts'

const FIRST = '00001_create_books.sql'
const ALL = listMigrationFiles().map((file) => file.name)
const LAST = ALL.at(-1) as string
const LATEST_VERSION = listMigrationFiles().at(-1)?.version as number

describe('concurrent migrations on the PostgreSQL server', { skip: await skipReason('postgres') }, () => {
  it('when two replicas run up at once, then one applies the set and the other finds nothing to do', async () => {
    const server = await createServerDatabase()
    const config = parseConfig({ DATABASE_URL: server.url })
    const [a, b] = await Promise.all([
      openDatabase(config.database, createLogger('silent')),
      openDatabase(config.database, createLogger('silent')),
    ])
    try {
      const results = await Promise.all([createMigrator(a).up(), createMigrator(b).up()])
      assert.deepEqual(results.map((names) => names.length).sort(), [0, listMigrationFiles().length])
      const rows = await a.query<{ version: string }>('SELECT version::text FROM schema_migrations')
      assert.equal(rows.length, listMigrationFiles().length)
    } finally {
      await Promise.all([a.close(), b.close()])
      await server.drop()
    }
  })
})

describe('the migrate command on the PostgreSQL server', { skip: await skipReason('postgres') }, () => {
  it('when run on the PostgreSQL server, then status shows pending before up', async () => {
    const server = await createServerDatabase()
    try {
      const env = { DATABASE_URL: server.url }
      assert.match((await migrate(['status'], env)).stdout, new RegExp(`Pending\\s+${FIRST}`))
      const up = await migrate(['up'], env)
      assert.equal(up.code, 0, up.stderr)
      assert.match(up.stdout, new RegExp(`now at version ${LATEST_VERSION}`))
      const down = await migrate(['down'], env)
      assert.match(down.stdout, new RegExp(`^Rolled back\\s+${LAST}$`, 'm'))
      assert.match((await migrate(['version'], env)).stdout, new RegExp(`^version ${LATEST_VERSION - 1}$`, 'm'))
    } finally {
      await server.drop()
    }
  })
})
