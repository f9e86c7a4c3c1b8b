// The baseline of the outbox's cost: a write statement of src/books/repository.ts with its event's insert taken out
// and nothing else changed (the same change, the same CTE, the same answer). Derived from the statement rather
// than written again, so that the two cannot drift apart; should the statement's shape change, the benchmark stops
// here instead of measuring something else.
import { BOOK_SQL } from '../src/books/repository.ts'

const CHANGE = 'WITH changed AS ('
const EVENT = '), event AS ('
const ANSWER = /^SELECT [\w, ]+ FROM changed;?$/

/** `statement` (BOOK_SQL's shape, its parameters numbered or bound to values) without its `event` CTE. */
export function withoutEvent(statement: string): string {
  const text = statement.trim()
  const eventAt = text.indexOf(EVENT)
  const answerAt = text.lastIndexOf('SELECT ')
  const event = text.slice(eventAt + EVENT.length, answerAt)
  const answer = text.slice(answerAt)
  if (!text.startsWith(CHANGE) || eventAt < 0 || !/INSERT INTO book_events\b/.test(event) || !ANSWER.test(answer)) {
    throw new Error(`not a write with its event (WITH changed AS (…), event AS (INSERT INTO book_events …)):\n${text}`)
  }
  return `${text.slice(0, eventAt)})\n     ${answer}`
}

/** The service's create (the book and its event), and the same create without the event: $1–$7 of the first. */
export const CREATE_SQL = {
  withEvent: BOOK_SQL.insert,
  withoutEvent: withoutEvent(BOOK_SQL.insert),
} as const
// Its two parameters went with the event: the create without it takes seven.
if (/\$(8|9)\b/.test(CREATE_SQL.withoutEvent)) {
  throw new Error('the create without its event still names the event parameters $8, $9')
}
