// The dev overlay's Deployment, migrate Job and NATS StatefulSet under a real container runtime: `podman kube play`
// of the rendered manifests, with stand-ins for what CloudNativePG would provide (the myapp-db-app and myapp-db-ca
// secrets, and a PostgreSQL with TLS whose certificate names the Pooler's and the primary's Services). The
// migration must run to exit 0; NATS must pass its probes on a read-only root as uid 1000 with the rendered
// nats.conf; the app must pass its startup, liveness and readiness probes on a read-only root as uid 65532,
// connected with verify-full, and publish a created book's event to that NATS. This exercises the env wiring, the
// probes, the security contexts and the volumes.
//
// podman 4.3 runs no probe itself (it turns the liveness probe into a healthcheck that would need curl and systemd),
// so the test plays the kubelet: it sends each probe as the manifest declares it, from outside the pod. What is
// changed for podman 4.3, and nothing else: the app's image (the one image.test.ts builds); host networking on free
// ports, where the kubelet would dial the pod's address (so no containerPorts: podman refuses port mappings there,
// and nats.conf's ports and NATS_URL's move too); an /etc/hosts file mounted in for the cluster's DNS (it ignores
// hostAliases); unique names for parallel runs; `optional: false` on the secret volume (it dereferences it unset);
// and the StatefulSet's pod template played as a Pod, its claimed volume an emptyDir.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import postgres from 'postgres'
import { stringify } from 'yaml'
import { BOOK_EVENTS, type BookEvent } from '../../../src/books/events.ts'
import { describe } from '../../helpers/describe.ts'
import { kubectlMissing, type Manifest, render } from '../../helpers/kustomize.ts'
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresMissing,
} from '../../helpers/throwaway-postgres.ts'
import { enableTls, makeCertificates, opensslMissing, type TestCertificates } from '../../helpers/tls-postgres.ts'
import {
  buildProjectImage,
  containersUnavailable,
  freePort,
  podmanEnvironment,
  standInImagesScript,
  underContainerScriptsLock,
} from '../../helpers/tools.ts'

const run = promisify(execFile)
const ROOT = new URL('../../../', import.meta.url).pathname
const IMAGE = 'localhost/myapp:test'
const RUN_ID = `kp${process.pid}`
const NAMESPACE = 'myapp-dev'

function podman(args: string[], timeout = 120_000) {
  return run('podman', args, { cwd: ROOT, env: podmanEnvironment(), timeout, maxBuffer: 64 * 1024 * 1024 })
}

const skip =
  containersUnavailable(['node:24-bookworm-slim', 'gcr.io/distroless/nodejs24-debian12:nonroot']) ||
  kubectlMissing() ||
  throwawayPostgresMissing() ||
  opensslMissing()

/** One probe as the kubelet sends it: an HTTP GET that succeeds with 200-399 within timeoutSeconds. */
async function probeOnce(probe: Manifest, port: number): Promise<{ ok: boolean; status: number | string; ms: number }> {
  const started = performance.now()
  try {
    const response = await fetch(`http://127.0.0.1:${port}${probe.httpGet.path}`, {
      signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000),
    })
    await response.arrayBuffer()
    return {
      ok: response.status >= 200 && response.status < 400,
      status: response.status,
      ms: performance.now() - started,
    }
  } catch (error) {
    return { ok: false, status: (error as Error).name, ms: performance.now() - started }
  }
}

