// Property-based tests (fast-check): round trips, hostile input, and a model of the whole API. Bounded runs.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import fc from 'fast-check'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

type BookInput = {
  title: string
  author: string
  published_date: string
  status?: string
  image_url?: string | null
  description?: string | null
}
type Book = Required<BookInput> & { id: string; created_at: string; updated_at: string }

const letters = fc.constantFrom(
  ...'abcdefghijklmnopqrstuvwxyzÀÉÎÕÜßçñøåæłžšđğışəəαβγδεжзийкабвгд日本語中文한국어אבגدعربيहिन्दीไทย'.split(''),
)
const word = fc.string({ unit: letters, minLength: 1, maxLength: 12 })
const author = fc
  .tuple(fc.array(word, { minLength: 1, maxLength: 4 }), fc.constantFrom(' ', ' ', '-', '. ', "'"))
  .map(([words, separator]) => words.join(separator).replace(/[ .'-]+$/, ''))
  .filter((name) => name.length >= 1 && name.length <= 255)
// Any printable one-line text, any script, emoji included; trimmed, as the service stores it.
const title = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 255 })
  .map((text) => text.replace(/[\p{Cc}]/gu, '').trim())
  .filter((text) => text.length >= 1)
const date = fc
  .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true })
  .map((day) => day.toISOString().slice(0, 10))
