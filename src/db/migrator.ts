// Schema migrations: goose-style SQL files run by umzug, one advisory lock so replicas can start together.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type RunnableMigration, Umzug } from 'umzug'
import type { Database, Queryable, Session } from './database.ts'

// Two folders up, both from src/db/ and from the production build's dist/bin/ (scripts/build.ts).
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations/', import.meta.url))

// Any constant works; it only has to be the same in every replica.
const MIGRATION_LOCK_KEY = 470_062_067_824
const FILE_NAME = /^(\d+)_([a-z0-9_]+)\.sql$/

// goose-takeover/NNNNN_name.sql stands in for our migrations up to NNNNN_name.sql on a database that goose
// migrated to version NNNNN (the Go service's). listMigrationFiles passes over the folder: it is no .sql file.
const TAKEOVER_FOLDER = 'goose-takeover'

const CREATE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    bigint      PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`

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

/** A database goose had migrated, brought to our schema and recorded as ours. */
export interface GooseTakeover {
  /** The goose version it was at. */
  gooseVersion: number
  /** The script that ran, relative to the migrations folder. */
  script: string
  /** Our migrations now recorded as applied. */
  recorded: string[]
}

export interface UpOptions {
  /** Told once a takeover of a goose-migrated database is committed. */
  onGooseTakeover?(takeover: GooseTakeover): void
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
  /**
   * Applies every pending migration; returns the names applied. A database the Go service migrated with goose is
   * first taken over (goose-takeover/); one whose objects no migration record accounts for is refused.
   */
  up(options?: UpOptions): Promise<string[]>
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
  // `up` leaves schema_migrations to the transaction of the first migration it applies, so that a refused or
  // failed first run leaves the database as it found it.
  const run = <T>(
    work: (umzug: Umzug<Session>, session: Session) => Promise<T>,
    before?: (session: Session) => Promise<void>,
  ) =>
    database.withSession(async (session) => {
      await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
      try {
        if (before === undefined) await session.exec(CREATE_SCHEMA_MIGRATIONS)
        else await before(session)
        return await work(umzugFor(session, folder), session)
      } finally {
        await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      }
    })
  const names = (migrations: { name: string }[]) => migrations.map((migration) => migration.name)

  return {
    up: ({ onGooseTakeover } = {}) =>
      run(
        async (umzug, session) => {
          const fresh = (await appliedMigrations(session)).size === 0
          try {
            return names(await umzug.up())
          } catch (error) {
            const conflict = fresh ? alreadyThere(error) : undefined
            if (conflict === undefined) throw error
            throw new MigrationError(
              `migrate up found that ${conflict}, but no migration record says what made it (schema_migrations ` +
                'records nothing, and goose_db_version is at no version it can take over). Nothing was changed. ' +
                'Run it on an empty database or on one the Go service migrated with goose, or move that object ' +
                'out of the way.',
              { cause: error },
            )
          }
        },
        async (session) => {
          const script = await takeoverScriptFor(session, folder)
          if (script === undefined) return
          const takeover = await takeOver(session, script, folder)
          onGooseTakeover?.(takeover)
        },
      ),
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
      const applied = await appliedMigrations(database)
      return listMigrationFiles(folder)
        .filter((file) => !applied.has(file.name))
        .map((file) => file.name)
    },
  }
}

async function appliedMigrations(session: Queryable): Promise<Map<string, Date>> {
  const [table] = await session.query<{ exists: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
  )
  if (!table?.exists) return new Map()
  const rows = await session.query<{ name: string; applied_at: Date }>(
    'SELECT name, applied_at FROM schema_migrations ORDER BY version',
  )
  return new Map(rows.map((row) => [row.name, new Date(row.applied_at)]))
}

/**
 * Where `up` starts from when schema_migrations records nothing: the first migration (undefined), or, on a database
 * goose migrated, the takeover script kept for its version. A goose version without one is refused before a thing
 * is changed.
 */
async function takeoverScriptFor(session: Session, folder: string): Promise<MigrationFile | undefined> {
  const [found] = await session.query<{ ours: boolean; goose: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS ours, to_regclass('goose_db_version') IS NOT NULL AS goose",
  )
  if (found?.ours && (await appliedMigrations(session)).size > 0) return undefined
  const gooseVersion = found?.goose ? await gooseVersionOf(session) : 0
  if (gooseVersion === 0) return undefined
  const scripts = listTakeoverScripts(folder)
  const script = scripts.find((candidate) => candidate.version === gooseVersion)
  if (script === undefined) {
    const known = scripts.map((candidate) => candidate.version).join(', ')
    throw new MigrationError(
      `migrate up found goose_db_version at version ${gooseVersion}, made by migrations it does not know: it can ` +
        `take over ${known === '' ? 'no goose version' : `only goose version ${known}`} (the Go service's schema, ` +
        `migrations/${TAKEOVER_FOLDER}/). Nothing was changed. Roll the database back to that version with ` +
        '"goose down-to", or copy its data into a database that migrate up has migrated.',
    )
  }
  // A taken-over database that was then reset keeps goose's record but has no tables: nothing to take over.
  return (await tablesInSchema(session)).length === 0 ? undefined : script
}

