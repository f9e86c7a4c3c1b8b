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
  if (!text.startsWith(CHANGE) || eventAt < 0 || !/INSERT INTO outbox\b/.test(event) || !ANSWER.test(answer)) {
    throw new Error(`not a write with its event (WITH changed AS (…), event AS (INSERT INTO outbox …)):\n${text}`)
  }
  return `${text.slice(0, eventAt)})\n     ${answer}`
}

/** The numbers of the placeholders in `text`, ascending. */
const placeholdersOf = (text: string): number[] =>
  [...new Set([...text.matchAll(/\$(\d+)/g)].map((match) => Number(match[1])))].sort((a, b) => a - b)

/**
 * How many of `statement`'s parameters its text without the event takes: the event's own must be the last ones,
 * so that the others keep their numbers and the statement's parameters, cut short, are the baseline's.
 */
function parametersWithoutEvent(statement: string, baseline: string): number {
  const all = placeholdersOf(statement)
  const kept = placeholdersOf(baseline)
  const numberedFromOne = (numbers: number[]) => numbers.every((number, index) => number === index + 1)
  if (!numberedFromOne(all) || !numberedFromOne(kept) || kept.length === all.length) {
    throw new Error(`the event's parameters are not the last of the statement's:\n${statement}`)
  }
  return kept.length
}

const withoutEventText = withoutEvent(BOOK_SQL.insert)
const withoutEventCount = parametersWithoutEvent(BOOK_SQL.insert, withoutEventText)

/** The service's create (the book and its event), and the same create without the event. */
export const CREATE_SQL = {
  withEvent: BOOK_SQL.insert,
  withoutEvent: withoutEventText,
  /** The create's parameters (insertParameters) as the create without the event takes them: the event's left out. */
  withoutEventParameters: (parameters: readonly unknown[]): unknown[] => parameters.slice(0, withoutEventCount),
} as const
