// npm run bench, shortened (1 s runs, 2,000 books; lists at 2,000 and 4,000): every section, scenario and baseline
// runs and is reported, and no request fails. Timings are the benchmark's business, never asserted here.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { describe } from '../../helpers/describe.ts'
import { postgresServerUnavailable } from '../../helpers/postgres-server.ts'
import { programMissing } from '../../helpers/tools.ts'

const run = promisify(execFile)
const skip =
  programMissing('/usr/bin/wrk', 'apt-get install wrk') ||
  programMissing('/usr/bin/pgbench', 'apt-get install postgresql-client') ||
  programMissing('/usr/bin/h2load', 'apt-get install nghttp2-client') ||
  programMissing('/usr/sbin/nats-server', 'apt-get install nats-server') ||
  (await postgresServerUnavailable()) ||
  false

interface HttpRun {
  requests: number
  errors: number
  non2xx: number
  requestsPerSecond: number
}
interface PgbenchRun {
  transactionsPerSecond: number
  failed: number
}

describe('the benchmark (npm run bench)', { skip }, () => {
  it('when run briefly, then every section, scenario, baseline and list variant is reported without a failed request, and every event arrives', async () => {
    const output = mkdtempSync(join(tmpdir(), 'myapp-bench-test-'))
    const { stdout } = await run(process.execPath, ['bench/run.ts'], {
      env: {
        ...process.env,
        BENCH_SECONDS: '1',
        BENCH_ROUNDS: '1',
        BENCH_WARMUP_SECONDS: '0',
        BENCH_BOOKS: '2000',
        BENCH_COLD_STARTS: '1',
        BENCH_IDLE_SECONDS: '0.5',
        BENCH_CONNECTIONS: '4',
        // The lag runs' correctness (every create answered, every event once), not the machine's capacity.
        BENCH_EVENTS_RATE: '200',
        BENCH_LIST_SIZES: '2000,4000',
        BENCH_OUTPUT: output,
        // The clone's own revision: the against section builds it in a worktree and runs it beside this build.
        BENCH_AGAINST: 'HEAD',
      },
      timeout: 420_000,
      maxBuffer: 1 << 22,
    })
    const [json] = readdirSync(output).filter((name) => name.endsWith('.json'))
    const results = JSON.parse(readFileSync(join(output, json as string), 'utf8'))

    const httpRuns: [string, HttpRun][] = []
    for (const [name, scenario] of Object.entries<Record<string, HttpRun>>(results.scenarios)) {
      httpRuns.push([`${name} (service)`, scenario.service as HttpRun], [`${name} (bare)`, scenario.bare as HttpRun])
      assert.ok((scenario.pgbench as unknown as { transactionsPerSecond: number }).transactionsPerSecond > 0, name)
    }
    assert.deepEqual(Object.keys(results.scenarios), ['read', 'list', 'list-filter', 'create', 'update', 'mix'])
    httpRuns.push(['/livez', results.frameworkTax.livez], ['hello', results.frameworkTax.hello])
    for (const [name, result] of Object.entries<HttpRun>(results.features)) httpRuns.push([name, result])
    for (const [name, result] of Object.entries<HttpRun>(results.cluster)) httpRuns.push([name, result])
    httpRuns.push(['read at half rate', results.readAtHalfRate])
    httpRuns.push(['bare at half rate', results.bareAtHalfRate])
    assert.deepEqual(Object.keys(results.pools.settings), [
      'service, default pools',
      'service, DB_POOL_READS=1',
      'bare node:http, reads on 1 connection, writes on 9',
    ])
    for (const [setting, byScenario] of Object.entries<Record<string, HttpRun>>(results.pools.settings)) {
      assert.deepEqual(Object.keys(byScenario), ['read', 'create', 'mix'], setting)
      for (const [scenario, result] of Object.entries(byScenario)) httpRuns.push([`${setting} ${scenario}`, result])
    }
    const rpcRuns: Record<string, HttpRun & { calls?: Record<string, number> }> = results.rpc.runs
    assert.deepEqual(Object.keys(rpcRuns), [
      'restRandom',
      'restOneId',
      'restOneIdH2load',
      'grpc',
      'grpcMultiplexed',
      'connectBinary',
    ])
    for (const [name, result] of Object.entries(rpcRuns)) httpRuns.push([`rpc: ${name}`, result])
    // h2load and wrk see a gRPC or Connect error as a 200 or a status code only: the service's own count decides.
    // A tool that stops at the end of its time closes its connections with a call in flight on each: the service
    // counts those as CANCELLED, and nothing else may be other than OK.
    for (const name of ['grpc', 'grpcMultiplexed', 'connectBinary']) {
      const run = rpcRuns[name] as HttpRun & { calls: Record<string, number> }
      const { OK = 0, CANCELLED = 0, ...others } = run.calls
      assert.deepEqual(others, {}, `${name}: every GetBook the service counted was OK or cut off at the end`)
      assert.ok(CANCELLED <= 4, `${name}: at most the calls in flight (BENCH_CONNECTIONS=4) were cut off`)
      assert.ok(OK >= run.requests, `${name}: the service counted the calls the tool made`)
    }
    assert.deepEqual(Object.keys(results.events.creates), [
      'bareWithEvent',
      'bareWithoutEvent',
      'service',
      'serviceRelayed',
    ])
    for (const [name, result] of Object.entries<HttpRun>(results.events.creates))
      httpRuns.push([`events: ${name}`, result])
    for (const [name, result] of Object.entries<PgbenchRun>(results.events.pgbench)) {
      assert.ok(result.transactionsPerSecond > 0, `events: pgbench ${name} ran`)
      assert.equal(result.failed, 0, `events: pgbench ${name} failed transactions`)
    }
    assertRelayLagReported(results.events.lag.fixedRate, 200)
    const half = Math.round(results.events.creates.serviceRelayed.requestsPerSecond / 2)
    assertRelayLagReported(results.events.lag.halfMaximum, half)
    assert.deepEqual(Object.keys(results.against.scenarios), ['read', 'list', 'create', 'update', 'mix'])
    assert.match(results.against.commit, /^[0-9a-f]{40}$/)
    for (const [scenario, { current, earlier }] of Object.entries<{ current: HttpRun; earlier: HttpRun }>(
      results.against.scenarios,
    )) {
      httpRuns.push([`against: ${scenario}, this build`, current], [`against: ${scenario}, HEAD`, earlier])
    }
    for (const [name, result] of httpRuns) {
      assert.ok(result.requests > 0, `${name}: requests were made`)
      assert.equal(result.errors, 0, `${name}: transport errors`)
      assert.equal(result.non2xx, 0, `${name}: answers outside 2xx`)
    }
    assert.deepEqual(results.sections, [
      'scenarios',
      'features',
      'rate',
      'pools',
      'rpc',
      'events',
      'startup',
      'lists',
      'against',
    ])
    assert.deepEqual(Object.keys(results.features), [
      'all features on',
      'all features off',
      'only logging and metrics',
      'without request logging',
      'without metrics',
      'without tracing',
      'without authentication',
      'without rate limit',
    ])
    assert.ok(results.tracesExported.exports > 0, 'the traced runs exported spans')
    assert.ok(results.startup.service.startMs > 0 && results.startup.bare.idleRssMb > 0)
    assert.ok(results.startup.restart.startMs > 0)

    assertListsReported(results.lists, [2000, 4000])

    // 8 targets of the service's overhead, 4 of its pools, 2 of gRPC, 1 of list throughput, 1 per list variant, 1 of
    // the outbox, 1 per scenario against the earlier build.
    assert.equal(results.targets.length, 8 + 4 + 2 + 1 + 6 + 1 + 5)
    for (const target of results.targets) assert.equal(typeof target.met, 'boolean', target.name)
    assert.match(
      stdout,
      /\| read by id, logging and metrics on \/ bare node:http \(same driver\) \| [\d.]+ \| ≥ 0\.85 \| (yes|NO) \|/,
    )
    assert.match(
      stdout,
      /\| read by id, service, DB_POOL_READS=1 \/ bare node:http, reads on 1 connection, writes on 9 \| [\d.]+ \| ≥ 0\.6 \| (yes|NO) \|/,
    )
    for (const shape of ['a call per connection', 'the calls multiplexed on one connection']) {
      assert.match(
        stdout,
        new RegExp(`\\| gRPC GetBook, ${shape} / REST read \\(same id\\) \\| [\\d.]+ \\| ≥ 1 \\| (yes|NO) \\|`),
      )
    }
    assert.match(
      stdout,
      /\| create with its outbox event \/ without it \(bare node:http, same driver\) \| [\d.]+ \| ≥ 0\.85 \| (yes|NO) \|/,
    )
    assert.match(stdout, /\| 200 \| \d+ \| \d+ \| 200 of 200 \/ 200 \/ 0 \| \d+ \([\d.]+\) \| \d+ \|/)
    assert.match(stdout, /\| read: this build \/ HEAD \([0-9a-f]{7}\) \| [\d.]+ \| ≥ 0\.95 \| (yes|NO) \|/)
    assert.match(
      stdout,
      /\| list \(default page, 2000 books\) \/ 516 req\/s before cursors \(100,000 books\) \| [\d.]+ \| ≥ 5 \|/,
    )
    assert.match(
      stdout,
      /\| list at 4000 \/ 2000 books, \?sort=title: first page, next page \(the larger growth\) \| [\d.]+ \| ≤ 2 \|/,
    )
  })

  it('when BENCH_ONLY names a section that does not exist, then the run stops before measuring and names the sections', async () => {
    const failed = await run(process.execPath, ['bench/run.ts'], {
      env: { ...process.env, BENCH_ONLY: 'lists,nonsense' },
      timeout: 30_000,
    }).then(
      () => assert.fail('the run succeeded'),
      (error: { code: number; stderr: string }) => error,
    )
    assert.equal(failed.code, 1)
    assert.match(
      failed.stderr,
      /BENCH_ONLY: no section nonsense; the sections: scenarios, features, rate, pools, rpc, events, startup, lists, against/,
    )
  })
})

