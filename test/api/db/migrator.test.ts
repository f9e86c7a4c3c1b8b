// Migrations on both backends: up, down to zero, up again, status, failures, and the CLI. Replicas migrating at
// once, and the CLI on the PostgreSQL server, need that server: they are in test/system/db.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import {
  createMigrationFile,
  createMigrator,
  listMigrationFiles,
  MigrationError,
  parseMigration,
} from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { migrate } from '../../helpers/migrate-command.ts'
import { createServerDatabase, type ServerDatabase } from '../../helpers/postgres-server.ts'
import { BACKENDS, type Backend, skipReason } from '../../helpers/service.ts'

const FIRST = '00001_create_books.sql'
const ALL = listMigrationFiles().map((file) => file.name)
const LAST = ALL.at(-1) as string
const LATEST_VERSION = listMigrationFiles().at(-1)?.version as number

async function open(
  backend: Backend,
): Promise<{ database: Database; server?: ServerDatabase; close(): Promise<void> }> {
  const server = backend === 'postgres' ? await createServerDatabase() : undefined
  const config = parseConfig(server ? { DATABASE_URL: server.url } : { DB_EMBEDDED_PATH: 'memory://' })
  const database = await openDatabase(config.database, createLogger('silent'))
  return {
    database,
    server,
    async close() {
      await database.close()
      await server?.drop()
    },
  }
}

async function tableExists(database: Database, name: string): Promise<boolean> {
  const [row] = await database.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [name])
  return row?.exists === true
}

function migrationsFolder(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-migrations-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text)
  return folder
}

describe('parseMigration', () => {
  it('when a goose file has both parts, then each part is its SQL', () => {
    assert.deepEqual(
      parseMigration(
        '-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE a ();\n-- +goose StatementEnd\n-- +goose Down\nDROP TABLE a;\n',
      ),
      { up: 'CREATE TABLE a ();', down: 'DROP TABLE a;', transactional: true },
    )
  })

  it('when marked NO TRANSACTION, then it runs outside a transaction', () => {
    const parsed = parseMigration('-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON a (b);\n')
    assert.equal(parsed.transactional, false)
    assert.equal(parsed.down, '')
  })

  it('when the Up part is missing or after Down, then a clear error names the file', () => {
    assert.throws(() => parseMigration('CREATE TABLE a ();', '00009_x.sql'), /00009_x.sql: missing "-- \+goose Up"/)
    assert.throws(() => parseMigration('-- +goose Down\n-- +goose Up\n', 'f.sql'), /must follow/)
  })
})

describe('migration files', () => {
  it('when listed, then the repository migrations are ordered by version', () => {
    const files = listMigrationFiles()
    assert.equal(files[0]?.name, FIRST)
    assert.deepEqual(
      files.map((file) => file.version),
      [...files.map((file) => file.version)].sort((a, b) => a - b),
    )
  })

  it('when a file name does not follow NNNNN_name.sql, then listing fails with its name', () => {
    assert.throws(() => listMigrationFiles(migrationsFolder({ 'create books.sql': '' })), MigrationError)
  })

  it('when create is asked for, then the next numbered goose file is written', () => {
    const folder = migrationsFolder({ '00001_a.sql': '-- +goose Up\n', '00007_b.sql': '-- +goose Up\n' })
    const path = createMigrationFile('Add ISBN to books!', folder)
    assert.equal(path, join(folder, '00008_add_isbn_to_books.sql'))
    assert.deepEqual(parseMigration(readFileSync(path, 'utf8')), { up: '', down: '', transactional: true })
    assert.throws(() => createMigrationFile('!!!', folder), /letters or digits/)
  })
})

