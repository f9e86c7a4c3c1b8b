// Who may write what of a book, beyond the operation's scope that admission checks: the book's owner (OWASP API1,
// object level) and who may set it verified (API3, property level). Pure decisions over the caller and the book
// before and after the write; the use cases (books.ts) ask them in the write's transaction, and every door maps a
// refusal to its own "forbidden".
import { isDeepStrictEqual } from 'node:util'
import type { Book, BookInput } from './schemas.ts'

/** Changes and deletes any book, and may set any status. */
export const ADMIN_SCOPE = 'books:admin'
/** Changes the status, and only the status, of any book: the verification service's scope. */
export const VERIFY_SCOPE = 'books:verify'

/** Who asks for a write: the token's subject and scopes. Without authentication there is none, and nothing to check. */
export interface Writer {
  readonly subject: string
  readonly scopes: ReadonlySet<string>
}

/** A write the caller's scope allowed but this book does not: why, and per field when a field is the reason. */
export interface Forbidden {
  outcome: 'forbidden'
  reason: string
  errors?: Record<string, string>
}

const mayVerify = (writer: Writer) => writer.scopes.has(VERIFY_SCOPE) || writer.scopes.has(ADMIN_SCOPE)

const verifiedRefused = (): Forbidden => ({
  outcome: 'forbidden',
  reason: 'only a caller with books:verify or books:admin may set a book verified',
  errors: { status: 'Only a caller with books:verify or books:admin may set it to verified' },
})

/** Whether `writer` may create a book from `input`: anyone with the operation's scope, but verified needs more. */
export function createRefusal(writer: Writer | undefined, input: BookInput): Forbidden | undefined {
  if (writer === undefined || input.status !== 'verified' || mayVerify(writer)) return undefined
  return verifiedRefused()
}

/**
 * Whether `writer` may change `before` into `after` (the input it would write), or delete it (`after` undefined).
 * The creator may change their book, except to set it verified; books:admin anything; books:verify the status of
 * any book, and nothing else. A book with no creator is nobody's: only books:admin changes more than its status.
 */
export function changeRefusal(
  writer: Writer | undefined,
  before: Book,
  after: Readonly<Record<keyof BookInput, unknown>> | undefined,
): Forbidden | undefined {
  if (writer === undefined || writer.scopes.has(ADMIN_SCOPE)) return undefined
  const owner = before.created_by !== null && before.created_by === writer.subject
  if (!owner) {
    const onlyStatus =
      after !== undefined &&
      (Object.keys(after) as (keyof BookInput)[]).every(
        (member) => member === 'status' || isDeepStrictEqual(after[member] ?? null, before[member] ?? null),
      )
    if (onlyStatus && writer.scopes.has(VERIFY_SCOPE)) return undefined
    return {
      outcome: 'forbidden',
      reason:
        before.created_by === null
          ? 'the book has no recorded creator: only a caller with books:admin may change or delete it'
          : 'only the book’s creator, or a caller with books:admin, may change or delete it',
    }
  }
  if (after?.status === 'verified' && before.status !== 'verified' && !mayVerify(writer)) return verifiedRefused()
  return undefined
}
