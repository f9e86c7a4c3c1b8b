// GET /v1/books: pages, sorts, filters, X-Total-Count and Link, on both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../helpers/service.ts'

interface Book {
  id: string
  title: string
  author: string
  published_date: string
  status: string
  created_at: string
}

const AUTHORS = ['J. R. R. Tolkien', 'Gabriel García Márquez', '村上 春樹', 'Ursula K. Le Guin', 'Jane Austen']
// 23 books: titles with shared words, LIKE wildcards, repeated dates so ties must be broken by id.
const FIXTURES = Array.from({ length: 23 }, (_, i) => ({
  title: [`Book ${String(i).padStart(2, '0')}`, `The Saga ${i}`, `100% Pure ${i}`, `snake_case ${i}`][i % 4] as string,
  author: AUTHORS[i % AUTHORS.length] as string,
  published_date: `19${String(50 + (i % 6)).padStart(2, '0')}-0${1 + (i % 3)}-15`,
  status: i % 3 === 0 ? 'verified' : 'pending',
}))

function parseLinks(header: string | null): Record<string, URLSearchParams> {
  const links: Record<string, URLSearchParams> = {}
  for (const part of (header ?? '').split(', ')) {
    const match = /^<([^>]+)>; rel="(\w+)"$/.exec(part)
    assert.ok(match, `malformed link ${part}`)
    const target = new URL(match[1] as string, 'http://x')
    assert.equal(target.pathname, '/v1/books')
    links[match[2] as string] = target.searchParams
  }
  return links
}

