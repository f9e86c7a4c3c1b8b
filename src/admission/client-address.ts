// Who is calling, by address: one rule for every door (HTTP/1.1, Connect and native gRPC). The peer's address, or,
// when the peer is a proxy SERVER_TRUST_PROXY trusts, the nearest address in X-Forwarded-For that it does not trust.
// The rate limit, the failure budget, the idempotency scope and the logs all key on it, so a door that read it
// otherwise would give every caller behind the Gateway one budget, or let any caller choose its own.
import { compile } from '@fastify/proxy-addr'
import type { TrustProxy } from '../config/config.ts'

/** Whether the address at `hop` (0 = the peer, 1 = the last X-Forwarded-For entry, …) is a trusted proxy. */
export type Trust = (address: string, hop: number) => boolean

/** SERVER_TRUST_PROXY as the function Fastify's trustProxy and clientAddress ask. */
export function trustOf(trust: TrustProxy): Trust {
  if (trust === false) return () => false
  // A hop count trusts the nearest N, whatever their addresses.
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return compile([...trust])
}

/** The client: from the peer outwards through X-Forwarded-For, the first address that is not a trusted proxy. */
export function clientAddress(peer: string, forwardedFor: string | readonly string[] | undefined, trust: Trust) {
  if (forwardedFor === undefined || !trust(peer, 0)) return peer
  const hops = (typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(','))
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '')
    .reverse()
  let client = peer
  for (const [index, hop] of hops.entries()) {
    client = hop
    if (!trust(hop, index + 1)) return client
  }
  return client
}
