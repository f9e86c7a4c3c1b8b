// The events section's results, its target and its tables in the report (bench/run.ts puts them beside
// bench/report.ts's own).
import type { HttpResult, PgbenchResult } from '../load.ts'
import type { Results, Target } from '../report.ts'
import type { Settings } from '../settings.ts'

/** The closed-loop create runs, by key, with their labels in the report's table, in its order. */
export const CREATE_RUNS = {
  bareWithEvent: "bare node:http, the create with its event (the service's statement)",
  bareWithoutEvent: 'bare node:http, the same create without the event',
  service: 'service, create (event written, no relay)',
  serviceRelayed: 'service, create, the relay publishing to NATS',
} as const
export type CreateRunName = keyof typeof CREATE_RUNS

export const PGBENCH_RUNS = {
  withEvent: 'pgbench, the create with its event',
  withoutEvent: 'pgbench, the same create without the event',
} as const
export type PgbenchRunName = keyof typeof PGBENCH_RUNS

/** The outbox after a run of the relayed service: events written, and those the relay had not yet published. */
export interface OutboxAtEnd {
  events: number
  unpublished: number
}

export interface Spread {
  p50: number
  p99: number
  max: number
  min: number
}

/** What bench/create-at-rate.ts prints. */
export interface AtRateResult {
  targetRate: number
  seconds: number
  scheduled: number
  /** Creates answered 201. */
  acknowledged: number
  errors: number
  non201: number
  achievedRate: number
  /** Events received per second, from the first create's moment to the last event's arrival. */
  receivedRate: number
  /** Sends more than 5 ms after their moment, and the latest. */
  lateSends: number
  maxLateMs: number
  /** Creates sent and not yet answered, at most; at 256 (the driver's connections) later sends waited for one. */
  maxInFlight: number
  /** From each create's moment by the schedule to its answer. */
  createMs: Spread
  /** Acknowledged creates whose event arrived, those whose event did not, and events that arrived again. */
  received: number
  missing: number
  duplicates: number
  others: number
  /** Event arrival less the create's answer, on the driver's clock. */
  lagMs: Spread
  /** Event arrival less the event's `time` (its transaction's start, in milliseconds), on the wall clock. */
  lagFromEventTimeMs: Spread
}

export interface LagResult extends AtRateResult {
  /** The service's process, relay included, over the warm-up and the measured part. */
  cpuPercent: number
  peakRssMb: number
  /**
   * What the service counted meanwhile: answers outside 2xx (http_request_duration_seconds), failed statements
   * (db_query_duration_seconds, outcome="error"), failed publishes (events_publish_errors_total, where the service
   * has it), and log lines at warn or above.
   */
  serviceErrors: { http: number; database: number; publish: number; logged: number }
}

export interface EventsResult {
  creates: Record<CreateRunName, HttpResult & { outbox?: OutboxAtEnd }>
  pgbench: Record<PgbenchRunName, PgbenchResult>
  /** At BENCH_EVENTS_RATE, and at half the relayed service's maximum create rate (below saturation). */
  lag: { fixedRate: LagResult; halfMaximum: LagResult }
}

