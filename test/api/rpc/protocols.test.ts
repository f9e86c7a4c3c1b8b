// books.v1.BookService through Connect-ES clients over every protocol it is served in (Connect JSON and binary and
// gRPC-Web on the HTTP port, native gRPC on GRPC_PORT), on both backends; and one book through both doors, REST
// and RPC, seen the same from either.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { toJson } from '@bufbuild/protobuf'
import { timestampDate } from '@bufbuild/protobuf/wkt'
import { Code } from '@connectrpc/connect'
import { type Book, BookSchema, BookStatus } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import {
  type BookClient,
  bookClient,
  etagVersion,
  PROTOCOLS,
  type RpcService,
  restTimestamp,
  rpcFailure,
  startRpcService,
} from '../../helpers/rpc-clients.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason } from '../../helpers/service.ts'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

// Authors are letters and spaces: each protocol's books get an author of their own, so that a list filtered by
// it sees only that protocol's books.
const AUTHORS = {
  'connect-json': 'Json Pager',
  'connect-binary': 'Binary Pager',
  'grpc-web': 'Web Pager',
  grpc: 'Grpc Pager',
} as const

/** Every page of the list of books by `author`, two at a time, by next_page_token to the end. */
async function walk(client: BookClient, author: string): Promise<{ pages: Book[][]; tokens: string[] }> {
  const pages: Book[][] = []
  const tokens: string[] = []
  let pageToken = ''
  do {
    const page = await client.listBooks({ pageSize: 2, pageToken, author })
    pages.push(page.books)
    tokens.push(page.nextPageToken)
    pageToken = page.nextPageToken
    assert.ok(pages.length <= 5, 'the walk ends')
  } while (pageToken !== '')
  return { pages, tokens }
}

const asJson = (book: Book | undefined) => (book === undefined ? undefined : toJson(BookSchema, book))

