// Embedded PostgreSQL (PGlite, WebAssembly) for running with no database server.
import { PGlite, types } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import type { Database } from './database.ts'
import { lockFolder } from './folder-lock.ts'

/**
 * Opens (creating when missing) the database in the folder at `path`, or in memory for `memory://`. Throws
 * EmbeddedFolderError when another process has the folder open or it cannot be written.
 */
export async function openPglite(path: string): Promise<Database> {
  const inMemory = path.startsWith('memory://')
  // PGlite has no interlock of its own: two processes in one folder run two PostgreSQL instances on the same files,
  // and one side's writes are lost.
  const lock = inMemory ? undefined : await lockFolder(path)
  let db: PGlite
  try {
    db = await PGlite.create(inMemory ? undefined : path, {
      extensions: { pg_trgm },
      // Same shapes as the server driver: a calendar date stays 'YYYY-MM-DD' text.
      parsers: { [types.DATE]: (text: string) => text },
    })
  } catch (error) {
    lock?.release()
    throw error
  }

  const query = async <Row>(text: string, params: readonly unknown[] = []) => {
    // Same code as postgres.js uses for a closed pool, so both read as "database unavailable".
    if (db.closed) throw Object.assign(new Error('the embedded database is closed'), { code: 'CONNECTION_ENDED' })
    return (await db.query<Row>(text, params as unknown[])).rows
  }
  return {
    kind: 'embedded',
    query,
    transaction: (work) => {
      if (db.closed) throw Object.assign(new Error('the embedded database is closed'), { code: 'CONNECTION_ENDED' })
      return db.transaction((tx) =>
        work({ query: async (text, params = []) => (await tx.query(text, params as unknown[])).rows as never }),
      )
    },
    // One connection only: a session is the database itself; callers run sessions before serving traffic.
    withSession: (work) =>
      work({
        query,
        exec: async (script) => {
          await db.exec(script)
        },
      }),
    async ping() {
      await query('SELECT 1')
    },
    async close() {
      if (!db.closed) await db.close()
      lock?.release()
    },
  }
}
