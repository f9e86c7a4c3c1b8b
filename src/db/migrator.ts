// Schema migrations: goose-style SQL files run by umzug, one advisory lock so replicas can start together.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type RunnableMigration, Umzug } from 'umzug'
import type { Database, Queryable, Session } from './database.ts'

// Two folders up, both from src/db/ and from the production build's dist/bin/ (scripts/build.ts).
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations/', import.meta.url))

// Any constant works; it only has to be the same in every replica.
const MIGRATION_LOCK_KEY = 470_062_067_824
const FILE_NAME = /^(\d+)_([a-z0-9_]+)\.sql$/

export class MigrationError extends Error {
  override name = 'MigrationError'
}

export interface MigrationFile {
  version: number
  name: string
  path: string
}

export interface MigrationStatus extends MigrationFile {
  appliedAt: Date | undefined
}

interface ParsedMigration {
  up: string
  down: string
  transactional: boolean
}

/** Splits a goose-format file into its `-- +goose Up` and `-- +goose Down` parts. */
export function parseMigration(text: string, fileName = 'migration'): ParsedMigration {
  const up = text.indexOf('-- +goose Up')
  const down = text.indexOf('-- +goose Down')
  if (up === -1) throw new MigrationError(`${fileName}: missing "-- +goose Up" section`)
  if (down !== -1 && down < up) throw new MigrationError(`${fileName}: "-- +goose Down" must follow "-- +goose Up"`)
  const strip = (sql: string) => sql.replace(/^-- \+goose (StatementBegin|StatementEnd)\s*$/gm, '').trim()
  return {
    up: strip(text.slice(up + '-- +goose Up'.length, down === -1 ? undefined : down)),
    down: down === -1 ? '' : strip(text.slice(down + '-- +goose Down'.length)),
    transactional: !/^-- \+goose NO TRANSACTION\s*$/m.test(text),
  }
}

export function listMigrationFiles(folder = MIGRATIONS_FOLDER): MigrationFile[] {
  const files: MigrationFile[] = []
  for (const name of readdirSync(folder).sort()) {
    if (!name.endsWith('.sql')) continue
    const match = FILE_NAME.exec(name)
    if (match === null) throw new MigrationError(`${name}: expected a name like 00001_create_books.sql`)
    files.push({ version: Number(match[1]), name, path: join(folder, name) })
  }
  const versions = new Set(files.map((file) => file.version))
  if (versions.size !== files.length) throw new MigrationError(`${folder}: two migrations share a version number`)
  return files
}

export interface Migrator {
  /** Applies every pending migration; returns the names applied. */
  up(): Promise<string[]>
  /** Rolls back the latest applied migration; returns its name, if any. */
  down(): Promise<string[]>
  /** Rolls back and re-applies the latest migration. */
  redo(): Promise<string[]>
  /** Rolls back every applied migration. */
  reset(): Promise<string[]>
  status(): Promise<MigrationStatus[]>
  /** The highest applied version, 0 when none. */
  version(): Promise<number>
  /** Names of the migrations not yet applied; takes no lock and creates nothing, for a start-up check. */
  pending(): Promise<string[]>
}

export function createMigrator(database: Database, folder = MIGRATIONS_FOLDER): Migrator {
  const run = <T>(work: (umzug: Umzug<Session>, session: Session) => Promise<T>) =>
    database.withSession(async (session) => {
      await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
      try {
        await session.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version    bigint      PRIMARY KEY,
          name       text        NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`)
        return await work(umzugFor(session, folder), session)
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      }
    })
  const names = (migrations: { name: string }[]) => migrations.map((migration) => migration.name)

  return {
    up: () => run(async (umzug) => names(await umzug.up())),
    down: () => run(async (umzug) => names(await umzug.down({ step: 1 }))),
    redo: () =>
      run(async (umzug) => {
        const reverted = await umzug.down({ step: 1 })
        return reverted.length === 0 ? [] : names(await umzug.up({ step: 1 }))
      }),
    reset: () => run(async (umzug) => names(await umzug.down({ to: 0 }))),
    status: () =>
      run(async (_umzug, session) => {
        const applied = await appliedMigrations(session)
        return listMigrationFiles(folder).map((file) => ({ ...file, appliedAt: applied.get(file.name) }))
      }),
    version: () =>
      run(async (_umzug, session) => {
        const [row] = await session.query<{ version: string | null }>(
          'SELECT max(version)::text AS version FROM schema_migrations',
        )
        return Number(row?.version ?? 0)
      }),
    async pending() {
      const [row] = await database.query<{ exists: boolean }>(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
      )
      const applied = row?.exists ? await appliedMigrations(database) : new Map()
      return listMigrationFiles(folder)
        .filter((file) => !applied.has(file.name))
        .map((file) => file.name)
    },
  }
}

async function appliedMigrations(session: Queryable): Promise<Map<string, Date>> {
  const rows = await session.query<{ name: string; applied_at: Date }>(
    'SELECT name, applied_at FROM schema_migrations ORDER BY version',
  )
  return new Map(rows.map((row) => [row.name, new Date(row.applied_at)]))
}

function umzugFor(session: Session, folder: string): Umzug<Session> {
  return new Umzug<Session>({
    context: session,
    logger: undefined,
    migrations: listMigrationFiles(folder).map((file) => toRunnable(file)),
    // The version row is written by the migration itself, inside its own transaction, so a crash can
    // never leave a schema change without its record; umzug only reads what has been applied.
    storage: {
      executed: async ({ context }) => [...(await appliedMigrations(context)).keys()],
      logMigration: async () => {},
      unlogMigration: async () => {},
    },
  })
}

function toRunnable(file: MigrationFile): RunnableMigration<Session> {
  const load = () => parseMigration(readFileSync(file.path, 'utf8'), file.name)
  const apply = async (session: Session, script: string, record: () => Promise<unknown>, transactional: boolean) => {
    if (!transactional) {
      await session.exec(script)
      await record()
      return
    }
    await session.exec('BEGIN')
    try {
      await session.exec(script)
      await record()
      await session.exec('COMMIT')
    } catch (error) {
      await session.exec('ROLLBACK')
      throw error
    }
  }
  return {
    name: file.name,
    path: file.path,
    up: async ({ context }) => {
      const { up, transactional } = load()
      await apply(
        context,
        up,
        () => context.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [file.version, file.name]),
        transactional,
      )
    },
    down: async ({ context }) => {
      const { down, transactional } = load()
      if (down === '') throw new MigrationError(`${file.name}: has no "-- +goose Down" section to roll back`)
      await apply(
        context,
        down,
        () => context.query('DELETE FROM schema_migrations WHERE version = $1', [file.version]),
        transactional,
      )
    },
  }
}

/** Writes the next migration file (goose layout) and returns its path. */
export function createMigrationFile(title: string, folder = MIGRATIONS_FOLDER): string {
  const slug = title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '')
  if (slug === '') throw new MigrationError('create needs a name made of letters or digits, e.g. add_isbn_to_books')
  const next = Math.max(0, ...listMigrationFiles(folder).map((file) => file.version)) + 1
  const path = join(folder, `${String(next).padStart(5, '0')}_${slug}.sql`)
  writeFileSync(path, '-- +goose Up\n\n\n-- +goose Down\n\n', { flag: 'wx' })
  return path
}