/** Runs a takeover script and records our migrations up to it, in one transaction with schema_migrations. */
async function takeOver(session: Session, script: MigrationFile, folder: string): Promise<GooseTakeover> {
  const scriptName = `${TAKEOVER_FOLDER}/${script.name}`
  const { up, transactional } = parseMigration(readFileSync(script.path, 'utf8'), scriptName)
  if (!transactional) throw new MigrationError(`${scriptName}: a takeover runs in one transaction, always`)
  const recorded = listMigrationFiles(folder).filter((file) => file.version <= script.version)
  if (recorded.at(-1)?.name !== script.name) {
    throw new MigrationError(`${scriptName}: must be named after the migration whose schema it makes`)
  }
  const record = async () => {
    for (const file of recorded) {
      await session.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [file.version, file.name])
    }
  }
  try {
    await apply(session, `${CREATE_SCHEMA_MIGRATIONS};\n${up}`, record, true)
  } catch (error) {
    throw new MigrationError(
      `taking over goose version ${script.version} with ${scriptName} failed, so nothing was changed: ` +
        `${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
  return { gooseVersion: script.version, script: scriptName, recorded: recorded.map((file) => file.name) }
}

function listTakeoverScripts(folder: string): MigrationFile[] {
  const takeovers = join(folder, TAKEOVER_FOLDER)
  return existsSync(takeovers) ? listMigrationFiles(takeovers) : []
}

/** PostgreSQL's message when `error`, or an error it wraps, is about an object that already exists. */
function alreadyThere(error: unknown): string | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code
    if (code === '42P07' || code === '42710') return cause.message // duplicate_table, duplicate_object
  }
  return undefined
}

/** The tables of the current schema, bookkeeping (ours and goose's) left out. */
async function tablesInSchema(session: Queryable): Promise<string[]> {
  const rows = await session.query<{ name: string }>(
    `SELECT tablename AS name FROM pg_tables
     WHERE schemaname = current_schema() AND tablename NOT IN ('schema_migrations', 'goose_db_version')
     ORDER BY tablename`,
  )
  return rows.map((row) => row.name)
}

/**
 * goose's current version, 0 when none. goose records a rollback either as a row with is_applied false (older
 * releases) or by deleting the row (newer ones), so a version counts when its latest row says applied.
 */
async function gooseVersionOf(session: Queryable): Promise<number> {
  const [row] = await session.query<{ version: string }>(
    `SELECT coalesce(max(version_id), 0)::text AS version
     FROM (SELECT DISTINCT ON (version_id) version_id, is_applied
           FROM goose_db_version ORDER BY version_id, id DESC) AS latest
     WHERE is_applied`,
  )
  return Number(row?.version ?? 0)
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

async function apply(session: Session, script: string, record: () => Promise<unknown>, transactional: boolean) {
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

function toRunnable(file: MigrationFile): RunnableMigration<Session> {
  const load = () => parseMigration(readFileSync(file.path, 'utf8'), file.name)
  return {
    name: file.name,
    path: file.path,
    up: async ({ context }) => {
      const { up, transactional } = load()
      await apply(
        context,
        up,
        async () => {
          await context.exec(CREATE_SCHEMA_MIGRATIONS)
          await context.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
            file.version,
            file.name,
          ])
        },
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
