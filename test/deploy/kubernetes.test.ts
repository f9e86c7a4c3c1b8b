// deploy/k8s rendered with kustomize: every object valid against its Kubernetes or CRD schema, and the policies
// a production deployment needs, checked on every overlay.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import { promisify } from 'node:util'
import { Ajv } from 'ajv'
import { parse, parseAllDocuments } from 'yaml'
import { describe } from '../helpers/describe.ts'
import { programMissing } from '../helpers/tools.ts'

const run = promisify(execFile)
const K8S = new URL('../../deploy/k8s/', import.meta.url).pathname
const KUBECTL = '/usr/bin/kubectl'
const OVERLAYS = ['dev', 'stage', 'prod'] as const

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
type Manifest = Record<string, any>

async function render(path: string): Promise<Manifest[]> {
  const { stdout } = await run(KUBECTL, ['kustomize', `${K8S}${path}`], { maxBuffer: 16 * 1024 * 1024 })
  return parseAllDocuments(stdout).map((document) => document.toJSON() as Manifest)
}

// Schemas: kubernetes-models for Kubernetes and the CRDs it packages, the repository's JSON Schema for CloudNativePG.
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
const cnpgSchemas = JSON.parse(readFileSync(new URL('schemas/cloudnative-pg.json', import.meta.url), 'utf8'))
const cnpg = new Ajv({ allErrors: true, strict: false })
cnpg.addSchema(cnpgSchemas, 'cnpg')

async function validate(manifest: Manifest): Promise<void> {
  const what = `${manifest.kind}/${manifest.metadata?.name}`
  if (manifest.apiVersion === 'postgresql.cnpg.io/v1') {
    const check = cnpg.getSchema(`cnpg#/${manifest.kind}`)
    assert.ok(check, `no schema for ${what}`)
    assert.ok(check(manifest), `${what}: ${cnpg.errorsText(check.errors)}`)
    return
  }
  const module = MODEL_MODULES[manifest.apiVersion]
  assert.ok(module, `no schema for ${manifest.apiVersion} (${what})`)
  const Model = (await import(module))[manifest.kind]
  assert.ok(Model, `no model for ${what}`)
  assert.doesNotThrow(() => new Model(manifest).validate(), `${what} is invalid`)
}

const skip = programMissing(KUBECTL, 'install kubectl with kustomize v5')

