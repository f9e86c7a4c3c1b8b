// Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), evaluated the way a conforming network plugin
// enforces them, for checking rendered manifests against the pods they will meet. A connection needs both the
// source's egress and the destination's ingress; a pod that no policy of a direction selects is open in it;
// policies add up. Whether an ipBlock also designates pods by their addresses is left to the plugin by the API, so
// it is a choice of the World: check needed flows without it (no allow may rest on it) and refusals with it.
import { BlockList, isIPv4 } from 'node:net'

export type Labels = Readonly<Record<string, string>>
export type Protocol = 'TCP' | 'UDP' | 'SCTP'

export interface LabelSelector {
  matchLabels?: Labels
  matchExpressions?: readonly {
    key: string
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'
    values?: readonly string[]
  }[]
}

interface PolicyPort {
  port?: number | string
  endPort?: number
  protocol?: Protocol
}
interface PolicyPeer {
  podSelector?: LabelSelector
  namespaceSelector?: LabelSelector
  ipBlock?: { cidr: string; except?: readonly string[] }
}
interface PolicyRule {
  from?: readonly PolicyPeer[]
  to?: readonly PolicyPeer[]
  ports?: readonly PolicyPort[]
}
export interface NetworkPolicy {
  metadata: { name: string; namespace: string }
  spec: {
    podSelector?: LabelSelector
    policyTypes?: readonly ('Ingress' | 'Egress')[]
    ingress?: readonly PolicyRule[]
    egress?: readonly PolicyRule[]
  }
}

export interface Pod {
  kind: 'pod'
  name: string
  namespace: string
  labels: Labels
  ip: string
  ports: readonly { name?: string; containerPort: number; protocol?: Protocol }[]
}
/** An address outside the cluster (an object store, the API server's endpoint, an identity provider). */
export interface External {
  kind: 'external'
  name: string
  ip: string
}
export type Endpoint = Pod | External

export interface World {
  /** Namespace name → its labels (kubernetes.io/metadata.name is added, as the API server does). */
  namespaces: Readonly<Record<string, Labels>>
  policies: readonly NetworkPolicy[]
  /** Whether an ipBlock designates pods whose address falls in it. */
  ipBlockSelectsPods: boolean
}

export interface Verdict {
  allowed: boolean
  /** Which side refused: the source's egress, the destination's ingress, or both. */
  refusedBy: ('egress' | 'ingress')[]
  /** The policies whose rules let it through, per side (empty where the side is not isolated). */
  allowedBy: { egress: string[]; ingress: string[] }
}

export function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (selector === undefined) return true
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false
  }
  for (const expression of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, expression.key)
    const value = labels[expression.key] as string
    const values = expression.values ?? []
    const holds =
      expression.operator === 'In'
        ? has && values.includes(value)
        : expression.operator === 'NotIn'
          ? !has || !values.includes(value)
          : expression.operator === 'Exists'
            ? has
            : !has
    if (!holds) return false
  }
  return true
}

function inBlock(ip: string, block: { cidr: string; except?: readonly string[] }): boolean {
  const family = isIPv4(ip) ? 'ipv4' : 'ipv6'
  const range = (cidr: string) => {
    const [network = '', prefix = ''] = cidr.split('/')
    const list = new BlockList()
    if ((isIPv4(network) ? 'ipv4' : 'ipv6') === family) list.addSubnet(network, Number(prefix), family)
    return list
  }
  if (!range(block.cidr).check(ip, family)) return false
  return !(block.except ?? []).some((cidr) => range(cidr).check(ip, family))
}

function policyTypes(policy: NetworkPolicy): readonly ('Ingress' | 'Egress')[] {
  return policy.spec.policyTypes ?? (policy.spec.egress === undefined ? ['Ingress'] : ['Ingress', 'Egress'])
}

function namespaceLabels(world: World, namespace: string): Labels {
  return { ...(world.namespaces[namespace] ?? {}), 'kubernetes.io/metadata.name': namespace }
}

/** Whether `peer`, written in a policy of `policyNamespace`, designates `endpoint`. */
function peerMatches(world: World, peer: PolicyPeer, policyNamespace: string, endpoint: Endpoint): boolean {
  if (peer.ipBlock !== undefined) {
    return (endpoint.kind === 'external' || world.ipBlockSelectsPods) && inBlock(endpoint.ip, peer.ipBlock)
  }
  if (endpoint.kind !== 'pod') return false
  if (peer.namespaceSelector === undefined) {
    return endpoint.namespace === policyNamespace && selects(peer.podSelector ?? {}, endpoint.labels)
  }
  return (
    selects(peer.namespaceSelector, namespaceLabels(world, endpoint.namespace)) &&
    selects(peer.podSelector ?? {}, endpoint.labels)
  )
}

/** A named port is resolved on the destination pod, whichever side's policy names it. */
function portMatches(spec: PolicyPort, destination: Endpoint, port: number, protocol: Protocol): boolean {
  if ((spec.protocol ?? 'TCP') !== protocol) return false
  if (spec.port === undefined) return true
  if (typeof spec.port === 'number')
    return spec.endPort === undefined ? spec.port === port : spec.port <= port && port <= spec.endPort
  if (destination.kind !== 'pod') return false
  return destination.ports.some(
    (candidate) =>
      candidate.name === spec.port && candidate.containerPort === port && (candidate.protocol ?? 'TCP') === protocol,
  )
}

function side(
  world: World,
  direction: 'Ingress' | 'Egress',
  subject: Endpoint,
  peer: Endpoint,
  destination: Endpoint,
  port: number,
  protocol: Protocol,
): { isolated: boolean; allowedBy: string[] } {
  if (subject.kind !== 'pod') return { isolated: false, allowedBy: [] }
  const selecting = world.policies.filter(
    (policy) =>
      policy.metadata.namespace === subject.namespace &&
      policyTypes(policy).includes(direction) &&
      selects(policy.spec.podSelector ?? {}, subject.labels),
  )
  const allowedBy = selecting
    .filter((policy) =>
      (direction === 'Ingress' ? policy.spec.ingress : policy.spec.egress)?.some((rule) => {
        const peers = direction === 'Ingress' ? rule.from : rule.to
        const peerOk =
          peers === undefined ||
          peers.length === 0 ||
          peers.some((candidate) => peerMatches(world, candidate, policy.metadata.namespace, peer))
        const portOk =
          rule.ports === undefined ||
          rule.ports.length === 0 ||
          rule.ports.some((spec) => portMatches(spec, destination, port, protocol))
        return peerOk && portOk
      }),
    )
    .map((policy) => policy.metadata.name)
  return { isolated: selecting.length > 0, allowedBy }
}

/** Whether a connection from `source` to `destination`:`port`/`protocol` is let through. */
export function evaluate(
  world: World,
  source: Endpoint,
  destination: Endpoint,
  port: number,
  protocol: Protocol = 'TCP',
): Verdict {
  const egress = side(world, 'Egress', source, destination, destination, port, protocol)
  const ingress = side(world, 'Ingress', destination, source, destination, port, protocol)
  const refusedBy: Verdict['refusedBy'] = []
  if (egress.isolated && egress.allowedBy.length === 0) refusedBy.push('egress')
  if (ingress.isolated && ingress.allowedBy.length === 0) refusedBy.push('ingress')
  return {
    allowed: refusedBy.length === 0,
    refusedBy,
    allowedBy: { egress: egress.allowedBy, ingress: ingress.allowedBy },
  }
}
