// Property: walking a list by its cursor links while writers insert and delete books skips no book that was there
// for the whole walk, repeats none, and keeps the sort order; checked against a model of the table, both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import fc from 'fast-check'
import { SORTS } from '../../../src/books/schemas.ts'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

interface Book {
  id: string
  title: string
  published_date: string
  status: string
  created_at: string
}

interface BookWrite {
  title: string
  author: string
  published_date: string
  status: string
}

// Lower-case ASCII sorts the same in every collation, so the model can check the order; few letters, many ties.
const bookInput: fc.Arbitrary<BookWrite> = fc.record({
  title: fc.stringMatching(/^[a-c]{1,2}$/),
  author: fc.constant('Walk Writer'),
  published_date: fc.constantFrom('1999-12-31', '2000-01-01', '2000-01-02'),
  status: fc.constantFrom('pending', 'verified'),
})
type Write = { kind: 'insert'; book: BookWrite } | { kind: 'delete'; pick: number }
const write: fc.Arbitrary<Write> = fc.oneof(
  bookInput.map((book) => ({ kind: 'insert' as const, book })),
  fc.nat().map((pick) => ({ kind: 'delete' as const, pick })),
)

const SEEDED = 40

function parseLinks(header: string | null): Record<string, string> {
  const links: Record<string, string> = {}
  for (const part of (header ?? '').split(', ')) {
    const match = /^<([^>]+)>; rel="(\w+)"$/.exec(part)
    if (match) links[match[2] as string] = match[1] as string
  }
  return links
}

/** -1, 0 or 1: how `a` and `b` compare in `sort` order; created_at compares at the JSON's millisecond precision. */
function compare(sort: string, a: Book, b: Book): number {
  const field = sort.replace('-', '') as 'created_at' | 'published_date' | 'title'
  const sign = sort.startsWith('-') ? -1 : 1
  if (a[field] !== b[field]) return (a[field] < b[field] ? -1 : 1) * sign
  // Equal to the millisecond is not equal to the microsecond: the id order is not known then.
  if (field === 'created_at') return 0
  return (a.id < b.id ? -1 : 1) * sign
}

for (const backend of BACKENDS) {
  describe(`walking the list by cursor during writes on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    // The model: every book in the table, as the writers left it.
    const table = new Map<string, Book>()
    const insert = async (book: BookWrite) => {
      const response = await service.fetch('/v1/books', jsonRequest('POST', book))
      assert.equal(response.status, 201)
      const created: Book = await bodyOf(response)
      table.set(created.id, created)
      return created.id
    }
    before(async () => {
      service = await startService(backend)
      const seeds = fc.sample(bookInput, { numRuns: SEEDED, seed: 14 })
      for (const book of seeds) await insert(book)
    })
    after(() => service?.close())

    it('when every sort is walked by next or prev links while books are inserted and deleted, then none that stayed is skipped or repeated, in order', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...SORTS),
          fc.option(fc.constantFrom('pending', 'verified'), { nil: undefined }),
          fc.integer({ min: 1, max: 7 }),
          fc.constantFrom('next', 'prev'),
          fc.array(fc.array(write, { maxLength: 3 }), { minLength: 1, maxLength: 40 }),
          async (sort, status, pageSize, relation, schedule) => {
            const filters = new URLSearchParams({ sort, pageSize: String(pageSize) })
            if (status !== undefined) filters.set('status', status)
            const matches = (book: Book) => status === undefined || book.status === status
            const atStart = new Set([...table.values()].filter(matches).map((book) => book.id))
            const deleted = new Set<string>()
            const runWrite = async (step: Write) => {
              if (step.kind === 'insert') return void (await insert(step.book))
              const ids = [...table.keys()]
              if (ids.length <= SEEDED / 2) return
              const id = ids[step.pick % ids.length] as string
              table.delete(id)
              deleted.add(id)
              const response = await service.fetch(`/v1/books/${id}`, { method: 'DELETE' })
              assert.equal(response.status, 204)
            }

            // A walk by prev starts from the last page, which only an exact count links to.
            let target = `/v1/books?${filters}`
            if (relation === 'prev') {
              const response = await service.fetch(target, { headers: { prefer: 'count=exact' } })
              target = parseLinks(response.headers.get('link')).last ?? ''
              assert.ok(target, 'a last link')
            }
            const pages: Book[][] = []
            // Writes stop when the schedule ends: repeated, inserts at the end of the order could outrun a walk of
            // small pages for ever. Then the walk has at most every book to read, a page at a time.
            const steps = table.size + 3 * schedule.length + 2
            for (let step = 0; step < steps; step++) {
              // The page is read while this step's writes run.
              const [response] = await Promise.all([service.fetch(target), ...(schedule[step] ?? []).map(runWrite)])
              assert.equal(response.status, 200)
              const page: Book[] = await bodyOf(response)
              assert.ok(page.length <= pageSize)
              pages.push(page)
              const next = parseLinks(response.headers.get('link'))[relation]
              if (next === undefined) break
              target = next
              assert.ok(step < steps - 1, 'the walk ends')
            }
            const walked = (relation === 'next' ? pages : pages.reverse()).flat()

            const seen = walked.map((book) => book.id)
            assert.equal(new Set(seen).size, seen.length, 'no book twice')
            assert.ok(walked.every(matches), 'only books that match the filter')
            const stayed = [...atStart].filter((id) => !deleted.has(id))
            const missing = stayed.filter((id) => !seen.includes(id))
            assert.deepEqual(missing, [], 'no book that stayed is skipped')
            for (let index = 1; index < walked.length; index++) {
              const [a, b] = [walked[index - 1] as Book, walked[index] as Book]
              assert.ok(compare(sort, a, b) <= 0, `${sort}: ${JSON.stringify(a)} before ${JSON.stringify(b)}`)
            }
          },
        ),
        { numRuns: 24, seed: Number(process.env.FC_SEED ?? Date.now() % 100_000), endOnFailure: true },
      )
    })
  })
}
