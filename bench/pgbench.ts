// pgbench scripts made from the service's own statements (src/books/repository.ts), so the database's ceiling is
// measured on exactly the SQL the service sends. A parameter becomes a pgbench variable or a literal; where the
// service computes a value (a book's id, a UUIDv7) the script computes an equivalent in SQL, which if anything
// makes pgbench's side slightly dearer. The parameters are the service's own too (insertParameters, …), with each
// computed value standing in for the SQL that computes it.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BOOK_SQL, insertParameters, listStatements, updateParameters } from '../src/books/repository.ts'
import type { BookInput } from '../src/books/schemas.ts'

/** Book n of bench/seed.sql. */
const SEEDED_ID = "('00000000-0000-7000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid"
/** A time-ordered id like the service's UUIDv7: milliseconds first, random rest. */
const TIME_ORDERED_ID =
  "(substr(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0'), 1, 8) || '-' || " +
  "substr(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0'), 9, 4) || " +
  'substr(gen_random_uuid()::text, 14))::uuid'

/** Author k of bench/seed.sql. */
const SEEDED_AUTHOR = "('Author ' || chr(65 + :k::int % 26) || chr(97 + :k::int / 26 % 26) || chr(97 + :k::int / 676))"

const quote = (value: unknown) =>
  value === null ? 'NULL' : typeof value === 'number' ? String(value) : `'${String(value).replaceAll("'", "''")}'`
// The body the load generator sends for creates and updates (bench/scenario.lua).
const INPUT: BookInput = {
  title: 'A benchmark book',
  author: 'Author 1',
  published_date: '2001-02-03',
  description: 'Written by the load generator.',
}
/** The outbox's event: a time-ordered id, and no trace (as the service without tracing). */
const EVENT = { eventId: TIME_ORDERED_ID, traceparent: null }
/** A parameter as SQL: the expressions above as they are, any other value quoted. */
const asSql = (value: unknown) => (value === SEEDED_ID || value === TIME_ORDERED_ID ? value : quote(value))

/** The statement with each $n replaced by the given SQL expression, one line, ended by ';'. */
function bind(text: string, values: string[]): string {
  const bound = text.replace(/\$(\d+)/g, (_, index: string) => values[Number(index) - 1] as string)
  return `${bound.replace(/\s+/g, ' ').trim()};`
}

export function pgbenchScripts(folder: string, books: number): Record<string, string[]> {
  const pickBook = `\\set n random(1, ${books})`
  // What the service sends for a list by default: its first page, no count.
  const listDefault = listStatements({ page: 1, pageSize: 10, sort: '-created_at' }).page
  const AUTHOR = 'Author Aaa'
  const listFiltered = listStatements({ page: 1, pageSize: 10, sort: 'title', author: AUTHOR }).page
  // The author becomes a random seeded one; the page's limit and offset stay what the service sends.
  const filteredValues = listFiltered.values.map((value) => (value === AUTHOR ? SEEDED_AUTHOR : quote(value)))
  // Any version: no If-Match, as the load generator's updates.
  const updateValues = updateParameters(SEEDED_ID, INPUT, undefined, EVENT).map(asSql)
  const scripts: Record<string, string> = {
    read: [pickBook, bind(BOOK_SQL.findById, [SEEDED_ID])].join('\n'),
    list: bind(listDefault.text, listDefault.values.map(quote)),
    'list-filter': ['\\set k random(0, 999)', bind(listFiltered.text, filteredValues)].join('\n'),
    create: bind(BOOK_SQL.insert, insertParameters(TIME_ORDERED_ID, INPUT, EVENT).map(asSql)),
    update: [pickBook, bind(BOOK_SQL.update, updateValues)].join('\n'),
  }
  const files: Record<string, string[]> = {}
  for (const [name, text] of Object.entries(scripts)) {
    const file = join(folder, `${name}.pgbench.sql`)
    writeFileSync(file, `${text}\n`)
    files[name] = [file]
  }
  // 90 % reads, 10 % updates, like the wrk mix.
  files.mix = [`${files.read?.[0]}@9`, `${files.update?.[0]}@1`]
  return files
}
