import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { ListQuery } from '../../../src/books/schemas.ts'
import { lastPage, MAX_LINK_HEADER_BYTES, paginationLinks } from '../../../src/http/toolkit/pagination.ts'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

// The list's declared parameters, as the route passes them.
const KNOWN = Object.keys(ListQuery.properties)

function rels(header: string): Record<string, string> {
  return Object.fromEntries(
    header.split(', ').map((part) => {
      const match = /^<([^>]+)>; rel="(\w+)"$/.exec(part)
      assert.ok(match, part)
      return [match[2], match[1]]
    }),
  )
}

describe('lastPage', () => {
  for (const [total, size, last] of [
    [0, 10, 1],
    [1, 10, 1],
    [10, 10, 1],
    [11, 10, 2],
    [100, 7, 15],
  ] as const) {
    it(`when ${total} rows in pages of ${size}, then the last page is ${last}`, () => {
      assert.equal(lastPage(total, size), last)
    })
  }
})

const PAGE = ['page', 'cursor']

describe('paginationLinks', () => {
  it('when pages are named by number, then each link carries its page, then pageSize', () => {
    const targets = { first: { page: '1' }, next: { page: '2' }, last: { page: '3' } }
    assert.deepEqual(rels(paginationLinks('/v1/books', { page: 1, pageSize: 10 }, targets, KNOWN, PAGE)), {
      first: '/v1/books?page=1&pageSize=10',
      next: '/v1/books?page=2&pageSize=10',
      last: '/v1/books?page=3&pageSize=10',
    })
  })

  it('when pages are named by cursor, then the request cursor is not echoed, and first has none', () => {
    const links = rels(
      paginationLinks(
        '/v1/books',
        { cursor: 'old', pageSize: 10 },
        { first: {}, prev: { cursor: 'p' }, next: { cursor: 'n' } },
        KNOWN,
        PAGE,
      ),
    )
    assert.deepEqual(links, {
      first: '/v1/books?pageSize=10',
      prev: '/v1/books?cursor=p&pageSize=10',
      next: '/v1/books?cursor=n&pageSize=10',
    })
  })

  it('when a relation has no target, then it has no link', () => {
    assert.equal(paginationLinks('/v1/books', { pageSize: 10 }, {}, KNOWN, PAGE), '')
  })

  it('when other parameters are present, then they are kept and encoded; undefined ones are dropped', () => {
    const links = rels(
      paginationLinks(
        '/v1/books',
        { page: 1, pageSize: 5, sort: '-title', q: 'a&b c', author: undefined },
        { next: { page: '2' } },
        KNOWN,
        PAGE,
      ),
    )
    assert.equal(links.next, '/v1/books?page=2&pageSize=5&sort=-title&q=a%26b+c')
  })
})

describe('paginationLinks and parameters the route does not know', () => {
  it('when the query holds unknown parameters, then no link carries them', () => {
    const header = paginationLinks(
      '/v1/books',
      { page: 2, pageSize: 10, sort: 'title', access_token: 'abc.def.ghi', x: 'y'.repeat(6000) },
      { first: { page: '1' }, prev: { page: '1' }, next: { page: '3' }, last: { page: '5' } },
      KNOWN,
      PAGE,
    )
    assert.deepEqual(rels(header), {
      first: '/v1/books?page=1&pageSize=10&sort=title',
      prev: '/v1/books?page=1&pageSize=10&sort=title',
      next: '/v1/books?page=3&pageSize=10&sort=title',
      last: '/v1/books?page=5&pageSize=10&sort=title',
    })
  })

  it('when long filters would make four links too large, then the header keeps within its limit, next first', () => {
    // 255 four-byte letters: 12 bytes each once percent-encoded.
    const long = '𝐀'.repeat(255)
    const header = paginationLinks(
      '/v1/books',
      { page: 2, pageSize: 1, q: long, author: long },
      { first: { page: '1' }, prev: { page: '1' }, next: { page: '3' }, last: { page: '3' } },
      KNOWN,
      PAGE,
    )
    assert.ok(header.length <= MAX_LINK_HEADER_BYTES, `${header.length} bytes`)
    const links = rels(header)
    assert.ok(links.next?.startsWith('/v1/books?page=3&pageSize=1&'), header.slice(0, 80))
    assert.equal(new URL(links.next ?? '', 'http://x').searchParams.get('q'), long)
  })
})

