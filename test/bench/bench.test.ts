// npm run bench, shortened (1 s runs, 2,000 books): every scenario and baseline runs and is reported, and no
// request fails. Timings are the benchmark's business, never asserted here.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { describe } from '../helpers/describe.ts'
import { postgresServerUnavailable } from '../helpers/postgres-server.ts'
import { programMissing } from '../helpers/tools.ts'

const run = promisify(execFile)
const skip =
  programMissing('/usr/bin/wrk', 'apt-get install wrk') ||
  programMissing('/usr/bin/pgbench', 'apt-get install postgresql-client') ||
  (await postgresServerUnavailable()) ||
  false

interface HttpRun {
  requests: number
  errors: number
  non2xx: number
  requestsPerSecond: number
}

describe('the benchmark (npm run bench)', { skip }, () => {
  it('when run briefly, then every scenario, baseline and extra measurement is reported without a failed request', async () => {
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
        BENCH_OUTPUT: output,
      },
      timeout: 240_000,
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
    for (const [name, result] of httpRuns) {
      assert.ok(result.requests > 0, `${name}: requests were made`)
      assert.equal(result.errors, 0, `${name}: transport errors`)
      assert.equal(result.non2xx, 0, `${name}: answers outside 2xx`)
    }
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
    assert.equal(results.targets.length, 8)
    for (const target of results.targets) assert.equal(typeof target.met, 'boolean', target.name)
    assert.match(
      stdout,
      /\| read by id, logging and metrics on \/ bare node:http \(same driver\) \| [\d.]+ \| ≥ 0\.85 \| (yes|NO) \|/,
    )
  })
})
