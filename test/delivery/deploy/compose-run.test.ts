// compose.yml run on a real engine: the database, the migration, NATS, then the app, `up --wait` returning once
// /readyz answers; books over HTTP, each change an event in NATS's BOOKS stream, kept across a restart of NATS; a
// setting changed in .env taking effect on the next `up`; `down -v` leaving nothing of the project; and
// compose.dev.yml restarting the mounted sources on an edit. Here the engine is podman through
// ../shared/container/compose.sh (Debian's docker-compose 1.29 on podman's Docker API, stand-in images under the
// official names); elsewhere Docker Compose v2. Each run works on a copy of the files, so the repository's own .env
// is never read or written.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { parse } from 'yaml'
import { BOOK_EVENTS, type BookEvent } from '../../../src/books/events.ts'
import { configurationVariables, ROOT, setByCompose } from '../../helpers/compose-files.ts'
import { describe } from '../../helpers/describe.ts'
import { REQUIRE_SERVICES } from '../../helpers/postgres-server.ts'
import { bodyOf, jsonRequest } from '../../helpers/service.ts'
import {
  buildProjectImage,
  CONTAINER_SETTINGS,
  freePort,
  podmanEnvironment,
  underContainerScriptsLock,
  until as untilEvery,
} from '../../helpers/tools.ts'

const exec = promisify(execFile)
const SHARED = CONTAINER_SETTINGS
// The image and kube-play tests use the same prod image, so whichever test comes first builds it.
const IMAGE = 'localhost/myapp:test'
const DEV_IMAGE = 'localhost/myapp:test-dev'
const VERIFIER_IMAGE = 'localhost/myapp-verifier:test'

interface Engine {
  /** The compose command line, before its arguments. */
  compose: string[]
  /** The engine's own CLI, for inspecting what compose left. */
  cli: string
  env: NodeJS.ProcessEnv
}

async function findEngine(): Promise<Engine | string> {
  if (existsSync('/usr/bin/podman') && existsSync(`${SHARED}compose.sh`)) {
    return {
      compose: underContainerScriptsLock(['bash', `${SHARED}compose.sh`]),
      cli: 'podman',
      env: podmanEnvironment(),
    }
  }
  if (
    await exec('docker', ['compose', 'version']).then(
      () => true,
      () => false,
    )
  ) {
    return { compose: ['docker', 'compose'], cli: 'docker', env: process.env }
  }
  const reason = `neither podman with ${SHARED}compose.sh nor Docker Compose v2 (docker compose) is available`
  if (REQUIRE_SERVICES) throw new Error(`REQUIRE_TEST_SERVICES=true but ${reason}`)
  return reason
}
/**
 * The image compose.yml's build section names (its target and context, checked in compose.test.ts), as APP_IMAGE.
 * With podman it is built by podman itself, once for every test that needs it: compose's build through podman's
 * Docker API copies each layer again and takes minutes longer for the same image.
 */
async function buildImage(tag: string, target: 'prod' | 'dev' | 'verifier'): Promise<void> {
  if (engine.cli === 'podman') return buildProjectImage(ROOT, tag, target)
  await exec('docker', ['build', '--target', target, '-t', tag, '.'], { cwd: ROOT, timeout: 900_000 })
}

const found = await findEngine()
const skip = typeof found === 'string' ? found : false
const engine = found as Engine

/**
 * A folder with compose.yml, compose.dev.yml, the files they mount (NATS's configuration) and the build context
 * (what .dockerignore lets in), nothing else.
 */
function copyProject(): string {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-compose-'))
  const context = readFileSync(`${ROOT}.dockerignore`, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('!'))
    .map((line) => line.slice(1).replace(/\/$/, ''))
  const { services } = parse(readFileSync(`${ROOT}compose.yml`, 'utf8'), { merge: true }) as {
    services: Record<string, { volumes?: string[] }>
  }
  const mounted = Object.values(services)
    .flatMap((service) => service.volumes ?? [])
    .filter((volume) => volume.startsWith('./'))
    .map((volume) => volume.slice(2).split(':')[0] as string)
  for (const path of ['compose.yml', 'compose.dev.yml', 'Dockerfile', '.dockerignore', ...context, ...mounted]) {
    if (existsSync(`${ROOT}${path}`)) cpSync(`${ROOT}${path}`, join(folder, path), { recursive: true })
  }
  return folder
}

