// The benchmark's report: the targets as ratios of figures measured in the same run, and the tables behind them.
// A run of some sections (BENCH_ONLY) reports the targets and tables of those sections only.

import type { HttpResult, PgbenchResult } from './load.ts'
import { LIST_PATHS, type ListsResult } from './sections/lists-result.ts'
import { notOk, RPC_RUNS, type RpcResult, type RpcRunName } from './sections/rpc-result.ts'
import type { Settings } from './settings.ts'

export interface Results {
  startedAt: string
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; postgres: string }
  settings: Settings
  /** The sections that ran, in order. */
  sections: string[]
  scenarios?: Record<string, { service?: HttpResult; bare?: HttpResult; pgbench?: PgbenchResult }>
  frameworkTax?: { livez: HttpResult; hello: HttpResult }
  metricsScrape?: { meanMs: number; bytes: number }
  readAtHalfRate?: HttpResult & { targetRate: number }
  bareAtHalfRate?: HttpResult & { targetRate: number }
  features?: Record<string, HttpResult>
  cluster?: Record<string, HttpResult>
  startup?: { service: StartupResult; restart: StartupResult; bare: StartupResult }
  /** Per setting and scenario; `reference` names the setting every ratio divides by. */
  pools?: { reference: string; settings: Record<string, Record<string, HttpResult>> }
  rpc?: RpcResult
  lists?: ListsResult
  tracesExported?: { exports: number; bytes: number }
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

/** List throughput before cursors and counting on request (issue 14), req/s at 100,000 books. */
const LIST_BEFORE_CURSORS = 516

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? Number.NaN : Number((a / b).toFixed(2))

export function targets(results: Results): Target[] {
  const { scenarios, frameworkTax, features, startup, pools, rpc, lists } = results
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
  const list: Target[] = []
  if (scenarios !== undefined && features !== undefined) {
    list.push(
      atLeast(
        'read by id, logging and metrics on / bare node:http (same driver)',
        ratio(features['only logging and metrics']?.requestsPerSecond, scenarios.read?.bare?.requestsPerSecond),
        0.85,
      ),
    )
  }
  if (scenarios !== undefined) {
    list.push(
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
    )
  }
  if (frameworkTax !== undefined) {
    list.push(
      atLeast(
        '/livez / bare hello',
        ratio(frameworkTax.livez.requestsPerSecond, frameworkTax.hello.requestsPerSecond),
        0.9,
      ),
    )
  }
  if (features !== undefined) {
    list.push(
      atLeast(
        'all features on / all off (read by id)',
        ratio(features['all features on']?.requestsPerSecond, features['all features off']?.requestsPerSecond),
        0.85,
      ),
    )
  }
  if (results.readAtHalfRate !== undefined) {
    list.push(atMost('p99 of read by id at half its maximum rate (ms)', results.readAtHalfRate.p99Ms, 10, ' ms'))
  }
  if (startup !== undefined) {
    list.push(
      atMost('cold start / bare server', ratio(startup.service.startMs, startup.bare.startMs), 2),
      atMost('idle RSS / bare server', ratio(startup.service.idleRssMb, startup.bare.idleRssMb), 1.5),
    )
  }
  if (pools !== undefined) {
    const figure = (setting: string, scenario: string) => pools.settings[setting]?.[scenario]?.requestsPerSecond
    const [defaults, pipelined] = Object.keys(pools.settings).filter((name) => name !== pools.reference)
    for (const setting of [defaults, pipelined]) {
      list.push(
        atLeast(
          `read by id, ${setting} / ${pools.reference}`,
          ratio(figure(setting as string, 'read'), figure(pools.reference, 'read')),
          0.6,
        ),
      )
    }
    // No slower than the default pools; the goal leaves room for the run-to-run noise of a shared machine.
    for (const scenario of ['create', 'mix']) {
      list.push(
        atLeast(
          `${scenario}, ${pipelined} / ${defaults}`,
          ratio(figure(pipelined as string, scenario), figure(defaults as string, scenario)),
          0.95,
        ),
      )
    }
  }
  if (rpc !== undefined) {
    const { grpc, grpcMultiplexed, restOneId } = rpc.runs
    for (const [label, run] of [
      ['a call per connection', grpc],
      ['the calls multiplexed on one connection', grpcMultiplexed],
    ] as const) {
      const target = atLeast(
        `gRPC GetBook, ${label} / REST read (same id)`,
        ratio(run.requestsPerSecond, restOneId.requestsPerSecond),
        1,
      )
      // Throughput with failed calls is no throughput.
      const failed = run.errors + run.non2xx + notOk(run) + restOneId.errors + restOneId.non2xx > 0
      list.push({ ...target, met: target.met && !failed })
    }
  }
  if (scenarios !== undefined) {
    list.push(
      atLeast(
        `list (default page, ${results.settings.books} books) / ${LIST_BEFORE_CURSORS} req/s before cursors (100,000 books)`,
        ratio(scenarios.list?.service?.requestsPerSecond, LIST_BEFORE_CURSORS),
        5,
      ),
    )
  }
  if (lists !== undefined) {
    const [small, large] = [lists.sizes[0], lists.sizes.at(-1)]
    for (const variant of lists.variants) {
      list.push(
        atMost(
          `list at ${large} / ${small} books, ${variant.name}: first page, next page (the larger growth)`,
          Math.max(variant.paths.first.growth, variant.paths.next.growth),
          2,
        ),
      )
    }
  }
  return list
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
  const throughput = results.sections.some((section) => section !== 'lists')
  lines.push(
    `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GiB, Node.js ${machine.node}, PostgreSQL ` +
      `${machine.postgres}; load generator, service and database on the same cores. Sections: ` +
      `${results.sections.join(', ')}.` +
      (throughput
        ? ` ${settings.connections} connections (pgbench: clients), ${settings.seconds} s per run, ` +
          `${settings.books} books; each throughput figure is the median of ${settings.rounds} alternating rounds.`
        : ''),
  )
  lines.push('')
  lines.push('### Targets')
  lines.push('')
  lines.push(header(['target', 'measured', 'goal', 'met']))
  for (const target of targets(results))
    lines.push(row([target.name, target.value, target.goal, target.met ? 'yes' : 'NO']))
  lines.push('')
  if (results.scenarios !== undefined) lines.push(...scenarioTable(results.scenarios))
  lines.push(...runsTable(results))
  if (results.startup !== undefined) {
    const { service, restart, bare } = results.startup
    lines.push(
      `Cold start (spawn → /readyz 200, median of ${service.runs}): service ${service.startMs} ms (first start, no ` +
        `compile cache; ${restart.startMs} ms on a restart with it), bare ${bare.startMs} ms. ` +
        `Idle RSS: service ${service.idleRssMb} MB, bare ${bare.idleRssMb} MB.`,
    )
    lines.push('')
  }
  if (results.metricsScrape !== undefined) {
    lines.push(
      `/metrics scrape after the scenarios: ${results.metricsScrape.meanMs} ms, ${results.metricsScrape.bytes} bytes.`,
    )
  }
  if (results.tracesExported !== undefined) {
    lines.push(
      `Span exports received: ${results.tracesExported.exports} (${Math.round(results.tracesExported.bytes / 1024)} KiB).`,
    )
  }
  lines.push('')
  if (results.pools !== undefined) lines.push(...poolsTable(results.pools))
  if (results.rpc !== undefined) lines.push(...rpcTable(results.rpc, settings))
  if (results.lists !== undefined) lines.push(...listsTable(results.lists))
  return lines.join('\n')
}

