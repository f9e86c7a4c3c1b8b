// migrate up on a database the Go service made and migrated with goose: taken over with every row, or refused.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { createMigrator, type GooseTakeover, listMigrationFiles, MigrationError } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { createServerDatabase } from '../../helpers/postgres-server.ts'
import { BACKENDS, type Backend, bodyOf, jsonRequest, skipReason, startService } from '../../helpers/service.ts'

const run = promisify(execFile)
const MIGRATE = new URL('../../../src/migrate.ts', import.meta.url).pathname
const FIRST = '00001_create_books.sql'
const ALL = listMigrationFiles().map((file) => file.name)
const LATEST_VERSION = listMigrationFiles().at(-1)?.version as number

interface GoBook {
  id: string
  title: string
  author: string
  published_date: string
  image_url: string | null
  description: string | null
  created_at: string
  updated_at: string
}

// UUID v4 ids, as the Go service makes them; one row with every optional field null, one with both set.
const GO_BOOKS: GoBook[] = [
  {
    id: randomUUID(),
    title: 'The Hobbit',
    author: 'J. R. R. Tolkien',
    published_date: '1937-09-21',
    image_url: null,
    description: null,
    created_at: '2023-01-02T03:04:05.678Z',
    updated_at: '2023-01-02T03:04:05.678Z',
  },
  {
    id: randomUUID(),
    title: 'Cien años de soledad',
    author: 'Gabriel García Márquez',
    published_date: '1967-05-30',
    image_url: 'https://covers.example.org/cien-anos.jpg',
    description: 'Seven generations of the Buendía family in Macondo.',
    created_at: '2023-01-03T10:00:00.000Z',
    updated_at: '2023-02-14T08:30:00.250Z',
  },
  {
    id: randomUUID(),
    title: 'Things Fall Apart',
    author: 'Chinua Achebe',
    published_date: '1958-06-17',
    image_url: null,
    description: 'Okonkwo and the village of Umuofia.',
    created_at: '2023-01-04T12:00:00.000Z',
    updated_at: '2023-01-04T12:00:00.000Z',
  },
]

/** A fresh, empty database of the backend, reachable again after it is closed (the service opens its own). */
interface FreshDatabase {
  env: Record<string, string>
  open(): Promise<Database>
  drop(): Promise<void>
}

async function freshDatabase(backend: Backend): Promise<FreshDatabase> {
  const server = backend === 'postgres' ? await createServerDatabase() : undefined
  const folder = server ? undefined : mkdtempSync(join(tmpdir(), 'myapp-goose-'))
  const env: Record<string, string> = server ? { DATABASE_URL: server.url } : { DB_EMBEDDED_PATH: folder as string }
  return {
    env,
    open: () => openDatabase(parseConfig(env).database, createLogger('silent')),
    async drop() {
      await server?.drop()
      if (folder !== undefined) rmSync(folder, { recursive: true, force: true })
    },
  }
}

/** Runs `work` on a fresh database, closed and dropped afterwards. */
async function onFreshDatabase(backend: Backend, work: (database: Database, fresh: FreshDatabase) => Promise<void>) {
  const fresh = await freshDatabase(backend)
  const database = await fresh.open()
  try {
    await work(database, fresh)
  } finally {
    await database.close()
    await fresh.drop()
  }
}

const GO_BOOKS_TABLE = `CREATE TABLE books (
  id             uuid        PRIMARY KEY,
  title          text        NOT NULL,
  author         text        NOT NULL,
  published_date date        NOT NULL,
  image_url      text        NULL,
  description    text        NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
)`

/**
 * What the Go service leaves: goose's version table (with the version 0 row goose writes when it creates the
 * table, then one row per step, `[version, applied]`) and its books table holding `books`.
 */
async function makeGoDatabase(
  database: Database,
  { steps = [[1, true]], books = GO_BOOKS }: { steps?: [number, boolean][]; books?: GoBook[] } = {},
): Promise<void> {
  await database.query(`CREATE TABLE goose_db_version (
    id         serial    NOT NULL,
    version_id bigint    NOT NULL,
    is_applied boolean   NOT NULL,
    tstamp     timestamp NULL DEFAULT now(),
    PRIMARY KEY (id)
  )`)
  for (const [version, applied] of [[0, true] as [number, boolean], ...steps]) {
    await database.query('INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, $2)', [version, applied])
  }
  await makeGoBooks(database, books)
}

