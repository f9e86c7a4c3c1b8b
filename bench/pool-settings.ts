// How the connection pools' sizes change throughput: the service with all its connections in one pool (the former
// setting, DB_POOL_READS=DB_POOL_MAX=10) against single reads pipelined on a few connections, next to the bare
// node:http server on one connection and on ten, and pgbench on the same statements. One run, one machine.
//
//   node bench/pool-settings.ts
//   BENCH_DATABASE_URL (admin connection), BENCH_SECONDS (7), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (2),
//   BENCH_CONNECTIONS (16), BENCH_BOOKS (100000)
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../test/helpers/tools.ts'
import { createSeededDatabase, jwtFixture, otlpSink, productionSettings } from './fixtures.ts'
import { measureHttp, pgbench } from './load.ts'
import { pgbenchScripts } from './pgbench.ts'
import { type Server, startServer } from './processes.ts'

const run = promisify(execFile)
const env = process.env
const settings = {
  adminUrl: env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  seconds: Number(env.BENCH_SECONDS ?? 7),
  warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 2),
  rounds: Number(env.BENCH_ROUNDS ?? 2),
  connections: Number(env.BENCH_CONNECTIONS ?? 16),
  books: Number(env.BENCH_BOOKS ?? 100_000),
}
const SCENARIOS = ['read', 'create', 'mix'] as const
const SERVICE = 'dist/bin/server.js'
const BARE = 'bench/bare-server.ts'

/** Each setting: the server it starts and its environment beyond the database URL. */
const SETTINGS: { name: string; script: string; env: Record<string, string>; service: boolean }[] = [
  { name: 'service, one pool of 10 (before)', script: SERVICE, env: { DB_POOL_READS: '10' }, service: true },
  {
    name: 'service, reads on 2, the rest on 8',
    script: SERVICE,
    env: { DB_POOL_READS: '2' },
    service: true,
  },
  {
    name: 'service, reads on 1, the rest on 9 (after, the default)',
    script: SERVICE,
    env: { DB_POOL_READS: '1' },
    service: true,
  },
  { name: 'bare node:http, 1 connection', script: BARE, env: { DB_POOL_MAX: '1' }, service: false },
  { name: 'bare node:http, 10 connections', script: BARE, env: { DB_POOL_MAX: '10' }, service: false },
  {
    name: 'bare node:http, reads on 1, writes on 9',
    script: BARE,
    env: { DB_POOL_MAX: '10', DB_POOL_READS: '1' },
    service: false,
  },
]
const PGBENCH = `pgbench, ${settings.connections} clients`
/** The reference of every ratio: the bare server with one pipelined connection. */
const BARE_ONE = 'bare node:http, 1 connection'

const say = (text: string) => process.stdout.write(`${text}\n`)

async function main() {
  await run(process.execPath, ['scripts/build.ts'])
  const workDir = mkdtempSync(join(tmpdir(), 'myapp-pool-bench-'))
  say(`pool settings: ${settings.seconds} s per run, ${settings.rounds} rounds, ${settings.connections} connections`)
  say(`logs in ${workDir}`)
  const database = await createSeededDatabase({ adminUrl: settings.adminUrl, books: settings.books, workDir })
  const jwt = await jwtFixture()
  const sink = await otlpSink()
  const scripts = pgbenchScripts(workDir, settings.books)
  const figures = new Map<string, number[]>()
  const record = (key: string, value: number) => figures.set(key, [...(figures.get(key) ?? []), value])
  let server: Server | undefined
  try {
    for (let round = 1; round <= settings.rounds; round++) {
      say(`round ${round} of ${settings.rounds}`)
      for (const setting of SETTINGS) {
        const port = await freePort()
        const base = setting.service
          ? productionSettings({ databaseUrl: database.url, jwt, otlpUrl: sink.url }, setting.env)
          : { DATABASE_URL: database.url, ...setting.env }
        server = await startServer({
          name: setting.name,
          script: setting.script,
          port,
          env: { ...base, SERVER_PORT: String(port), PORT: String(port) },
          logFile: join(workDir, `${setting.name.replace(/\W+/g, '-')}.log`),
          readyPath: '/readyz',
        })
        for (const scenario of SCENARIOS) {
          await database.reset()
          const result = await measureHttp(server.pid, {
            url: server.url,
            scenario,
            books: settings.books,
            connections: settings.connections,
            seconds: settings.seconds,
            warmupSeconds: settings.warmupSeconds,
            ...(setting.service ? { token: jwt.token } : {}),
          })
          if (result.errors + result.non2xx > 0) say(`  ${setting.name} ${scenario}: ${result.non2xx} non-2xx`)
          record(`${setting.name} ${scenario}`, result.requestsPerSecond)
          say(`  ${setting.name}, ${scenario}: ${result.requestsPerSecond} req/s, server CPU ${result.cpuPercent}%`)
        }
        await server.stop()
        server = undefined
      }
      for (const scenario of SCENARIOS) {
        await database.reset()
        const result = await pgbench({
          databaseUrl: database.url,
          scripts: scripts[scenario] ?? [],
          clients: settings.connections,
          seconds: settings.seconds,
        })
        record(`${PGBENCH} ${scenario}`, result.transactionsPerSecond)
      }
    }
  } finally {
    await server?.stop()
    await sink.close()
    await database.drop()
  }
  const median = (key: string) => {
    const sorted = [...(figures.get(key) ?? [])].sort((a, b) => a - b)
    const middle = (sorted.length - 1) / 2
    return Math.round(((sorted[Math.floor(middle)] ?? 0) + (sorted[Math.ceil(middle)] ?? 0)) / 2)
  }
  const bareOne = Object.fromEntries(SCENARIOS.map((scenario) => [scenario, median(`${BARE_ONE} ${scenario}`)]))
  const cell = (value: number, scenario: string) => `${value} (${(value / (bareOne[scenario] || 1)).toFixed(2)}×)`
  const rows = [...SETTINGS.map((setting) => setting.name), PGBENCH].map(
    (name) => `| ${name} | ${SCENARIOS.map((scenario) => cell(median(`${name} ${scenario}`), scenario)).join(' | ')} |`,
  )
  say('\nreq/s, median of the rounds (÷ the bare server on 1 connection)\n')
  say(`| setting | ${SCENARIOS.join(' | ')} |`)
  say(`|---|${SCENARIOS.map(() => '---').join('|')}|`)
  for (const row of rows) say(row)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