interface Spread {
  p50: number
  p99: number
  max: number
}
interface RelayLag {
  targetRate: number
  scheduled: number
  acknowledged: number
  errors: number
  non201: number
  achievedRate: number
  receivedRate: number
  received: number
  missing: number
  duplicates: number
  others: number
  createMs: Spread
  lagMs: Spread
  lagFromEventTimeMs: Spread
  serviceErrors: { http: number; database: number; publish: number; logged: number }
}

/**
 * Every create sent at the fixed rate was acknowledged, the service counted and logged no failure, and each
 * acknowledged create's event arrived once, none of another; lags are reported, whatever they are.
 */
function assertRelayLagReported(lag: RelayLag, rate: number) {
  assert.equal(lag.targetRate, rate)
  assert.equal(lag.scheduled, rate, 'BENCH_SECONDS=1')
  assert.equal(lag.errors + lag.non201, 0, 'every create was answered 201')
  assert.equal(lag.acknowledged, lag.scheduled)
  assert.deepEqual(lag.serviceErrors, { http: 0, database: 0, publish: 0, logged: 0 }, 'the service counted no failure')
  assert.equal(lag.received, lag.acknowledged, 'an event for every acknowledged create')
  assert.deepEqual([lag.missing, lag.duplicates, lag.others], [0, 0, 0], 'none missing, repeated or foreign')
  assert.ok(lag.achievedRate > 0 && lag.receivedRate > 0, 'the rates achieved')
  for (const [name, spread] of Object.entries({ create: lag.createMs, lag: lag.lagMs, time: lag.lagFromEventTimeMs })) {
    assert.ok(Number.isFinite(spread.p50) && spread.p99 >= spread.p50 && spread.max >= spread.p99, name)
  }
}

