export const PROMETHEUS = '/usr/bin/prometheus'
export const PROMTOOL = '/usr/bin/promtool'

// External programs some tests drive (Debian's prometheus and promtool): found, or a clear skip reason.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
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

// Where a machine without a registry keeps podman settings and stand-in base images; used only when present.
export const CONTAINER_SETTINGS = new URL('../../../shared/container/', import.meta.url).pathname

/** The environment podman runs with: this machine's settings when they are present, else podman's own. */
export function podmanEnvironment(): NodeJS.ProcessEnv {
  return existsSync(CONTAINER_SETTINGS)
    ? {
        ...process.env,
        CONTAINERS_CONF: `${CONTAINER_SETTINGS}containers.conf`,
        CONTAINERS_STORAGE_CONF: `${CONTAINER_SETTINGS}storage.conf`,
        CONTAINERS_REGISTRIES_CONF: `${CONTAINER_SETTINGS}registries.conf`,
      }
    : process.env
}

/** The stand-in images script of this machine's settings, or undefined where the registries are reached. */
export const standInImagesScript = (): string | undefined =>
  existsSync(`${CONTAINER_SETTINGS}standin-images.sh`) ? `${CONTAINER_SETTINGS}standin-images.sh` : undefined

/**
 * Creates and initialises (the OCI runtime's create, where a host refuses podman's limits) a container whose root
 * is /bin/true with its libraries, then removes it: a second's check that needs no image. undefined when it worked.
 */
function containerInitProbe(env: NodeJS.ProcessEnv): string | undefined {
  const rootfs = mkdtempSync(join(tmpdir(), 'myapp-rootfs-'))
  try {
    const libraries = spawnSync('ldd', ['/bin/true'], { encoding: 'utf8' }).stdout.match(/\/\S+/g) ?? []
    for (const file of ['/bin/true', ...libraries]) {
      mkdirSync(join(rootfs, dirname(file)), { recursive: true })
      copyFileSync(file, join(rootfs, file))
    }
    const podman = (args: string[]) => spawnSync('podman', args, { env, encoding: 'utf8', timeout: 60_000 })
    const created = podman(['create', '--pull=never', '--rootfs', rootfs, '/bin/true'])
    const id = created.stdout.trim()
    const failed = created.status !== 0 ? created : podman(['init', id])
    if (id !== '') podman(['rm', '-f', id])
    return failed.status === 0 ? undefined : (`${failed.stderr}`.trim().split('\n').at(-1) ?? `exit ${failed.status}`)
  } finally {
    rmSync(rootfs, { recursive: true, force: true })
  }
}

/**
 * false when podman can run a container and has (or can make) the base images; otherwise why the container tests
 * are skipped. Installed is not enough: a host may refuse podman's default limits or reach no registry.
 */
export function containersUnavailable(baseImages: readonly string[]): string | false {
  const missing = programMissing('/usr/bin/podman', 'apt-get install podman')
  if (missing !== false) return missing
  const env = podmanEnvironment()
  const probe = containerInitProbe(env)
  let reason: string | undefined
  if (probe !== undefined) {
    reason = `podman cannot run a container here (${probe})`
  } else if (standInImagesScript() === undefined) {
    const absent = baseImages.filter(
      (image) => spawnSync('podman', ['image', 'exists', image], { env, timeout: 30_000 }).status !== 0,
    )
    if (absent.length > 0) reason = `base images not in podman's store: ${absent.join(', ')} (podman pull them)`
  }
  if (reason === undefined) return false
  if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
  return reason
}

/** A hash of the files a clone would hold (tracked, and new ones git does not ignore), as they are now. */
function sourceHash(root: string): string {
  const listed = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' })
  const hash = createHash('sha256')
  for (const file of listed.stdout.split('\0').filter(Boolean).sort()) {
    hash.update(file)
    if (existsSync(join(root, file))) hash.update(readFileSync(join(root, file)))
  }
  return hash.digest('hex').slice(0, 16)
}

/**
 * Builds the project's image for `target` as `tag`, unless the image there was already built from this very tree:
 * the image and kube-play tests share one build, whichever runs first makes it and the other waits on the lock.
 */
export async function buildProjectImage(root: string, tag: string, target: string): Promise<void> {
  // Where no registry is reached, the base images are the machine's stand-ins, made first if missing.
  const standIns = standInImagesScript()
  if (standIns !== undefined) {
    const [program, ...args] = underContainerScriptsLock(['bash', standIns])
    await promisify(execFile)(program as string, args, { timeout: 600_000 })
  }
  const source = sourceHash(root)
  const script = [
    `[ "$(podman image inspect "$1" --format '{{index .Labels "myapp.test.source"}}' 2>/dev/null)" = "$2" ] && exit 0`,
    'exec podman build --pull=never --target "$3" --label "myapp.test.source=$2" -t "$1" -f Dockerfile .',
  ].join('\n')
  const [program, ...args] = underContainerScriptsLock(['sh', '-c', script, 'build', tag, source, target])
  await promisify(execFile)(program as string, args, {
    cwd: root,
    env: podmanEnvironment(),
    timeout: 900_000,
    maxBuffer: 64 * 1024 * 1024,
  })
}
