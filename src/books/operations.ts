// The books' operations, each declared once: who may call it, and whether it only reads. The REST routes
// (http/routes.ts) and the RPC methods (rpc/service.ts) serve these; admission, the OpenAPI document and the
// tests read them here.
import { declareOperations } from '../admission/operation.ts'
import { requiresScope } from '../auth/access.ts'
import { ADMIN_SCOPE, VERIFY_SCOPE } from './policy.ts'

const READ = requiresScope('books:read')
// books:write creates books and changes the caller's own; books:admin any book. Which book a caller may change is
// the book's (policy.ts), checked by the use case once the book is read.
const WRITE = requiresScope('books:write', ADMIN_SCOPE)
// books:verify also changes books, but only their status.
const CHANGE = requiresScope('books:write', VERIFY_SCOPE, ADMIN_SCOPE)

/** What every write's description ends with: who may change which book. */
const OWNERS =
  ' In jwt mode, only the book’s creator (`created_by`) or a caller with books:admin may change it, else 403; ' +
  'books created before owners were recorded have no creator, and only books:admin may change them.'
const VERIFIED =
  ' Setting `status` to `verified` needs books:verify or books:admin (else 403 naming `status`); books:verify ' +
  'changes the status, and only the status, of any book. The creator may set it back to `pending`.'

export const BOOK_OPERATIONS = declareOperations({
  listBooks: {
    summary: 'List books',
    description:
      'One page of books, filtered and sorted; ties are broken by id so pages never overlap. The `next` and ' +
      '`prev` links carry a cursor, a position in the sort index: every page costs what the first one does, ' +
      'and a walk by cursor skips and repeats no book while others are written (books written during the walk ' +
      'may or may not appear). Nothing is counted unless `Prefer: count=…` asks for it.',
    access: READ,
    effect: 'read',
  },
  getBook: { summary: 'Read a book', access: READ, effect: 'read' },
  createBook: {
    summary: 'Create a book',
    description:
      'In jwt mode the book records its creator, the token’s subject, as `created_by`.' +
      ' Creating it `verified` needs books:verify or books:admin (else 403 naming `status`).',
    access: WRITE,
    effect: 'write',
  },
  replaceBook: {
    summary: 'Replace a book',
    description:
      'A full replace: optional fields left out return to their defaults. The read-only id, created_by, ' +
      'created_at and updated_at may be sent back as read: they are ignored, and an id other than the one in the ' +
      'path is a 422.' +
      OWNERS +
      VERIFIED,
    access: CHANGE,
    effect: 'write',
  },
  patchBook: {
    summary: 'Change some fields of a book',
    description:
      'A JSON Merge Patch (RFC 7396, `application/merge-patch+json`): each member replaces the book’s value and ' +
      'null clears an optional one; the book as changed is validated whole. Read-only members are refused. An ' +
      'empty patch, or one that changes nothing, writes nothing and answers the book with its current ETag.' +
      OWNERS +
      VERIFIED,
    access: CHANGE,
    effect: 'write',
  },
  deleteBook: { summary: 'Delete a book', description: OWNERS.trim(), access: WRITE, effect: 'write' },
})