interface ListTiming {
  url: string
  medianMs: number
}
interface ListsResult {
  sizes: number[]
  seedSeconds: Record<string, number>
  variants: {
    name: string
    paths: Record<
      string,
      {
        bySize: Record<string, ListTiming>
        growth: number
        plan?: { nodes: string; indexes: string[]; executionMs: number; file: string }
      }
    >
  }[]
}

/** Every variant and path at every size has a median, the next page came from a cursor link, the plans exist. */
function assertListsReported(lists: ListsResult, sizes: number[]) {
  assert.deepEqual(lists.sizes, sizes)
  for (const size of sizes) assert.ok(lists.seedSeconds[size] !== undefined, `seeded ${size}`)
  assert.deepEqual(
    lists.variants.map((variant) => variant.name),
    ['GET /v1/books', '?sort=title', '?sort=-published_date', '?status=verified', '?q=42 of', '?author=Author Aaa'],
  )
  for (const variant of lists.variants) {
    assert.deepEqual(Object.keys(variant.paths), ['first', 'next', 'offset'], variant.name)
    for (const [path, { bySize, growth, plan }] of Object.entries(variant.paths)) {
      const name = `${variant.name}, ${path}`
      for (const size of sizes) assert.ok((bySize[size]?.medianMs ?? 0) > 0, `${name} at ${size}: a positive median`)
      assert.ok(Number.isFinite(growth) && growth > 0, `${name}: growth`)
      if (path === 'next') assert.match(bySize[sizes[1] as number]?.url ?? '', /[?&]cursor=/, name)
      if (path === 'offset') assert.match(bySize[sizes[1] as number]?.url ?? '', /[?&]page=\d+/, name)
      assert.ok(plan !== undefined && plan.nodes.length > 0 && plan.executionMs > 0, `${name}: a plan summary`)
      assert.ok(existsSync(plan.file), `${name}: the full plan in ${plan.file}`)
      assert.match(
        readFileSync(plan.file, 'utf8'),
        /Buffers: shared (hit|read)=\d+[\s\S]*Execution Time: [\d.]+ ms/,
        name,
      )
    }
  }
}