async function makeGoBooks(database: Database, books = GO_BOOKS): Promise<void> {
  await database.query(GO_BOOKS_TABLE)
  for (const book of books) {
    await database.query(
      `INSERT INTO books (id, title, author, published_date, image_url, description, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        book.id,
        book.title,
        book.author,
        book.published_date,
        book.image_url,
        book.description,
        book.created_at,
        book.updated_at,
      ],
    )
  }
}

interface StoredRow extends GoBook {
  status: string
  version: number
}

async function storedBooks(database: Database): Promise<StoredRow[]> {
  const rows = await database.query<
    Omit<StoredRow, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date }
  >(
    `SELECT id, title, author, published_date, image_url, description, created_at, updated_at, status::text, version
     FROM books ORDER BY created_at, id`,
  )
  return rows.map((row) => ({
    ...row,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  }))
}

/** The book as the API answers for a Go row that has just been taken over. */
/** A Go row as the API shows it: pending, with no creator, its instants to the microsecond. */
const asApiBook = (book: GoBook) => ({
  ...book,
  status: 'pending',
  created_by: null,
  created_at: book.created_at.replace(/Z$/, '000Z'),
  updated_at: book.updated_at.replace(/Z$/, '000Z'),
})

async function tableExists(database: Database, name: string): Promise<boolean> {
  const [row] = await database.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [name])
  return row?.exists === true
}

/** Everything a refused run must leave as it found: tables and their columns, types, extensions and rows. */
async function snapshot(database: Database) {
  return {
    columns: await database.query(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
       WHERE table_schema = current_schema() ORDER BY table_name, column_name`,
    ),
    types: await database.query(
      "SELECT typname FROM pg_type WHERE typnamespace = to_regnamespace(current_schema()) AND typtype = 'e'",
    ),
    extensions: await database.query('SELECT extname FROM pg_extension ORDER BY extname'),
    goose: (await tableExists(database, 'goose_db_version'))
      ? await database.query('SELECT id, version_id::text, is_applied FROM goose_db_version ORDER BY id')
      : undefined,
    books: await database.query('SELECT id::text FROM books ORDER BY id'),
  }
}

/** The books table's definition, to compare a taken-over database with one migrated from empty. */
async function booksSchema(database: Database) {
  return {
    columns: await database.query(
      `SELECT column_name, data_type, udt_name, is_nullable, column_default FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = 'books' ORDER BY column_name`,
    ),
    // A check added NOT VALID reads the same but for that suffix; whether it is validated is asserted apart.
    constraints: (
      await database.query<{ name: string; definition: string }>(
        `SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
         WHERE conrelid = 'books'::regclass ORDER BY conname`,
      )
    ).map((row) => ({ ...row, definition: row.definition.replace(/ NOT VALID$/, '') })),
    indexes: await database.query(
      "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'books' ORDER BY indexname",
    ),
    statuses: await database.query('SELECT enum_range(NULL::book_status)::text AS labels'),
    extensions: await database.query("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'"),
  }
}