for (const overlay of OVERLAYS) {
  describe(`the ${overlay} overlay`, { skip }, () => {
    const rendered = render(`overlays/${overlay}`)
    const ofKind = async (kind: string) => (await rendered).filter((manifest) => manifest.kind === kind)
    const one = async (kind: string, name = 'myapp') => {
      const found = (await ofKind(kind)).find((manifest) => manifest.metadata.name === name)
      assert.ok(found, `${kind}/${name}`)
      return found
    }
    const configMap = async () => (await one('ConfigMap')).data as Record<string, string>

    it("when the ConfigMap is parsed by the service's own config schema, then it is accepted", async () => {
      const { parseConfig } = await import('../../src/config/config.ts')
      const data = await configMap()
      assert.doesNotThrow(() => parseConfig({ ...data, DB_HOST: 'db', DB_USER: 'u', DB_NAME: 'n' }))
    })

    it('when rendered, then every object validates against its schema', async () => {
      const manifests = await rendered
      assert.ok(manifests.length >= 15)
      for (const manifest of manifests) await validate(manifest)
    })

    it('when rendered, then no Secret is committed and credentials come from the operator-made secret', async () => {
      const manifests = await rendered
      assert.equal(manifests.filter((manifest) => manifest.kind === 'Secret').length, 0)
      assert.doesNotMatch(JSON.stringify(manifests), /password\W+[:=]\s*\w|postgres(ql)?:\/\/\w+:\w+@/i)
      const env = (await one('Deployment')).spec.template.spec.containers[0].env as Manifest[]
      for (const name of ['DB_USER', 'DB_PASS', 'DB_NAME']) {
        assert.equal(env.find((entry) => entry.name === name)?.valueFrom?.secretKeyRef?.name, 'myapp-db-app', name)
      }
    })

    it('when containers are listed, then each has requests, limits, a pinned image and the restricted security context', async () => {
      const workloads = [...(await ofKind('Deployment')), ...(await ofKind('Job'))]
      assert.equal(workloads.length, 2)
      for (const workload of workloads) {
        const pod = workload.spec.template.spec
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
          assert.ok(
            pod.volumes.some((volume: Manifest) => volume.name === 'tmp' && volume.emptyDir),
            `${what} /tmp`,
          )
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

    it('when autoscaling and disruptions are read, then at least 2 replicas run and a rolling update can proceed', async () => {
      const hpa = await one('HorizontalPodAutoscaler')
      assert.ok(hpa.spec.minReplicas >= 2)
      assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas)
      const pdb = await one('PodDisruptionBudget')
      assert.ok(pdb.spec.maxUnavailable >= 1, 'one pod may always be evicted')
      assert.equal((await one('Deployment')).spec.replicas, hpa.spec.minReplicas)
    })

    it('when labels are read, then every object carries the app.kubernetes.io set', async () => {
      for (const manifest of await rendered) {
        const labels = manifest.metadata.labels ?? {}
        for (const key of ['name', 'instance', 'version', 'part-of', 'component']) {
          assert.ok(
            labels[`app.kubernetes.io/${key}`],
            `${manifest.kind}/${manifest.metadata.name} has app.kubernetes.io/${key}`,
          )
        }
        assert.equal(manifest.metadata.namespace, `myapp-${overlay}`)
      }
    })

    it('when the network is read, then all traffic is denied except what the service needs', async () => {
      const deny = await one('NetworkPolicy', 'myapp-default-deny')
      assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })
      const api = await one('NetworkPolicy', 'myapp-api')
      const egressPorts = api.spec.egress.flatMap((rule: Manifest) => rule.ports.map((port: Manifest) => port.port))
      assert.deepEqual([...new Set(egressPorts)].sort(), [443, 4318, 53, 5432].sort())
    })

    it('when the migrate Job is read, then it is a PreSync hook that reaches the primary, not the pooler', async () => {
      const job = await one('Job', 'myapp-migrate')
      assert.equal(job.metadata.annotations['argocd.argoproj.io/hook'], 'PreSync')
      const container = job.spec.template.spec.containers[0]
      assert.deepEqual(container.args, ['dist/bin/migrate.js', 'up'])
      assert.deepEqual(container.env, [
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'myapp-db-app', key: 'uri' } } },
      ])
    })

    it('when the app reaches PostgreSQL, then it goes through the transaction-mode pooler with prepared statements off', async () => {
      const env = Object.fromEntries(
        ((await one('Deployment')).spec.template.spec.containers[0].env as Manifest[]).map((entry) => [
          entry.name,
          entry,
        ]),
      )
      assert.equal(env.DB_HOST?.value, 'myapp-db-pooler-rw')
      assert.equal(env.DB_PREPARED_STATEMENTS?.value, 'false')
      assert.equal(env.DB_STATEMENT_TIMEOUT?.value, '0')
      assert.equal(env.DATABASE_URL, undefined, 'DATABASE_URL would win over DB_*')
      const pooler = await one('Pooler', 'myapp-db-pooler-rw')
      assert.equal(pooler.spec.pgbouncer.poolMode, 'transaction')
      assert.equal((await one('Cluster', 'myapp-db')).spec.instances, 3)
    })

    it('when monitoring is read, then the PrometheusRule is deploy/monitoring/prometheus-rules.yaml', async () => {
      const rule = await one('PrometheusRule')
      const rules = parse(
        readFileSync(new URL('../../deploy/monitoring/prometheus-rules.yaml', import.meta.url), 'utf8'),
      )
      assert.deepEqual(rule.spec, rules)
      assert.equal((await one('ServiceMonitor')).spec.endpoints[0].path, '/metrics')
    })

    it(`when the environment is ${overlay}, then its settings apply`, async () => {
      const data = await configMap()
      assert.equal(data.DOCS_ENABLED, overlay === 'prod' ? 'false' : 'true')
      assert.equal(data.LOG_LEVEL, overlay === 'dev' ? 'debug' : 'info')
      if (overlay === 'prod') {
        assert.ok((await one('HorizontalPodAutoscaler')).spec.minReplicas >= 3)
        assert.equal(data.APP_ENV, 'production')
        assert.equal(data.AUTH_MODE, 'jwt', 'production runs with authentication')
      }
    })
  })
}

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
    for (const application of applications) {
      assert.equal(
        application.spec.syncPolicy.managedNamespaceMetadata.labels['pod-security.kubernetes.io/enforce'],
        'restricted',
      )
    }
  })
})
