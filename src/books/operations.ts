// The books' operations, each declared once: who may call it, and whether it only reads. The REST routes
// (http/routes.ts) and the RPC methods (rpc/service.ts) serve these; admission, the OpenAPI document and the
// tests read them here.
import { declareOperations } from '../admission/operation.ts'
import { requiresScope } from '../auth/access.ts'

const READ = requiresScope('books:read')
const WRITE = requiresScope('books:write')

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
  createBook: { summary: 'Create a book', access: WRITE, effect: 'write' },
  replaceBook: {
    summary: 'Replace a book',
    description:
      'A full replace: optional fields left out return to their defaults. The read-only id, created_at and ' +
      'updated_at may be sent back as read: they are ignored, and an id other than the one in the path is a 422.',
    access: WRITE,
    effect: 'write',
  },
  patchBook: {
    summary: 'Change some fields of a book',
    description:
      'A JSON Merge Patch (RFC 7396, `application/merge-patch+json`): each member replaces the book’s value and ' +
      'null clears an optional one; the book as changed is validated whole. Read-only members are refused. An ' +
      'empty patch, or one that changes nothing, writes nothing and answers the book with its current ETag.',
    access: WRITE,
    effect: 'write',
  },
  deleteBook: { summary: 'Delete a book', access: WRITE, effect: 'write' },
})