interface Project {
  folder: string
  compose(args: string[], timeoutMs?: number): Promise<string>
  /** The id of the service's container (the one-offs of `run` left out). */
  container(service: string): Promise<string>
  inspect(id: string, format: string): Promise<string>
  /** What the engine still holds of the project: containers, volumes, networks. */
  leftovers(): Promise<string[]>
  /** `down -v` unless done, and the folder deleted. */
  remove(): Promise<void>
}

function openProject(name: string, files: string[]): Project {
  const folder = copyProject()
  const cli = async (args: string[]) =>
    (await exec(engine.cli, args, { env: engine.env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })).stdout.trim()
  const label = `label=com.docker.compose.project=${name}`
  let down = false
  const compose = async (args: string[], timeoutMs = 600_000) => {
    const [command, ...prefix] = engine.compose as [string, ...string[]]
    const fileArgs = files.flatMap((file) => ['-f', file])
    try {
      const { stdout } = await exec(command, [...prefix, '-p', name, ...fileArgs, ...args], {
        cwd: folder,
        env: engine.env,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      })
      if (args[0] === 'down') down = true
      return stdout
    } catch (error) {
      const logs = await exec(command, [...prefix, '-p', name, ...fileArgs, 'logs', '--no-color', '--tail', '40'], {
        cwd: folder,
        env: engine.env,
        timeout: 60_000,
      }).then(
        ({ stdout }) => stdout,
        () => '',
      )
      const { stdout, stderr } = error as { stdout?: string; stderr?: string }
      throw new Error(`compose ${args.join(' ')} failed:\n${stderr ?? ''}\n${stdout ?? ''}\nlogs:\n${logs}`, {
        cause: error,
      })
    }
  }
  return {
    folder,
    compose,
    async container(service) {
      const ids = await cli([
        'ps',
        '-aq',
        '--filter',
        label,
        '--filter',
        `label=com.docker.compose.service=${service}`,
        '--filter',
        'label=com.docker.compose.oneoff=False',
      ])
      const [id, ...others] = ids.split('\n').filter((line) => line !== '')
      assert.ok(id !== undefined && others.length === 0, `one ${service} container: ${ids}`)
      return id
    },
    inspect: (id, format) => cli(['inspect', id, '--format', format]),
    async leftovers() {
      const lines = async (args: string[]) => (await cli(args)).split('\n').filter((line) => line !== '')
      // by label, and by name should an engine drop labels: project_x (1.29; v2's volumes), project-x-1 (v2)
      const named = (line: string) => line.startsWith(`${name}_`) || line.startsWith(`${name}-`)
      const left = new Set<string>()
      for (const [kind, list, format] of [
        ['container', ['ps', '-a'], '{{.Names}}'],
        ['volume', ['volume', 'ls'], '{{.Name}}'],
        ['network', ['network', 'ls'], '{{.Name}}'],
      ] as const) {
        for (const line of await lines([...list, '--filter', label, '--format', format])) left.add(`${kind} ${line}`)
        for (const line of (await lines([...list, '--format', format])).filter(named)) left.add(`${kind} ${line}`)
      }
      return [...left]
    },
    async remove() {
      if (!down) await compose(['down', '-v', '--timeout', '5'], 120_000).catch(() => '')
      rmSync(folder, { recursive: true, force: true })
    },
  }
}

/** Every message of the BOOKS stream, in stream order. */
async function streamContents(jsm: JetStreamManager) {
  const { state } = await jsm.streams.info(BOOK_EVENTS.stream.name)
  const stored: { subject: string; msgId: string | undefined; event: BookEvent }[] = []
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(BOOK_EVENTS.stream.name, { seq })
    if (message !== null) {
      stored.push({ subject: message.subject, msgId: message.header.get('Nats-Msg-Id'), event: message.json() })
    }
  }
  return stored
}

