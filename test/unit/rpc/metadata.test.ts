// The gRPC port's view of a call's metadata (src/rpc/pipeline/metadata.ts) against a Headers made of the same
// header object: every read must give what the Headers gives, before and after a change.
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http2'
import { it } from 'node:test'
import { Metadata } from '../../../src/rpc/pipeline/metadata.ts'
import { describe } from '../../helpers/describe.ts'

/** A header object as node:http2 hands it over: pseudo-headers, lower-case names, repeated ones as arrays. */
const incoming = (): IncomingHttpHeaders => ({
  ':method': 'POST',
  ':path': '/books.v1.BookService/GetBook',
  ':authority': 'localhost:9090',
  'content-type': 'application/grpc',
  authorization: 'Bearer abc.def.ghi',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  'x-tag': ['one', 'two'] as unknown as string,
})

/** What a Headers of undici's holds of the same object: the metadata, without HTTP/2's pseudo-headers. */
function reference(headers: IncomingHttpHeaders): Headers {
  const expected = new Headers()
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) expected.append(name, item)
  }
  return expected
}

const NAMES = ['content-type', 'Authorization', 'TRACEPARENT', 'x-tag', 'absent', ':path', ':authority']

describe('the metadata of a gRPC call, as the Headers interceptors read', () => {
  it('when a name is looked up in any case, then get and has answer as a Headers of the same metadata', () => {
    const metadata = new Metadata(incoming())
    const expected = reference(incoming())
    for (const name of NAMES) {
      assert.equal(metadata.get(name), name.startsWith(':') ? null : expected.get(name), name)
      assert.equal(metadata.has(name), name.startsWith(':') ? false : expected.has(name), name)
    }
    assert.equal(metadata.get('x-tag'), 'one, two', 'repeated metadata is one value, comma-joined')
  })

  it('when it is walked, then it yields the entries, keys and values of the Headers, pseudo-headers left out', () => {
    const metadata = new Metadata(incoming())
    const expected = reference(incoming())
    assert.deepEqual([...metadata], [...expected])
    assert.deepEqual([...metadata.entries()], [...expected.entries()])
    assert.deepEqual([...metadata.keys()], [...expected.keys()])
    assert.deepEqual([...metadata.values()], [...expected.values()])
    const seen: [string, string][] = []
    metadata.forEach((value, name, parent) => {
      assert.equal(parent, metadata, 'forEach hands over the metadata itself')
      seen.push([name, value])
    })
    assert.deepEqual(seen, [...expected])
    assert.ok(!seen.some(([name]) => name.startsWith(':')))
  })

  it('when it is changed, then every later read sees the change, and the header object stays as it was', () => {
    const headers = incoming()
    const metadata = new Metadata(headers)
    const expected = reference(incoming())
    for (const target of [metadata, expected]) {
      target.set('Authorization', 'Bearer other')
      target.append('x-tag', 'three')
      target.delete('traceparent')
      target.append('x-added', 'yes')
    }
    for (const name of [...NAMES, 'x-added']) {
      assert.equal(metadata.get(name), name.startsWith(':') ? null : expected.get(name), name)
    }
    assert.deepEqual([...metadata], [...expected])
    assert.deepEqual(headers, incoming(), 'the stream’s own header object is not touched')
  })

  it('when an invalid name is set, then it throws as a Headers does', () => {
    const metadata = new Metadata(incoming())
    assert.throws(() => metadata.set('bad name', 'x'), TypeError)
    assert.throws(() => new Headers().set('bad name', 'x'), TypeError)
  })
})
