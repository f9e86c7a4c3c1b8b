// The benchmark's report: the targets as ratios of figures measured in the same run, and the tables behind them.
import type { HttpResult, PgbenchResult } from './load.ts'

export interface Results {
  startedAt: string
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; postgres: string }
  settings: { seconds: number; connections: number; books: number; rounds: number }
  scenarios: Record<string, { service?: HttpResult; bare?: HttpResult; pgbench?: PgbenchResult }>
  frameworkTax: { livez: HttpResult; hello: HttpResult }
  readAtHalfRate: HttpResult & { targetRate: number }
  bareAtHalfRate: HttpResult & { targetRate: number }
  features: Record<string, HttpResult>
  cluster: Record<string, HttpResult>
  startup: { service: StartupResult; restart: StartupResult; bare: StartupResult }
  metricsScrape: { meanMs: number; bytes: number }
  tracesExported: { exports: number; bytes: number }
}
interface StartupResult {
  startMs: number
  idleRssMb: number
  runs: number
}

export interface Target {
  name: string
  value: number
  goal: string
  met: boolean
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? Number.NaN : Number((a / b).toFixed(2))

export function targets(results: Results): Target[] {
  const { scenarios, frameworkTax, features, startup } = results
  const atLeast = (name: string, value: number, goal: number) => ({
    name,
    value,
    goal: `≥ ${goal}`,
    met: value >= goal,
  })
  const atMost = (name: string, value: number, goal: number, unit = '') => ({
    name,
    value,
    goal: `≤ ${goal}${unit}`,
    met: value <= goal,
  })
  return [
    atLeast(
      'read by id, logging and metrics on / bare node:http (same driver)',
      ratio(features['only logging and metrics']?.requestsPerSecond, scenarios.read?.bare?.requestsPerSecond),
      0.85,
    ),
    atLeast(
      'read by id / pgbench',
      ratio(scenarios.read?.service?.requestsPerSecond, scenarios.read?.pgbench?.transactionsPerSecond),
      0.3,
    ),
    atLeast(
      'create / pgbench',
      ratio(scenarios.create?.service?.requestsPerSecond, scenarios.create?.pgbench?.transactionsPerSecond),
      0.3,
    ),
    atLeast(
      '/livez / bare hello',
      ratio(frameworkTax.livez.requestsPerSecond, frameworkTax.hello.requestsPerSecond),
      0.9,
    ),
    atLeast(
      'all features on / all off (read by id)',
      ratio(features['all features on']?.requestsPerSecond, features['all features off']?.requestsPerSecond),
      0.85,
    ),
    atMost('p99 of read by id at half its maximum rate (ms)', results.readAtHalfRate.p99Ms, 10, ' ms'),
    atMost('cold start / bare server', ratio(startup.service.startMs, startup.bare.startMs), 2),
    atMost('idle RSS / bare server', ratio(startup.service.idleRssMb, startup.bare.idleRssMb), 1.5),
  ]
}

const row = (cells: unknown[]) => `| ${cells.map((cell) => (cell === undefined ? '–' : String(cell))).join(' | ')} |`
const header = (cells: string[]) => [row(cells), row(cells.map(() => '---'))].join('\n')
const failures = (result: HttpResult | undefined) =>
  result === undefined ? undefined : `${result.errors} / ${result.non2xx}`

export function toMarkdown(results: Results): string {
  const { machine, settings } = results
  const lines: string[] = []
  lines.push(`## Benchmark ${results.startedAt}`)
  lines.push('')
  lines.push(
    `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GiB, Node.js ${machine.node}, PostgreSQL ` +
      `${machine.postgres}; load generator, service and database on the same cores. ` +
      `${settings.connections} connections (pgbench: clients), ${settings.seconds} s per run, ${settings.books} books; ` +
      `each throughput figure is the median of ${settings.rounds} alternating rounds.`,
  )
  lines.push('')
  lines.push('### Targets')
  lines.push('')
  lines.push(header(['target', 'measured', 'goal', 'met']))
  for (const target of targets(results))
    lines.push(row([target.name, target.value, target.goal, target.met ? 'yes' : 'NO']))
  lines.push('')
  lines.push('### Scenarios (service in production mode)')
  lines.push('')
  lines.push(
    header([
      'scenario',
      'req/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'errors / non-2xx',
      'CPU %',
      'peak RSS MB',
      'bare req/s',
      'pgbench tps',
      '÷ bare',
      '÷ pgbench',
    ]),
  )
  for (const [name, { service, bare, pgbench }] of Object.entries(results.scenarios)) {
    lines.push(
      row([
        name,
        service?.requestsPerSecond,
        service?.p50Ms,
        service?.p99Ms,
        service?.maxMs,
        failures(service),
        service?.cpuPercent,
        service?.peakRssMb,
        bare?.requestsPerSecond,
        pgbench?.transactionsPerSecond,
        ratio(service?.requestsPerSecond, bare?.requestsPerSecond),
        ratio(service?.requestsPerSecond, pgbench?.transactionsPerSecond),
      ]),
    )
  }
  lines.push('')
  lines.push('### Framework tax, features, workers')
  lines.push('')
  lines.push(header(['run', 'req/s', 'p50 ms', 'p99 ms', 'errors / non-2xx', 'CPU %', 'peak RSS MB', 'ratio']))
  const { livez, hello } = results.frameworkTax
  const httpRow = (label: string, result: HttpResult, relative: unknown) =>
    row([
      label,
      result.requestsPerSecond,
      result.p50Ms,
      result.p99Ms,
      failures(result),
      result.cpuPercent,
      result.peakRssMb,
      relative,
    ])
  lines.push(httpRow('bare node:http hello', hello, 1))
  lines.push(httpRow('service /livez', livez, ratio(livez.requestsPerSecond, hello.requestsPerSecond)))
  const off = results.features['all features off']?.requestsPerSecond
  for (const [name, result] of Object.entries(results.features)) {
    lines.push(httpRow(`read by id, ${name}`, result, `${ratio(result.requestsPerSecond, off)} of all off`))
  }
  const one = results.cluster['1 worker']?.requestsPerSecond
  for (const [name, result] of Object.entries(results.cluster)) {
    lines.push(httpRow(`read by id, ${name}`, result, `${ratio(result.requestsPerSecond, one)} of 1 worker`))
  }
  const half = results.readAtHalfRate
  lines.push(httpRow(`read by id at ${half.targetRate} req/s (fixed rate)`, half, ''))
  lines.push(httpRow(`bare read at ${half.targetRate} req/s (fixed rate)`, results.bareAtHalfRate, ''))
  lines.push('')
  const { service, restart, bare } = results.startup
  lines.push(
    `Cold start (spawn → /readyz 200, median of ${service.runs}): service ${service.startMs} ms (first start, no ` +
      `compile cache; ${restart.startMs} ms on a restart with it), bare ${bare.startMs} ms. ` +
      `Idle RSS: service ${service.idleRssMb} MB, bare ${bare.idleRssMb} MB. ` +
      `/metrics scrape: ${results.metricsScrape.meanMs} ms, ${results.metricsScrape.bytes} bytes. ` +
      `Span exports received: ${results.tracesExported.exports} (${Math.round(results.tracesExported.bytes / 1024)} KiB).`,
  )
  lines.push('')
  return lines.join('\n')
}
