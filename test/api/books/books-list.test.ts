// GET /v1/books: pages by number and by cursor, sorts, filters, counts on request (Prefer) and Link, on both backends.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

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

    // Counted exactly unless told otherwise, so that totals can be checked.
    const list = async (query: string, prefer: string | null = 'count=exact') => {
      const response = await service.fetch(`/v1/books${query}`, prefer === null ? {} : { headers: { prefer } })
      assert.equal(response.status, 200, await response.clone().text())
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
      return {
        books: (await bodyOf(response)) as Book[],
        total: Number(response.headers.get('x-total-count')),
        headers: response.headers,
        links: parseLinks(response.headers.get('link')),
      }
    }
    const cursorWalk = async (query: string, relation: 'next' | 'prev', start: string) => {
      const pages: Book[][] = []
      let target = start
      for (let step = 0; step < 30; step++) {
        const result = await list(`?${target}`, null)
        pages.push(result.books)
        const link = result.links[relation]
        if (link === undefined) break
        assert.equal(link.get('page'), null)
        target = `${query}&${new URLSearchParams({ cursor: link.get('cursor') ?? '', pageSize: link.get('pageSize') ?? '' })}`
      }
      return pages
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

    it('when no parameters are given, then 10 books newest first, no count, and a cursor link to the next', async () => {
      const { books, headers, links } = await list('', null)
      assert.equal(headers.get('x-total-count'), null)
      assert.equal(headers.get('x-total-count-estimate'), null)
      assert.equal(headers.get('preference-applied'), null)
      assert.equal(headers.get('vary'), 'Prefer')
      assert.deepEqual(
        books.map((book) => book.id),
        created
          .slice(-10)
          .reverse()
          .map((book) => book.id),
      )
      assert.deepEqual(Object.keys(links).sort(), ['first', 'next'])
      assert.equal(links.next?.get('page'), null)
      assert.match(links.next?.get('cursor') ?? '', /^[A-Za-z0-9_-]+$/)
      assert.equal(links.first?.get('pageSize'), '10')
      assert.equal(links.first?.get('cursor'), null)
    })

    it('when Prefer: count=exact, then X-Total-Count, Preference-Applied and a last link', async () => {
      const { total, headers, links } = await list('', 'count=exact')
      assert.equal(total, 23)
      assert.equal(headers.get('preference-applied'), 'count=exact')
      assert.equal(headers.get('x-total-count-estimate'), null)
      assert.deepEqual(Object.keys(links).sort(), ['first', 'last', 'next'])
      const last = await list(`?cursor=${links.last?.get('cursor')}`, null)
      assert.deepEqual(
        last.books.map((book) => book.id),
        created
          .slice(0, 10)
          .reverse()
          .map((book) => book.id),
      )
      assert.equal(last.links.next, undefined)
      assert.ok(last.links.prev)
    })

    it('when Prefer: count=planned, then only an estimate, marked as one, and no last link', async () => {
      const { headers, links } = await list('?status=verified', 'return=minimal, count=planned')
      assert.equal(headers.get('x-total-count'), null)
      assert.match(headers.get('x-total-count-estimate') ?? '', /^\d+$/)
      assert.equal(headers.get('preference-applied'), 'count=planned')
      assert.equal(links.last, undefined)
    })

    it('when Prefer: count=estimated and few books match, then the exact count', async () => {
      const { total, headers, links } = await list('?status=verified', 'count=estimated')
      assert.equal(total, FIXTURES.filter((book) => book.status === 'verified').length)
      assert.equal(headers.get('preference-applied'), 'count=estimated')
      assert.ok(links.last)
    })

    it('when Prefer names an unknown count, then it is ignored', async () => {
      const { headers } = await list('', 'count=everything')
      assert.equal(headers.get('x-total-count'), null)
      assert.equal(headers.get('preference-applied'), null)
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

        const byCursor = await cursorWalk(`sort=${sort}`, 'next', `sort=${sort}&pageSize=4`)
        assert.deepEqual(
          byCursor.flat().map((book) => book.id),
          whole.map((book) => book.id),
        )
        assert.equal(byCursor.length, 6)
        // From the last page back to the first by prev links: the same books, page for page.
        const last = (await list(`?sort=${sort}&pageSize=4`)).links.last?.get('cursor') ?? ''
        const backwards = await cursorWalk(`sort=${sort}`, 'prev', `sort=${sort}&pageSize=4&cursor=${last}`)
        assert.deepEqual(
          backwards
            .reverse()
            .flat()
            .map((book) => book.id),
          whole.map((book) => book.id),
        )

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

    const ids = (books: Book[]) => books.map((book) => book.id)
    const follow = async (link: URLSearchParams | undefined) => {
      assert.ok(link, 'a link')
      return ids((await list(`?${link}`, null)).books)
    }

    it('when on a page named by number, then prev, next and last are cursors that keep the filters and sort', async () => {
      const filters = 'pageSize=3&status=pending&sort=title'
      const { links } = await list(`?page=2&${filters}`)
      assert.deepEqual(Object.keys(links).sort(), ['first', 'last', 'next', 'prev'])
      for (const target of Object.values(links)) {
        assert.equal(target.get('status'), 'pending')
        assert.equal(target.get('sort'), 'title')
        assert.equal(target.get('pageSize'), '3')
        assert.equal(target.get('page'), null)
      }
      assert.deepEqual(await follow(links.prev), ids((await list(`?page=1&${filters}`)).books))
      assert.deepEqual(await follow(links.next), ids((await list(`?page=3&${filters}`)).books))
      assert.deepEqual(await follow(links.first), ids((await list(`?page=1&${filters}`)).books))
      const whole = ids((await list('?pageSize=100&status=pending&sort=title')).books)
      assert.deepEqual(await follow(links.last), whole.slice(-3))
    })

    it('when on the last page, then there is no next link, and prev leads to the page before', async () => {
      const { books, links } = await list('?page=3')
      assert.equal(books.length, 3)
      assert.equal(links.next, undefined)
      assert.deepEqual(await follow(links.prev), ids((await list('?page=2')).books))
    })

    it('when the page is past the end, then an empty page whose prev link leads to the end of the list', async () => {
      const { books, total, links } = await list('?page=9')
      assert.deepEqual(books, [])
      assert.equal(total, 23)
      assert.deepEqual(await follow(links.prev), ids(created.slice(0, 10).reverse()))
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

    it('when a cursor is tampered with, comes from another sort or is sent with page, then 422 names cursor', async () => {
      const { links } = await list('?sort=title&pageSize=2', null)
      const cursor = links.next?.get('cursor') ?? ''
      const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString())
      const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const cases: [string, string][] = [
        [`sort=title&cursor=${cursor.slice(0, -2)}`, 'Must be a cursor from a Link of this list'],
        [`sort=title&cursor=${cursor}x`, 'Must be a cursor from a Link of this list'],
        [
          `sort=title&cursor=${forged([...decoded.slice(0, 4), 'not-a-uuid'])}`,
          'Must be a cursor from a Link of this list',
        ],
        [
          `sort=created_at&cursor=${forged([1, 'created_at', 'after', '2024-02-30T00:00:00.000000Z', decoded[4]])}`,
          'Must be a cursor from a Link of this list',
        ],
        [`sort=-title&cursor=${cursor}`, 'Must come from a list of the same sort'],
        [`sort=title&page=2&cursor=${cursor}`, 'Must not be sent with a page other than 1'],
      ]
      for (const [query, message] of cases) {
        const response = await service.fetch(`/v1/books?${query}`)
        assert.equal(response.status, 422, query)
        assert.deepEqual((await bodyOf(response)).errors, { cursor: message })
      }
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
      ['sort=author', 'sort', 'Must be one of created_at, -created_at, published_date, -published_date, title, -title'],
      ['status=lost', 'status', 'Must be one of pending, verified'],
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
