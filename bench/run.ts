// npm run bench: the service against its limits, in one run on one machine.
//
// A fresh PostgreSQL database seeded with 100,000 books; the service started in production mode; each scenario
// driven by wrk at fixed connections, next to the baselines measured in the same run: pgbench on the same
// statements (the database's ceiling), a bare node:http server on the same driver (Node's ceiling), and a bare
// hello for the framework's tax. Writes bench/results/<time>.json and .md and prints the table.
//
//   BENCH_DATABASE_URL  admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_SECONDS       measured seconds per run (default 8); BENCH_WARMUP_SECONDS (default 3)
//   BENCH_ROUNDS        repetitions of every throughput run, median reported (default 3)
//   BENCH_CONNECTIONS   HTTP connections and pgbench clients (default 16)
//   BENCH_BOOKS         books seeded (default 100000)
//   BENCH_COLD_STARTS   starts timed for cold start and idle RSS (default 5), BENCH_IDLE_SECONDS before RSS (2)
//   BENCH_OUTPUT        folder for the results (default bench/results)
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { freePort } from '../test/helpers/tools.ts'
import { createSeededDatabase, jwtFixture, otlpSink, productionSettings } from './fixtures.ts'
import { type HttpResult, measureAtRate, measureHttp, type PgbenchResult, pgbench } from './load.ts'
import { pgbenchScripts } from './pgbench.ts'
import { type Server, startServer, treeUsage } from './processes.ts'
import { targets, toMarkdown } from './report.ts'

const run = promisify(execFile)
const env = process.env
const settings = {
  adminUrl: env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  seconds: Number(env.BENCH_SECONDS ?? 8),
  rounds: Number(env.BENCH_ROUNDS ?? 3),
  warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 3),
  connections: Number(env.BENCH_CONNECTIONS ?? 16),
  books: Number(env.BENCH_BOOKS ?? 100_000),
  coldStarts: Number(env.BENCH_COLD_STARTS ?? 5),
  idleSeconds: Number(env.BENCH_IDLE_SECONDS ?? 2),
  output: env.BENCH_OUTPUT ?? 'bench/results',
}
// The production build, as the image runs it (npm run build; the harness builds it first).
const SERVICE = 'dist/bin/server.js'
const BARE = 'bench/bare-server.ts'
const SCENARIOS = ['read', 'list', 'list-filter', 'create', 'update', 'mix'] as const

const say = (text: string) => process.stdout.write(`${text}\n`)

async function requireTools() {
  const missing: string[] = []
  const tools: [string, string][] = [
    ['wrk', 'apt-get install wrk'],
    ['pgbench', 'apt-get install postgresql-client (or the postgresql package)'],
    ['psql', 'apt-get install postgresql-client'],
  ]
  for (const [tool, hint] of tools) {
    await run(tool, ['--version']).catch((error: NodeJS.ErrnoException) => {
      // wrk prints its version and exits 1; only a missing program matters.
      if (error.code === 'ENOENT') missing.push(`${tool} (${hint})`)
    })
  }
  if (missing.length > 0) throw new Error(`the benchmark needs: ${missing.join(', ')}`)
}

