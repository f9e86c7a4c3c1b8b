// A page and its exact count come from one snapshot: with writers busy beside it, the count never disagrees with
// the page it came with.
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { BACKENDS, bodyOf, jsonRequest, skipReason, startService, type TestService } from '../../helpers/service.ts'

const WRITERS = 4
const READS = 60

for (const backend of BACKENDS) {
  describe(`counted lists under concurrent writes on ${backend}`, { skip: await skipReason(backend) }, () => {
    let service: TestService
    before(async () => {
      service = await startService(backend)
    })
    after(async () => {
      await service?.close()
    })

    it('when books are created and deleted during the reads, then every page has exactly X-Total-Count rows', async () => {
      let writing = true
      const ids: string[] = []
      const writer = async (n: number) => {
        for (let i = 0; writing && i < 400; i++) {
          const book = { title: `Concurrent ${n}-${i}`, author: 'Ursula K. Le Guin', published_date: '1969-03-01' }
          const created = await service.fetch('/v1/books', jsonRequest('POST', book))
          assert.equal(created.status, 201)
          ids.push((await bodyOf(created)).id)
          // Keep the table under one page, so the page holds every match and must equal the count.
          if (ids.length > 40) {
            const deleted = await service.fetch(`/v1/books/${ids.shift()}`, { method: 'DELETE' })
            assert.equal(deleted.status, 204)
          }
        }
      }
      const writers = Array.from({ length: WRITERS }, (_, n) => writer(n))
      const disagreements: string[] = []
      let counted = 0
      try {
        for (let read = 0; read < READS; read++) {
          const response = await service.fetch('/v1/books?pageSize=100', { headers: { prefer: 'count=exact' } })
          assert.equal(response.status, 200)
          const page = (await bodyOf(response)) as unknown[]
          const total = Number(response.headers.get('x-total-count'))
          if (total > 0) counted++
          if (page.length !== total) disagreements.push(`page holds ${page.length} rows, X-Total-Count ${total}`)
        }
      } finally {
        writing = false
        await Promise.all(writers)
      }
      assert.deepEqual(disagreements, [])
      assert.ok(counted > READS / 2, `only ${counted} of ${READS} reads saw books: the writers did not overlap them`)
    })
  })
}
