// The books API's shapes: what clients send, what they get back, and the list's query string.
import { type Static, Type } from 'typebox'
import { ERROR_MESSAGE, Nullable } from '../schema/keywords.ts'

export const BOOK_STATUSES = ['pending', 'verified'] as const
/** A book's status when its input names none: the schema fills it in, and the repository for input made in code. */
export const DEFAULT_STATUS = 'pending' satisfies (typeof BOOK_STATUSES)[number]
export const SORTS = ['created_at', '-created_at', 'published_date', '-published_date', 'title', '-title'] as const

// The canonical 8-4-4-4-12 form, either case: the uuid format alone also takes a `urn:uuid:` prefix, which the
// uuid column refuses.
const UUID_PATTERN = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
const Id = Type.String({
  format: 'uuid',
  pattern: UUID_PATTERN,
  description: 'UUID v7, server-generated',
  [ERROR_MESSAGE]: 'Must be a UUID',
})
const Status = Type.Enum(BOOK_STATUSES, { description: 'Review state of the record' })

// Server-set members. readOnly: the server owns them; input that carries them cannot change them.
const ReadOnlyId = { ...Id, readOnly: true }
const Timestamp = Type.String({
  format: 'date-time',
  readOnly: true,
  description: 'RFC 3339, UTC, to the microsecond; server-set',
  examples: ['2026-03-14T09:26:53.589793Z'],
})
const CreatedBy = Nullable(
  Type.String({
    readOnly: true,
    description:
      'The subject (`sub`) of the token that created the book; null without authentication and for books created ' +
      'before owners were recorded. Only the creator, or a caller with books:admin, may change or delete the book.',
  }),
)

// Text PostgreSQL can store as sent: no NUL and no lone UTF-16 surrogate (which would turn into U+FFFD).
const TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$'
const TEXT_MESSAGE = 'Must be text without NUL characters or unpaired surrogates'
// Titles are one line: no control characters either.
const LINE_PATTERN = '^[^\\p{Cc}\\uD800-\\uDFFF]*$'

// The date format checks the calendar (2023-02-30 fails) but takes year 0000, which PostgreSQL's date refuses.
const DATE_PATTERN = '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}$'
// The uri format takes an empty host ("http://"): a host, a bracketed IP literal or a name, is required here.
const WEB_URL_PATTERN = '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#@]*@)?(\\[[0-9A-Fa-f:.]+\\]|[^/?#@:\\[\\]]+)(:[0-9]*)?([/?#]|$)'

// Letters of any script, combining marks, spaces, dots, apostrophes and hyphens.
const AUTHOR_PATTERN = "^[\\p{L}\\p{M}][\\p{L}\\p{M} .'\\u2019-]*$"

export const BookInput = Type.Object(
  {
    title: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: LINE_PATTERN,
      examples: ['The Hobbit'],
      [ERROR_MESSAGE]: 'Must be a single line of text without control characters',
    }),
    // Optional since the Go series' V3 contract, which has none: null when left out.
    author: Type.Optional(
      Nullable(
        Type.String({
          minLength: 1,
          maxLength: 255,
          pattern: AUTHOR_PATTERN,
          examples: ['J. R. R. Tolkien'],
          [ERROR_MESSAGE]: 'Must contain only letters, spaces, dots, apostrophes and hyphens',
        }),
      ),
    ),
    published_date: Type.String({
      format: 'date',
      pattern: DATE_PATTERN,
      description: 'Calendar date, YYYY-MM-DD, year 0001 to 9999',
      examples: ['1937-09-21'],
      [ERROR_MESSAGE]: 'Must be a valid date',
    }),
    status: Type.Optional({ ...Status, default: DEFAULT_STATUS }),
    image_url: Type.Optional(
      Nullable(
        Type.String({
          maxLength: 2048,
          format: 'uri',
          pattern: WEB_URL_PATTERN,
          description: 'An absolute http or https URL',
          examples: ['https://covers.example.org/hobbit.jpg'],
          [ERROR_MESSAGE]: 'Must be a valid URL',
        }),
      ),
    ),
    description: Type.Optional(
      Nullable(Type.String({ maxLength: 5000, pattern: TEXT_PATTERN, [ERROR_MESSAGE]: TEXT_MESSAGE })),
    ),
  },
  { title: 'BookInput', additionalProperties: false },
)
export type BookInput = Static<typeof BookInput>

