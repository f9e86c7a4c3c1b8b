// Reachability of every rendered overlay: its NetworkPolicies evaluated (test/helpers/network-policy.ts) against
// the pods that will really run, with the labels they will really carry: the Deployment's, the migrate Job's and
// the NATS StatefulSet's pod templates, CloudNativePG's instance, Pooler and join-Job pods as its operator labels
// them (pkg/specs/pods.go, pgbouncer/deployments.go, jobs.go), and the system's neighbours (the Gateway,
// Prometheus, the operator, kube-dns) in their namespaces. Every flow the system needs must be open, and the
// database, NATS and the app closed to everyone else.
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { describe } from '../../helpers/describe.ts'
import { kubectlMissing, type Manifest, OVERLAYS, type Overlay, render } from '../../helpers/kustomize.ts'
import {
  type Endpoint,
  type External,
  evaluate,
  type Labels,
  type NetworkPolicy,
  type Pod,
  type Protocol,
  type World,
} from '../../helpers/network-policy.ts'

let nextAddress = 10
const pod = (name: string, namespace: string, labels: Labels, ports: Pod['ports'] = []): Pod => ({
  kind: 'pod',
  name,
  namespace,
  labels,
  ip: `10.244.0.${nextAddress++}`,
  ports,
})
const external = (name: string, ip: string): External => ({ kind: 'external', name, ip })

const INSTANCE_PORTS: Pod['ports'] = [
  { name: 'postgresql', containerPort: 5432 },
  { name: 'metrics', containerPort: 9187 },
  { name: 'status', containerPort: 8000 },
]
const POOLER_PORTS: Pod['ports'] = [
  { name: 'pgbouncer', containerPort: 5432 },
  { name: 'metrics', containerPort: 9127 },
]

