// The books routes' request and response headers, as schemas: Fastify validates and serialises with them, and
// the OpenAPI document shows them.
import { Type } from 'typebox'
import { ESTIMATED_COUNT_THRESHOLD } from '../books.ts'
import { IdempotencyKey } from '../schemas.ts'

export const ETAG = {
  etag: { type: 'string', required: true, description: 'Strong entity tag of this version of the book' },
} as const
export const LOCATION = {
  location: { type: 'string', required: true, description: 'Path of the created book' },
  ...ETAG,
} as const
export const REPLAYED = {
  'idempotent-replayed': { type: 'string', description: '"true" when this is the stored answer to an earlier request' },
} as const

export const IfNoneMatch = Type.Object({
  'if-none-match': Type.Optional(Type.String({ description: 'ETags the client has; 304 when one is current' })),
})
export const IfMatch = Type.Object({
  'if-match': Type.Optional(
    Type.String({ description: 'Change only if the book is at one of these ETags (* for any); else 412' }),
  ),
})

export const IdempotencyKeyHeader = Type.Object({ 'idempotency-key': Type.Optional(IdempotencyKey) })

export const PAGE_HEADERS = {
  link: {
    type: 'string',
    required: true,
    description:
      'RFC 8288 links: first, and prev and next (by cursor) where there are rows there; last only with an exact count',
  },
  'x-total-count': {
    type: 'integer',
    description: `Books matching the filters, on all pages: only when counted exactly (Prefer: count=exact, or count=estimated up to ${ESTIMATED_COUNT_THRESHOLD})`,
  },
  'x-total-count-estimate': {
    type: 'integer',
    description: `The planner's estimate of the books matching the filters (Prefer: count=planned, or count=estimated above ${ESTIMATED_COUNT_THRESHOLD})`,
  },
  'preference-applied': { type: 'string', description: 'The count preference honoured (RFC 7240), e.g. count=exact' },
  vary: { type: 'string', description: 'Prefer: the count depends on it' },
} as const

export const ListHeaders = Type.Object({
  prefer: Type.Optional(
    Type.String({
      description:
        'RFC 7240 preferences; the list honours count=exact (counts every match, in the snapshot of the page: ' +
        'costs in proportion to the matches), count=planned (the planner estimate, constant cost) and ' +
        `count=estimated (exact up to ${ESTIMATED_COUNT_THRESHOLD} matches, planned above). Without it nothing is counted.`,
      examples: ['count=exact'],
    }),
  ),
})
