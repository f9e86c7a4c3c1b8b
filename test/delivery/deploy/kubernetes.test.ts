// deploy/k8s rendered with kustomize: every object valid against its Kubernetes or CRD schema, and what a fresh
// cluster, Argo CD, CloudNativePG, NATS and an operator need of it, checked on every overlay. Reachability under
// the NetworkPolicies is network-policy.test.ts; the Deployment and NATS under a container runtime,
// kube-play.test.ts.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import { describe } from '../../helpers/describe.ts'
import { K8S_DIR, kubectlMissing, type Manifest, OVERLAYS, render } from '../../helpers/kustomize.ts'
import { NATS_SERVER, natsMissing } from '../../helpers/nats.ts'

// Schemas: kubernetes-models for Kubernetes and the CRDs it packages, the repository's JSON Schemas for
// CloudNativePG and the Barman Cloud Plugin.
const MODEL_MODULES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  'gateway.networking.k8s.io/v1': '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1',
  'argoproj.io/v1alpha1': '@kubernetes-models/argo-cd/argoproj.io/v1alpha1',
}
const JSON_SCHEMAS: Record<string, string> = {
  'postgresql.cnpg.io/v1': 'cloudnative-pg',
  'barmancloud.cnpg.io/v1': 'barman-cloud',
}
const crds = new Ajv({ allErrors: true, strict: false })
for (const name of Object.values(JSON_SCHEMAS)) {
  crds.addSchema(JSON.parse(readFileSync(new URL(`schemas/${name}.json`, import.meta.url), 'utf8')), name)
}

async function validate(manifest: Manifest): Promise<void> {
  const what = `${manifest.kind}/${manifest.metadata?.name}`
  const schema = JSON_SCHEMAS[manifest.apiVersion]
  if (schema !== undefined) {
    const check = crds.getSchema(`${schema}#/${manifest.kind}`)
    assert.ok(check, `no schema for ${what}`)
    assert.ok(check(manifest), `${what}: ${crds.errorsText(check.errors)}`)
    return
  }
  const module = MODEL_MODULES[manifest.apiVersion]
  assert.ok(module, `no schema for ${manifest.apiVersion} (${what})`)
  const Model = (await import(module))[manifest.kind]
  assert.ok(Model, `no model for ${what}`)
  assert.doesNotThrow(() => new Model(manifest).validate(), `${what} is invalid`)
}

const wave = (manifest: Manifest) => Number(manifest.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0)
const envOf = (container: Manifest) =>
  Object.fromEntries(((container.env ?? []) as Manifest[]).map((entry) => [entry.name, entry]))
const PROBE_ROUTES = ['/livez', '/readyz', '/metrics']
const run = promisify(execFile)