/** The size of the response's header section as sent: status line, each header line, the blank line. */
function headerBytes(response: Response): number {
  let bytes = `HTTP/1.1 ${response.status} ${response.statusText}\r\n\r\n`.length
  for (const [name, value] of response.headers) bytes += Buffer.byteLength(`${name}: ${value}\r\n`)
  return bytes
}

for (const backend of BACKENDS) {
  describe(`Link headers on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    const long = '𝐀'.repeat(255)
    before(async () => {
      service = await startService(backend)
      for (let index = 0; index < 3; index++) {
        for (const book of [
          { title: `Unknown parameters ${index}`, author: 'Ann Link', published_date: '2001-01-01' },
          { title: long, author: long, published_date: '2001-01-01' },
        ]) {
          const created = await service.fetch('/v1/books', jsonRequest('POST', book))
          assert.equal(created.status, 201, await created.clone().text())
        }
      }
    })
    after(() => service?.close())

    it('when a 6 KB unknown parameter is sent, then the headers stay under 2 KB and every link answers', async () => {
      const response = await service.fetch(`/v1/books?author=ann%20link&pageSize=1&page=2&x=${'y'.repeat(6144)}`, {
        headers: { prefer: 'count=exact' },
      })
      assert.equal(response.status, 200)
      assert.ok(headerBytes(response) < 2048, `${headerBytes(response)} bytes of headers`)
      const links = rels(response.headers.get('link') ?? '')
      assert.deepEqual(Object.keys(links).sort(), ['first', 'last', 'next', 'prev'])
      for (const [relation, target] of Object.entries(links)) {
        assert.doesNotMatch(target, /x=/, relation)
        const followed = await service.fetch(target)
        assert.equal(followed.status, 200, relation)
        const [book] = await bodyOf(followed)
        assert.equal(book?.author, 'Ann Link', relation)
      }
    })

    it('when q and author are 255 four-byte letters, then Node reads the answer and its next link works', async () => {
      const filters = `q=${encodeURIComponent(long)}&author=${encodeURIComponent(long)}&pageSize=1`
      const response = await service.fetch(`/v1/books?${filters}&page=2`, { headers: { prefer: 'count=exact' } })
      assert.equal(response.status, 200)
      const header = response.headers.get('link') ?? ''
      assert.ok(header.length <= MAX_LINK_HEADER_BYTES, `${header.length} bytes of Link`)
      assert.equal(response.headers.get('x-total-count'), '3')
      const next = rels(header).next
      assert.ok(next, header.slice(0, 100))
      const followed = await service.fetch(next)
      assert.equal(followed.status, 200)
      assert.equal((await bodyOf(followed))[0]?.title, long)
    })

    it('when q and author are 255 four-byte letters and a 255-letter title is the cursor, then its next link works', async () => {
      const filters = `q=${encodeURIComponent(long)}&author=${encodeURIComponent(long)}&pageSize=1&sort=title`
      const response = await service.fetch(`/v1/books?${filters}`)
      const header = response.headers.get('link') ?? ''
      assert.ok(header.length <= MAX_LINK_HEADER_BYTES, `${header.length} bytes of Link`)
      const next = rels(header).next
      assert.ok(next?.includes('cursor='), header.slice(0, 100))
      const followed = await service.fetch(next ?? '')
      assert.equal(followed.status, 200)
      assert.equal((await bodyOf(followed))[0]?.title, long)
    })
  })
}