for (const backend of BACKENDS) {
  describe(`taking over the Go service's ${backend} database`, { skip: await skipReason(backend) }, () => {
    it('when goose is at version 1, then up keeps every row as a pending book at version 1 and applies the rest', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database)
        const gooseBefore = await database.query('SELECT * FROM goose_db_version ORDER BY id')
        const migrator = createMigrator(database)
        assert.deepEqual(await migrator.pending(), ALL)

        const takeovers: GooseTakeover[] = []
        const applied = await migrator.up({ onGooseTakeover: (takeover) => takeovers.push(takeover) })

        assert.deepEqual(takeovers, [{ gooseVersion: 1, script: `goose-takeover/${FIRST}`, recorded: [FIRST] }])
        assert.deepEqual(applied, ALL.slice(1), 'every migration after 00001 is applied as usual')
        assert.equal(await migrator.version(), LATEST_VERSION)
        assert.deepEqual(
          await storedBooks(database),
          GO_BOOKS.map((book) => ({ ...book, status: 'pending', version: 1 })),
        )
        assert.deepEqual(
          await database.query('SELECT * FROM goose_db_version ORDER BY id'),
          gooseBefore,
          'goose_db_version is left as it was',
        )
        const status = await migrator.status()
        assert.deepEqual(
          status.map((migration) => [migration.name, migration.appliedAt instanceof Date]),
          ALL.map((name) => [name, true]),
        )
      })
    })

    it('when taken over, then the books table is the one up makes on an empty database, checks not yet validated', async () => {
      await onFreshDatabase(backend, async (takenOver) => {
        await makeGoDatabase(takenOver)
        await createMigrator(takenOver).up()
        await onFreshDatabase(backend, async (fromEmpty) => {
          await createMigrator(fromEmpty).up()
          assert.deepEqual(await booksSchema(takenOver), await booksSchema(fromEmpty))
        })
        const unvalidated = await takenOver.query<{ name: string }>(
          "SELECT conname AS name FROM pg_constraint WHERE conrelid = 'books'::regclass AND NOT convalidated ORDER BY conname",
        )
        assert.deepEqual(
          unvalidated.map((row) => row.name),
          ['books_author_check', 'books_description_check', 'books_image_url_check', 'books_title_check'],
        )
      })
    })

    it('when a Go row breaks one of our checks, then it is kept and new writes are still checked', async () => {
      const rogue: GoBook = {
        ...(GO_BOOKS[0] as GoBook),
        id: randomUUID(),
        title: '',
        author: 'A'.repeat(300),
        description: 'd'.repeat(6000),
      }
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database, { books: [...GO_BOOKS, rogue] })
        await createMigrator(database).up()
        const stored = await storedBooks(database)
        assert.equal(stored.length, GO_BOOKS.length + 1)
        assert.deepEqual(
          stored.find((row) => row.id === rogue.id),
          { ...rogue, status: 'pending', version: 1 },
        )
        await assert.rejects(
          database.query(
            `INSERT INTO books (id, title, author, published_date, created_at, updated_at)
             VALUES ($1, '', 'Someone', '2001-01-01', now(), now())`,
            [randomUUID()],
          ),
          { code: '23514' },
        )
      })
    })

    it('when the service starts on a taken-over database, then each Go row reads, lists and updates over HTTP', async () => {
      const fresh = await freshDatabase(backend)
      try {
        const database = await fresh.open()
        try {
          await makeGoDatabase(database)
          await createMigrator(database).up()
        } finally {
          await database.close()
        }

        const service = await startService(backend, fresh.env)
        try {
          for (const book of GO_BOOKS) {
            const response = await service.fetch(`/v1/books/${book.id}`)
            assert.equal(response.status, 200)
            assert.equal(response.headers.get('etag'), '"1"')
            assert.deepEqual(await bodyOf(response), asApiBook(book))
          }

          const list = await service.fetch('/v1/books?sort=created_at')
          assert.equal(list.status, 200)
          assert.deepEqual(await bodyOf(list), GO_BOOKS.map(asApiBook))
          const byAuthor = await service.fetch('/v1/books?author=chinua%20achebe&status=pending')
          assert.deepEqual(await bodyOf(byAuthor), [asApiBook(GO_BOOKS[2] as GoBook)])
          const byTitle = await service.fetch(`/v1/books?q=${encodeURIComponent('AÑOS')}`)
          assert.deepEqual(await bodyOf(byTitle), [asApiBook(GO_BOOKS[1] as GoBook)])

          const target = GO_BOOKS[1] as GoBook
          const replacement = {
            title: 'One Hundred Years of Solitude',
            author: target.author,
            published_date: target.published_date,
            status: 'verified',
            image_url: target.image_url,
            description: target.description,
          }
          const put = await service.fetch(
            `/v1/books/${target.id}`,
            jsonRequest('PUT', replacement, { 'if-match': '"1"' }),
          )
          assert.equal(put.status, 200)
          assert.equal(put.headers.get('etag'), '"2"')
          const updated = await bodyOf(put)
          assert.deepEqual(
            { ...updated, updated_at: undefined },
            { ...asApiBook(target), ...replacement, updated_at: undefined },
          )
          assert.ok(Date.parse(updated.updated_at) > Date.parse(target.updated_at), 'updated_at moves')
          assert.deepEqual(await bodyOf(await service.fetch(`/v1/books/${target.id}`)), updated)
        } finally {
          await service.close()
        }
      } finally {
        await fresh.drop()
      }
    })

    it('when up runs again after a takeover, then it changes nothing and takes nothing over', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database)
        const migrator = createMigrator(database)
        await migrator.up()
        const before = await snapshot(database)
        const recordedBefore = await database.query('SELECT * FROM schema_migrations ORDER BY version')

        const takeovers: GooseTakeover[] = []
        assert.deepEqual(await migrator.up({ onGooseTakeover: (takeover) => takeovers.push(takeover) }), [])
        assert.deepEqual(takeovers, [])
        assert.deepEqual(await snapshot(database), before)
        assert.deepEqual(await database.query('SELECT * FROM schema_migrations ORDER BY version'), recordedBefore)
        assert.deepEqual(await migrator.pending(), [])
      })
    })

    it('when goose rolled a later version back, then the database counts as version 1 and is taken over', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database, {
          steps: [
            [1, true],
            [2, true],
            [2, false],
          ],
        })
        const takeovers: GooseTakeover[] = []
        await createMigrator(database).up({ onGooseTakeover: (takeover) => takeovers.push(takeover) })
        assert.deepEqual(
          takeovers.map((takeover) => takeover.gooseVersion),
          [1],
        )
        assert.equal((await storedBooks(database)).length, GO_BOOKS.length)
      })
    })

    it('when goose is above version 1, then up refuses naming the version and changes nothing', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database, {
          steps: [
            [1, true],
            [2, true],
            [3, true],
          ],
        })
        const before = await snapshot(database)
        await assert.rejects(
          createMigrator(database).up(),
          (error: unknown) =>
            error instanceof MigrationError &&
            /goose_db_version at version 3/.test(error.message) &&
            /can take over only goose version 1\b/.test(error.message) &&
            /Nothing was changed/.test(error.message),
        )
        assert.deepEqual(await snapshot(database), before)
        assert.equal(await tableExists(database, 'schema_migrations'), false, 'not even schema_migrations is created')
      })
    })

    it('when books exists with no migration record at all, then up refuses naming the table and changes nothing', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoBooks(database)
        const before = await snapshot(database)
        await assert.rejects(
          createMigrator(database).up(),
          (error: unknown) =>
            error instanceof MigrationError &&
            /found that relation "books" already exists, but no migration record/.test(error.message) &&
            /schema_migrations records nothing, and goose_db_version is at no version it can take over/.test(
              error.message,
            ) &&
            /Nothing was changed/.test(error.message),
        )
        assert.deepEqual(await snapshot(database), before)
        assert.equal(await tableExists(database, 'schema_migrations'), false, 'not even schema_migrations is created')
      })
    })

    it('when goose has no version applied but books exists, then up refuses and changes nothing', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database, { steps: [] })
        const before = await snapshot(database)
        await assert.rejects(
          createMigrator(database).up(),
          (error: unknown) =>
            error instanceof MigrationError &&
            /found that relation "books" already exists, but no migration record/.test(error.message) &&
            /goose_db_version is at no version it can take over/.test(error.message),
        )
        assert.deepEqual(await snapshot(database), before)
      })
    })

    it('when the takeover script fails, then nothing is changed and the error says which step failed', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database, { books: [] })
        // Not the Go service's table: the takeover's index on published_date cannot be built.
        await database.query('ALTER TABLE books DROP COLUMN published_date')
        const before = await snapshot(database)
        await assert.rejects(
          createMigrator(database).up(),
          (error: unknown) =>
            error instanceof MigrationError &&
            error.message.startsWith(`taking over goose version 1 with goose-takeover/${FIRST} failed`) &&
            /published_date/.test(error.message) &&
            error.cause instanceof Error,
        )
        assert.deepEqual(await snapshot(database), before)
      })
    })

    it('when a taken-over database is reset, then up builds the schema from empty', async () => {
      await onFreshDatabase(backend, async (database) => {
        await makeGoDatabase(database)
        const migrator = createMigrator(database)
        await migrator.up()
        assert.deepEqual(await migrator.reset(), [...ALL].reverse())
        const takeovers: GooseTakeover[] = []
        assert.deepEqual(await migrator.up({ onGooseTakeover: (takeover) => takeovers.push(takeover) }), ALL)
        assert.deepEqual(takeovers, [])
        assert.deepEqual(await storedBooks(database), [])
      })
    })

    it('when migrate up takes a Go database over, then it says so; run again, it has nothing to do', async () => {
      const fresh = await freshDatabase(backend)
      try {
        const database = await fresh.open()
        try {
          await makeGoDatabase(database)
        } finally {
          await database.close()
        }
        const migrate = (command: string) =>
          run(process.execPath, [MIGRATE, command], {
            env: { PATH: process.env.PATH, ...fresh.env },
            timeout: 30_000,
          })

        const first = await migrate('up')
        assert.match(
          first.stdout,
          new RegExp(`^Taken over\\s+${FIRST} from the Go service's goose schema \\(version 1\\)$`, 'm'),
        )
        for (const name of ALL.slice(1)) assert.match(first.stdout, new RegExp(`^OK\\s+${name}$`, 'm'))
        assert.match(first.stdout, new RegExp(`^now at version ${LATEST_VERSION}$`, 'm'))

        const second = await migrate('up')
        assert.equal(second.stdout.trim(), `no change; version ${LATEST_VERSION}`)
        const status = await migrate('status')
        assert.match(status.stdout, new RegExp(`^\\s+\\d{4}-\\d{2}-\\d{2}T[^ ]+Z\\s+${FIRST}$`, 'm'))
      } finally {
        await fresh.drop()
      }
    })

    it('when migrate up is refused, then it exits 1 with the reason', async () => {
      const fresh = await freshDatabase(backend)
      try {
        const database = await fresh.open()
        try {
          await makeGoDatabase(database, {
            steps: [
              [1, true],
              [2, true],
            ],
          })
        } finally {
          await database.close()
        }
        const result = await run(process.execPath, [MIGRATE, 'up'], {
          env: { PATH: process.env.PATH, ...fresh.env },
          timeout: 30_000,
        }).then(
          () => ({ code: 0, stderr: '' }),
          (error: { code: number; stderr: string }) => error,
        )
        assert.equal(result.code, 1)
        assert.match(result.stderr, /^migrate: MigrationError: migrate up found goose_db_version at version 2/m)
      } finally {
        await fresh.drop()
      }
    })
  })
}
