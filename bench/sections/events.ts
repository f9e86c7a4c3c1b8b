// The outbox's price: creates with their event against the same creates without it, on the bare server and under
// pgbench, beside the service's own create without and with its relay publishing to NATS JetStream; then the relay's
// lag at a fixed rate of creates (BENCH_EVENTS_RATE), open loop, each event received from the stream. Every run
// starts from an empty outbox and the seeded books; the section starts a nats-server of its own.
import { execFile } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { BARE, type Context, rotated, roundsOf, SERVICE, type Section } from '../context.ts'
import { type HttpResult, type PgbenchResult, pgbench, warmThenMeasure } from '../load.ts'
import { NATS_SERVER, startNatsServer } from '../nats-server.ts'
import { pgbenchScripts } from '../pgbench.ts'
import type { Server } from '../processes.ts'
import { withoutEvent } from '../without-event.ts'
import {
  type AtRateResult,
  CREATE_RUNS,
  type CreateRunName,
  type EventsResult,
  eventsTable,
  eventsTargets,
  type LagResult,
  type OutboxAtEnd,
  PGBENCH_RUNS,
  type PgbenchRunName,
} from './events-result.ts'

const run = promisify(execFile)
const AT_RATE = fileURLToPath(new URL('../create-at-rate.ts', import.meta.url))
/** How long the driver waits, after its last create, for the events it has not received. */
const DRAIN_SECONDS = 30

type RunName = CreateRunName | PgbenchRunName
const LABELS: Record<RunName, string> = { ...CREATE_RUNS, ...PGBENCH_RUNS }
const RUNS = Object.keys(LABELS) as RunName[]
/** The baselines, which must leave the outbox empty; every other run must fill it. */
const WITHOUT_EVENT: ReadonlySet<RunName> = new Set(['bareWithoutEvent', 'withoutEvent'])

export const events: Section = {
  name: 'events',
  about: 'create with its outbox event against without it; the service with its relay; relay lag at a fixed rate',
  tools: [[NATS_SERVER, 'apt-get install nats-server']],
  async run(context: Context) {
    const { settings } = context
    const database = await context.database()
    const sql = postgres(database.url, { max: 1, onnotice: () => {} })
    const nats = await startNatsServer(context.workDir)
    // The outbox as the seed left it: empty, whatever earlier sections wrote to it.
    const freshStart = async () => {
      await sql`TRUNCATE outbox`
      await database.reset()
    }
    const outboxNow = async (): Promise<OutboxAtEnd> => {
      const [row] = await sql<OutboxAtEnd[]>`
        SELECT count(*)::int AS events, (count(*) FILTER (WHERE published_at IS NULL))::int AS unpublished
        FROM outbox`
      return row as OutboxAtEnd
    }
    const scripts = createScripts(context.workDir, settings.books)
    const http = roundsOf<HttpResult & { outbox?: OutboxAtEnd }>((result) => result.requestsPerSecond)
    const pgbenchRuns = roundsOf<PgbenchResult>((result) => result.transactionsPerSecond)
    const token = context.jwt.token
    try {
      for (let round = 1; round <= settings.rounds; round++) {
        context.say(`  round ${round} of ${settings.rounds}`)
        const bareWith = await context.start('bare-create-with-event', BARE, context.bareEnv(database.url))
        const bareWithout = await context.start('bare-create-without-event', BARE, {
          ...context.bareEnv(database.url),
          BARE_EVENTS: 'off',
        })
        const service = await context.start('service-events', SERVICE, context.productionEnv(database.url))
        const wrk = async (name: CreateRunName, server: Server, options = {}) => {
          http.add(name, { ...(await context.drive(server, 'create', options)), outbox: await outboxNow() })
        }
        const pgbenchOf = async (name: PgbenchRunName) => {
          const script = scripts[name]
          pgbenchRuns.add(
            name,
            await pgbench({
              databaseUrl: database.url,
              scripts: [script],
              clients: settings.connections,
              seconds: settings.seconds,
            }),
          )
        }
        const drivers: Record<RunName, () => Promise<void>> = {
          bareWithEvent: () => wrk('bareWithEvent', bareWith),
          bareWithoutEvent: () => wrk('bareWithoutEvent', bareWithout),
          service: () => wrk('service', service, { token }),
          // Up only for its own run: its relay would publish the other runs' events.
          serviceRelayed: async () => {
            const relayed = await context.start(
              'service-events-relayed',
              SERVICE,
              context.productionEnv(database.url, { NATS_URL: nats.url }),
            )
            try {
              await wrk('serviceRelayed', relayed, { token })
            } finally {
              await context.stop(relayed)
            }
          },
          withEvent: () => pgbenchOf('withEvent'),
          withoutEvent: () => pgbenchOf('withoutEvent'),
        }
        for (const name of rotated(RUNS, round)) {
          context.say(`    ${LABELS[name]}`)
          await freshStart()
          await drivers[name]()
          // A baseline that wrote events, or a run that wrote none, would measure something else.
          const { events } = await outboxNow()
          if (WITHOUT_EVENT.has(name) !== (events === 0)) {
            throw new Error(`${LABELS[name]}: ${events} events in the outbox after the run`)
          }
        }
        await context.stop(service)
        await context.stop(bareWith)
        await context.stop(bareWithout)
      }
      const creates = Object.fromEntries(
        (Object.keys(CREATE_RUNS) as CreateRunName[]).map((name) => [name, http.median(name)]),
      ) as EventsResult['creates']
      const lagAt = async (rate: number) => {
        context.say(`  relay lag at ${rate} creates/s`)
        await freshStart()
        const lag = await relayLag(context, database.url, nats.url, rate)
        context.say(
          `    ${lag.achievedRate} answered/s, ${lag.receivedRate} received/s; lag p50 ${lag.lagMs.p50} ms, ` +
            `p99 ${lag.lagMs.p99} ms; ${lag.received} events for ${lag.acknowledged} creates`,
        )
        return lag
      }
      const result: EventsResult = {
        creates,
        pgbench: { withEvent: pgbenchRuns.median('withEvent'), withoutEvent: pgbenchRuns.median('withoutEvent') },
        lag: {
          fixedRate: await lagAt(settings.eventsRate),
          // Below saturation, as the rate section reads: what the relay adds when nothing else queues.
          halfMaximum: await lagAt(Math.max(1, Math.round(creates.serviceRelayed.requestsPerSecond / 2))),
        },
      }
      return { events: result }
    } finally {
      await nats.stop()
      await sql.end({ timeout: 5 })
    }
  },
  targets: eventsTargets,
  report: (results) => (results.events === undefined ? [] : eventsTable(results.events, results.settings)),
}

