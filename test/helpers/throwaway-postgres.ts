// A PostgreSQL cluster of its own (initdb in a temp folder, a free loopback port) for tests that stop, crash or
// freeze the database: the shared server is never touched.
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REQUIRE_SERVICES } from './postgres-server.ts'
import { freePort } from './tools.ts'

const run = promisify(execFile)
const BIN = '/usr/lib/postgresql/15/bin'

export function throwawayPostgresMissing(): string | false {
  if (existsSync(`${BIN}/initdb`) && existsSync('/usr/sbin/runuser')) return false
  const reason = `no ${BIN}/initdb (apt-get install postgresql-15)`
  if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
  return reason
}

export interface ThrowawayPostgres {
  url: string
  start(): Promise<void>
  /** pg_ctl stop -m immediate: a crash, as far as clients can tell. */
  crash(): Promise<void>
  /** SIGSTOP (or SIGCONT) the postmaster and every backend: a frozen server. */
  freeze(): Promise<void>
  thaw(): Promise<void>
  destroy(): Promise<void>
}

// initdb and postgres refuse to run as root: everything runs as the postgres user.
const asPostgres = (command: string, args: string[]) =>
  run('/usr/sbin/runuser', ['-u', 'postgres', '--', command, ...args])

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-pg-'))
  chmodSync(folder, 0o777)
  const data = join(folder, 'data')
  const port = await freePort()
  await asPostgres(`${BIN}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  const options = `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`
  const ctl = (...args: string[]) => asPostgres(`${BIN}/pg_ctl`, ['-D', data, '-w', '-l', join(folder, 'log'), ...args])
  const processes = async () => {
    const postmaster = readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0] as string
    const { stdout } = await run('pgrep', ['-P', postmaster]).catch(() => ({ stdout: '' }))
    return [postmaster, ...stdout.split('\n').filter(Boolean)]
  }
  const signal = async (name: string) => {
    for (const pid of await processes()) process.kill(Number(pid), name as NodeJS.Signals)
  }
  const instance: ThrowawayPostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: async () => {
      await ctl('-o', options, 'start')
    },
    crash: async () => {
      await ctl('-m', 'immediate', 'stop')
    },
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    destroy: async () => {
      await instance.thaw().catch(() => {})
      await ctl('-m', 'immediate', 'stop').catch(() => {})
      rmSync(folder, { recursive: true, force: true })
    },
  }
  await instance.start()
  return instance
}