describe('the dev overlay under podman kube play', { skip }, () => {
  const folder = mkdtempSync(join(tmpdir(), 'myapp-kube-play-'))
  const secrets = { app: `myapp-db-app-${RUN_ID}`, ca: `myapp-db-ca-${RUN_ID}` }
  const files = {
    migrate: join(folder, 'migrate.yaml'),
    app: join(folder, 'app.yaml'),
    nats: join(folder, 'nats.yaml'),
  }
  let cluster: ThrowawayPostgres
  let certificates: TestCertificates
  let manifests: Manifest[]
  let appPort: number
  let deployment: Manifest
  let natsPod: Manifest
  let natsPorts: { client: number; monitor: number }
  let createdId: string
  /** The volumes kube play makes of secret and ConfigMap volumes, named after them; kube down leaves them. */
  const playedVolumes = [secrets.ca]
  /** A ConfigMap of the rendered overlay, by its component label (api, message-broker). */
  const configMapOf = (component: string) =>
    manifests.find(
      (manifest) =>
        manifest.kind === 'ConfigMap' && manifest.metadata.labels?.['app.kubernetes.io/component'] === component,
    ) as Manifest

  before(async () => {
    manifests = await render('overlays/dev')
    const statefulSet = manifests.find((manifest) => manifest.kind === 'StatefulSet') as Manifest
    const natsImage = statefulSet.spec.template.spec.containers[0].image as string
    const standIns = standInImagesScript()
    if (standIns !== undefined) {
      // The stand-in answers to the name the StatefulSet pulls.
      const [program, ...args] = underContainerScriptsLock(['bash', standIns, natsImage])
      await run(program as string, args, { timeout: 600_000 })
    }
    await buildProjectImage(ROOT, IMAGE, 'prod')

    // What CloudNativePG provides: the database and role of bootstrap.initdb, a CA, and a server certificate for
    // the Services the app (Pooler) and the migration (primary, by the secret's uri) dial.
    const cnpg = manifests.find((manifest) => manifest.kind === 'Cluster') as Manifest
    const { database, owner } = cnpg.spec.bootstrap.initdb
    const poolerHost = cnpg.spec.certificates.serverAltDNSNames[0]
    const primaryHost = `${cnpg.metadata.name}-rw.${NAMESPACE}`
    cluster = await startThrowawayPostgres()
    certificates = await makeCertificates([poolerHost, primaryHost])
    await enableTls(cluster, certificates)
    const password = `pw-${RUN_ID}`
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} })
    try {
      await admin.unsafe(`CREATE ROLE ${owner} LOGIN PASSWORD '${password}'`)
      await admin.unsafe(`CREATE DATABASE ${database} OWNER ${owner}`)
    } finally {
      await admin.end()
    }
    const port = new URL(cluster.url).port

    // podman 4.3 reads an env secretKeyRef from a flat JSON map of base64 values, and a secret volume from a Secret
    // object (stringData is written as is).
    const b64 = (text: string) => Buffer.from(text).toString('base64')
    const appSecret = join(folder, 'app-secret.json')
    writeFileSync(
      appSecret,
      JSON.stringify({
        dbname: b64(database),
        username: b64(owner),
        password: b64(password),
        uri: b64(`postgresql://${owner}:${password}@${primaryHost}:${port}/${database}`),
      }),
    )
    // podman 4.3 ignores stringData in a secret volume and writes data's values verbatim, undecoded.
    const caSecret = join(folder, 'ca-secret.json')
    writeFileSync(
      caSecret,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secrets.ca },
        data: { 'ca.crt': readFileSync(certificates.caFile, 'utf8'), 'ca.key': 'never mounted' },
      }),
    )
    const configMap = structuredClone(configMapOf('api'))
    const natsUrl = new URL(configMap.data.NATS_URL)
    const hosts = join(folder, 'hosts')
    writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.1 ${poolerHost} ${primaryHost} ${natsUrl.hostname}\n`)
    await podman(['secret', 'create', secrets.app, appSecret])
    await podman(['secret', 'create', secrets.ca, caSecret])

    appPort = await freePort()
    natsPorts = { client: await freePort(), monitor: await freePort() }
    const configMapName = configMap.metadata.name
    configMap.metadata.name = `${configMapName}-${RUN_ID}`
    configMap.data.SERVER_PORT = String(appPort)
    // On the host's network too: a fixed gRPC port would collide with a parallel run or whatever holds it.
    if (configMap.data.GRPC_PORT !== undefined) configMap.data.GRPC_PORT = String(await freePort())
    natsUrl.port = String(natsPorts.client)
    configMap.data.NATS_URL = natsUrl.href.replace(/\/$/, '')

    /** The pod template as podman needs it; everything else stays as rendered. */
    const forPodman = (template: Manifest, image = IMAGE) => {
      const pod = structuredClone(template) as Manifest
      pod.spec.hostNetwork = true
      pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'hosts', hostPath: { path: hosts, type: 'File' } }]
      for (const container of pod.spec.containers as Manifest[]) {
        container.image = image
        container.volumeMounts = [
          ...(container.volumeMounts ?? []),
          { name: 'hosts', mountPath: '/etc/hosts', readOnly: true },
        ]
        delete container.ports
        for (const entry of (container.env ?? []) as Manifest[]) {
          if (entry.name === 'DB_PORT') entry.value = port
          const ref = entry.valueFrom?.secretKeyRef
          if (ref?.name === 'myapp-db-app') ref.name = secrets.app
        }
        for (const source of (container.envFrom ?? []) as Manifest[]) {
          if (source.configMapRef?.name === configMapName) source.configMapRef.name = configMap.metadata.name
        }
      }
      for (const volume of (pod.spec.volumes ?? []) as Manifest[]) {
        if (volume.secret?.secretName === 'myapp-db-ca')
          volume.secret = { ...volume.secret, secretName: secrets.ca, optional: false }
      }
      return pod
    }

    const job = manifests.find((manifest) => manifest.kind === 'Job') as Manifest
    const migratePod = forPodman(job.spec.template)
    writeFileSync(
      files.migrate,
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `myapp-migrate-${RUN_ID}`, labels: migratePod.metadata.labels },
        spec: migratePod.spec,
      }),
    )
    deployment = structuredClone(manifests.find((manifest) => manifest.kind === 'Deployment')) as Manifest
    deployment.metadata = { name: `myapp-${RUN_ID}`, labels: deployment.metadata.labels }
    deployment.spec.template = forPodman(deployment.spec.template)
    writeFileSync(files.app, `${stringify(configMap)}---\n${stringify(deployment)}`)

    // NATS: its nats.conf on the free ports, and each claimed volume an emptyDir.
    const natsConfig = structuredClone(configMapOf('message-broker'))
    const natsConfigName = natsConfig.metadata.name
    natsConfig.metadata.name = `${natsConfigName}-${RUN_ID}`
    playedVolumes.push(natsConfig.metadata.name)
    const conf = natsConfig.data['nats.conf'] as string
    natsConfig.data['nats.conf'] = conf
      .replace(/^port: \d+$/m, `port: ${natsPorts.client}`)
      .replace(/^http_port: \d+$/m, `http_port: ${natsPorts.monitor}`)
    for (const setting of [`port: ${natsPorts.client}`, `http_port: ${natsPorts.monitor}`]) {
      assert.ok(natsConfig.data['nats.conf'].includes(`\n${setting}\n`), `nats.conf says ${setting}`)
    }
    natsPod = forPodman(statefulSet.spec.template, natsImage)
    for (const claim of statefulSet.spec.volumeClaimTemplates as Manifest[]) {
      natsPod.spec.volumes.push({ name: claim.metadata.name, emptyDir: {} })
    }
    for (const volume of natsPod.spec.volumes as Manifest[]) {
      if (volume.configMap?.name === natsConfigName) volume.configMap.name = natsConfig.metadata.name
    }
    writeFileSync(
      files.nats,
      `${stringify(natsConfig)}---\n${stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `myapp-nats-${RUN_ID}`, labels: natsPod.metadata.labels },
        spec: natsPod.spec,
      })}`,
    )
  })

  after(async () => {
    for (const file of [files.app, files.migrate, files.nats]) {
      if (existsSync(file)) await podman(['kube', 'down', file]).catch(() => {})
    }
    await podman(['secret', 'rm', secrets.app, secrets.ca]).catch(() => {})
    for (const volume of playedVolumes) await podman(['volume', 'rm', volume]).catch(() => {})
    await cluster?.destroy()
    certificates?.remove()
    rmSync(folder, { recursive: true, force: true })
  })

  it("when the migrate Job's pod is played, then it migrates over verify-full and exits 0", async (t) => {
    const started = performance.now()
    await podman(['kube', 'play', files.migrate])
    const container = `myapp-migrate-${RUN_ID}-migrate`
    const { stdout: code } = await podman(['wait', container], 120_000)
    const { stdout: logs, stderr } = await podman(['logs', container])
    t.diagnostic(`migrate pod exited ${code.trim()} after ${(performance.now() - started).toFixed(0)} ms`)
    assert.equal(code.trim(), '0', `${logs}${stderr}`)
    assert.match(logs, /OK\s+00001_create_books\.sql/)
  })

  it("when the NATS StatefulSet's pod is played, then its probes pass with the rendered nats.conf, as uid 1000 on a read-only root", async (t) => {
    const container = natsPod.spec.containers[0] as Manifest
    const started = performance.now()
    await podman(['kube', 'play', files.nats])
    const name = `myapp-nats-${RUN_ID}-${container.name}`
    // The probes on the monitor port, which the test moved with nats.conf's http_port.
    const { startupProbe: startup, livenessProbe: liveness, readinessProbe: readiness } = container
    let attempts = 0
    let passed = false
    while (!passed && attempts < startup.failureThreshold) {
      attempts++
      passed = (await probeOnce(startup, natsPorts.monitor)).ok
      if (!passed) await sleep(startup.periodSeconds * 1000)
    }
    if (!passed) {
      const { stdout, stderr } = await podman(['logs', name]).catch((error) => ({ stdout: '', stderr: String(error) }))
      assert.fail(`the startup probe failed ${startup.failureThreshold} times:\n${stdout}${stderr}`)
    }
    t.diagnostic(
      `NATS: startup probe passed on attempt ${attempts}, ${(performance.now() - started).toFixed(0)} ms after kube play`,
    )
    for (const probe of [liveness, readiness]) {
      const result = await probeOnce(probe, natsPorts.monitor)
      assert.ok(result.ok, `${probe.httpGet.path} answered ${result.status}`)
    }
    const sh = (command: string) => podman(['exec', name, 'sh', '-c', command])
    assert.equal((await sh('id -u')).stdout.trim(), '1000')
    const write = (path: string) => `touch ${path} 2>/dev/null && echo written || echo refused`
    assert.equal((await sh(write('/probe'))).stdout.trim(), 'refused', 'the root filesystem is read-only')
    assert.equal((await sh(write('/etc/nats-config/probe'))).stdout.trim(), 'refused', 'nats.conf is read-only')
    assert.equal((await sh(write('/data/probe'))).stdout.trim(), 'written', 'the store is writable')
    const varz = (await (await fetch(`http://127.0.0.1:${natsPorts.monitor}/varz`)).json()) as {
      jetstream?: { config?: { store_dir?: string } }
    }
    assert.match(varz.jetstream?.config?.store_dir ?? '', /^\/data/, 'JetStream stores on the volume')
  })

  it('when the Deployment is played, then its startup, liveness and readiness probes pass on a read-only root as uid 65532', async (t) => {
    const container = deployment.spec.template.spec.containers[0] as Manifest
    const { startupProbe: startup, livenessProbe: liveness, readinessProbe: readiness } = container
    // The probes name the port the app listens on, which the test moves to a free one.
    const rendered = manifests.find((manifest) => manifest.kind === 'Deployment')?.spec.template.spec.containers[0]
    const listening = configMapOf('api').data.SERVER_PORT
    for (const probe of [startup, liveness, readiness]) {
      const named = rendered.ports.find((port: Manifest) => port.name === probe.httpGet.port)
      assert.equal(String(named?.containerPort), listening, `probe port ${probe.httpGet.port} is SERVER_PORT`)
    }
    const playing = performance.now()
    await podman(['kube', 'play', files.app])
    const played = performance.now()
    const name = `myapp-${RUN_ID}-pod-0-${container.name}`
    const timings = [`kube play created and started the pod in ${(played - playing).toFixed(0)} ms`]

    // Startup: every periodSeconds until one passes; failureThreshold failures in a row would restart it.
    let startupPassedAt: number | undefined
    let attempts = 0
    while (attempts < startup.failureThreshold && startupPassedAt === undefined) {
      attempts++
      const result = await probeOnce(startup, appPort)
      if (result.ok) startupPassedAt = performance.now()
      else await sleep(startup.periodSeconds * 1000)
    }
    if (startupPassedAt === undefined) {
      const { stdout, stderr } = await podman(['logs', name]).catch((error) => ({ stdout: '', stderr: String(error) }))
      assert.fail(`the startup probe failed ${startup.failureThreshold} times:\n${stdout}${stderr}`)
    }
    timings.push(
      `startup probe passed on attempt ${attempts} of ${startup.failureThreshold} (every ${startup.periodSeconds} s), ${(startupPassedAt - played).toFixed(0)} ms after kube play returned`,
    )

    // Then liveness and readiness run side by side: readiness until the pod is Ready, and both over one liveness
    // period; every liveness probe must pass, and readiness must not fail failureThreshold times in a row.
    let readyAt: number | undefined
    let readinessFailures = 0
    const livenessResults: string[] = []
    const readinessResults: string[] = []
    // Two liveness probes, at the start and one period later.
    const windowEnds = performance.now() + liveness.periodSeconds * 1000 + 200
    let nextLiveness = performance.now()
    let nextReadiness = performance.now()
    while (performance.now() <= windowEnds || readyAt === undefined) {
      assert.ok(performance.now() - startupPassedAt < 60_000, 'bounded: the pod must be ready within a minute')
      const now = performance.now()
      if (now >= nextLiveness) {
        const result = await probeOnce(liveness, appPort)
        livenessResults.push(`${result.status} in ${result.ms.toFixed(1)} ms`)
        assert.ok(result.ok, `liveness probe answered ${result.status}`)
        nextLiveness += liveness.periodSeconds * 1000
      }
      if (now >= nextReadiness) {
        const result = await probeOnce(readiness, appPort)
        readinessResults.push(`${result.status} in ${result.ms.toFixed(1)} ms`)
        if (result.ok) {
          readyAt ??= performance.now()
          readinessFailures = 0
        } else {
          readinessFailures++
          assert.ok(readinessFailures < readiness.failureThreshold || readyAt === undefined, 'readiness was lost')
        }
        nextReadiness += readiness.periodSeconds * 1000
      }
      await sleep(Math.max(0, Math.min(nextLiveness, nextReadiness) - performance.now()))
    }
    assert.ok(readyAt !== undefined)
    timings.push(`ready ${(readyAt - played).toFixed(0)} ms after kube play returned`)
    timings.push(`liveness probes (every ${liveness.periodSeconds} s): ${livenessResults.join(', ')}`)
    timings.push(`readiness probes (every ${readiness.periodSeconds} s): ${readinessResults.join(', ')}`)

    const exec = (code: string) => podman(['exec', name, '/nodejs/bin/node', '-e', code])
    assert.equal((await exec('console.log(process.getuid())')).stdout.trim(), '65532')
    const write = (path: string) =>
      `try { require('fs').writeFileSync('${path}', 'x'); console.log('written') } catch (e) { console.log(e.code) }`
    assert.equal((await exec(write('/probe'))).stdout.trim(), 'EROFS', 'the root filesystem is read-only')
    assert.equal((await exec(write('/etc/myapp/db-ca/probe'))).stdout.trim(), 'EROFS', 'the CA is mounted read-only')
    assert.equal((await exec(write('/tmp/probe'))).stdout.trim(), 'written', '/tmp is the emptyDir')

    const admin = postgres(cluster.url.replace(/\/postgres$/, '/myapp'), { max: 1, onnotice: () => {} })
    try {
      const sessions = await admin<{ ssl: boolean }[]>`
        SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'myapp'`
      assert.ok(sessions.length > 0, 'the app holds connections')
      assert.ok(
        sessions.every((session) => session.ssl),
        'every connection of the app is TLS',
      )
    } finally {
      await admin.end()
    }
    const book = { title: 'Kindred', author: 'Octavia E. Butler', published_date: '1979-06-01' }
    const created = await fetch(`http://127.0.0.1:${appPort}/v1/books`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(book),
    })
    assert.equal(created.status, 201)
    createdId = ((await created.json()) as { id: string }).id
    for (const line of timings) t.diagnostic(line)
  })

  it("when a book is created through the played app, then its event reaches the played NATS's BOOKS stream", async (t) => {
    assert.ok(createdId, 'the app created a book')
    const client = await connect({ servers: `nats://127.0.0.1:${natsPorts.client}` })
    try {
      const jsm = await jetstreamManager(client)
      const started = performance.now()
      let event: BookEvent | undefined
      // Bounded: 50 × 200 ms; the relay publishes within a fraction of a second of the commit.
      for (let attempt = 0; attempt < 50 && event === undefined; attempt++) {
        const message = await jsm.streams
          .getMessage(BOOK_EVENTS.stream.name, { last_by_subj: 'books.created' })
          .catch(() => null)
        if (message !== null) event = message.json<BookEvent>()
        else await sleep(200)
      }
      t.diagnostic(`event in the stream ${(performance.now() - started).toFixed(0)} ms after the 201`)
      assert.equal(event?.subject, createdId)
      assert.equal(event?.type, 'dev.myapp.book.created.v1')
    } finally {
      await client.close()
    }
  })
})