/** Runs a step, reporting how long it took. */
async function timed<T>(t: TestContext, step: string, action: () => Promise<T>): Promise<T> {
  const started = performance.now()
  const result = await action()
  t.diagnostic(`${step}: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return result
}

/** Polled every 200 ms: each probe runs a container engine command. */
const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) =>
  untilEvery(what, timeoutMs, probe, 200)

describe('compose.yml on a container engine', { skip }, () => {
  const name = `myapp-compose-${process.pid}`
  let project: Project
  let base: string
  let natsUrl: string
  let env: string
  let changedId: string
  let keptId: string
  let dbContainer: string
  let natsContainer: string
  before(async () => {
    project = openProject(name, ['compose.yml'])
    const port = await freePort()
    const natsPort = await freePort()
    base = `http://127.0.0.1:${port}`
    natsUrl = `nats://127.0.0.1:${natsPort}`
    env = join(project.folder, '.env')
    const example = readFileSync(`${ROOT}.env.example`, 'utf8')
    writeFileSync(
      env,
      `${example}\nDB_PASS=${randomBytes(12).toString('hex')}\nPUBLISH_PORT=${port}\nPUBLISH_GRPC_PORT=${await freePort()}\nPUBLISH_NATS_PORT=${natsPort}\nAPP_IMAGE=${IMAGE}\nVERIFIER_IMAGE=${VERIFIER_IMAGE}\n`,
    )
  })
  after(async () => {
    await project?.remove()
  })

  it('when .env sets every variable of the configuration reference, then compose hands each to the app and the migration', async () => {
    const saved = readFileSync(env, 'utf8')
    const variables = configurationVariables()
    writeFileSync(env, `${variables.map((variable) => `${variable}=from-dotenv-${variable}`).join('\n')}\n`)
    try {
      const config = parse(await project.compose(['config'])) as {
        services: Record<string, { environment: Record<string, string> }>
      }
      for (const service of ['app', 'migrate'] as const) {
        const environment = config.services[service]?.environment ?? {}
        for (const variable of variables) {
          const expected = setByCompose(service)[variable] ?? `from-dotenv-${variable}`
          assert.equal(environment[variable], expected, `${service}: ${variable}`)
        }
      }
    } finally {
      writeFileSync(env, saved)
    }
  })

  it('when the observability profile is named, then compose accepts it and adds its four services', async () => {
    const config = parse(await project.compose(['--profile', 'observability', 'config'])) as {
      services: Record<string, unknown>
    }
    assert.deepEqual(Object.keys(config.services).sort(), [
      'app',
      'db',
      'grafana',
      'jaeger',
      'migrate',
      'nats',
      'nats-volume',
      'otel-collector',
      'prometheus',
      'verifier',
    ])
  })

  it('when built, then the prod target of the Dockerfile becomes the image both services run', async (t) => {
    await timed(t, 'build (migrate and app, one image)', () => buildImage(IMAGE, 'prod'))
    // The verifier's target shares every layer but its command with prod's.
    await timed(t, 'build (verifier)', () => buildImage(VERIFIER_IMAGE, 'verifier'))
    const { stdout } = await exec(engine.cli, ['image', 'inspect', IMAGE, '--format', '{{.Config.User}}'], {
      env: engine.env,
    })
    assert.equal(stdout.trim(), '65532:65532')
  })

  it('when started with --wait, then the database and NATS are healthy, the one-shots exited 0 and /readyz answers', async (t) => {
    await timed(t, 'up -d --wait (fresh volumes: initdb, migration, NATS, app)', () =>
      project.compose(['up', '-d', '--wait'], 600_000),
    )
    // no retry: --wait returned, so the healthcheck has seen /readyz answer
    const ready = await fetch(`${base}/readyz`)
    assert.equal(ready.status, 200)
    dbContainer = await project.container('db')
    assert.equal(await project.inspect(dbContainer, '{{.State.Health.Status}}'), 'healthy')
    const migrate = await project.container('migrate')
    assert.equal(await project.inspect(migrate, '{{.State.Status}} {{.State.ExitCode}}'), 'exited 0')
    const app = await project.container('app')
    assert.equal(await project.inspect(app, '{{.State.Health.Status}}'), 'healthy')
    const volume = await project.container('nats-volume')
    assert.equal(await project.inspect(volume, '{{.State.Status}} {{.State.ExitCode}}'), 'exited 0')
    natsContainer = await project.container('nats')
    assert.equal(await project.inspect(natsContainer, '{{.State.Health.Status}}'), 'healthy')
    // Healthy once its durable consumer on BOOKS is in place: the second service took its part.
    const verifier = await project.container('verifier')
    assert.equal(await project.inspect(verifier, '{{.State.Health.Status}}'), 'healthy')
    assert.equal(await project.inspect(verifier, '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}'), '65532:65532 true')
    assert.equal(
      await project.inspect(natsContainer, '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}'),
      '1000:1000 true',
    )
  })

  it('when published, then only on 127.0.0.1', async () => {
    for (const [service, port] of [
      ['app', '8080/tcp'],
      ['nats', '4222/tcp'],
    ]) {
      const container = await project.container(service as string)
      const bindings = JSON.parse(await project.inspect(container, '{{json .HostConfig.PortBindings}}')) as Record<
        string,
        { HostIp: string; HostPort: string }[]
      >
      assert.deepEqual(
        bindings[port as string]?.map((binding) => binding.HostIp),
        ['127.0.0.1'],
        service,
      )
    }
  })

  it('when books are created, read, listed, updated and deleted over HTTP, then each answer is right', async () => {
    const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
    const created = await fetch(`${base}/v1/books`, jsonRequest('POST', book))
    assert.equal(created.status, 201)
    assert.equal(created.headers.get('ratelimit-limit'), '600', "the service's default before .env changes it")
    const { id } = await bodyOf(created)
    changedId = id as string
    assert.equal((await bodyOf(await fetch(`${base}/v1/books/${id}`))).title, 'Kindred')
    assert.equal(
      (await fetch(`${base}/v1/books`, { headers: { prefer: 'count=exact' } })).headers.get('x-total-count'),
      '1',
    )
    const updated = await fetch(`${base}/v1/books/${id}`, jsonRequest('PUT', { ...book, status: 'verified' }))
    assert.equal((await bodyOf(updated)).status, 'verified')
    assert.equal((await fetch(`${base}/v1/books/${id}`, { method: 'DELETE' })).status, 204)
    assert.equal((await fetch(`${base}/v1/books/${id}`)).status, 404)
    const kept = await fetch(`${base}/v1/books`, jsonRequest('POST', { ...book, title: 'Dawn' }))
    keptId = (await bodyOf(kept)).id as string
    assert.equal((await fetch(`${base}/docs`)).status, 200)
  })

  it("when books changed, then each change is an event in NATS's BOOKS stream, kept across a restart of NATS", async (t) => {
    const client = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 })
    try {
      const jsm = await jetstreamManager(client)
      const started = performance.now()
      // Bounded: the relay publishes within a fraction of a second of the commit.
      const stored = await until('four events in BOOKS', 15_000, async () => {
        const contents = await streamContents(jsm)
        return contents.length >= 4 ? contents : undefined
      })
      t.diagnostic(`events in the stream ${((performance.now() - started) / 1000).toFixed(1)} s after the last write`)
      assert.deepEqual(
        stored.map(({ subject, event }) => [subject, event.subject]),
        [
          ['books.created', changedId],
          ['books.updated', changedId],
          ['books.deleted', changedId],
          ['books.created', keptId],
        ],
      )
      assert.equal(stored[0]?.event.data.title, 'Kindred')
      assert.deepEqual(
        stored.map(({ msgId }) => msgId),
        stored.map(({ event }) => event.id),
        'Nats-Msg-Id is the event id',
      )
      await timed(t, 'restart nats', () => project.compose(['restart', 'nats'], 120_000))
      const after = await until('BOOKS after the restart', 15_000, () => streamContents(jsm))
      assert.deepEqual(
        after.map(({ event }) => event.id),
        stored.map(({ event }) => event.id),
        'the store is on the volume',
      )
      assert.equal(await project.container('nats'), natsContainer)
    } finally {
      await client.close()
    }
  })

  it('when .env changes RATE_LIMIT_MAX and DOCS_ENABLED, then the next up recreates the app with them', async (t) => {
    appendFileSync(env, 'RATE_LIMIT_MAX=2\nDOCS_ENABLED=false\n')
    await timed(t, 'up -d --wait (after the .env change: migration again, app recreated)', () =>
      project.compose(['up', '-d', '--wait'], 600_000),
    )
    // The page is gone: a request that matches no route, counted like any other.
    const docs = await fetch(`${base}/docs`)
    assert.equal(docs.status, 404)
    assert.equal(docs.headers.get('ratelimit-limit'), '2')
    const statuses = [docs.status]
    for (let request = 0; request < 2; request++) {
      const response = await fetch(`${base}/v1/books/${keptId}`)
      if (request === 0) assert.equal((await bodyOf(response)).title, 'Dawn', 'the volume kept the data')
      else await response.arrayBuffer()
      statuses.push(response.status)
    }
    assert.deepEqual(statuses, [404, 200, 429])
    assert.equal(await project.container('db'), dbContainer, 'the database, unchanged, was left running')
    assert.equal(await project.container('nats'), natsContainer, 'and NATS')
  })

  it('when taken down with -v, then no container, volume or network of the project is left', async (t) => {
    const before = await project.leftovers()
    assert.equal(before.filter((line) => line.startsWith('container ')).length, 6, before.join(', '))
    assert.equal(before.filter((line) => line.startsWith('volume ')).length, 2, before.join(', '))
    assert.equal(before.filter((line) => line.startsWith('network ')).length, 1, before.join(', '))
    await timed(t, 'down -v', () => project.compose(['down', '-v'], 120_000))
    assert.deepEqual(await project.leftovers(), [])
  })
})