/** pgbench's create (the service's statement, bench/pgbench.ts), and the same without its event. */
function createScripts(folder: string, books: number) {
  const [withEvent] = pgbenchScripts(folder, books).create as [string]
  const withoutEventFile = join(folder, 'create-without-event.pgbench.sql')
  // One line, as bench/pgbench.ts writes its statements.
  writeFileSync(withoutEventFile, `${withoutEvent(readFileSync(withEvent, 'utf8')).replace(/\s+/g, ' ')}\n`)
  return { withEvent, withoutEvent: withoutEventFile }
}

/**
 * The service with its relay, driven at `rate` creates/s by bench/create-at-rate.ts after a warm-up at the same
 * rate (whose events the driver waits for, so none reach the measured part), with what the service counted and
 * logged meanwhile.
 */
async function relayLag(context: Context, databaseUrl: string, natsUrl: string, rate: number): Promise<LagResult> {
  const { settings } = context
  const name = 'service-events-lag'
  const service = await context.start(name, SERVICE, context.productionEnv(databaseUrl, { NATS_URL: natsUrl }))
  try {
    const logFile = context.logFile(name)
    const logFrom = statSync(logFile).size
    const before = await countedErrors(service)
    const drive = async (seconds: number) => {
      const options = { url: service.url, token: context.jwt.token, natsUrl, rate, seconds }
      const { stdout } = await run(
        process.execPath,
        [AT_RATE, JSON.stringify({ ...options, drainSeconds: DRAIN_SECONDS })],
        {
          maxBuffer: 1 << 20,
          timeout: (seconds + DRAIN_SECONDS + 60) * 1000,
        },
      )
      return JSON.parse(stdout) as AtRateResult
    }
    const { result, cpuPercent, peakRssMb } = await warmThenMeasure(
      service.pid,
      settings.warmupSeconds,
      settings.seconds,
      drive,
    )
    const after = await countedErrors(service)
    const logged = readFileSync(logFile, 'utf8')
      .slice(logFrom)
      .split('\n')
      .filter((line) => /"level":"(warn|error|fatal)"/.test(line)).length
    return {
      ...result,
      cpuPercent,
      peakRssMb,
      serviceErrors: {
        http: after.http - before.http,
        database: after.database - before.database,
        publish: after.publish - before.publish,
        logged,
      },
    }
  } finally {
    await context.stop(service)
  }
}

/** From the service's /metrics: answers outside 2xx, statements that failed, and failed publishes (if counted). */
async function countedErrors(server: Server): Promise<{ http: number; database: number; publish: number }> {
  const response = await fetch(`${server.url}/metrics`)
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`)
  const counts = { http: 0, database: 0, publish: 0 }
  for (const line of (await response.text()).split('\n')) {
    const count = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (line.startsWith('http_request_duration_seconds_count{') && !/status_code="2\d\d"/.test(line)) {
      counts.http += count
    }
    if (line.startsWith('db_query_duration_seconds_count{') && line.includes('outcome="error"')) {
      counts.database += count
    }
    if (line.startsWith('events_publish_errors_total')) counts.publish += count
  }
  return counts
}
