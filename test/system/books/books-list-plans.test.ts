// The list's plans at 1,000,000 books: every variant's first page, and the page its next cursor names, read an
// index, never the whole table.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import postgres from 'postgres'
import { type CountMethod, createBooksRepository, listStatements } from '../../../src/books/repository.ts'
import type { ListQuery } from '../../../src/books/schemas.ts'
import { parseConfig } from '../../../src/config/config.ts'
import type { Database } from '../../../src/db/database.ts'
import { createMigrator } from '../../../src/db/migrator.ts'
import { openDatabase } from '../../../src/db/open.ts'
import { createLogger } from '../../../src/logger.ts'
import { describe } from '../../helpers/describe.ts'
import { createServerDatabase, postgresServerUnavailable, type ServerDatabase } from '../../helpers/postgres-server.ts'

const BOOKS = 1_000_000

// Titles are 'Title ' and an md5 (q=abc matches about 0.3 %), 5,000 authors, one book in ten verified.
const LOAD = `
  SET maintenance_work_mem = '256MB';
  INSERT INTO books (id, created_at, updated_at, published_date, status, title, author)
  SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
         timestamptz '2020-01-01' + i * interval '1 second', now(),
         date '1900-01-01' + (i % 40000),
         CASE WHEN i % 10 = 0 THEN 'verified' ELSE 'pending' END::book_status,
         'Title ' || md5(i::text), 'Author ' || (i % 5000)
  FROM generate_series(1, ${BOOKS}) AS i;
`

const VARIANTS: { name: string; query: Partial<ListQuery> }[] = [
  ...(['-created_at', 'created_at', 'published_date', '-published_date', 'title', '-title'] as const).map((sort) => ({
    name: `sort=${sort}`,
    query: { sort },
  })),
  { name: 'status=verified', query: { status: 'verified' } },
  { name: 'status=verified&sort=title', query: { status: 'verified', sort: 'title' } },
  { name: 'author=author 42', query: { author: 'author 42' } },
  { name: 'author=author 42&sort=-published_date', query: { author: 'author 42', sort: '-published_date' } },
  { name: 'q=abc', query: { q: 'abc' } },
  { name: 'q=abc&sort=title', query: { q: 'abc', sort: 'title' } },
]

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  Plans?: PlanNode[]
}

function nodesOf(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodesOf)]
}

const unavailable = await postgresServerUnavailable()

describe(`list plans at ${BOOKS.toLocaleString('en')} books`, { skip: unavailable ?? false }, () => {
  let server: ServerDatabase
  let database: Database
  let sql: postgres.Sql
  before(async () => {
    server = await createServerDatabase()
    database = await openDatabase(parseConfig({ DATABASE_URL: server.url }).database, createLogger('silent'))
    await createMigrator(database).up()
    sql = postgres(server.url, { max: 1, onnotice: () => {} })
    // Building the secondary indexes after the rows is several times faster than keeping them up row by row.
    const indexes = await sql<{ indexdef: string; indexname: string }[]>`
      SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'books' AND indexname <> 'books_pkey'`
    for (const index of indexes) await sql.unsafe(`DROP INDEX ${index.indexname}`)
    await sql.unsafe(LOAD)
    for (const index of indexes) await sql.unsafe(index.indexdef)
    await sql.unsafe('ANALYZE books')
  })
  after(async () => {
    await sql?.end()
    await database?.close()
    await server?.drop()
  })

  const explain = async (text: string, values: unknown[]) => {
    const [row] = await sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values as never[])
    const [plan] = (row as unknown as { 'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }] })['QUERY PLAN']
    const nodes = nodesOf(plan.Plan)
    return {
      nodes,
      time: plan['Execution Time'],
      buffers: (plan.Plan['Shared Hit Blocks'] ?? 0) + (plan.Plan['Shared Read Blocks'] ?? 0),
      indexes: [...new Set(nodes.flatMap((node) => node['Index Name'] ?? []))],
    }
  }

  for (const variant of VARIANTS) {
    it(`when listing ${variant.name}, then its first and next pages scan an index, not the table`, async (t) => {
      const query: ListQuery = { page: 1, pageSize: 10, sort: '-created_at', ...variant.query }
      const first = await createBooksRepository(database).list(query)
      assert.equal(first.books.length, 10)
      assert.ok(first.next, 'a next cursor')
      for (const [page, cursor] of [
        ['first', undefined],
        ['next', first.next],
      ] as const) {
        const statement = listStatements(query, cursor).page
        const plan = await explain(statement.text, statement.values)
        const seqScans = plan.nodes.filter((node) => node['Node Type'] === 'Seq Scan')
        assert.deepEqual(seqScans, [], `${page} page of ${variant.name}`)
        assert.ok(plan.indexes.length > 0, `${page} page of ${variant.name} uses an index`)
        t.diagnostic(
          `${variant.name} ${page}: ${plan.indexes.join(' + ')}; ${plan.buffers} buffers; ${plan.time.toFixed(2)} ms`,
        )
      }
    })
  }

  for (const count of ['planned', 'estimated'] as const satisfies CountMethod[]) {
    it(`when counted by ${count} over 1M matches, then the count is an estimate within 10 %`, async () => {
      const page = await createBooksRepository(database).list(
        { page: 1, pageSize: 10, sort: '-created_at' },
        undefined,
        count,
      )
      assert.equal(page.total?.exact, false)
      assert.ok(Math.abs((page.total?.value ?? 0) - BOOKS) < BOOKS / 10, String(page.total?.value))
    })
  }

  it('when counted exactly, then every row, with the page', async () => {
    const page = await createBooksRepository(database).list(
      { page: 1, pageSize: 10, sort: 'title' },
      undefined,
      'exact',
    )
    assert.deepEqual(page.total, { value: BOOKS, exact: true })
    assert.equal(page.books.length, 10)
  })
})