const neighbours = {
  gateway: pod('gateway', 'gateway-system', { 'gateway.networking.k8s.io/gateway-name': 'public' }),
  prometheus: pod('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }),
  collector: pod('otel-collector', 'monitoring', { 'app.kubernetes.io/name': 'opentelemetry-collector' }, [
    { name: 'otlp-http', containerPort: 4318 },
  ]),
  operator: pod('cnpg-operator', 'cnpg-system', { 'app.kubernetes.io/name': 'cloudnative-pg' }),
  dns: pod('coredns', 'kube-system', { 'k8s-app': 'kube-dns' }, [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ]),
  objectStore: external('object store', '52.219.100.10'),
  // kind's API server endpoint, behind the kubernetes Service.
  apiServer: external('Kubernetes API', '172.18.0.2'),
  identityProvider: external('identity provider', '203.0.113.20'),
  mailServer: external('a mail server', '198.51.100.25'),
}

/** The pods an overlay creates, labelled as the Deployment, the Job and CloudNativePG's operator label them. */
function podsOf(manifests: Manifest[]) {
  const find = (kind: string) => manifests.filter((manifest) => manifest.kind === kind)
  const [deployment] = find('Deployment')
  const [job] = find('Job')
  const [cluster] = find('Cluster')
  const [pooler] = find('Pooler')
  const [nats] = find('StatefulSet')
  assert.ok(deployment && job && cluster && pooler && nats, 'a Deployment, a Job, a Cluster, a Pooler and NATS')
  const namespace = deployment.metadata.namespace as string
  const fromTemplate = (name: string, workload: Manifest) =>
    pod(
      name,
      namespace,
      workload.spec.template.metadata.labels,
      workload.spec.template.spec.containers.flatMap((container: Manifest) => container.ports ?? []),
    )
  const clusterName = cluster.metadata.name as string
  const inherited = (cluster.spec.inheritedMetadata?.labels ?? {}) as Labels
  const operatorLabels = (component: string) => ({
    'app.kubernetes.io/name': 'postgresql',
    'app.kubernetes.io/instance': clusterName,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/managed-by': 'cloudnative-pg',
    'cnpg.io/cluster': clusterName,
  })
  const instance = (serial: number, role: 'primary' | 'replica') =>
    pod(
      `${clusterName}-${serial}`,
      namespace,
      {
        ...inherited,
        ...operatorLabels('database'),
        'app.kubernetes.io/version': '18',
        'cnpg.io/instanceName': `${clusterName}-${serial}`,
        'cnpg.io/podRole': 'instance',
        'cnpg.io/instanceRole': role,
        role,
      },
      INSTANCE_PORTS,
    )
  const instances = Number(cluster.spec.instances)
  return {
    namespace,
    app: fromTemplate('app', deployment),
    migrate: fromTemplate('migrate', job),
    nats: fromTemplate(`${nats.metadata.name}-0`, nats),
    primary: instance(1, 'primary'),
    replica: instances > 1 ? instance(2, 'replica') : undefined,
    join: pod(`${clusterName}-${instances + 1}-join`, namespace, {
      ...inherited,
      ...operatorLabels('database'),
      'cnpg.io/instanceName': `${clusterName}-${instances + 1}`,
      'cnpg.io/jobRole': 'join',
    }),
    pooler: pod(
      pooler.metadata.name,
      namespace,
      {
        ...(pooler.spec.template?.metadata?.labels ?? {}),
        ...operatorLabels('pooler'),
        'cnpg.io/poolerName': pooler.metadata.name,
        'cnpg.io/podRole': 'pooler',
        'cnpg.io/cluster': pooler.spec.cluster.name,
      },
      POOLER_PORTS,
    ),
    hasRoute: find('HTTPRoute').length > 0,
    hasGrpcRoute: find('GRPCRoute').length > 0,
    usesJwt: find('ConfigMap').some((configMap) => configMap.data?.AUTH_MODE === 'jwt'),
  }
}

interface Flow {
  name: string
  from: Endpoint | undefined
  to: Endpoint | undefined
  port: number
  protocol?: Protocol
}

function flowsOf(pods: ReturnType<typeof podsOf>) {
  const { app, migrate, primary, replica, join, pooler, nats } = pods
  const n = neighbours
  const dns = (name: string, from: Endpoint | undefined): Flow[] => [
    { name: `${name} → DNS`, from, to: n.dns, port: 53, protocol: 'UDP' },
    { name: `${name} → DNS`, from, to: n.dns, port: 53, protocol: 'TCP' },
  ]
  const needed: Flow[] = [
    ...(pods.hasRoute ? [{ name: 'gateway → app', from: n.gateway, to: app, port: 8080 }] : []),
    ...(pods.hasGrpcRoute ? [{ name: 'gateway → app gRPC', from: n.gateway, to: app, port: 9090 }] : []),
    { name: 'prometheus → app /metrics', from: n.prometheus, to: app, port: 8080 },
    { name: 'app → pooler', from: app, to: pooler, port: 5432 },
    { name: 'pooler → primary', from: pooler, to: primary, port: 5432 },
    { name: 'migrate job → primary', from: migrate, to: primary, port: 5432 },
    { name: 'replica → primary (replication)', from: replica, to: primary, port: 5432 },
    { name: 'primary → replica status (isolation check)', from: primary, to: replica, port: 8000 },
    { name: 'join job → primary (clone)', from: join, to: primary, port: 5432 },
    { name: 'operator → primary status', from: n.operator, to: primary, port: 8000 },
    { name: 'operator → primary postgres', from: n.operator, to: primary, port: 5432 },
    { name: 'operator → replica status', from: n.operator, to: replica, port: 8000 },
    { name: 'operator → replica postgres', from: n.operator, to: replica, port: 5432 },
    { name: 'primary → object store (WAL, backups)', from: primary, to: n.objectStore, port: 443 },
    { name: 'replica → object store (backups)', from: replica, to: n.objectStore, port: 443 },
    { name: 'primary → Kubernetes API', from: primary, to: n.apiServer, port: 6443 },
    { name: 'replica → Kubernetes API', from: replica, to: n.apiServer, port: 6443 },
    { name: 'pooler → Kubernetes API', from: pooler, to: n.apiServer, port: 6443 },
    { name: 'join job → Kubernetes API', from: join, to: n.apiServer, port: 6443 },
    { name: 'prometheus → primary metrics', from: n.prometheus, to: primary, port: 9187 },
    { name: 'prometheus → replica metrics', from: n.prometheus, to: replica, port: 9187 },
    { name: 'prometheus → pooler metrics', from: n.prometheus, to: pooler, port: 9127 },
    { name: 'app → OTLP collector', from: app, to: n.collector, port: 4318 },
    { name: 'app → NATS (the outbox relay)', from: app, to: nats, port: 4222 },
    ...(pods.usesJwt ? [{ name: 'app → identity provider (JWKS)', from: app, to: n.identityProvider, port: 443 }] : []),
    ...dns('app', app),
    ...dns('migrate job', migrate),
    ...dns('primary', primary),
    ...dns('replica', replica),
    ...dns('pooler', pooler),
    ...dns('join job', join),
  ]
  const intruder = pod('intruder', 'intruder', app.labels)
  const stranger = pod('stranger', 'other-team', { app: 'stranger' })
  const unlabelled = pod('debug', pods.namespace, {})
  const refused: Flow[] = [
    { name: 'other namespace, app labels → pooler', from: intruder, to: pooler, port: 5432 },
    { name: 'other namespace, app labels → primary', from: intruder, to: primary, port: 5432 },
    { name: 'other namespace, app labels → app', from: intruder, to: app, port: 8080 },
    { name: 'other namespace → app', from: stranger, to: app, port: 8080 },
    { name: 'other namespace → primary', from: stranger, to: primary, port: 5432 },
    { name: 'other namespace → replica', from: stranger, to: replica, port: 5432 },
    { name: 'unlabelled pod, same namespace → primary', from: unlabelled, to: primary, port: 5432 },
    { name: 'unlabelled pod, same namespace → app', from: unlabelled, to: app, port: 8080 },
    { name: 'other namespace, app labels → app gRPC', from: intruder, to: app, port: 9090 },
    { name: 'other namespace → app gRPC', from: stranger, to: app, port: 9090 },
    { name: 'unlabelled pod, same namespace → app gRPC', from: unlabelled, to: app, port: 9090 },
    { name: 'prometheus → app gRPC (it scrapes over HTTP)', from: n.prometheus, to: app, port: 9090 },
    { name: 'app → primary, bypassing the pooler', from: app, to: primary, port: 5432 },
    { name: 'gateway → pooler', from: n.gateway, to: pooler, port: 5432 },
    { name: 'gateway → primary', from: n.gateway, to: primary, port: 5432 },
    { name: 'prometheus → primary postgres', from: n.prometheus, to: primary, port: 5432 },
    { name: 'app → Kubernetes API', from: app, to: n.apiServer, port: 6443 },
    { name: 'app → mail server (unlisted egress)', from: app, to: n.mailServer, port: 25 },
    { name: 'primary → mail server (unlisted egress)', from: primary, to: n.mailServer, port: 25 },
    { name: 'migrate job → identity provider (unlisted egress)', from: migrate, to: n.identityProvider, port: 443 },
    { name: 'other namespace, app labels → NATS', from: intruder, to: nats, port: 4222 },
    { name: 'other namespace → NATS', from: stranger, to: nats, port: 4222 },
    { name: 'unlabelled pod, same namespace → NATS', from: unlabelled, to: nats, port: 4222 },
    { name: 'migrate job → NATS (it publishes nothing)', from: migrate, to: nats, port: 4222 },
    { name: 'pooler → NATS', from: pooler, to: nats, port: 4222 },
    { name: 'gateway → NATS', from: n.gateway, to: nats, port: 4222 },
    { name: 'prometheus → NATS', from: n.prometheus, to: nats, port: 4222 },
    { name: 'app → NATS monitoring (the kubelet probes it)', from: app, to: nats, port: 8222 },
    { name: 'NATS → app', from: nats, to: app, port: 8080 },
    { name: 'NATS → primary', from: nats, to: primary, port: 5432 },
    { name: 'NATS → Kubernetes API', from: nats, to: n.apiServer, port: 6443 },
    { name: 'NATS → mail server (unlisted egress)', from: nats, to: n.mailServer, port: 25 },
  ]
  return { needed, refused }
}

function worldOf(manifests: Manifest[], ipBlockSelectsPods: boolean): World {
  const namespaces: Record<string, Labels> = {}
  for (const namespace of manifests.filter((manifest) => manifest.kind === 'Namespace')) {
    namespaces[namespace.metadata.name] = namespace.metadata.labels ?? {}
  }
  const policies = manifests.filter((manifest) => manifest.kind === 'NetworkPolicy') as NetworkPolicy[]
  return { namespaces, policies, ipBlockSelectsPods }
}

function verdictLine(flow: Flow, world: World): { line: string; allowed: boolean } | undefined {
  if (flow.from === undefined || flow.to === undefined) return undefined
  const verdict = evaluate(world, flow.from, flow.to, flow.port, flow.protocol ?? 'TCP')
  const outcome = verdict.allowed ? 'allowed' : `denied (${verdict.refusedBy.join(' and ')})`
  return { line: `${flow.name} :${flow.port}/${flow.protocol ?? 'TCP'} ${outcome}`, allowed: verdict.allowed }
}

const skip = kubectlMissing()

for (const overlay of OVERLAYS as readonly Overlay[]) {
  describe(`the ${overlay} overlay's network policies`, { skip }, () => {
    const rendered = render(`overlays/${overlay}`)

    it('when every flow the system needs is evaluated against the labels its pods carry, then each is allowed', async (t) => {
      const manifests = await rendered
      const { needed } = flowsOf(podsOf(manifests))
      // An allow must not rest on an ipBlock covering pod addresses, which plugins differ on.
      const world = worldOf(manifests, false)
      const lines = needed.flatMap((flow) => verdictLine(flow, world) ?? [])
      t.diagnostic(`${overlay}, needed flows:\n  ${lines.map((entry) => entry.line).join('\n  ')}`)
      const blocked = lines.filter((entry) => !entry.allowed).map((entry) => entry.line)
      assert.deepEqual(blocked, [], `${blocked.length} of ${lines.length} needed flows are blocked`)
    })

    it('when other namespaces, unlabelled pods and unlisted destinations are tried, then each is refused', async (t) => {
      const manifests = await rendered
      const { refused } = flowsOf(podsOf(manifests))
      // A refusal must hold even where an ipBlock also covers pod addresses.
      const world = worldOf(manifests, true)
      const lines = refused.flatMap((flow) => verdictLine(flow, world) ?? [])
      t.diagnostic(`${overlay}, flows that must be refused:\n  ${lines.map((entry) => entry.line).join('\n  ')}`)
      const open = lines.filter((entry) => entry.allowed).map((entry) => entry.line)
      assert.deepEqual(open, [], `${open.length} of ${lines.length} flows that must be refused are open`)
    })

    it("when NATS's ingress is read on its own, then it admits the app's pods and no other pod of the namespace", async () => {
      const manifests = await rendered
      const pods = podsOf(manifests)
      const world = worldOf(manifests, true)
      // The sources' egress (the default deny) would refuse these anyway: NATS must not rest on it.
      const ingressOf = (from: Pod) => evaluate(world, from, pods.nats, 4222)
      assert.ok(ingressOf(pods.app).allowed, 'the app reaches NATS')
      const others = [pods.migrate, pods.pooler, pods.primary, pod('debug', pods.namespace, {})]
      for (const other of others) {
        assert.ok(ingressOf(other).refusedBy.includes('ingress'), `${other.name} → NATS passes NATS's ingress`)
      }
    })

    it('when the policies are read, then no peer selector demands the labels kustomize puts on every object', async () => {
      const manifests = await rendered
      const common = ['app.kubernetes.io/part-of', 'app.kubernetes.io/instance', 'app.kubernetes.io/version']
      for (const policy of manifests.filter((manifest) => manifest.kind === 'NetworkPolicy')) {
        const peers = [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])].flatMap((rule: Manifest) => [
          ...(rule.from ?? []),
          ...(rule.to ?? []),
        ])
        for (const peer of peers) {
          for (const selector of [peer.podSelector, peer.namespaceSelector]) {
            for (const key of Object.keys(selector?.matchLabels ?? {})) {
              assert.ok(!common.includes(key), `${policy.metadata.name} selects peers by ${key}`)
            }
          }
          if (peer.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns') {
            assert.deepEqual(peer.podSelector.matchLabels, { 'k8s-app': 'kube-dns' }, policy.metadata.name)
          }
        }
      }
    })
  })
}