const validBook: fc.Arbitrary<BookInput> = fc.record(
  {
    title,
    author,
    published_date: date,
    status: fc.constantFrom('pending', 'verified'),
    image_url: fc.option(fc.webUrl({ validSchemes: ['http', 'https'] }).filter((url) => url.length <= 2048)),
    description: fc.option(
      fc.string({ unit: 'binary', maxLength: 300 }).map((text) => text.replaceAll('\u0000', '').trim()),
    ),
  },
  { requiredKeys: ['title', 'author', 'published_date'] },
)

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.constantFrom(
    '\u0000',
    '\ud800',
    'a\udfffb',
    '‮evil',
    "'; DROP TABLE books; --",
    '{"$gt": ""}',
    '../../etc/passwd',
    '',
  ),
  fc.integer().map((n) => 'x'.repeat(Math.abs(n) % 70_000)),
)
const hostileValue = fc.oneof(hostileString, fc.jsonValue({ maxDepth: 3 }), fc.double(), fc.bigInt().map(String))
const hostileBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc
    .dictionary(
      fc.constantFrom(
        'title',
        'author',
        'published_date',
        'status',
        'image_url',
        'description',
        'id',
        '__proto__',
        'constructor',
        'x',
      ),
      hostileValue,
    )
    .map((value) => JSON.stringify(value)),
  fc
    .tuple(
      validBook,
      fc.constantFrom('title', 'author', 'published_date', 'status', 'image_url', 'description'),
      hostileValue,
    )
    .map(([book, field, value]) => JSON.stringify({ ...book, [field]: value })),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.integer({ min: 1, max: 2000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
)
// Query values stay short: URL bombs are answered 431 by the HTTP parser, tested in test/http/protocol.test.ts.
const hostileQuery = fc
  .dictionary(
    fc.constantFrom('page', 'pageSize', 'sort', 'author', 'status', 'q', 'x'),
    fc.oneof(
      hostileString.map((text) => text.slice(0, 100)),
      fc.bigInt().map(String),
      fc.double().map(String),
    ),
  )
  .map((params) => new URLSearchParams(params).toString())

for (const backend of BACKENDS) {
  describe(`books properties on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(() => service?.close())

    it('when any valid book is created, then reading it back returns exactly what was sent', async () => {
      await fc.assert(
        fc.asyncProperty(validBook, async (input) => {
          const created = await service.fetch('/v1/books', jsonRequest('POST', input))
          assert.equal(created.status, 201, await created.clone().text())
          const book = await bodyOf(
            await service.fetch(new URL(created.headers.get('location') ?? '', 'http://x').pathname),
          )
          assert.deepEqual(
            {
              title: book.title,
              author: book.author,
              published_date: book.published_date,
              status: book.status,
              image_url: book.image_url,
              description: book.description,
            },
            { status: 'pending', image_url: null, description: null, ...input },
          )
        }),
        { numRuns: 60 },
      )
    })

    it('when hostile bodies, ids and query strings arrive, then the answer is always a declared 2xx or 4xx', async () => {
      const ids = fc.oneof(
        fc.uuid({ version: 7 }),
        fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent),
      )
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('POST', 'PUT'),
          ids,
          hostileBody,
          hostileQuery,
          async (method, id, body, query) => {
            const path = method === 'POST' ? '/v1/books' : `/v1/books/${id}`
            // service.fetch also checks every response against openapi.yaml.
            const write = await service.fetch(path, jsonRequest(method, body))
            assert.ok(write.status < 500, `${method} ${path} ${body.slice(0, 200)} → ${write.status}`)
            const list = await service.fetch(`/v1/books?${query}`)
            assert.ok([200, 422].includes(list.status), `?${query.slice(0, 200)} → ${list.status}`)
          },
        ),
        { numRuns: 250 },
      )
    })

    it('when random sequences of creates, updates, deletes and reads run, then the service agrees with a model', async () => {
      type Model = { books: Map<string, BookInput>; order: string[] }
      type Real = { service: TestService }
      const expected = (input: BookInput) => ({
        status: 'pending',
        image_url: null,
        description: null,
        created_by: null,
        ...input,
      })
      const pick = (model: Model, index: number) => model.order[index % Math.max(1, model.order.length)]
      const MISSING = '01900000-0000-7000-8000-000000000000'

      const command = (
        name: string,
        run: (model: Model, real: Real) => Promise<void>,
      ): fc.AsyncCommand<Model, Real> => ({
        check: () => true,
        run,
        toString: () => name,
      })
      const create = (input: BookInput) =>
        command(`Create(${JSON.stringify(input)})`, async (model, real) => {
          const response = await real.service.fetch('/v1/books', jsonRequest('POST', input))
          assert.equal(response.status, 201)
          const book = (await bodyOf(response)) as Book
          model.books.set(book.id, input)
          model.order.push(book.id)
        })
      const update = (index: number, input: BookInput) =>
        command(`Update(${index}, ${JSON.stringify(input)})`, async (model, real) => {
          const id = pick(model, index) ?? MISSING
          const response = await real.service.fetch(`/v1/books/${id}`, jsonRequest('PUT', input))
          if (!model.books.has(id)) return assert.equal(response.status, 404)
          assert.equal(response.status, 200)
          model.books.set(id, input)
        })
      const remove = (index: number) =>
        command(`Delete(${index})`, async (model, real) => {
          const id = pick(model, index) ?? MISSING
          const response = await real.service.fetch(`/v1/books/${id}`, { method: 'DELETE' })
          assert.equal(response.status, model.books.delete(id) ? 204 : 404)
          model.order = model.order.filter((kept) => kept !== id)
        })
      const read = (index: number) =>
        command(`Read(${index})`, async (model, real) => {
          const id = pick(model, index) ?? MISSING
          const response = await real.service.fetch(`/v1/books/${id}`)
          const input = model.books.get(id)
          if (input === undefined) return assert.equal(response.status, 404)
          const { id: _id, created_at: _created, updated_at: _updated, ...fields } = (await bodyOf(response)) as Book
          assert.deepEqual(fields, expected(input))
        })
      const list = (pageSize: number) =>
        command(`List(${pageSize})`, async (model, real) => {
          const ids: string[] = []
          for (let page = 1; page <= 50; page++) {
            const response = await real.service.fetch(`/v1/books?sort=created_at&pageSize=${pageSize}&page=${page}`, {
              headers: { prefer: 'count=exact' },
            })
            assert.equal(Number(response.headers.get('x-total-count')), model.order.length)
            const books = (await bodyOf(response)) as Book[]
            ids.push(...books.map((book) => book.id))
            if (books.length < pageSize) break
          }
          assert.deepEqual(ids, model.order)
        })

      const index = fc.nat({ max: 50 })
      const commands = fc.commands(
        [
          validBook.map(create),
          fc.tuple(index, validBook).map(([at, input]) => update(at, input)),
          index.map(remove),
          index.map(read),
          fc.integer({ min: 1, max: 7 }).map(list),
        ],
        { maxCommands: 25 },
      )
      await fc.assert(
        fc.asyncProperty(commands, async (sequence) => {
          await service.database.query('DELETE FROM books')
          await fc.asyncModelRun(() => ({ model: { books: new Map(), order: [] }, real: { service } }), sequence)
        }),
        { numRuns: 20 },
      )
    })
  })
}
