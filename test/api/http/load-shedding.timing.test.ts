// Load shedding: a saturated event loop answers 503 with Retry-After at once; probes and metrics still answer.
import assert from 'node:assert/strict'
import { afterEach, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe } from '../../helpers/describe.ts'
import { startService, type TestService } from '../../helpers/service.ts'

describe('load shedding', () => {
  // Each test starts its own service: a pause in one test is lag for every service in this process.
  let service: TestService | undefined
  afterEach(async () => {
    await service?.close()
    service = undefined
  })

  it('when requests arrive right after start-up, then none is shed for the time it took to build the app', async () => {
    service = await startService('embedded', { LOAD_SHED_EVENT_LOOP_DELAY: '100ms' })
    const { baseUrl } = service
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async () => (await fetch(`${baseUrl}/v1/books`)).status),
    )
    assert.deepEqual(new Set(statuses), new Set([200]))
  })

  it('when the loop pauses for less than the threshold, then nothing is shed', async () => {
    const patient = await startService('embedded', { LOAD_SHED_EVENT_LOOP_DELAY: '1s' })
    service = patient
    const statuses = new Set<number>()
    // Five pauses of 300 ms, well under the 1 s threshold but longer than any sampling interval, each followed
    // at once by requests: the pause itself is not overload.
    for (let i = 0; i < 5; i++) {
      const until = performance.now() + 300
      while (performance.now() < until) {}
      await sleep(1)
      const answers = await Promise.all([
        patient.app.inject({ url: '/v1/books' }),
        patient.app.inject({ url: '/v1/books' }),
      ])
      for (const answer of answers) statuses.add(answer.statusCode)
    }
    assert.deepEqual([...statuses], [200])
  })

  it('when the event loop lags past LOAD_SHED_EVENT_LOOP_DELAY, then requests get 503 but probes do not', async () => {
    const busy = await startService('embedded', { LOAD_SHED_EVENT_LOOP_DELAY: '100ms' })
    service = busy
    assert.equal((await busy.app.inject({ url: '/v1/books' })).statusCode, 200)
    // Saturate this process (the service runs in it) for 1.5 s: 300 ms of CPU at a time, as a burst of
    // CPU-bound work would, yielding just long enough for requests to be handled in between.
    let saturating = true
    const saturator = (async () => {
      const until = performance.now() + 1500
      while (performance.now() < until) {
        const slice = performance.now() + 300
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
        busy.app.inject({ url: '/v1/books' }),
        busy.app.inject({ url: '/livez' }),
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
      status = (await busy.app.inject({ url: '/v1/books' })).statusCode
    }
    assert.equal(status, 200)
  })
})
