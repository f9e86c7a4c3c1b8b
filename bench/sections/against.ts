// The service against an earlier build of itself (BENCH_AGAINST, any git revision), in the same run on the same
// database: the earlier revision is checked out into a worktree of its own and built as the image builds it, then
// both builds take each scenario in turn, alternating which goes first, for BENCH_ROUNDS rounds. A change that
// claims to cost nothing is held to it here. The database carries this revision's migrations; an earlier build
// runs on them as its replicas do during a rolling update.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, symlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { type Context, rotated, roundsOf, SERVICE, type Section } from '../context.ts'
import type { HttpResult } from '../load.ts'
import type { Target } from '../report.ts'

const run = promisify(execFile)

/** The scenarios compared: the reads and the writes of bench/scenario.lua. */
const COMPARED = ['read', 'list', 'create', 'update', 'mix'] as const
/** The throughput this build keeps of the earlier one's, at least: what a run on 2 shared cores can tell apart. */
const KEEPS = 0.95

export interface AgainstResult {
  revision: string
  commit: string
  scenarios: Record<string, { current: HttpResult; earlier: HttpResult }>
}

declare module '../report.ts' {
  interface Results {
    against?: AgainstResult
  }
}

/** The earlier revision, built in `folder` with the dependencies it locks (shared with this checkout's when equal). */
async function buildRevision(context: Context, revision: string, folder: string): Promise<string> {
  const { stdout } = await run('git', ['rev-parse', '--verify', `${revision}^{commit}`])
  const commit = stdout.trim()
  await run('git', ['worktree', 'add', '--detach', folder, commit])
  const sameLock =
    existsSync(join(folder, 'package-lock.json')) &&
    readFileSync(join(folder, 'package-lock.json'), 'utf8') === readFileSync('package-lock.json', 'utf8')
  if (sameLock) symlinkSync(resolve('node_modules'), join(folder, 'node_modules'))
  else {
    context.say(`  ${revision} locks other dependencies: npm ci in its worktree`)
    await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: folder, maxBuffer: 64 * 1024 * 1024 })
  }
  await run(process.execPath, ['scripts/build.ts'], { cwd: folder })
  return commit
}

export const against: Section = {
  name: 'against',
  about: 'the service against an earlier build of itself (BENCH_AGAINST), scenario by scenario',
  async run(context: Context) {
    const revision = context.settings.against
    if (revision === undefined) {
      context.say('  skipped: BENCH_AGAINST names no revision')
      return {}
    }
    const folder = join(context.workDir, 'against')
    try {
      context.say(`  building ${revision}`)
      const commit = await buildRevision(context, revision, folder)
      const database = await context.database()
      const http = roundsOf<HttpResult>((result) => result.requestsPerSecond)
      for (let round = 1; round <= context.settings.rounds; round++) {
        context.say(`  round ${round} of ${context.settings.rounds}`)
        const builds = rotated(
          [
            ['current', SERVICE],
            ['earlier', join(folder, SERVICE)],
          ] as const,
          round,
        )
        for (const scenario of rotated(COMPARED, round)) {
          for (const [build, script] of builds) {
            await database.reset()
            const server = await context.start(build, script, context.productionEnv(database.url))
            try {
              http.add(`${build} ${scenario}`, await context.drive(server, scenario, { token: context.jwt.token }))
            } finally {
              await context.stop(server)
            }
          }
        }
      }
      await database.reset()
      return {
        against: {
          revision,
          commit,
          scenarios: Object.fromEntries(
            COMPARED.map((scenario) => [
              scenario,
              { current: http.median(`current ${scenario}`), earlier: http.median(`earlier ${scenario}`) },
            ]),
          ),
        },
      }
    } finally {
      await run('git', ['worktree', 'remove', '--force', folder]).catch(() => {})
    }
  },
  targets: ({ against }) =>
    against === undefined
      ? []
      : Object.entries(against.scenarios).map(([scenario, { current, earlier }]): Target => {
          const value = Number((current.requestsPerSecond / earlier.requestsPerSecond).toFixed(2))
          return {
            name: `${scenario}: this build / ${against.revision} (${against.commit.slice(0, 7)})`,
            value,
            goal: `≥ ${KEEPS}`,
            met: value >= KEEPS,
          }
        }),
  report: ({ against }) => {
    if (against === undefined) return []
    const lines = [`### Against ${against.revision} (${against.commit.slice(0, 12)})`, '']
    lines.push('| scenario | this build req/s | p99 ms | earlier req/s | p99 ms | ratio |')
    lines.push('| --- | --- | --- | --- | --- | --- |')
    for (const [scenario, { current, earlier }] of Object.entries(against.scenarios)) {
      lines.push(
        `| ${scenario} | ${current.requestsPerSecond} | ${current.p99Ms} | ${earlier.requestsPerSecond} | ` +
          `${earlier.p99Ms} | ${(current.requestsPerSecond / earlier.requestsPerSecond).toFixed(2)} |`,
      )
    }
    lines.push('')
    return lines
  },
}
