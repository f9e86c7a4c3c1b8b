// The list's keyset cursor: a position in index order (the sort key and the id), opaque to clients.
import { type ListQuery, SORTS } from './schemas.ts'

type Sort = ListQuery['sort']

/**
 * A position in the list in `sort` order. `after` pages read the rows after the position, `before` pages the rows
 * before it; a `before` cursor without a position starts from the end (the last page).
 */
export type Cursor =
  | { sort: Sort; direction: 'after'; key: string; id: string }
  | { sort: Sort; direction: 'before'; key: string; id: string }
  | { sort: Sort; direction: 'before'; key: null; id: null }

const VERSION = 1
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/*
 * No signature. A cursor is not a capability: it names a place in a list the caller may read from any place
 * anyway (the filters, not the cursor, decide what is visible), so a forged cursor can only start the walk
 * somewhere else. What must not happen is a cursor that reaches the database as something it cannot parse
 * (a 500) or that differs between replicas: so decoding is strict (canonical base64url, one JSON shape, a key
 * valid for its sort), and a cursor issued by one replica is taken by every other, with no shared secret to
 * configure or rotate.
 */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([VERSION, cursor.sort, cursor.direction, cursor.key, cursor.id])).toString(
    'base64url',
  )
}

/** The cursor a client sent, or `undefined` when it is not one this service issues. */
export function decodeCursor(text: string): Cursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64url')
  if (bytes.toString('base64url') !== text) return undefined
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
  if (!Array.isArray(value) || value.length !== 5) return undefined
  const [version, sort, direction, key, id] = value as unknown[]
  if (version !== VERSION || !SORTS.includes(sort as Sort)) return undefined
  const typedSort = sort as Sort
  if (direction === 'before' && key === null && id === null) return { sort: typedSort, direction, key, id }
  if (direction !== 'after' && direction !== 'before') return undefined
  if (typeof id !== 'string' || !UUID.test(id)) return undefined
  if (typeof key !== 'string' || !validKey(typedSort, key)) return undefined
  return { sort: typedSort, direction, key, id }
}

function validKey(sort: Sort, key: string): boolean {
  switch (sort.replace('-', '')) {
    case 'created_at': {
      const match = TIMESTAMP.exec(key)
      return match !== null && validCalendarDate(match) && validTime(match)
    }
    case 'published_date': {
      const match = DATE.exec(key)
      return match !== null && validCalendarDate(match)
    }
    default: {
      // What the title column can hold (its CHECK): 1 to 255 characters, no NUL, no lone surrogate.
      const length = [...key].length
      return length >= 1 && length <= 255 && !key.includes('\u0000') && key.isWellFormed()
    }
  }
}

function validCalendarDate(match: RegExpExecArray): boolean {
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (year < 1 || month < 1 || month > 12 || day < 1) return false
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(0)
  date.setUTCFullYear(year, month, 0)
  return day <= date.getUTCDate()
}

function validTime(match: RegExpExecArray): boolean {
  return Number(match[4]) < 24 && Number(match[5]) < 60 && Number(match[6]) < 60
}