declare module '../report.ts' {
  interface Results {
    events?: EventsResult
  }
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? Number.NaN : Number((a / b).toFixed(2))

const failed = (result: HttpResult) => result.errors + result.non2xx > 0

export function eventsTargets({ events }: Readonly<Results>): Target[] {
  if (events === undefined) return []
  const { bareWithEvent, bareWithoutEvent } = events.creates
  const value = ratio(bareWithEvent.requestsPerSecond, bareWithoutEvent.requestsPerSecond)
  // Throughput with failed creates is no throughput.
  const met = value >= 0.85 && !failed(bareWithEvent) && !failed(bareWithoutEvent)
  return [
    { name: 'create with its outbox event / without it (bare node:http, same driver)', value, goal: '≥ 0.85', met },
  ]
}

const row = (cells: unknown[]) => `| ${cells.map((cell) => (cell === undefined ? '–' : String(cell))).join(' | ')} |`
const header = (cells: string[]) => [row(cells), row(cells.map(() => '---'))].join('\n')

export function eventsTable(events: EventsResult, settings: Settings): string[] {
  const { creates, pgbench, lag } = events
  const relayed = creates.serviceRelayed.outbox
  const relative: Record<CreateRunName, string> = {
    bareWithEvent: `${ratio(creates.bareWithEvent.requestsPerSecond, creates.bareWithoutEvent.requestsPerSecond)} of without`,
    bareWithoutEvent: '1',
    service: `${ratio(creates.service.requestsPerSecond, creates.bareWithEvent.requestsPerSecond)} of bare, with`,
    serviceRelayed: `${ratio(creates.serviceRelayed.requestsPerSecond, creates.service.requestsPerSecond)} of no relay`,
  }
  const lines = [
    '### Events: the outbox',
    '',
    `Creates at ${settings.connections} connections (wrk; pgbench: clients), each run on an empty outbox. A create ` +
      `writes its event in the same statement (a CTE: the book, then its row in the outbox), so the event costs ` +
      `the create what the database takes for that insert: the bare server runs the service's statement and the ` +
      `same statement without the event, the target's two figures. The service cannot leave its event out; its ` +
      `create is shown beside them, without a relay and with one publishing to a nats-server -js (its own, on ` +
      `this machine) while it is measured.` +
      (relayed === undefined
        ? ''
        : ` At the end of the relayed run ${relayed.unpublished} of its ${relayed.events} events (warm-up ` +
          `included) were not yet published.`),
    '',
    header(['run', 'req/s (tps)', 'p50 ms', 'p99 ms', 'errors / non-2xx', 'CPU %', 'peak RSS MB', 'ratio']),
  ]
  for (const [name, label] of Object.entries(CREATE_RUNS) as [CreateRunName, string][]) {
    const result = creates[name]
    lines.push(
      row([
        label,
        result.requestsPerSecond,
        result.p50Ms,
        result.p99Ms,
        `${result.errors} / ${result.non2xx}`,
        result.cpuPercent,
        result.peakRssMb,
        relative[name],
      ]),
    )
  }
  for (const [name, label] of Object.entries(PGBENCH_RUNS) as [PgbenchRunName, string][]) {
    const result = pgbench[name]
    const of =
      name === 'withEvent'
        ? `${ratio(result.transactionsPerSecond, pgbench.withoutEvent.transactionsPerSecond)} of without`
        : '1'
    lines.push(
      row([label, result.transactionsPerSecond, `mean ${result.meanLatencyMs}`, '–', result.failed, '–', '–', of]),
    )
  }
  lines.push('')
  const { fixedRate, halfMaximum } = lag
  lines.push(
    `Relay lag, open loop (bench/create-at-rate.ts: each create sent at its moment by the clock, whatever the ` +
      `answers so far, its latency counted from that moment) for ${fixedRate.seconds} s at ` +
      `${fixedRate.targetRate} creates/s (BENCH_EVENTS_RATE) and at half the relayed service's maximum above, ` +
      `after a warm-up at the same rate: the service in production mode with NATS_URL set, a JetStream consumer in ` +
      `the driver's process, made before the first create, receiving the created events. Lag: an event's arrival ` +
      `less its create's answer, on the driver's clock; and less the event's time, which is its transaction's ` +
      `start (now() in the create's statement, in milliseconds). Answered and received per second: from the first ` +
      `create's moment to the last answer, and to the last event's arrival (so that the last lag counts against ` +
      `it): well below answered, the relay fell behind. Late sends: more than 5 ms after their moment (the driver ` +
      `itself fell behind); in flight: sent and not yet answered (at 256, the driver's connections, later sends ` +
      `waited for one).`,
  )
  lines.push('')
  lines.push(
    header([
      'rate /s',
      'answered /s',
      'received /s',
      'acknowledged / received / missing',
      'late sends (latest ms)',
      'most in flight',
      'create p50 / p99 ms',
      'lag p50 ms',
      'lag p99 ms',
      'lag max ms',
      "since event's time p50 / p99 ms",
      'service CPU %',
      'service failures',
    ]),
  )
  for (const result of [fixedRate, halfMaximum]) {
    const { http, database, publish, logged } = result.serviceErrors
    lines.push(
      row([
        result.targetRate,
        result.achievedRate,
        result.receivedRate,
        `${result.acknowledged} of ${result.scheduled} / ${result.received} / ${result.missing}` +
          (result.duplicates + result.others > 0 ? ` (${result.duplicates} twice, ${result.others} foreign)` : ''),
        `${result.lateSends} (${result.maxLateMs})`,
        result.maxInFlight,
        `${result.createMs.p50} / ${result.createMs.p99}`,
        result.lagMs.p50,
        result.lagMs.p99,
        result.lagMs.max,
        `${result.lagFromEventTimeMs.p50} / ${result.lagFromEventTimeMs.p99}`,
        result.cpuPercent,
        `${result.errors + result.non201} failed creates, ${http} non-2xx, ${database} failed statements, ` +
          `${publish} failed publishes, ${logged} warnings`,
      ]),
    )
  }
  lines.push('')
  return lines
}
