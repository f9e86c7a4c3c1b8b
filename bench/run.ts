// npm run bench: the service against its limits, in one run on one machine.
//
// The plan below runs its sections in order. Most share a fresh PostgreSQL database seeded with BENCH_BOOKS books
// (bench/seed.sql) and drive the service, started in production mode, with wrk at fixed connections, next to the
// baselines measured in the same run: pgbench on the same statements (the database's ceiling), a bare node:http
// server on the same driver (Node's ceiling), and a bare hello for the framework's tax. The rpc section drives
// native gRPC with h2load (nghttp2-client) as well; the events section starts a nats-server -js of its own and
// drives creates at a fixed rate with bench/create-at-rate.ts. The lists section seeds databases of its own. Writes
// bench/results/<time>.json and .md (and the lists' query plans in <time>-plans/) and prints the report.
//
//   BENCH_ONLY          sections to run, comma-separated, in the plan's order whatever the order named (default all):
//                       scenarios, features, rate, pools, rpc, events, startup, lists, against;
//                       e.g. BENCH_ONLY=lists,pools npm run bench
//   BENCH_DATABASE_URL  admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_SECONDS       measured seconds per run (default 8); BENCH_WARMUP_SECONDS (default 3)
//   BENCH_ROUNDS        repetitions of every throughput run, median reported (default 3)
//   BENCH_CONNECTIONS   HTTP connections and pgbench clients (default 16)
//   BENCH_BOOKS         books seeded for every section but lists (default 100000)
//   BENCH_EVENTS_RATE   creates per second of the events section's relay lag (default 1000)
//   BENCH_LIST_SIZES    the lists section's table sizes, comma-separated (default 10000,1000000)
//   BENCH_COLD_STARTS   starts timed for cold start and idle RSS (default 5), BENCH_IDLE_SECONDS before RSS (2)
//   BENCH_OUTPUT        folder for the results (default bench/results)
//   BENCH_AGAINST       a git revision (e.g. main, v1.2.0, a commit) whose build the against section measures beside
//                       this one, scenario by scenario, in the same run; unset: that section is skipped
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { promisify } from 'node:util'
import { type Context, openContext, type Section } from './context.ts'
import { type Results, type Target, targets, toMarkdown } from './report.ts'
import { against } from './sections/against.ts'
import { events } from './sections/events.ts'
import { features } from './sections/features.ts'
import { lists } from './sections/lists.ts'
import { pools } from './sections/pools.ts'
import { rate } from './sections/rate.ts'
import { rpc } from './sections/rpc.ts'
import { scenarios } from './sections/scenarios.ts'
import { startup } from './sections/startup.ts'
import { type Settings, settingsFrom } from './settings.ts'

const run = promisify(execFile)

const PLAN: Section[] = [scenarios, features, rate, pools, rpc, events, startup, lists, against]

async function main() {
  const settings = settingsFrom(process.env)
  const sections = selected(settings)
  await requireTools(sections)
  await run(process.execPath, ['scripts/build.ts'])
  const startedAt = new Date()
  const context = await openContext(settings, startedAt)
  context.say(
    `myapp benchmark: ${sections.map((section) => section.name).join(', ')}; ${settings.seconds} s per run, ` +
      `${settings.connections} connections, ${settings.books} books`,
  )
  try {
    let results: Results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(settings.adminUrl),
      settings,
      sections: sections.map((section) => section.name),
    }
    for (const section of sections) {
      context.say(`${section.name}: ${section.about}`)
      const started = performance.now()
      results = { ...results, ...(await section.run(context, results)) }
      context.say(`  ${section.name} took ${Math.round((performance.now() - started) / 1000)} s`)
    }
    write(context, sections, { ...results, tracesExported: context.otlp.stats() })
  } finally {
    await context.close()
  }
}

function selected(settings: Settings): Section[] {
  const unknown = settings.only.filter((name) => !PLAN.some((section) => section.name === name))
  if (unknown.length > 0) {
    throw new Error(`BENCH_ONLY: no section ${unknown.join(', ')}; the sections: ${PLAN.map((s) => s.name).join(', ')}`)
  }
  return settings.only.length === 0 ? PLAN : PLAN.filter((section) => settings.only.includes(section.name))
}

function write(context: Context, sections: Section[], results: Results) {
  const own = sections.flatMap((section) => section.targets?.(results) ?? [])
  const tables = sections.flatMap((section) => section.report?.(results) ?? [])
  const markdown = withSections(toMarkdown(results), own, tables)
  mkdirSync(context.settings.output, { recursive: true })
  writeFileSync(
    `${context.stem}.json`,
    `${JSON.stringify({ ...results, targets: [...targets(results), ...own] }, null, 2)}\n`,
  )
  writeFileSync(`${context.stem}.md`, markdown)
  context.say(`\n${markdown}`)
  context.say(`written: ${context.stem}.json and .md`)
}

/** The report with the sections' own targets at the end of its targets table, and their tables at its end. */
function withSections(markdown: string, own: Target[], tables: string[]): string {
  const lines = markdown.split('\n')
  const heading = lines.indexOf('### Targets')
  // The heading, a blank line, the table's header and rule, its rows, and a blank line.
  const end = lines.indexOf('', heading + 2)
  if (heading < 0 || end < 0) throw new Error('the report has no targets table')
  const rows = own.map(
    (target) => `| ${target.name} | ${target.value} | ${target.goal} | ${target.met ? 'yes' : 'NO'} |`,
  )
  lines.splice(end, 0, ...rows)
  return [...lines, ...tables].join('\n')
}

async function requireTools(sections: Section[]) {
  const missing: string[] = []
  const tools: [string, string][] = [
    ['wrk', 'apt-get install wrk'],
    ['pgbench', 'apt-get install postgresql-client (or the postgresql package)'],
    ['psql', 'apt-get install postgresql-client'],
    ...sections.flatMap((section) => section.tools ?? []),
  ]
  for (const [tool, hint] of tools) {
    await run(tool, ['--version']).catch((error: NodeJS.ErrnoException) => {
      // wrk prints its version and exits 1; only a missing program matters.
      if (error.code === 'ENOENT') missing.push(`${tool} (${hint})`)
    })
  }
  if (missing.length > 0) throw new Error(`the benchmark needs: ${missing.join(', ')}`)
}

async function machine(adminUrl: string) {
  const { stdout: pg } = await run('psql', ['-Atc', 'SHOW server_version', adminUrl])
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
