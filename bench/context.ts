// What every section of the benchmark is given: the settings (BENCH_*), a work folder for logs and scripts, the
// seeded database (made on first use, so that sections which need none seed none), a JWT, an OTLP receiver, and
// helpers that start servers on free ports and drive them.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createSeededDatabase,
  type JwtFixture,
  jwtFixture,
  otlpSink,
  productionSettings,
  type SeededDatabase,
} from './fixtures.ts'
import { type HttpResult, measureHttp, type WrkOptions } from './load.ts'
import { freePort } from './ports.ts'
import { type Server, startServer } from './processes.ts'
import type { Results, Target } from './report.ts'
import type { Settings } from './settings.ts'

/** The production build, as the image runs it (npm run build; the harness builds it first). */
export const SERVICE = 'dist/bin/server.js'
export const BARE = 'bench/bare-server.ts'

export interface Context {
  settings: Settings
  workDir: string
  /** This run's results are `${stem}.json` and `.md`, its query plans under `${stem}-plans/`. */
  stem: string
  jwt: JwtFixture
  otlp: Awaited<ReturnType<typeof otlpSink>>
  /** The database of BENCH_BOOKS books, seeded on first use and shared by the sections. */
  database(): Promise<SeededDatabase>
  /** The service's production environment on `databaseUrl`, with `overrides`. */
  productionEnv(databaseUrl: string, overrides?: Record<string, string>): Record<string, string>
  /**
   * The bare server at its best for reads: pipelined on one connection, writes spread over nine, whose commits
   * PostgreSQL flushes together.
   */
  bareEnv(databaseUrl: string): Record<string, string>
  /** Starts `script` on a free port and waits until /readyz answers; stopped by `stop` or at the end of the run. */
  start(name: string, script: string, env: Record<string, string>): Promise<Server>
  /** Where `start` writes the output of the server it started under `name`. */
  logFile(name: string): string
  stop(server: Server): Promise<void>
  /** One wrk run of a scenario (bench/scenario.lua) against the server, after the warm-up. */
  drive(
    server: Server,
    scenario: string,
    options?: Pick<WrkOptions, 'token' | 'path' | 'bodyFile' | 'contentType'>,
  ): Promise<HttpResult>
  say(text: string): void
  close(): Promise<void>
}

export async function openContext(settings: Settings, startedAt: Date): Promise<Context> {
  const workDir = mkdtempSync(join(tmpdir(), 'myapp-bench-'))
  const jwt = await jwtFixture()
  const otlp = await otlpSink()
  const servers: Server[] = []
  let seeded: Promise<SeededDatabase> | undefined
  const say = (text: string) => process.stdout.write(`${text}\n`)
  say(`logs and scripts in ${workDir}`)

  const context: Context = {
    settings,
    workDir,
    stem: join(settings.output, startedAt.toISOString().replace(/[:.]/g, '-')),
    jwt,
    otlp,
    database() {
      seeded ??= createSeededDatabase({ adminUrl: settings.adminUrl, books: settings.books }).then((database) => {
        say(`  seeded ${database.books} books in ${database.seedSeconds} s`)
        return database
      })
      return seeded
    },
    productionEnv: (databaseUrl, overrides = {}) =>
      productionSettings({ databaseUrl, jwt, otlpUrl: otlp.url }, overrides),
    bareEnv: (databaseUrl) => ({ DATABASE_URL: databaseUrl, DB_POOL_MAX: '10', DB_POOL_READS: '1' }),
    async start(name, script, env) {
      const port = await freePort()
      const server = await startServer({
        name,
        script,
        port,
        env: { ...env, SERVER_PORT: String(port), PORT: String(port) },
        logFile: context.logFile(name),
        readyPath: '/readyz',
      })
      servers.push(server)
      return server
    },
    logFile: (name) => join(workDir, `${name.replace(/\W+/g, '-')}.log`),
    async stop(server) {
      await server.stop()
      servers.splice(servers.indexOf(server), 1)
    },
    drive: (server, scenario, options = {}) =>
      measureHttp(server.pid, {
        url: server.url,
        scenario,
        books: settings.books,
        connections: settings.connections,
        seconds: settings.seconds,
        warmupSeconds: settings.warmupSeconds,
        ...options,
      }),
    say,
    async close() {
      for (const server of [...servers]) await server.stop()
      await otlp.close()
      if (seeded !== undefined) await (await seeded).drop()
    },
  }
  return context
}

/** Results of repeated runs under a name; the run with the median of `figure` stands for them. */
export function roundsOf<T>(figure: (result: T) => number) {
  const runs = new Map<string, T[]>()
  return {
    add(key: string, result: T) {
      runs.set(key, [...(runs.get(key) ?? []), result])
    },
    median(key: string): T {
      const sorted = [...(runs.get(key) ?? [])].sort((a, b) => figure(a) - figure(b))
      return sorted[Math.floor((sorted.length - 1) / 2)] as T
    },
  }
}

/** One part of the plan (bench/run.ts): what it measures, and the part of the results it fills. */
export interface Section {
  name: string
  /** One line for the progress output. */
  about: string
  /** Programs the section needs beyond wrk, pgbench and psql, each with how to install it. */
  tools?: [program: string, install: string][]
  run(context: Context, results: Readonly<Results>): Promise<Partial<Results>>
  /** Targets of the section's results that bench/report.ts does not declare, listed after its own. */
  targets?(results: Readonly<Results>): Target[]
  /** The section's tables for the report, as markdown lines, after bench/report.ts's. */
  report?(results: Readonly<Results>): string[]
}

/** `list` started `round - 1` places further along, so that no entry always runs first or last. */
export function rotated<T>(list: readonly T[], round: number): T[] {
  const shift = (round - 1) % Math.max(1, list.length)
  return [...list.slice(shift), ...list.slice(0, shift)]
}
