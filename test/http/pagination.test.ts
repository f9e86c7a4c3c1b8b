import assert from 'node:assert/strict'
import { it } from 'node:test'
import { lastPage, paginationLinks } from '../../src/http/pagination.ts'
import { describe } from '../helpers/describe.ts'

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

describe('paginationLinks', () => {
  it('when on the first of several pages, then first, next and last', () => {
    assert.deepEqual(rels(paginationLinks('/v1/books', { page: 1, pageSize: 10 }, 25)), {
      first: '/v1/books?page=1&pageSize=10',
      next: '/v1/books?page=2&pageSize=10',
      last: '/v1/books?page=3&pageSize=10',
    })
  })

  it('when on a middle page, then prev and next surround it', () => {
    const links = rels(paginationLinks('/v1/books', { page: 2, pageSize: 10 }, 25))
    assert.equal(links.prev, '/v1/books?page=1&pageSize=10')
    assert.equal(links.next, '/v1/books?page=3&pageSize=10')
  })

  it('when on the last page, then no next', () => {
    const links = rels(paginationLinks('/v1/books', { page: 3, pageSize: 10 }, 25))
    assert.equal(links.next, undefined)
    assert.equal(links.prev, '/v1/books?page=2&pageSize=10')
  })

  it('when there are no rows, then only first and last, both page 1', () => {
    assert.deepEqual(rels(paginationLinks('/v1/books', { page: 1, pageSize: 10 }, 0)), {
      first: '/v1/books?page=1&pageSize=10',
      last: '/v1/books?page=1&pageSize=10',
    })
  })

  it('when past the end, then prev points at the last page', () => {
    assert.equal(rels(paginationLinks('/v1/books', { page: 9, pageSize: 10 }, 25)).prev, '/v1/books?page=3&pageSize=10')
  })

  it('when other parameters are present, then they are kept and encoded; undefined ones are dropped', () => {
    const links = rels(
      paginationLinks('/v1/books', { page: 1, pageSize: 5, sort: '-title', q: 'a&b c', author: undefined }, 6),
    )
    assert.equal(links.next, '/v1/books?page=2&pageSize=5&sort=-title&q=a%26b+c')
  })
})