/** A setting of nats.conf (`key: value`, at any depth: ours are unique), comments left out. */
function natsSetting(conf: string, key: string): string | undefined {
  const pattern = new RegExp(`^\\s*${key}\\s*[:=]\\s*(.*?)\\s*$`)
  for (const line of conf.split('\n')) {
    const value = pattern.exec(line.replace(/#.*/, ''))?.[1]
    if (value !== undefined) return value.replace(/^"(.*)"$/, '$1')
  }
  return undefined
}

const KIB = 2 ** 10
const MIB = 2 ** 20
const GIB = 2 ** 30
const TIB = 2 ** 40
/** Size suffixes as each reader takes them: nats.conf (any case), Kubernetes quantities, GOMEMLIMIT. */
const SUFFIXES = {
  nats: { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, kb: KIB, mb: MIB, gb: GIB, tb: TIB, ki: KIB, mi: MIB, gi: GIB },
  kubernetes: { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: KIB, Mi: MIB, Gi: GIB, Ti: TIB },
  go: { '': 1, B: 1, KiB: KIB, MiB: MIB, GiB: GIB, TiB: TIB },
} as const satisfies Record<string, Record<string, number>>

function bytesOf(size: string, reader: keyof typeof SUFFIXES): number {
  const [, digits, suffix = ''] = /^(\d+)([A-Za-z]*)$/.exec(size) ?? []
  const table: Record<string, number> = SUFFIXES[reader]
  const factor = table[reader === 'nats' ? suffix.toLowerCase() : suffix]
  assert.ok(digits && factor, `${size} is a size ${reader} reads`)
  return Number(digits) * factor
}

const skip = kubectlMissing()

for (const overlay of OVERLAYS) {
  describe(`the ${overlay} overlay`, { skip }, () => {
    const rendered = render(`overlays/${overlay}`)
    const ofKind = async (kind: string) => (await rendered).filter((manifest) => manifest.kind === kind)
    const one = async (kind: string, name?: string) => {
      const found = (await ofKind(kind)).filter((manifest) => name === undefined || manifest.metadata.name === name)
      assert.equal(found.length, 1, `one ${kind}${name ? `/${name}` : ''}`)
      return found[0] as Manifest
    }
    /** The generated ConfigMap of a component (api: the app's settings; message-broker: nats.conf). */
    const configMapOf = async (component: string) => {
      const found = (await ofKind('ConfigMap')).filter(
        (manifest) => manifest.metadata.labels?.['app.kubernetes.io/component'] === component,
      )
      assert.equal(found.length, 1, `one ConfigMap of the ${component}`)
      return found[0] as Manifest
    }
    const configMap = async () => (await configMapOf('api')).data as Record<string, string>
    const appContainer = async () => (await one('Deployment', 'myapp')).spec.template.spec.containers[0] as Manifest
    const nats = async () => {
      const statefulSet = await one('StatefulSet', 'myapp-nats')
      const pod = statefulSet.spec.template.spec
      const container = (pod.containers as Manifest[]).find((candidate) => candidate.name === 'nats') as Manifest
      assert.ok(container, 'a nats container')
      const configVolume = (pod.volumes as Manifest[]).find((volume) => volume.configMap !== undefined) as Manifest
      const configMount = (container.volumeMounts as Manifest[]).find((mount) => mount.name === configVolume?.name)
      const configFile = `${configMount?.mountPath}/nats.conf`
      const conf = (await configMapOf('message-broker')).data['nats.conf'] as string
      return { statefulSet, pod, container, configVolume, configFile, conf }
    }

    it("when the ConfigMap is parsed by the service's own config schema, then it is accepted", async () => {
      const { parseConfig } = await import('../../../src/config/config.ts')
      const data = await configMap()
      assert.doesNotThrow(() => parseConfig({ ...data, DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n' }))
    })

    it('when rendered, then every object validates against its schema', async () => {
      const manifests = await rendered
      assert.ok(manifests.length >= 20)
      for (const manifest of manifests) await validate(manifest)
    })

    it('when rendered for a fresh cluster, then its Namespace comes first and enforces the restricted Pod Security Standard', async () => {
      const manifests = await rendered
      const namespace = await one('Namespace')
      assert.equal(manifests[0], namespace, 'kubectl apply creates it before what lives in it')
      assert.equal(namespace.metadata.name, `myapp-${overlay}`)
      for (const mode of ['enforce', 'audit', 'warn']) {
        assert.equal(namespace.metadata.labels[`pod-security.kubernetes.io/${mode}`], 'restricted', mode)
      }
      assert.match(namespace.metadata.annotations['argocd.argoproj.io/sync-options'], /Prune=false.*Delete=false/)
    })

    it('when rendered, then no Secret is committed and credentials come from the operator-made secret', async () => {
      const manifests = await rendered
      assert.equal(manifests.filter((manifest) => manifest.kind === 'Secret').length, 0)
      assert.doesNotMatch(JSON.stringify(manifests), /password\W+[:=]\s*\w|postgres(ql)?:\/\/\w+:\w+@/i)
      const env = envOf(await appContainer())
      for (const name of ['DB_USER', 'DB_PASS', 'DB_NAME']) {
        assert.equal(env[name]?.valueFrom?.secretKeyRef?.name, 'myapp-db-app', name)
      }
    })

    it('when the ConfigMap is generated, then its name carries a hash and the Deployment refers to that name', async () => {
      const name = (await configMapOf('api')).metadata.name as string
      assert.match(name, /^myapp-[a-z0-9]{10}$/, 'an edit changes the name, which rolls the pods')
      const sources = ((await appContainer()).envFrom as Manifest[]).map((source) => source.configMapRef?.name)
      assert.deepEqual(sources, [name])
      const { configVolume } = await nats()
      const natsName = (await configMapOf('message-broker')).metadata.name as string
      assert.match(natsName, /^myapp-nats-[a-z0-9]{10}$/, "an edit of nats.conf rolls NATS's pod")
      assert.equal(configVolume.configMap.name, natsName)
    })

    it('when containers are listed, then each has requests, limits, a pinned image and the restricted security context', async () => {
      const workloads = [...(await ofKind('Deployment')), ...(await ofKind('Job')), ...(await ofKind('StatefulSet'))]
      assert.equal(workloads.length, 3)
      for (const workload of workloads) {
        const pod = workload.spec.template.spec
        // Where each writes on its read-only root: the app's image in /tmp, nats-server in its store only.
        const claims = (workload.spec.volumeClaimTemplates ?? []).map((claim: Manifest) => claim.metadata.name)
        assert.equal(pod.securityContext.runAsNonRoot, true)
        assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault')
        assert.equal(pod.automountServiceAccountToken, false)
        for (const container of pod.containers as Manifest[]) {
          const what = `${workload.metadata.name}/${container.name}`
          assert.ok(container.resources.requests.cpu && container.resources.requests.memory, `${what} requests`)
          assert.ok(container.resources.limits.cpu && container.resources.limits.memory, `${what} limits`)
          assert.match(container.image, /^[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/, `${what} image`)
          assert.doesNotMatch(container.image, /:latest$/)
          assert.deepEqual(container.securityContext, {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          })
          if (workload.kind === 'StatefulSet') {
            const store = (container.volumeMounts as Manifest[]).find((mount) => mount.mountPath === '/data')
            assert.ok(store && claims.includes(store.name), `${what}: /data is a claimed volume`)
          } else {
            assert.ok(
              pod.volumes.some((volume: Manifest) => volume.name === 'tmp' && volume.emptyDir),
              `${what} /tmp`,
            )
          }
        }
      }
    })

    it('when the Deployment is read, then it has probes on /livez and /readyz and drains before it is killed', async () => {
      const deployment = await one('Deployment')
      const pod = deployment.spec.template.spec
      const container = pod.containers[0]
      assert.equal(container.startupProbe.httpGet.path, '/livez')
      assert.equal(container.livenessProbe.httpGet.path, '/livez')
      assert.equal(container.readinessProbe.httpGet.path, '/readyz')
      for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
        assert.equal(probe.httpGet.port, 'http', '/readyz on HTTP is what reports the drain, for gRPC as well')
      }
      const seconds = (duration: string) => Number(/^(\d+)s$/.exec(duration)?.[1])
      const data = await configMap()
      const drain =
        container.lifecycle.preStop.sleep.seconds +
        seconds(data.SERVER_SHUTDOWN_DELAY as string) +
        seconds(data.SERVER_SHUTDOWN_TIMEOUT as string)
      assert.ok(
        pod.terminationGracePeriodSeconds > drain,
        `grace ${pod.terminationGracePeriodSeconds}s > drain ${drain}s`,
      )
      assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 })
      assert.equal(pod.topologySpreadConstraints.length, 2)
    })

    it('when an HPA scales a workload, then the workload names no replicas and at least 2 run', async () => {
      const manifests = await rendered
      for (const hpa of await ofKind('HorizontalPodAutoscaler')) {
        const { kind, name } = hpa.spec.scaleTargetRef
        const target = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name)
        assert.ok(target, `${kind}/${name}`)
        assert.equal(target.spec.replicas, undefined, `${kind}/${name} pins replicas that ${hpa.metadata.name} owns`)
        assert.ok(hpa.spec.minReplicas >= 2)
        assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas)
      }
      assert.ok((await one('PodDisruptionBudget', 'myapp')).spec.maxUnavailable >= 1, 'one pod may always be evicted')
    })

    it('when labels are read, then every object carries the app.kubernetes.io set and lives in the namespace', async () => {
      for (const manifest of await rendered) {
        const labels = manifest.metadata.labels ?? {}
        for (const key of ['name', 'instance', 'version', 'part-of', 'component']) {
          assert.ok(
            labels[`app.kubernetes.io/${key}`],
            `${manifest.kind}/${manifest.metadata.name} has app.kubernetes.io/${key}`,
          )
        }
        if (manifest.kind !== 'Namespace') assert.equal(manifest.metadata.namespace, `myapp-${overlay}`)
      }
    })

    it('when the network is read, then a default deny covers every pod in the namespace', async () => {
      const deny = await one('NetworkPolicy', 'myapp-default-deny')
      assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })
    })

    it('when Argo CD syncs, then the Cluster comes before the migrate Sync hook, and the hook before the Deployment', async () => {
      const cluster = await one('Cluster', 'myapp-db')
      const job = await one('Job')
      const deployment = await one('Deployment')
      const annotations = job.metadata.annotations ?? {}
      assert.equal(annotations['argocd.argoproj.io/hook'], 'Sync', 'the secret it needs exists only after the Cluster')
      assert.ok(wave(cluster) < wave(job), `Cluster wave ${wave(cluster)} < migrate wave ${wave(job)}`)
      assert.ok(wave(job) < wave(deployment), `migrate wave ${wave(job)} < Deployment wave ${wave(deployment)}`)
      const policies = String(annotations['argocd.argoproj.io/hook-delete-policy']).split(',')
      assert.ok(policies.includes('BeforeHookCreation'), 'a re-sync replaces the previous run')
      assert.ok(policies.includes('HookSucceeded'))
    })

    it('when the migrate Job is applied again by a later release, then it has a new name rather than a changed spec', async () => {
      const job = await one('Job')
      const tag = /:([\w.-]+)$/.exec(job.spec.template.spec.containers[0].image)?.[1]
      assert.equal(job.metadata.name, `myapp-migrate-${tag}`)
      assert.equal(job.metadata.labels['app.kubernetes.io/version'], tag)
      assert.ok(job.spec.ttlSecondsAfterFinished > 0, 'finished runs are removed')
      const container = job.spec.template.spec.containers[0]
      assert.deepEqual(container.args, ['dist/bin/migrate.js', 'up'])
      assert.deepEqual(envOf(container).DATABASE_URL, {
        name: 'DATABASE_URL',
        valueFrom: { secretKeyRef: { name: 'myapp-db-app', key: 'uri' } },
      })
    })

    it('when the app and the migration connect, then TLS is verify-full against the cluster CA, mounted read-only', async () => {
      const { parseConfig } = await import('../../../src/config/config.ts')
      const cluster = await one('Cluster', 'myapp-db')
      for (const workload of [await one('Deployment'), await one('Job')]) {
        const pod = workload.spec.template.spec
        const container = pod.containers[0]
        const env = envOf(container)
        const what = workload.metadata.name
        assert.equal(env.DB_SSLMODE?.value, 'verify-full', what)
        const caFile = env.DB_SSLROOTCERT?.value as string
        const mount = (container.volumeMounts as Manifest[]).find((candidate) =>
          caFile?.startsWith(`${candidate.mountPath}/`),
        )
        assert.ok(mount, `${what}: ${caFile} is on a mounted volume`)
        assert.equal(mount.readOnly, true, what)
        const volume = (pod.volumes as Manifest[]).find((candidate) => candidate.name === mount.name)
        assert.equal(volume?.secret?.secretName, `${cluster.metadata.name}-ca`, what)
        assert.deepEqual(
          volume?.secret?.items,
          [{ key: 'ca.crt', path: caFile.slice(mount.mountPath.length + 1) }],
          `${what}: only the certificate, never ca.key`,
        )
        const url = new URL(
          (parseConfig({ DATABASE_URL: 'postgresql://u:p@myapp-db-rw.ns:5432/d', ...plain(env) }).database as Manifest)
            .url,
        )
        assert.equal(url.searchParams.get('sslmode'), 'verify-full', `${what}: DB_SSLMODE reaches the URL`)
      }
      const host = envOf(await appContainer()).DB_HOST?.value
      assert.ok(cluster.spec.certificates.serverAltDNSNames.includes(host), `the server certificate names ${host}`)
    })

    it('when the app reaches PostgreSQL, then it goes through the transaction-mode pooler with prepared statements off', async () => {
      const env = envOf(await appContainer())
      assert.equal(env.DB_HOST?.value, 'myapp-db-pooler-rw')
      assert.equal(env.DB_PREPARED_STATEMENTS?.value, 'false')
      assert.equal(env.DB_STATEMENT_TIMEOUT?.value, '0')
      assert.equal(env.DATABASE_URL, undefined, 'DATABASE_URL would win over DB_*')
      const pooler = await one('Pooler', 'myapp-db-pooler-rw')
      assert.equal(pooler.spec.pgbouncer.poolMode, 'transaction')
    })

    it('when the Pooler is read, then it has resources and a disruption budget over its pods', async () => {
      const pooler = await one('Pooler', 'myapp-db-pooler-rw')
      const container = (pooler.spec.template?.spec?.containers ?? []).find(
        (candidate: Manifest) => candidate.name === 'pgbouncer',
      )
      assert.ok(container?.resources?.requests?.cpu && container.resources.requests.memory, 'requests')
      assert.ok(container.resources.limits?.cpu && container.resources.limits.memory, 'limits')
      const budget = (await ofKind('PodDisruptionBudget')).find(
        (candidate) => candidate.spec.selector?.matchLabels?.['cnpg.io/poolerName'] === pooler.metadata.name,
      )
      assert.ok(budget, 'a PodDisruptionBudget selects the Pooler pods by cnpg.io/poolerName')
      assert.equal(budget.spec.maxUnavailable, 1, 'a drain may always take one, even of a single instance')
    })

    it('when backups are read, then they go through the Barman Cloud Plugin with credentials from a secret', async () => {
      const cluster = await one('Cluster', 'myapp-db')
      assert.equal(cluster.spec.backup?.barmanObjectStore, undefined, 'the in-tree object store is deprecated')
      const [plugin, ...others] = cluster.spec.plugins ?? []
      assert.equal(others.length, 0)
      assert.equal(plugin?.name, 'barman-cloud.cloudnative-pg.io')
      assert.equal(plugin.isWALArchiver, true)
      const store = await one('ObjectStore', plugin.parameters.barmanObjectName)
      const credentials = store.spec.configuration.s3Credentials
      assert.equal(credentials.inheritFromIAMRole, undefined, 'no cloud identity is wired here')
      assert.ok(credentials.accessKeyId.name && credentials.secretAccessKey.name, 'keys come from a secret')
      assert.equal(store.spec.configuration.serverName, undefined, "the plugin takes serverName from the Cluster's")
      const scheduled = await one('ScheduledBackup')
      assert.equal(scheduled.spec.method, 'plugin')
      assert.equal(scheduled.spec.pluginConfiguration.name, plugin.name)
      assert.equal(cluster.spec.instances, overlay === 'dev' ? 1 : overlay === 'stage' ? 2 : 3)
    })

    it('when monitoring is read, then the rules are deploy/monitoring’s, the probes are outside the SLOs, and the database is scraped', async () => {
      const rule = await one('PrometheusRule')
      const rules = parse(readFileSync(`${K8S_DIR}/../monitoring/prometheus-rules.yaml`, 'utf8'))
      assert.deepEqual(rule.spec, rules)
      for (const recording of rule.spec.groups.flatMap((group: Manifest) => group.rules)) {
        if (!recording.record?.startsWith('myapp:http_')) continue
        const selectors = [...recording.expr.matchAll(/http_request_duration_seconds_\w+\{([^}]*)\}/g)]
        assert.ok(selectors.length > 0, recording.record)
        for (const [, selector] of selectors) {
          const excluded = /route!~"([^"]+)"/.exec(selector)?.[1]
          assert.ok(excluded, `${recording.record} leaves no route out: {${selector}}`)
          for (const route of PROBE_ROUTES) {
            assert.match(route, new RegExp(`^(?:${excluded})$`), `${recording.record} counts ${route}`)
          }
          assert.doesNotMatch('/v1/books', new RegExp(`^(?:${excluded})$`))
        }
      }
      assert.equal((await one('ServiceMonitor')).spec.endpoints[0].path, '/metrics')
      const podMonitor = await one('PodMonitor')
      assert.equal(podMonitor.spec.selector.matchLabels['cnpg.io/cluster'], 'myapp-db')
      assert.deepEqual(
        podMonitor.spec.podMetricsEndpoints.map((endpoint: Manifest) => endpoint.port),
        ['metrics'],
      )
    })

    it('when the overlay has a public route, then it requires a token, serves no docs and trusts the Gateway only', async () => {
      const { parseConfig } = await import('../../../src/config/config.ts')
      const data = await configMap()
      const routes = await ofKind('HTTPRoute')
      if (routes.length === 0) {
        assert.equal(overlay, 'dev', 'only dev goes without a public route')
        assert.deepEqual(await ofKind('GRPCRoute'), [], 'nor a public gRPC one')
        assert.equal(data.SERVER_TRUST_PROXY, undefined, 'nothing is in front of it')
        return
      }
      const config = parseConfig({ ...data, DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n' })
      assert.equal(config.auth.mode, 'jwt', 'anonymous writes on a public route')
      assert.ok(data.AUTH_JWT_ISSUER && data.AUTH_JWT_AUDIENCE && data.AUTH_JWT_JWKS_URL)
      assert.equal(config.docs.enabled, false)
      for (const route of routes) {
        const paths = route.spec.rules.flatMap((rule: Manifest) =>
          rule.matches.map((match: Manifest) => match.path.value),
        )
        assert.ok(!paths.some((path: string) => path.startsWith('/docs')), 'the docs are not routed')
        // A Gateway's default request timeout would cut the server-sent feed, which is one long response.
        const feed = route.spec.rules.find((rule: Manifest) =>
          rule.matches.some((match: Manifest) => match.path.value === '/v1/events'),
        )
        assert.equal(feed?.timeouts?.request, '0s', 'the event feed is routed without a request timeout')
        assert.ok(paths.includes('/asyncapi.json') && paths.includes('/asyncapi.yaml'), 'the events document is routed')
      }
      assert.equal(data.SERVER_TRUST_PROXY, '1', 'the Gateway is the one hop in front')
    })

    it('when native gRPC is configured, then GRPC_PORT, the container port grpc and the h2c Service port agree', async () => {
      const { parseConfig } = await import('../../../src/config/config.ts')
      const data = await configMap()
      const config = parseConfig({ ...data, DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n' })
      assert.equal(config.server.grpcPort, 9090)
      const ports = (await appContainer()).ports as Manifest[]
      assert.deepEqual(
        ports.map((port) => [port.name, port.containerPort]),
        [
          ['http', config.server.port],
          ['grpc', config.server.grpcPort],
        ],
      )
      const service = await one('Service', 'myapp')
      const grpc = (service.spec.ports as Manifest[]).find((port) => port.name === 'grpc')
      assert.deepEqual(grpc, {
        name: 'grpc',
        port: 9090,
        targetPort: 'grpc',
        protocol: 'TCP',
        appProtocol: 'kubernetes.io/h2c',
      })
    })

    it('when gRPC is routed, then only books.v1.BookService, to the h2c port, on the HTTPRoute’s Gateway under its own hostname', async () => {
      const grpcRoutes = await ofKind('GRPCRoute')
      if (overlay === 'dev') {
        assert.deepEqual(grpcRoutes, [], 'dev has no public route')
        return
      }
      const route = await one('GRPCRoute', 'myapp')
      const httpRoute = await one('HTTPRoute', 'myapp')
      assert.deepEqual(route.spec.parentRefs, httpRoute.spec.parentRefs)
      assert.equal(wave(route), wave(await one('Deployment')))
      assert.deepEqual(
        route.spec.rules.flatMap((rule: Manifest) => rule.matches),
        [{ method: { type: 'Exact', service: 'books.v1.BookService' } }],
        'neither reflection nor grpc.health.v1 is public',
      )
      const service = await one('Service', 'myapp')
      for (const backend of route.spec.rules.flatMap((rule: Manifest) => rule.backendRefs) as Manifest[]) {
        assert.equal(backend.name, service.metadata.name)
        const port = (service.spec.ports as Manifest[]).find((candidate) => candidate.port === backend.port)
        assert.equal(port?.targetPort, 'grpc', `backend port ${backend.port} is the Service's grpc port`)
      }
      // A Gateway accepts only one of an HTTPRoute and a GRPCRoute whose hostnames intersect on a listener.
      const grpcHosts = route.spec.hostnames as string[]
      const httpHosts = httpRoute.spec.hostnames as string[]
      assert.ok(grpcHosts?.length && httpHosts?.length, 'both name their hostnames')
      for (const grpcHost of grpcHosts) {
        for (const httpHost of httpHosts) {
          assert.ok(!hostnamesIntersect(grpcHost, httpHost), `${grpcHost} and ${httpHost} intersect`)
        }
      }
      assert.deepEqual(
        grpcHosts,
        httpHosts.map((host) => `grpc.${host}`),
      )
    })

    it("when the relay publishes, then NATS_URL names NATS's client Service, whose port reaches the server's client port", async () => {
      const { parseConfig } = await import('../../../src/config/config.ts')
      const data = await configMap()
      const servers = parseConfig({ ...data, DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n' }).events.nats?.servers
      assert.equal(servers?.length, 1, 'NATS_URL is set, so the relay runs')
      const url = new URL(servers[0] as string)
      assert.equal(url.protocol, 'nats:')
      assert.equal(url.username, '', 'no credentials in the ConfigMap')
      // The Service's name, short or qualified with this namespace.
      const serviceName = url.hostname.split('.')[0] as string
      const names = ['', `.myapp-${overlay}`, `.myapp-${overlay}.svc`, `.myapp-${overlay}.svc.cluster.local`]
      assert.ok(names.map((suffix) => `${serviceName}${suffix}`).includes(url.hostname), url.hostname)
      const service = await one('Service', serviceName)
      assert.equal(service.spec.clusterIP, undefined, 'a ClusterIP Service: a stable address across restarts')
      const port = (service.spec.ports as Manifest[]).find((candidate) => candidate.port === Number(url.port || 4222))
      assert.ok(port, `the Service has port ${url.port}`)
      const { statefulSet, container, conf } = await nats()
      for (const [key, value] of Object.entries(service.spec.selector)) {
        assert.equal(
          statefulSet.spec.template.metadata.labels[key],
          value,
          `the Service selects the NATS pods by ${key}`,
        )
      }
      const target = (container.ports as Manifest[]).find((candidate) => candidate.name === port.targetPort)
      assert.equal(String(target?.containerPort), natsSetting(conf, 'port'), "the target is nats.conf's client port")
    })

    it('when NATS runs, then JetStream stores on the claimed volume, within the claim and the memory limit', async () => {
      const { statefulSet, container, conf } = await nats()
      const storeDir = natsSetting(conf, 'store_dir') as string
      const mount = (container.volumeMounts as Manifest[]).find((candidate) => candidate.mountPath === storeDir)
      const claim = (statefulSet.spec.volumeClaimTemplates as Manifest[]).find(
        (candidate) => candidate.metadata.name === mount?.name,
      )
      assert.ok(claim, `${storeDir} is a volume of volumeClaimTemplates`)
      assert.deepEqual(claim.spec.accessModes, ['ReadWriteOnce'])
      const claimed = bytesOf(claim.spec.resources.requests.storage, 'kubernetes')
      const fileStore = bytesOf(natsSetting(conf, 'max_file_store') as string, 'nats')
      assert.ok(fileStore < claimed, `max_file_store ${fileStore} < claim ${claimed}`)
      assert.equal(
        statefulSet.spec.persistentVolumeClaimRetentionPolicy.whenDeleted,
        'Retain',
        'the stream outlives it',
      )
      const limit = bytesOf(container.resources.limits.memory, 'kubernetes')
      const soft = bytesOf(envOf(container).GOMEMLIMIT?.value as string, 'go')
      const memoryStore = bytesOf(natsSetting(conf, 'max_memory_store') as string, 'nats')
      assert.ok(soft < limit, `GOMEMLIMIT ${soft} < limit ${limit}`)
      assert.ok(memoryStore < soft, `max_memory_store ${memoryStore} < GOMEMLIMIT ${soft}`)
    })

    it('when NATS starts, then it reads the mounted nats.conf, as one server behind a headless governing Service', async () => {
      const { statefulSet, container, configVolume, configFile } = await nats()
      assert.deepEqual(container.args, ['--config', configFile])
      const mount = (container.volumeMounts as Manifest[]).find((candidate) => candidate.name === configVolume.name)
      assert.equal(mount?.readOnly, true)
      assert.equal(statefulSet.spec.replicas, 1)
      const governing = await one('Service', statefulSet.spec.serviceName)
      assert.equal(governing.spec.clusterIP, 'None')
      assert.deepEqual(governing.spec.selector, statefulSet.spec.selector.matchLabels)
      for (const [key, value] of Object.entries(statefulSet.spec.selector.matchLabels)) {
        assert.equal(statefulSet.spec.template.metadata.labels[key], value, key)
      }
      // One server: a budget would forbid every drain; the outbox holds the events while the pod moves.
      const budgets = (await ofKind('PodDisruptionBudget')).filter((budget) =>
        Object.entries(budget.spec.selector.matchLabels ?? {}).every(
          ([key, value]) => statefulSet.spec.template.metadata.labels[key] === value,
        ),
      )
      assert.deepEqual(budgets, [], 'no PodDisruptionBudget holds the single NATS pod')
    })

    it("when the kubelet probes NATS, then startup, liveness and readiness read /healthz on nats.conf's monitor port", async () => {
      const { container, conf } = await nats()
      const monitor = (container.ports as Manifest[]).find((port) => port.name === 'monitor')
      assert.equal(String(monitor?.containerPort), natsSetting(conf, 'http_port'))
      const paths = [container.startupProbe, container.livenessProbe, container.readinessProbe].map((probe) => {
        assert.equal(probe.httpGet.port, 'monitor')
        return probe.httpGet.path
      })
      assert.deepEqual(paths, ['/healthz', '/healthz?js-enabled-only=true', '/healthz?js-server-only=true'])
      assert.ok(
        container.startupProbe.periodSeconds * container.startupProbe.failureThreshold >= 120,
        'time to recover a large store before liveness applies',
      )
    })

    it('when Argo CD syncs, then NATS comes with the database, before the app', async () => {
      const { statefulSet } = await nats()
      assert.ok(wave(statefulSet) < wave(await one('Deployment')))
      assert.ok(wave(statefulSet) <= wave(await one('Cluster', 'myapp-db')))
    })

    it(`when the environment is ${overlay}, then its settings apply`, async () => {
      const data = await configMap()
      assert.equal(data.DOCS_ENABLED, overlay === 'dev' ? 'true' : 'false')
      assert.equal(data.LOG_LEVEL, overlay === 'dev' ? 'debug' : 'info')
      if (overlay === 'prod') {
        assert.ok((await one('HorizontalPodAutoscaler')).spec.minReplicas >= 3)
        assert.equal(data.APP_ENV, 'production')
      }
    })
  })
}

/** Whether two Gateway API hostnames, either possibly a `*.` wildcard (a suffix match), can name one host. */
function hostnamesIntersect(a: string, b: string): boolean {
  const matches = (pattern: string, host: string) =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : pattern === host
  return matches(a, b) || matches(b, a)
}

/** A container's literal env values, as the service would read them. */
function plain(env: Record<string, Manifest>): Record<string, string> {
  return Object.fromEntries(
    Object.values(env)
      .filter((entry) => entry.value !== undefined)
      .map((entry) => [entry.name, entry.value]),
  )
}

describe("the NATS component's configuration", { skip: skip || natsMissing() }, () => {
  it('when nats-server checks the rendered nats.conf, then it accepts it', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'myapp-nats-conf-'))
    try {
      for (const overlay of OVERLAYS) {
        const configMap = (await render(`overlays/${overlay}`)).find(
          (manifest) =>
            manifest.kind === 'ConfigMap' &&
            manifest.metadata.labels?.['app.kubernetes.io/component'] === 'message-broker',
        )
        const file = join(folder, `${overlay}.conf`)
        writeFileSync(file, configMap?.data['nats.conf'])
        const { stdout, stderr } = await run(NATS_SERVER, ['--config', file, '-t'])
        assert.match(`${stdout}${stderr}`, /is valid/, overlay)
      }
      // The control: a misspelt setting fails the same check.
      const misspelt = join(folder, 'misspelt.conf')
      writeFileSync(misspelt, 'jetstream { store_directory: /data }\n')
      await assert.rejects(run(NATS_SERVER, ['--config', misspelt, '-t']), /unknown field/)
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })
})

describe('the overlays together', { skip }, () => {
  it('when backups are read across environments, then no two share an object store path or a server name', async () => {
    const seen = { destinationPath: new Map<string, string>(), serverName: new Map<string, string>() }
    for (const overlay of OVERLAYS) {
      const manifests = await render(`overlays/${overlay}`)
      const cluster = manifests.find((manifest) => manifest.kind === 'Cluster')
      const plugin = (cluster?.spec.plugins ?? []).find(
        (candidate: Manifest) => candidate.name === 'barman-cloud.cloudnative-pg.io',
      )
      const store = manifests.find(
        (manifest) =>
          manifest.kind === 'ObjectStore' && manifest.metadata.name === plugin?.parameters?.barmanObjectName,
      )
      const values = {
        destinationPath: store?.spec.configuration.destinationPath as string | undefined,
        serverName: (plugin?.parameters?.serverName ?? cluster?.metadata.name) as string | undefined,
      }
      for (const key of ['destinationPath', 'serverName'] as const) {
        const value = values[key]
        assert.ok(value, `${overlay} has a ${key}`)
        assert.equal(seen[key].get(value), undefined, `${overlay} and ${seen[key].get(value)} share ${key} ${value}`)
        seen[key].set(value, overlay)
      }
    }
  })
})

describe('the Argo CD applications', { skip }, () => {
  it('when rendered, then they validate and point each environment at its overlay', async () => {
    const manifests = await render('argocd')
    for (const manifest of manifests) await validate(manifest)
    const applications = manifests.filter((manifest) => manifest.kind === 'Application')
    assert.deepEqual(
      applications.map((application) => [application.metadata.name, application.spec.source.path]).sort(),
      OVERLAYS.map((overlay) => [`myapp-${overlay}`, `deploy/k8s/overlays/${overlay}`]).sort(),
    )
    const prod = applications.find((application) => application.metadata.name === 'myapp-prod')
    assert.equal(prod?.spec.syncPolicy.automated, undefined, 'production syncs by hand')
    for (const application of applications.filter((candidate) => candidate.spec.syncPolicy.automated)) {
      assert.equal(application.spec.syncPolicy.automated.selfHeal, true, application.metadata.name)
    }
  })

  it('when the project is read, then it admits every kind the overlays render, the Namespace included', async () => {
    const project = (await render('argocd')).find((manifest) => manifest.kind === 'AppProject')
    assert.ok(project)
    const allowed = (list: Manifest[] | undefined) =>
      new Set((list ?? []).map((entry) => `${entry.group}/${entry.kind}`))
    const clusterScoped = allowed(project.spec.clusterResourceWhitelist)
    const namespaced = allowed(project.spec.namespaceResourceWhitelist)
    for (const application of (await render('argocd')).filter((manifest) => manifest.kind === 'Application')) {
      if ((application.spec.syncPolicy?.syncOptions ?? []).includes('CreateNamespace=true')) {
        assert.ok(
          clusterScoped.has('/Namespace'),
          `${application.metadata.name} creates a Namespace the project forbids`,
        )
      }
    }
    for (const overlay of OVERLAYS) {
      for (const manifest of await render(`overlays/${overlay}`)) {
        const group = manifest.apiVersion.includes('/') ? manifest.apiVersion.split('/')[0] : ''
        const key = `${group}/${manifest.kind}`
        if (manifest.kind === 'Namespace') assert.ok(clusterScoped.has(key), `${overlay}: the project forbids ${key}`)
        else assert.ok(namespaced.has(key), `${overlay}: the project forbids ${key}`)
      }
    }
  })
})