async function main() {
  await requireTools()
  await run(process.execPath, ['scripts/build.ts'])
  const workDir = mkdtempSync(join(tmpdir(), 'myapp-bench-'))
  const startedAt = new Date()
  say(`myapp benchmark: ${settings.seconds} s per run, ${settings.connections} connections, ${settings.books} books`)
  say(`logs and scripts in ${workDir}`)
  const database = await createSeededDatabase({ adminUrl: settings.adminUrl, books: settings.books, workDir })
  const jwt = await jwtFixture()
  const sink = await otlpSink()
  const servers: Server[] = []

  const productionEnv = (overrides: Record<string, string> = {}) =>
    productionSettings({ databaseUrl: database.url, jwt, otlpUrl: sink.url }, overrides)
  // The same build with every optional feature off.
  const FEATURES_OFF = {
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    OTEL_SDK_DISABLED: 'true',
    AUTH_MODE: 'none',
    AUTH_ALLOW_NONE: 'true',
    RATE_LIMIT_MAX: '0',
    LOAD_SHED_EVENT_LOOP_DELAY: '0',
  }

  // The bare server at its best, pooled as the service is by default: reads pipelined on one connection, writes
  // spread over nine, whose commits PostgreSQL flushes together (bench/pool-settings.ts measures the alternatives).
  const bareEnv = { DATABASE_URL: database.url, DB_POOL_MAX: '10', DB_POOL_READS: '1' }

  const start = async (name: string, script: string, extraEnv: Record<string, string>) => {
    const port = await freePort()
    const server = await startServer({
      name,
      script,
      port,
      env: { ...extraEnv, SERVER_PORT: String(port), PORT: String(port) },
      logFile: join(workDir, `${name}.log`),
      readyPath: '/readyz',
    })
    servers.push(server)
    return server
  }
  const stop = async (server: Server) => {
    await server.stop()
    servers.splice(servers.indexOf(server), 1)
  }
  const drive = (server: Server, scenario: string, options: { token?: string; path?: string } = {}) =>
    measureHttp(server.pid, {
      url: server.url,
      scenario,
      books: settings.books,
      connections: settings.connections,
      seconds: settings.seconds,
      warmupSeconds: settings.warmupSeconds,
      ...options,
    })

  try {
    // Rounds: every measurement below is repeated BENCH_ROUNDS times, alternating, and the run with the median
    // throughput is reported; single runs on a shared 2-core machine varied by ±15%.
    const runs = new Map<string, HttpResult[]>()
    const pgbenchRuns = new Map<string, PgbenchResult[]>()
    const record = <T>(map: Map<string, T[]>, key: string, result: T) => map.set(key, [...(map.get(key) ?? []), result])
    const scripts = pgbenchScripts(workDir, settings.books)
    const variants: Record<string, Record<string, string>> = {
      'all features on': {},
      'all features off': FEATURES_OFF,
      'only logging and metrics': { ...FEATURES_OFF, LOG_LEVEL: 'info', METRICS_ENABLED: 'true' },
      'without request logging': { LOG_LEVEL: 'warn' },
      'without metrics': { METRICS_ENABLED: 'false' },
      'without tracing': { OTEL_SDK_DISABLED: 'true' },
      'without authentication': { AUTH_MODE: 'none', AUTH_ALLOW_NONE: 'true' },
      'without rate limit': { RATE_LIMIT_MAX: '0' },
      '2 workers': { WEB_CONCURRENCY: '2' },
    }
    let scrape = { meanMs: 0, bytes: 0 }

    for (let round = 1; round <= settings.rounds; round++) {
      say(`round ${round} of ${settings.rounds}`)
      // 1. The scenarios, each on the service (production mode), the bare server and pgbench in turn, every run
      //    starting from the seeded data (what creates added is deleted, then VACUUM ANALYZE).
      const production = await start('service', SERVICE, productionEnv())
      const bareServer = await start('bare', BARE, bareEnv)
      for (const scenario of SCENARIOS) {
        say(`  ${scenario}: service, bare, pgbench`)
        await database.reset()
        record(runs, `service ${scenario}`, await drive(production, scenario, { token: jwt.token }))
        await database.reset()
        record(runs, `bare ${scenario}`, await drive(bareServer, scenario))
        await database.reset()
        record(
          pgbenchRuns,
          scenario,
          await pgbench({
            databaseUrl: database.url,
            scripts: scripts[scenario] ?? [],
            clients: settings.connections,
            seconds: settings.seconds,
          }),
        )
      }
      await database.reset()
      say('  /livez and bare /hello')
      record(runs, 'livez', await drive(production, 'path', { path: '/livez' }))
      record(runs, 'hello', await drive(bareServer, 'path', { path: '/hello' }))
      if (round === 1) scrape = await scrapeCost(production.url)
      await stop(production)
      await stop(bareServer)

      // 2. What each feature costs (read by id with everything on, everything off, each feature off alone), and
      //    scale-out on one machine with node:cluster workers.
      // Each round starts the list one further along, so no variant always runs first or last.
      const entries = Object.entries(variants)
      const rotated = [...entries.slice(round - 1), ...entries.slice(0, round - 1)]
      for (const [name, overrides] of rotated) {
        const server = await start(`service-${name.replaceAll(' ', '-')}`, SERVICE, productionEnv(overrides))
        say(`  read, ${name}`)
        await database.reset()
        record(runs, name, await drive(server, 'read', overrides.AUTH_MODE === 'none' ? {} : { token: jwt.token }))
        await stop(server)
      }
    }
    const median = <T>(results: T[] | undefined, figure: (result: T) => number): T => {
      const sorted = [...(results ?? [])].sort((a, b) => figure(a) - figure(b))
      return sorted[Math.floor((sorted.length - 1) / 2)] as T
    }
    const medianHttp = (key: string) => median(runs.get(key), (result) => result.requestsPerSecond)
    const service = Object.fromEntries(SCENARIOS.map((scenario) => [scenario, medianHttp(`service ${scenario}`)]))
    const features = Object.fromEntries(
      Object.keys(variants)
        .filter((name) => name !== '2 workers')
        .map((name) => [name, medianHttp(name)]),
    )
    const cluster = { '1 worker': medianHttp('all features on'), '2 workers': medianHttp('2 workers') }

    // 3. Latency below saturation: read by id at half of its maximum rate.
    const halfRate = Math.max(1, Math.round((service.read?.requestsPerSecond ?? 2) / 2))
    const atRate = async (name: string, script: string, serverEnv: Record<string, string>, token?: string) => {
      const server = await start(name, script, serverEnv)
      await database.reset()
      const result = await measureAtRate(server.pid, {
        url: server.url,
        books: settings.books,
        ...(token === undefined ? {} : { token }),
        rate: halfRate,
        connections: settings.connections,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
      })
      await stop(server)
      return result
    }
    say(`read at ${halfRate} req/s: service, bare`)
    const atHalf = await atRate('service-rate', SERVICE, productionEnv(), jwt.token)
    // The same rate on the bare server: the latency this machine gives with no service in the way.
    const bareAtHalf = await atRate('bare-rate', BARE, bareEnv)

    // 4. Cold start and idle memory, against the bare server's.
    //    A first start has no compile cache, as in a new container; a restart reuses the one the first start
    //    wrote (NODE_COMPILE_CACHE, as the image sets it).
    const compileCache = join(workDir, 'compile-cache')
    const sharedCache = { NODE_COMPILE_CACHE: join(compileCache, 'shared') }
    await stop(await start('service-prime', SERVICE, productionEnv(sharedCache)))
    const startup = {
      service: await coldStarts(
        (i) => start('service-cold', SERVICE, productionEnv({ NODE_COMPILE_CACHE: join(compileCache, `first-${i}`) })),
        stop,
      ),
      restart: await coldStarts(() => start('service-restart', SERVICE, productionEnv(sharedCache)), stop),
      bare: await coldStarts(() => start('bare-cold', BARE, bareEnv), stop),
    }

    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(),
      settings,
      scenarios: Object.fromEntries(
        SCENARIOS.map((scenario) => [
          scenario,
          {
            service: service[scenario],
            bare: medianHttp(`bare ${scenario}`),
            pgbench: median(pgbenchRuns.get(scenario), (result) => result.transactionsPerSecond),
          },
        ]),
      ),
      frameworkTax: { livez: medianHttp('livez'), hello: medianHttp('hello') },
      readAtHalfRate: atHalf,
      bareAtHalfRate: bareAtHalf,
      features,
      cluster,
      startup,
      metricsScrape: scrape,
      tracesExported: sink.stats(),
    }
    const markdown = toMarkdown(results)
    mkdirSync(settings.output, { recursive: true })
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
    const file = join(settings.output, stamp)
    writeFileSync(`${file}.json`, `${JSON.stringify({ ...results, targets: targets(results) }, null, 2)}\n`)
    writeFileSync(`${file}.md`, markdown)
    say(`\n${markdown}`)
    say(`written: ${file}.json and .md`)
  } finally {
    for (const server of [...servers]) await server.stop()
    await sink.close()
    await database.drop()
  }
}

/** 200 sequential scrapes of /metrics: mean time and size. */
async function scrapeCost(url: string) {
  let bytes = 0
  const count = 200
  const started = performance.now()
  for (let i = 0; i < count; i++) bytes = (await (await fetch(`${url}/metrics`)).arrayBuffer()).byteLength
  return { meanMs: Number(((performance.now() - started) / count).toFixed(2)), bytes }
}

/** Start-to-ready times and idle RSS (2 s after ready) over several starts; medians. */
async function coldStarts(startOne: (i: number) => Promise<Server>, stop: (server: Server) => Promise<void>) {
  const startMs: number[] = []
  const idleRssMb: number[] = []
  for (let i = 0; i < settings.coldStarts; i++) {
    const server = await startOne(i)
    startMs.push(server.startMs)
    await sleep(settings.idleSeconds * 1000)
    idleRssMb.push(treeUsage(server.pid).rssBytes / 2 ** 20)
    await stop(server)
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1))
  }
  return { startMs: median(startMs), idleRssMb: median(idleRssMb), runs: settings.coldStarts }
}

async function machine() {
  const { stdout: pg } = await run('psql', ['-Atc', 'SHOW server_version', settings.adminUrl])
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres: pg.trim(),
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