// The evaluator's own semantics, on small hand-made cases where the Kubernetes documentation states the answer.
describe('the NetworkPolicy evaluator', () => {
  const web = pod('web', 'shop', { app: 'web' }, [{ name: 'http', containerPort: 8080 }])
  const api = pod('api', 'shop', { app: 'api' })
  const monitor = pod('monitor', 'ops', { app: 'prometheus' })
  const outsider = pod('outsider', 'ops', { app: 'other' })
  const policy = (name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({
    metadata: { name, namespace: 'shop' },
    spec,
  })
  const world = (...policies: NetworkPolicy[]): World => ({
    namespaces: { ops: { team: 'ops' } },
    policies,
    ipBlockSelectsPods: false,
  })

  it('when no policy selects a pod, then it is open both ways', () => {
    assert.equal(evaluate(world(), outsider, web, 8080).allowed, true)
  })

  it('when a policy has only an egress section and no policyTypes, then it isolates ingress too', () => {
    const only = world(policy('egress-only', { podSelector: {}, egress: [{}] }))
    assert.deepEqual(evaluate(only, outsider, web, 8080).refusedBy, ['ingress'])
    assert.equal(evaluate(only, web, outsider, 9000).allowed, true)
  })

  it('when namespaceSelector and podSelector share a peer, then both must match; as two peers, either does', () => {
    const and = world(
      policy('and', {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { team: 'ops' } },
                podSelector: { matchLabels: { app: 'prometheus' } },
              },
            ],
          },
        ],
      }),
    )
    assert.equal(evaluate(and, monitor, web, 8080).allowed, true)
    assert.equal(evaluate(and, outsider, web, 8080).allowed, false)
    const or = world(
      policy('or', {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { team: 'ops' } } },
              { podSelector: { matchLabels: { app: 'prometheus' } } },
            ],
          },
        ],
      }),
    )
    assert.equal(evaluate(or, outsider, web, 8080).allowed, true)
  })

  it('when a peer has only a podSelector, then it means pods of the policy’s own namespace', () => {
    const same = world(
      policy('same', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: {} }] }] }),
    )
    assert.equal(evaluate(same, api, web, 8080).allowed, true)
    assert.equal(evaluate(same, monitor, web, 8080).allowed, false)
  })

  it('when ports are named, ranged or of another protocol, then they match only what the pod exposes', () => {
    const ports = world(
      policy('ports', {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [{ ports: [{ port: 'http' }, { port: 9000, endPort: 9010 }, { port: 53, protocol: 'UDP' }] }],
      }),
    )
    assert.equal(evaluate(ports, api, web, 8080).allowed, true)
    assert.equal(evaluate(ports, api, web, 8081).allowed, false)
    assert.equal(evaluate(ports, api, web, 9005).allowed, true)
    assert.equal(evaluate(ports, api, web, 53, 'TCP').allowed, false)
    assert.equal(evaluate(ports, api, web, 53, 'UDP').allowed, true)
  })

  it('when an ipBlock has exceptions, then addresses inside them are refused', () => {
    const out = world(
      policy('out', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }] }],
      }),
    )
    assert.equal(evaluate(out, api, external('public', '203.0.113.9'), 443).allowed, true)
    assert.equal(evaluate(out, api, external('private', '10.1.2.3'), 443).allowed, false)
  })

  it('when matchExpressions are used, then In, NotIn, Exists and DoesNotExist hold as documented', () => {
    const expressions = world(
      policy('expressions', {
        podSelector: {
          matchExpressions: [
            { key: 'app', operator: 'In', values: ['web', 'api'] },
            { key: 'tier', operator: 'NotIn', values: ['db'] },
            { key: 'canary', operator: 'DoesNotExist' },
          ],
        },
        policyTypes: ['Ingress'],
      }),
    )
    assert.equal(evaluate(expressions, monitor, web, 8080).allowed, false, 'web is selected, so isolated')
    const canary = pod('canary', 'shop', { app: 'web', canary: 'yes' })
    assert.equal(evaluate(expressions, monitor, canary, 8080).allowed, true, 'a canary is not selected')
  })
})
