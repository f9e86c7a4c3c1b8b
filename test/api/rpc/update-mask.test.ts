// UpdateBook's update_mask (AIP-134): a mask writes only the fields it names, as PATCH does, clearing an optional
// one it names but leaves unset; no mask, or "*", replaces the whole book as before; on every protocol.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { create } from '@bufbuild/protobuf'
import { FieldMaskSchema } from '@bufbuild/protobuf/wkt'
import { BookInputSchema, BookStatus } from '../../../src/gen/books/v1/books_pb.js'
import { describe } from '../../helpers/describe.ts'
import {
  bookClient,
  fieldViolations,
  PROTOCOLS,
  quickBackend,
  type RpcService,
  rpcFailure,
  startRpcService,
} from '../../helpers/rpc-clients.ts'

const dune = {
  title: 'Dune',
  author: 'Frank Herbert',
  publishedDate: '1965-08-01',
  description: 'Spice and sand',
  imageUrl: 'https://covers.example.org/dune.jpg',
}
const mask = (...paths: string[]) => create(FieldMaskSchema, { paths })

describe('UpdateBook with an update_mask', () => {
  let service: RpcService
  before(async () => {
    service = await startRpcService(await quickBackend())
  })
  after(() => service?.close())

  for (const protocol of PROTOCOLS) {
    it(`when ${protocol} names title in the mask, then only the title changes and the version moves on`, async () => {
      const client = bookClient(service, protocol)
      const { book } = await client.createBook({ book: create(BookInputSchema, dune) })
      const updated = await client.updateBook({
        id: book?.id,
        book: create(BookInputSchema, { title: 'Dune Messiah' }),
        updateMask: mask('title'),
      })
      assert.equal(updated.book?.title, 'Dune Messiah')
      assert.equal(updated.book?.author, dune.author, 'a field outside the mask is kept though unset in book')
      assert.equal(updated.book?.description, dune.description)
      assert.equal(updated.book?.version, 2)
    })
  }

  it('when the mask names an optional field that book leaves unset, then it is cleared', async () => {
    const client = bookClient(service, 'connect-json')
    const { book } = await client.createBook({ book: create(BookInputSchema, dune) })
    const updated = await client.updateBook({
      id: book?.id,
      book: create(BookInputSchema, { status: BookStatus.VERIFIED }),
      updateMask: mask('description', 'status'),
    })
    assert.equal(updated.book?.description, undefined)
    assert.equal(updated.book?.status, BookStatus.VERIFIED)
    assert.equal(updated.book?.imageUrl, dune.imageUrl)
  })

  it('when there is no mask, or "*", then the book is replaced whole, as before', async () => {
    const client = bookClient(service, 'grpc')
    for (const updateMask of [undefined, mask('*')]) {
      const { book } = await client.createBook({ book: create(BookInputSchema, dune) })
      const updated = await client.updateBook({
        id: book?.id,
        book: create(BookInputSchema, { title: 'Children of Dune', author: 'F. Herbert', publishedDate: '1976-04-01' }),
        ...(updateMask === undefined ? {} : { updateMask }),
      })
      assert.equal(updated.book?.title, 'Children of Dune')
      assert.equal(updated.book?.description, undefined, 'an optional field left out returns to its default')
    }
  })

  it('when the mask names an unknown field, or leaves a required one unset, then INVALID_ARGUMENT per field', async () => {
    const client = bookClient(service, 'connect-json')
    const { book } = await client.createBook({ book: create(BookInputSchema, dune) })
    const unknown = await rpcFailure(
      client.updateBook({ id: book?.id, book: create(BookInputSchema, {}), updateMask: mask('title', 'isbn', 'id') }),
    )
    assert.equal(unknown.code, 3)
    assert.deepEqual(fieldViolations(unknown), { update_mask: 'Names no field of BookInput: isbn, id' })
    const required = await rpcFailure(
      client.updateBook({ id: book?.id, book: create(BookInputSchema, {}), updateMask: mask('title') }),
    )
    assert.equal(required.code, 3)
    assert.deepEqual(fieldViolations(required), { title: 'This field is required' })
    const unchanged = await client.getBook({ id: book?.id ?? '' })
    assert.equal(unchanged.book?.version, 1, 'nothing was written')
  })

  it('when expected_version is stale, then FAILED_PRECONDITION, with a mask as without', async () => {
    const client = bookClient(service, 'connect-binary')
    const { book } = await client.createBook({ book: create(BookInputSchema, dune) })
    const stale = await rpcFailure(
      client.updateBook({
        id: book?.id,
        book: create(BookInputSchema, { title: 'X' }),
        updateMask: mask('title'),
        expectedVersion: 7,
      }),
    )
    assert.equal(stale.code, 9)
  })
})