describe('compose.dev.yml on a container engine', { skip }, () => {
  const name = `myapp-compose-dev-${process.pid}`
  let project: Project
  let base: string
  before(async () => {
    project = openProject(name, ['compose.yml', 'compose.dev.yml'])
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    writeFileSync(
      join(project.folder, '.env'),
      `DB_PASS=${randomBytes(12).toString('hex')}\nPUBLISH_PORT=${port}\nPUBLISH_GRPC_PORT=${await freePort()}\nPUBLISH_NATS_PORT=${await freePort()}\nAPP_DEV_IMAGE=${DEV_IMAGE}\n`,
    )
  })
  after(async () => {
    await project?.remove()
  })

  const startTime = async () => {
    const metrics = await (await fetch(`${base}/metrics`)).text()
    return Number(/^process_start_time_seconds (\d+)/m.exec(metrics)?.[1])
  }

  it('when started with the override, then the dev image serves the mounted sources and /readyz answers', async (t) => {
    await timed(t, 'dev: build and up -d --wait', async () => {
      await buildImage(DEV_IMAGE, 'dev')
      return project.compose(['up', '-d', '--wait'], 900_000)
    })
    assert.equal((await fetch(`${base}/readyz`)).status, 200)
    const app = await project.container('app')
    assert.equal(await project.inspect(app, '{{.Config.Image}}'), DEV_IMAGE)
    const created = await fetch(
      `${base}/v1/books`,
      jsonRequest('POST', { title: 'Wild Seed', author: 'Octavia E. Butler', published_date: '1980-01-01' }),
    )
    assert.equal(created.status, 201, 'the dev image migrated with src/migrate.ts')
  })

  it('when a mounted source file changes, then node --watch restarts the service', async (t) => {
    const before = await startTime()
    assert.ok(before > 0)
    // the start time has a resolution of one second
    await sleep(1100)
    const started = performance.now()
    appendFileSync(join(project.folder, 'src/server.ts'), '\n')
    let after = before
    for (let attempt = 0; attempt < 60 && after === before; attempt++) {
      await sleep(500)
      after = await startTime().catch(() => before)
    }
    t.diagnostic(`dev: restart after an edit: ${((performance.now() - started) / 1000).toFixed(1)} s`)
    assert.ok(after > before, 'a new process serves')
    assert.equal((await fetch(`${base}/readyz`)).status, 200)
  })

  it('when taken down with -v, then no container, volume or network of the project is left', async (t) => {
    await timed(t, 'dev: down -v', () => project.compose(['down', '-v'], 120_000))
    assert.deepEqual(await project.leftovers(), [])
  })
})
