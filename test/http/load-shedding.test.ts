// Load shedding: a saturated event loop answers 503 with Retry-After at once; probes and metrics still answer.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startService, type TestService } from '../helpers/service.ts'

describe('load shedding', () => {
  let service: TestService
  before(async () => {
    service = await startService('embedded', { LOAD_SHED_EVENT_LOOP_DELAY: '100ms' })
  })
  after(() => service?.close())

  it('when the event loop lags past LOAD_SHED_EVENT_LOOP_DELAY, then requests get 503 but probes do not', async () => {
    // Start-up itself lags the loop; wait until the service accepts work.
    let ready = 0
    for (let i = 0; i < 50 && ready !== 200; i++) {
      await sleep(100)
      ready = (await service.app.inject({ url: '/v1/books' })).statusCode
    }
    assert.equal(ready, 200)
    // Saturate this process (the service runs in it) for 1.5 s: 150 ms of CPU at a time, as a burst of
    // CPU-bound work would, yielding just long enough for requests to be handled in between.
    let saturating = true
    const saturator = (async () => {
      const until = performance.now() + 1500
      while (performance.now() < until) {
        const slice = performance.now() + 150
        while (performance.now() < slice) {}
        await new Promise((resolve) => setImmediate(resolve))
      }
      saturating = false
    })()
    const seen = new Set<number>()
    const probes = new Set<number>()
    // Bounded by the saturator's 1.5 s, and by 5 s whatever happens.
    const deadline = performance.now() + 5000
    while (saturating && performance.now() < deadline) {
      await sleep(5)
      const [books, live] = await Promise.all([
        service.app.inject({ url: '/v1/books' }),
        service.app.inject({ url: '/livez' }),
      ])
      seen.add(books.statusCode)
      probes.add(live.statusCode)
      if (books.statusCode === 503) {
        assert.equal(books.headers['retry-after'], '2')
        assert.equal(books.json().detail, 'the service is overloaded; try again later')
      }
    }
    await saturator
    assert.ok(seen.has(503), `answers while saturated: ${[...seen]}`)
    assert.deepEqual([...probes], [200], 'probes are never shed')
    // Once the loop keeps up again, service resumes.
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(100)
      status = (await service.app.inject({ url: '/v1/books' })).statusCode
    }
    assert.equal(status, 200)
  })
})
