// The list cursor: what it encodes comes back unchanged, and anything it did not encode is refused; and the Prefer
// header's count preference.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import fc from 'fast-check'
import { type Cursor, decodeCursor, encodeCursor } from '../../../src/books/cursor.ts'
import { countPreference } from '../../../src/books/http/prefer.ts'
import { SORTS } from '../../../src/books/schemas.ts'
import { describe } from '../../helpers/describe.ts'

const ID = '019a2b3c-4d5e-7f60-8a1b-2c3d4e5f6a7b'
const KEYS: Record<string, string> = {
  created_at: '2026-12-01T10:51:00.682191Z',
  published_date: '0001-02-28',
  title: 'The Hobbit, or There and Back Again 𝐀 日本',
}
const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

describe('list cursors', () => {
  for (const sort of SORTS) {
    for (const direction of ['after', 'before'] as const) {
      it(`when a ${direction} cursor of sort ${sort} is encoded, then it decodes to the same position`, () => {
        const cursor: Cursor = { sort, direction, key: KEYS[sort.replace('-', '')] as string, id: ID }
        const text = encodeCursor(cursor)
        assert.match(text, /^[A-Za-z0-9_-]+$/)
        assert.deepEqual(decodeCursor(text), cursor)
      })
    }
  }

  it('when the cursor of the end is encoded, then it decodes to the end', () => {
    const end: Cursor = { sort: 'title', direction: 'before', key: null, id: null }
    assert.deepEqual(decodeCursor(encodeCursor(end)), end)
  })

  const valid = encodeCursor({ sort: 'title', direction: 'after', key: 'a', id: ID })
  const tampered: [string, string][] = [
    ['empty', ''],
    ['not base64url', `${valid}=`],
    ['non-canonical base64url (one more trailing character)', `${valid}A`],
    ['truncated', valid.slice(0, -3)],
    ['not JSON', Buffer.from('[1, "title"').toString('base64url')],
    ['not UTF-8', Buffer.from([0x5b, 0xff, 0x5d]).toString('base64url')],
    ['an object, not the array', forge({ sort: 'title', key: 'a', id: ID })],
    ['another version', forge([2, 'title', 'after', 'a', ID])],
    ['an extra member', forge([1, 'title', 'after', 'a', ID, 'x'])],
    ['an unknown sort', forge([1, 'author', 'after', 'a', ID])],
    ['an unknown direction', forge([1, 'title', 'sideways', 'a', ID])],
    ['an after cursor without a position', forge([1, 'title', 'after', null, null])],
    ['an id that is no UUID', forge([1, 'title', 'after', 'a', 'x'])],
    ['an upper-case id (never issued)', forge([1, 'title', 'after', 'a', ID.toUpperCase()])],
    ['a number for a key', forge([1, 'title', 'after', 7, ID])],
    ['an empty title', forge([1, 'title', 'after', '', ID])],
    ['a title of 256 characters', forge([1, 'title', 'after', 'x'.repeat(256), ID])],
    ['a title with NUL', forge([1, 'title', 'after', 'a\u0000b', ID])],
    ['a title with a lone surrogate', forge([1, 'title', 'after', 'a\uD800', ID])],
    ['a date that is not in the calendar', forge([1, 'published_date', 'after', '2023-02-29', ID])],
    ['year 0000', forge([1, 'published_date', 'after', '0000-01-01', ID])],
    ['a date for created_at', forge([1, 'created_at', 'after', '2023-01-01', ID])],
    ['a timestamp in milliseconds', forge([1, '-created_at', 'after', '2023-01-01T00:00:00.000Z', ID])],
    ['a timestamp at hour 24', forge([1, '-created_at', 'after', '2023-01-01T24:00:00.000000Z', ID])],
    ['a timestamp with an offset', forge([1, '-created_at', 'after', '2023-01-01T00:00:00.000000+01:00', ID])],
    ['too long', 'A'.repeat(4100)],
  ]
  for (const [what, text] of tampered) {
    it(`when a cursor is ${what}, then it is refused`, () => {
      assert.equal(decodeCursor(text), undefined)
    })
  }

  it('when any string is decoded, then it is refused or is the canonical encoding of a valid cursor', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: fc.constantFrom(...'AZaz09-_=+/'.split('')) }), fc.string(), fc.base64String()),
        (text) => {
          const cursor = decodeCursor(text)
          if (cursor !== undefined) assert.equal(encodeCursor(cursor), text)
        },
      ),
      { numRuns: 2000 },
    )
  })
})

describe('the count preference', () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['count=exact', 'exact'],
    ['count=planned', 'planned'],
    ['count=estimated', 'estimated'],
    ['return=minimal, count=exact', 'exact'],
    ['Count = EXACT', 'exact'],
    ['count=exact; strict', 'exact'],
    ['count=all', undefined],
    ['count', undefined],
    ['handling=strict', undefined],
  ]
  for (const [header, expected] of cases) {
    it(`when Prefer is ${JSON.stringify(header)}, then the count is ${expected ?? 'not asked for'}`, () => {
      assert.equal(countPreference(header), expected)
    })
  }
})