export const Book = Type.Object(
  {
    id: ReadOnlyId,
    title: Type.String(),
    author: Nullable(Type.String()),
    published_date: Type.String({ format: 'date' }),
    status: Status,
    image_url: Nullable(Type.String()),
    description: Nullable(Type.String()),
    created_by: CreatedBy,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { title: 'Book', additionalProperties: false },
)
export type Book = Static<typeof Book>

/**
 * A PUT body: the input fields plus the read-only members a GET returned, so that a client can send back what it
 * read. Only PUT takes them: a create has no id to match them against, and POST keeps rejecting them as unknown.
 */
export const BookReplacement = Type.Object(
  {
    ...BookInput.properties,
    id: Type.Optional(ReadOnlyId),
    created_by: Type.Optional(CreatedBy),
    created_at: Type.Optional(Timestamp),
    updated_at: Type.Optional(Timestamp),
  },
  { title: 'BookReplacement', additionalProperties: false },
)
export type BookReplacement = Static<typeof BookReplacement>

/**
 * A PATCH body (JSON Merge Patch, RFC 7396): any of the input fields, each replacing the book's value, and null
 * clearing an optional one. The read-only members are named so that the answer can say why they are refused.
 */
export const BookPatch = Type.Object(
  {
    ...Type.Partial(BookInput).properties,
    id: Type.Optional(ReadOnlyId),
    created_by: Type.Optional(CreatedBy),
    created_at: Type.Optional(Timestamp),
    updated_at: Type.Optional(Timestamp),
  },
  {
    title: 'BookPatch',
    description:
      'The members to change: each replaces the book’s value, and null clears an optional one. The book as ' +
      'changed must be valid as a whole. An empty patch changes nothing and answers the book.',
    additionalProperties: false,
  },
)
export type BookPatch = Static<typeof BookPatch>

export const BookParams = Type.Object({ id: Id })

/** A client's key for a create it may retry: with the same input, the first answer comes back for 24 hours. */
export const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Makes a retried create safe: the same key and body replay the first answer for 24 hours',
  [ERROR_MESSAGE]: 'Must be 1 to 255 visible ASCII characters',
})

export const ListQuery = Type.Object({
  // Bounded so that the OFFSET stays a number PostgreSQL can take.
  page: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 1,
    description:
      'Page number, for clients of the Go service. The database walks past every row before the page, so a ' +
      'request costs in proportion to (page - 1) × pageSize; follow the cursor links instead. Not above 1 with `cursor`.',
    [ERROR_MESSAGE]: 'Must be an integer between 1 and 1000000',
  }),
  cursor: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      description:
        'Opaque position in the list, taken from a `Link` (next, prev, last) of the same sort; a request costs ' +
        'what its page costs wherever it is. A cursor this service did not issue, or one of another sort, is a 422.',
    }),
  ),
  pageSize: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 10,
    [ERROR_MESSAGE]: 'Must be an integer between 1 and 100',
  }),
  sort: Type.Enum(SORTS, { default: '-created_at' }),
  author: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: TEXT_PATTERN,
      description: 'Exact author, any case',
      [ERROR_MESSAGE]: TEXT_MESSAGE,
    }),
  ),
  status: Type.Optional(Status),
  q: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: TEXT_PATTERN,
      description: 'Substring of the title, any case',
      [ERROR_MESSAGE]: TEXT_MESSAGE,
    }),
  ),
})
export type ListQuery = Static<typeof ListQuery>