for (const backend of BACKENDS) {
  describe(`listing books on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    const created: Book[] = []
    before(async () => {
      service = await startService(backend)
      for (const fixture of FIXTURES) {
        const response = await service.fetch('/v1/books', jsonRequest('POST', fixture))
        assert.equal(response.status, 201)
        created.push(await bodyOf(response))
      }
      // Rewrite half the rows in reverse order so the table's physical order no longer follows the ids:
      // only an explicit tie-break can then keep pages stable.
      for (const [index, book] of [...created.entries()].slice(0, 12).reverse()) {
        const response = await service.fetch(`/v1/books/${book.id}`, jsonRequest('PUT', FIXTURES[index]))
        assert.equal(response.status, 200)
      }
    })
    after(() => service?.close())

    const list = async (query: string) => {
      const response = await service.fetch(`/v1/books${query}`)
      assert.equal(response.status, 200, await response.clone().text())
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
      return {
        books: (await bodyOf(response)) as Book[],
        total: Number(response.headers.get('x-total-count')),
        links: parseLinks(response.headers.get('link')),
      }
    }
    const walk = async (query: string, pageSize: number) => {
      const pages: Book[][] = []
      for (let page = 1; page <= 30; page++) {
        const result = await list(`?${query}&page=${page}&pageSize=${pageSize}`)
        pages.push(result.books)
        if (result.links.next === undefined) break
      }
      return pages
    }

    it('when no parameters are given, then page 1 of 10, newest first, with the total and links', async () => {
      const { books, total, links } = await list('')
      assert.equal(total, 23)
      assert.deepEqual(
        books.map((book) => book.id),
        created
          .slice(-10)
          .reverse()
          .map((book) => book.id),
      )
      assert.deepEqual(Object.keys(links).sort(), ['first', 'last', 'next'])
      assert.equal(links.next?.get('page'), '2')
      assert.equal(links.last?.get('page'), '3')
      assert.equal(links.first?.get('pageSize'), '10')
    })

    for (const sort of ['created_at', '-created_at', 'published_date', '-published_date', 'title', '-title']) {
      it(`when sorted by ${sort} and walked page by page, then pages neither overlap nor skip`, async () => {
        const whole = (await list(`?sort=${sort}&pageSize=100`)).books
        assert.equal(whole.length, 23)
        const pages = await walk(`sort=${sort}`, 4)
        assert.equal(pages.length, 6)
        assert.deepEqual(
          pages.flat().map((book) => book.id),
          whole.map((book) => book.id),
        )
        assert.equal(new Set(pages.flat().map((book) => book.id)).size, 23)

        const field = sort.replace('-', '') as keyof Book
        const direction = sort.startsWith('-') ? -1 : 1
        for (let i = 1; i < whole.length; i++) {
          const [a, b] = [whole[i - 1] as Book, whole[i] as Book]
          if (field !== 'title') assert.ok((a[field] < b[field] ? -1 : 1) * direction < 0 || a[field] === b[field])
          // Equal keys are ordered by id in the same direction.
          if (a[field] === b[field]) assert.equal(Math.sign(a.id.localeCompare(b.id)), -direction)
        }
      })
    }

    it('when sorted by title, then descending is the exact reverse of ascending', async () => {
      const ascending = (await list('?sort=title&pageSize=100')).books.map((book) => book.id)
      const descending = (await list('?sort=-title&pageSize=100')).books.map((book) => book.id)
      assert.deepEqual(descending, [...ascending].reverse())
    })

    it('when on a middle page, then first, prev, next and last links keep the filters and sort', async () => {
      const { links } = await list('?page=2&pageSize=3&status=pending&sort=title')
      assert.deepEqual(Object.keys(links).sort(), ['first', 'last', 'next', 'prev'])
      assert.equal(links.prev?.get('page'), '1')
      assert.equal(links.next?.get('page'), '3')
      for (const target of Object.values(links)) {
        assert.equal(target.get('status'), 'pending')
        assert.equal(target.get('sort'), 'title')
        assert.equal(target.get('pageSize'), '3')
      }
      const pendingCount = FIXTURES.filter((book) => book.status === 'pending').length
      assert.equal(links.last?.get('page'), String(Math.ceil(pendingCount / 3)))
    })

    it('when on the last page, then there is no next link', async () => {
      const { books, links } = await list('?page=3')
      assert.equal(books.length, 3)
      assert.equal(links.next, undefined)
      assert.equal(links.prev?.get('page'), '2')
    })

    it('when the page is past the end, then an empty page whose prev link points at the last page', async () => {
      const { books, total, links } = await list('?page=9')
      assert.deepEqual(books, [])
      assert.equal(total, 23)
      assert.equal(links.prev?.get('page'), '3')
      assert.equal(links.next, undefined)
    })

    it('when filtered by author, then the match is exact but ignores case', async () => {
      const expected = created.filter((book) => book.author === 'J. R. R. Tolkien').length
      for (const author of ['J. R. R. Tolkien', 'j. r. r. TOLKIEN']) {
        const { books, total } = await list(`?author=${encodeURIComponent(author)}&pageSize=100`)
        assert.equal(total, expected)
        assert.ok(books.every((book) => book.author === 'J. R. R. Tolkien'))
      }
      assert.equal((await list('?author=Tolkien')).total, 0)
      const unicode = await list(`?author=${encodeURIComponent('村上 春樹')}`)
      assert.equal(unicode.total, created.filter((book) => book.author === '村上 春樹').length)
    })

    it('when filtered by status, then only that status, counted in X-Total-Count', async () => {
      const { books, total } = await list('?status=verified&pageSize=100')
      assert.equal(total, FIXTURES.filter((book) => book.status === 'verified').length)
      assert.equal(books.length, total)
      assert.ok(books.every((book) => book.status === 'verified'))
    })

    it('when q is given, then titles containing it in any case match, and % and _ are literal', async () => {
      const saga = await list('?q=sAGA&pageSize=100')
      assert.equal(saga.total, created.filter((book) => book.title.includes('Saga')).length)
      assert.ok(saga.total > 0)
      const percent = await list(`?q=${encodeURIComponent('0%')}&pageSize=100`)
      assert.ok(percent.books.every((book) => book.title.includes('0%')))
      assert.equal(percent.total, created.filter((book) => book.title.includes('0%')).length)
      const underscore = await list('?q=e_c&pageSize=100')
      assert.equal(underscore.total, created.filter((book) => book.title.includes('e_c')).length)
      assert.equal((await list('?q=e%5Fx')).total, 0)
    })

    it('when filters are combined, then all of them apply', async () => {
      const expected = created.filter((book) => book.author === 'Jane Austen' && book.status === 'pending')
      const { books, total } = await list(`?author=${encodeURIComponent('jane austen')}&status=pending&pageSize=100`)
      assert.equal(total, expected.length)
      assert.deepEqual(new Set(books.map((book) => book.id)), new Set(expected.map((book) => book.id)))
    })

    const invalid: [string, string, string][] = [
      ['page=0', 'page', 'Must be an integer between 1 and 1000000'],
      ['page=-1', 'page', 'Must be an integer between 1 and 1000000'],
      ['page=abc', 'page', 'Must be an integer'],
      ['page=1000001', 'page', 'Must be an integer between 1 and 1000000'],
      ['page=100000000000000000000', 'page', 'Must be an integer between 1 and 1000000'],
      ['q=a%00b', 'q', 'Must be text without NUL characters or unpaired surrogates'],
      ['author=%00', 'author', 'Must be text without NUL characters or unpaired surrogates'],
      ['page=1.5', 'page', 'Must be an integer'],
      ['pageSize=0', 'pageSize', 'Must be an integer between 1 and 100'],
      ['pageSize=101', 'pageSize', 'Must be an integer between 1 and 100'],
      ['pageSize=ten', 'pageSize', 'Must be an integer'],
      [
        'sort=author',
        'sort',
        'Must be one of: created_at, -created_at, published_date, -published_date, title, -title',
      ],
      ['status=lost', 'status', 'Must be one of: pending, verified'],
      ['q=', 'q', 'Must not be empty'],
    ]
    for (const [query, field, message] of invalid) {
      it(`when ${query}, then 422 names ${field}`, async () => {
        const response = await service.fetch(`/v1/books?${query}`)
        assert.equal(response.status, 422)
        assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
        assert.deepEqual((await bodyOf(response)).errors, { [field]: message })
      })
    }
  })
}