for (const backend of BACKENDS) {
  describe(`migrating the ${backend} database`, { skip: await skipReason(backend) }, () => {
    let subject: Awaited<ReturnType<typeof open>>
    before(async () => {
      subject = await open(backend)
    })
    after(() => subject?.close())

    it('when run up, down to zero and up again, then the schema follows and status tells', async () => {
      const migrator = createMigrator(subject.database)
      assert.deepEqual(await migrator.pending(), ALL)
      assert.deepEqual(
        (await migrator.status()).map((m) => [m.name, m.appliedAt]),
        ALL.map((name) => [name, undefined]),
      )

      assert.deepEqual(await migrator.up(), ALL)
      assert.equal(await migrator.version(), LATEST_VERSION)
      assert.ok(await tableExists(subject.database, 'books'))
      const [status] = await migrator.status()
      assert.ok(status?.appliedAt instanceof Date && Date.now() - status.appliedAt.getTime() < 60_000)
      assert.deepEqual(await migrator.up(), [], 'a second up has nothing to do')
      assert.deepEqual(await migrator.pending(), [])

      assert.deepEqual(await migrator.down(), [LAST], 'down rolls back the latest only')
      assert.equal(await migrator.version(), LATEST_VERSION - 1)
      assert.deepEqual(await migrator.reset(), ALL.slice(0, -1).reverse())
      assert.equal(await migrator.version(), 0)
      assert.equal(await tableExists(subject.database, 'books'), false)
      assert.deepEqual(await migrator.down(), [], 'nothing left to roll back')

      assert.deepEqual(await migrator.up(), ALL)
      assert.deepEqual(await migrator.redo(), [LAST])
      assert.equal(await migrator.version(), LATEST_VERSION)
      assert.deepEqual(await migrator.reset(), [...ALL].reverse())
      assert.equal(await migrator.version(), 0)
      assert.equal(await tableExists(subject.database, 'books'), false)
    })

    it('when a migration fails, then earlier ones stay applied and the failed one leaves no trace', async () => {
      const folder = migrationsFolder({
        '00001_one.sql': '-- +goose Up\nCREATE TABLE one (id int);\n-- +goose Down\nDROP TABLE one;\n',
        '00002_two.sql':
          '-- +goose Up\nCREATE TABLE two (id int);\nSELECT no_such_function();\n-- +goose Down\nDROP TABLE two;\n',
      })
      const migrator = createMigrator(subject.database, folder)
      await assert.rejects(migrator.up(), /no_such_function/)
      assert.equal(await migrator.version(), 1)
      assert.ok(await tableExists(subject.database, 'one'))
      assert.equal(await tableExists(subject.database, 'two'), false)
      await migrator.reset()
      assert.equal(await tableExists(subject.database, 'one'), false)
    })
  })
}

describe('the migrate command', () => {
  it('when run with no command, then it prints usage and exits 2', async () => {
    const result = await migrate([], {})
    assert.equal(result.code, 2)
    assert.match(result.stdout, /Usage: npm run migrate -- <command>/)
  })

  it('when the command is unknown, then it exits 2 naming it', async () => {
    const result = await migrate(['sideways'], {})
    assert.equal(result.code, 2)
    assert.match(result.stderr, /unknown command or arguments: sideways/)
  })

  it('when the database cannot be reached, then it exits 1 with a clear message', async () => {
    const result = await migrate(['up'], {
      DATABASE_URL: 'postgres://nobody:pw@127.0.0.1:1/none',
      DB_CONNECT_TIMEOUT: '1s',
    })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /^migrate: .*ECONNREFUSED/m)
    assert.doesNotMatch(result.stderr, /pw@/)
  })

  it('when the configuration is bad, then it exits 1 naming the variable', async () => {
    const result = await migrate(['status'], { DB_PORT: 'five' })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /DB_PORT: must be an integer/)
  })

  it('when run on the embedded database, then up, status and version report the schema', async () => {
    const env = { DB_EMBEDDED_PATH: mkdtempSync(join(tmpdir(), 'myapp-pglite-')) }
    const up = await migrate(['up'], env)
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stdout, new RegExp(`^OK\\s+${FIRST}$`, 'm'))
    const status = await migrate(['status'], env)
    assert.match(status.stdout, new RegExp(`^\\s+\\d{4}-\\d{2}-\\d{2}T[^ ]+Z\\s+${FIRST}$`, 'm'))
    assert.match((await migrate(['version'], env)).stdout, new RegExp(`^version ${LATEST_VERSION}$`, 'm'))
  })
})
