export const PROMETHEUS = '/usr/bin/prometheus'
export const PROMTOOL = '/usr/bin/promtool'

// External programs some tests drive (Debian's prometheus and promtool): found, or a clear skip reason.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REQUIRE_SERVICES } from './postgres-server.ts'

/** false when the program is installed; otherwise why the tests that need it are skipped. */
export function programMissing(path: string, install: string): string | false {
  if (existsSync(path)) return false
  const reason = `${path} not found (${install})`
  if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
  return reason
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface RunningPrometheus {
  api: string
  /** Runs an instant query; rejects with Prometheus's error for a bad expression. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>
  stop(): void
}

/** Debian's Prometheus on a free loopback port, scraping `targets` every second, with optional rule files. */
export async function startPrometheus(targets: string[], ruleFiles: string[] = []): Promise<RunningPrometheus> {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-prometheus-'))
  const config = join(folder, 'prometheus.yml')
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: ruleFiles,
      scrape_configs: [{ job_name: 'myapp', static_configs: [{ targets }] }],
    }),
  )
  const port = await freePort()
  const api = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(folder, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  )
  for (let attempt = 0; attempt < 100; attempt++) {
    if (
      await fetch(`${api}/-/ready`).then(
        (response) => response.ok,
        () => false,
      )
    )
      break
    await sleep(200)
  }
  return {
    api,
    async query(expr) {
      const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = (await response.json()) as { status: string; error?: string; data: { result: never[] } }
      if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`)
      return body.data.result
    },
    stop: () => child.kill('SIGTERM'),
  }
}

/**
 * The shared container scripts (../shared/container: the stand-in images, compose) install what they miss with
 * apt-get, which takes one process at a time: test files that run them at once hold this lock, so the second waits
 * instead of failing on dpkg's lock.
 */
export const CONTAINER_SCRIPTS_LOCK = '/tmp/myapp-container-scripts.lock'

/**
 * `argv` run under CONTAINER_SCRIPTS_LOCK (flock, util-linux). With --close the command does not inherit the lock:
 * the containers a compose command starts outlive it, and would otherwise hold the lock for as long as they run.
 */
export const underContainerScriptsLock = (argv: readonly string[]): string[] => [
  'flock',
  '--close',
  CONTAINER_SCRIPTS_LOCK,
  ...argv,
]

/** Polls `probe` every `intervalMs` until it gives a value (a throw counts as none), failing after `timeoutMs`. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(intervalMs)
  }
}