for (const backend of BACKENDS) {
  describe(`books.v1.BookService over every protocol on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: RpcService
    before(async () => {
      service = await startRpcService(backend)
    })
    after(() => service?.close())

    for (const protocol of PROTOCOLS) {
      it(`when a ${protocol} client creates, reads, pages through, updates at a version and deletes, then each answer is the stored book`, async () => {
        const client = bookClient(service, protocol)
        const author = AUTHORS[protocol]
        const { book: created, replayed } = await client.createBook({
          book: {
            title: `  The Dispossessed over ${protocol} `,
            author,
            publishedDate: '1974-05-01',
            status: BookStatus.VERIFIED,
            imageUrl: 'https://covers.example.org/dispossessed.jpg',
            description: 'An ambiguous utopia',
          },
        })
        assert.ok(created)
        assert.equal(replayed, false)
        assert.match(created.id, UUID_V7)
        assert.equal(created.title, `The Dispossessed over ${protocol}`, 'trimmed as REST trims')
        assert.equal(created.status, BookStatus.VERIFIED)
        assert.equal(created.imageUrl, 'https://covers.example.org/dispossessed.jpg')
        assert.equal(created.description, 'An ambiguous utopia')
        assert.equal(created.version, 1)
        assert.ok(created.createdAt && created.updatedAt)
        assert.ok(Math.abs(timestampDate(created.createdAt).getTime() - Date.now()) < 60_000, 'created just now')

        const { book: read } = await client.getBook({ id: created.id })
        assert.deepEqual(asJson(read), asJson(created))

        const rest = [created.id]
        for (let i = 2; i <= 5; i++) {
          const { book } = await client.createBook({
            book: { title: `Book ${i}`, author, publishedDate: '2001-01-01' },
          })
          assert.ok(book)
          assert.equal(book.status, BookStatus.PENDING, 'an unset status is stored as pending')
          assert.equal(book.imageUrl, undefined)
          rest.push(book.id)
        }
        const { pages, tokens } = await walk(client, author)
        assert.deepEqual(
          pages.map((page) => page.length),
          [2, 2, 1],
        )
        assert.deepEqual(tokens.slice(0, 2).map(Boolean), [true, true], 'every page but the last has a token')
        assert.equal(tokens.at(-1), '', 'the last page has none')
        // Newest first, the default sort: each book once, in the reverse order of creation.
        assert.deepEqual(
          pages.flat().map((book) => book.id),
          [...rest].reverse(),
        )

        const { book: updated } = await client.updateBook({
          id: created.id,
          expectedVersion: 1,
          book: { title: 'The Dispossessed, revised', author, publishedDate: '1974-05-01' },
        })
        assert.ok(updated)
        assert.equal(updated.version, 2)
        assert.equal(updated.title, 'The Dispossessed, revised')
        assert.equal(updated.status, BookStatus.PENDING, 'a full replace: left out, the status is the default')
        assert.equal(updated.imageUrl, undefined, 'a full replace: left out, the image is gone')
        assert.equal(updated.id, created.id)
        assert.deepEqual(updated.createdAt, created.createdAt, 'created_at stays')
        assert.ok(
          updated.updatedAt && created.updatedAt && timestampDate(updated.updatedAt) > timestampDate(created.updatedAt),
          'updated_at moves on',
        )
        assert.deepEqual(asJson((await client.getBook({ id: created.id })).book), asJson(updated))

        const stale = await rpcFailure(
          client.updateBook({
            id: created.id,
            expectedVersion: 1,
            book: { title: 'Lost update', author, publishedDate: '1974-05-01' },
          }),
        )
        assert.equal(stale.code, Code.FailedPrecondition)
        assert.equal((await client.getBook({ id: created.id })).book?.title, 'The Dispossessed, revised')

        assert.equal(
          (await rpcFailure(client.deleteBook({ id: created.id, expectedVersion: 1 }))).code,
          Code.FailedPrecondition,
        )
        await client.deleteBook({ id: created.id, expectedVersion: 2 })
        assert.equal((await rpcFailure(client.getBook({ id: created.id }))).code, Code.NotFound)
        assert.equal((await rpcFailure(client.deleteBook({ id: created.id }))).code, Code.NotFound)
      })
    }

    it('when ListBooks lists a book, then the item is the book GetBook returns, its version included', {}, async () => {
      const client = bookClient(service, 'grpc')
      const input = { title: 'The Word for World Is Forest', author: 'Version Lister', publishedDate: '1972-01-01' }
      const { book: created } = await client.createBook({ book: input })
      assert.ok(created)
      const { book: updated } = await client.updateBook({ id: created.id, book: input, expectedVersion: 1 })
      const { books } = await client.listBooks({ author: 'Version Lister' })
      assert.equal(books.length, 1)
      assert.deepEqual(asJson(books[0]), asJson(updated))
    })

    it('when a book is written over REST, then GetBook over gRPC returns the same fields at the version its ETag names', async () => {
      const posted = await service.fetch(
        '/v1/books',
        jsonRequest('POST', { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }),
      )
      assert.equal(posted.status, 201)
      const { id } = await bodyOf(posted)
      // Written twice, so that the version compared is not the 1 every new book has.
      const put = await service.fetch(
        `/v1/books/${id}`,
        jsonRequest(
          'PUT',
          {
            title: 'Kindred',
            author: 'Octavia E. Butler',
            published_date: '1979-06-01',
            status: 'verified',
            image_url: 'https://covers.example.org/kindred.jpg',
            description: 'Dana goes back',
          },
          { 'if-match': posted.headers.get('etag') ?? '' },
        ),
      )
      assert.equal(put.status, 200)
      const stored = await bodyOf(put)
      const { book } = await bookClient(service, 'grpc').getBook({ id })
      assert.ok(book?.createdAt && book.updatedAt)
      assert.deepEqual(
        {
          id: book.id,
          title: book.title,
          author: book.author,
          published_date: book.publishedDate,
          status: BookStatus[book.status].toLowerCase(),
          image_url: book.imageUrl ?? null,
          description: book.description ?? null,
          created_by: book.createdBy ?? null,
          created_at: restTimestamp(book.createdAt),
          updated_at: restTimestamp(book.updatedAt),
        },
        stored,
      )
      assert.equal(book.version, etagVersion(put))
      assert.equal(book.version, 2)
    })

    it('when a book is written over RPC, then REST GET returns it with its version as the ETag', async () => {
      const client = bookClient(service, 'connect-binary')
      const { book: created } = await client.createBook({
        book: { title: 'Parable of the Sower', author: 'Octavia E. Butler', publishedDate: '1993-10-01' },
      })
      assert.ok(created)
      const { book } = await client.updateBook({
        id: created.id,
        expectedVersion: created.version,
        book: { title: 'Parable of the Sower', author: 'Octavia E. Butler', publishedDate: '1993-10-01' },
      })
      assert.ok(book?.createdAt && book.updatedAt)
      const response = await service.fetch(`/v1/books/${created.id}`)
      assert.equal(response.status, 200)
      assert.equal(etagVersion(response), book.version)
      assert.equal(book.version, 2)
      assert.deepEqual(await bodyOf(response), {
        id: created.id,
        title: 'Parable of the Sower',
        author: 'Octavia E. Butler',
        published_date: '1993-10-01',
        status: 'pending',
        image_url: null,
        description: null,
        created_by: null,
        created_at: restTimestamp(book.createdAt),
        updated_at: restTimestamp(book.updatedAt),
      })
    })

    it('when REST PUT sends If-Match with the version RPC read, then it replaces the book; that version again gets 412', async () => {
      const client = bookClient(service, 'grpc-web')
      const input = { title: 'Lilith’s Brood', author: 'Octavia E. Butler', publishedDate: '2000-06-01' }
      const { book: created } = await client.createBook({ book: input })
      assert.ok(created)
      const { book: read } = await client.getBook({ id: created.id })
      assert.ok(read)
      const replace = (ifMatch: string) =>
        service.fetch(
          `/v1/books/${created.id}`,
          jsonRequest(
            'PUT',
            { title: 'Xenogenesis', author: input.author, published_date: input.publishedDate },
            { 'if-match': ifMatch },
          ),
        )
      const replaced = await replace(`"${read.version}"`)
      assert.equal(replaced.status, 200)
      assert.equal(etagVersion(replaced), read.version + 1)
      assert.equal((await replace(`"${read.version}"`)).status, 412)
      const { book: after } = await client.getBook({ id: created.id })
      assert.equal(after?.title, 'Xenogenesis')
      assert.equal(after?.version, read.version + 1)
    })
  })
}