function scenarioTable(scenarios: NonNullable<Results['scenarios']>): string[] {
  const lines = ['### Scenarios (service in production mode)', '']
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
  for (const [name, { service, bare, pgbench }] of Object.entries(scenarios)) {
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
  return lines
}

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

function runsTable(results: Results): string[] {
  const rows: string[] = []
  if (results.frameworkTax !== undefined) {
    const { livez, hello } = results.frameworkTax
    rows.push(httpRow('bare node:http hello', hello, 1))
    rows.push(httpRow('service /livez', livez, ratio(livez.requestsPerSecond, hello.requestsPerSecond)))
  }
  const off = results.features?.['all features off']?.requestsPerSecond
  for (const [name, result] of Object.entries(results.features ?? {})) {
    rows.push(httpRow(`read by id, ${name}`, result, `${ratio(result.requestsPerSecond, off)} of all off`))
  }
  const one = results.cluster?.['1 worker']?.requestsPerSecond
  for (const [name, result] of Object.entries(results.cluster ?? {})) {
    rows.push(httpRow(`read by id, ${name}`, result, `${ratio(result.requestsPerSecond, one)} of 1 worker`))
  }
  const half = results.readAtHalfRate
  if (half !== undefined) rows.push(httpRow(`read by id at ${half.targetRate} req/s (fixed rate)`, half, ''))
  if (results.bareAtHalfRate !== undefined) {
    const bare = results.bareAtHalfRate
    rows.push(httpRow(`bare read at ${bare.targetRate} req/s (fixed rate)`, bare, ''))
  }
  if (rows.length === 0) return []
  return [
    '### Framework tax, features, workers',
    '',
    header(['run', 'req/s', 'p50 ms', 'p99 ms', 'errors / non-2xx', 'CPU %', 'peak RSS MB', 'ratio']),
    ...rows,
    '',
  ]
}

function poolsTable(pools: NonNullable<Results['pools']>): string[] {
  const scenarios = Object.keys(pools.settings[pools.reference] ?? {})
  const reference = (scenario: string) => pools.settings[pools.reference]?.[scenario]?.requestsPerSecond
  const lines = [
    `### Connection pools (req/s, median of the rounds; ÷ ${pools.reference})`,
    '',
    header(['setting', ...scenarios]),
  ]
  for (const [name, byScenario] of Object.entries(pools.settings)) {
    const cells = scenarios.map((scenario) => {
      const result = byScenario[scenario]
      const failed = result === undefined || result.errors + result.non2xx === 0 ? '' : `, ${failures(result)} failed`
      return `${result?.requestsPerSecond} (${ratio(result?.requestsPerSecond, reference(scenario))}×${failed})`
    })
    lines.push(row([name, ...cells]))
  }
  lines.push('')
  return lines
}

function rpcTable(rpc: RpcResult, settings: Settings): string[] {
  const reference = rpc.runs.restOneId.requestsPerSecond
  const lines = [
    '### GetBook over gRPC and Connect binary against the REST read',
    '',
    `Service in production mode with GRPC_PORT set, the JWT checked on every call (gRPC: authorization metadata; ` +
      `REST and Connect: the Authorization header), ${settings.connections} connections, one request in flight on ` +
      `each, except in the multiplexed gRPC run: ${settings.connections} calls in flight on one connection, as gRPC ` +
      `clients keep one HTTP/2 connection to a server. h2load posts the same body every time, so every run but the ` +
      `random-id read asks for the one seeded book ${rpc.bookId}, the REST read included: PostgreSQL serves it from its cache in all of them, so the ` +
      `comparison is of the doors, not the database. The random-id read is the read scenario's, for reference; the ` +
      `REST read under h2load --h1 shows what the load generator alone changes. Failures: the tool's transport ` +
      `errors / answers outside 2xx / GetBook calls the service counted (rpc_server_duration_seconds, warm-up ` +
      `included) with a status other than OK, which h2load cannot see. h2load's percentiles come from its ` +
      `per-request log.`,
    '',
    header([
      'run',
      'tool',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors / non-2xx / non-OK',
      'CPU %',
      'peak RSS MB',
      '÷ REST, the one id (wrk)',
    ]),
  ]
  for (const [name, label] of Object.entries(RPC_RUNS) as [RpcRunName, string][]) {
    const result = rpc.runs[name]
    lines.push(
      row([
        label,
        result.tool,
        result.requestsPerSecond,
        result.p50Ms,
        result.p99Ms,
        `${failures(result)} / ${result.calls === undefined ? '–' : notOk(result)}`,
        result.cpuPercent,
        result.peakRssMb,
        ratio(result.requestsPerSecond, reference),
      ]),
    )
  }
  lines.push('')
  return lines
}

const PATH_LABELS = { first: 'first page', next: 'next page (its Link rel="next")', offset: 'by offset' } as const

function listsTable(lists: ListsResult): string[] {
  const [small, large] = [lists.sizes[0] as number, lists.sizes.at(-1) as number]
  const lines = [
    `### Lists at ${lists.sizes.join(' and ')} books`,
    '',
    `Median of ${lists.requests} sequential requests (after ${lists.warmups}) on one connection, service in ` +
      `production mode, ${lists.pageSize} books a page; the offset path is the page in the middle of the matches. ` +
      `Plans: EXPLAIN (ANALYZE, BUFFERS) at ${large} books of the statement the service ran (prepared, after ` +
      `5 executions), in full in ${lists.plansFolder}. Seeded in ` +
      `${lists.sizes.map((size) => `${lists.seedSeconds[size]} s (${size} books)`).join(', ')}: insert, index ` +
      `builds, VACUUM ANALYZE, checkpoint.`,
    '',
    header([
      'list',
      'path',
      ...lists.sizes.map((size) => `${size} ms`),
      'growth',
      `plan at ${large}`,
      'indexes',
      'buffers hit / read',
      'rows filtered out',
      'execution ms',
    ]),
  ]
  for (const variant of lists.variants) {
    for (const path of LIST_PATHS) {
      const { bySize, growth, plan } = variant.paths[path]
      const label =
        path === 'offset'
          ? `?page=${new URL(bySize[large]?.url ?? '/', 'http://page').searchParams.get('page')} (offset)`
          : PATH_LABELS[path]
      lines.push(
        row([
          variant.name,
          label,
          ...lists.sizes.map((size) => bySize[size]?.medianMs),
          `${growth}×`,
          plan === undefined ? undefined : `${plan.nodes}${plan.generic ? ' (generic)' : ''}`,
          plan?.indexes.join(', ') || undefined,
          plan === undefined ? undefined : `${plan.sharedHitBlocks} / ${plan.sharedReadBlocks}`,
          plan?.rowsRemovedByFilter,
          plan?.executionMs,
        ]),
      )
    }
  }
  lines.push('')
  lines.push(
    `Matches per variant: ${lists.variants.map((variant) => `${variant.name} ${lists.sizes.map((size) => variant.matches[size]).join(' / ')}`).join('; ')} ` +
      `(at ${lists.sizes.join(' / ')} books; ${lists.booksPerAuthor} books per author at every size). Growth: median at ${large} ÷ median at ${small}.`,
  )
  lines.push('')
  return lines
}
