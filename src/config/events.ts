// Domain events: the NATS JetStream server the outbox relay publishes to (none: the feed alone), how the relay
// authenticates, and how long events stay in the outbox.
import { type Static, Type } from 'typebox'
import { parseDuration } from './duration.ts'
import { type Problem, problem } from './problems.ts'
import { Duration, Matching, Secret } from './variables.ts'

const NATS_URLS = '^(nats|tls)://[^,\\s]+(,(nats|tls)://[^,\\s]+)*$'

/** Where NATS is and how to sign in to it: the relay's settings, which the verifier reads as well. */
export const NatsEnvSchema = Type.Object({
  NATS_URL: Type.Optional(
    Secret(
      Matching(NATS_URLS, 'must be nats:// or tls:// URLs, comma-separated', {
        description:
          'NATS servers the outbox relay publishes to (JetStream), comma-separated, which may hold credentials; no relay without it',
      }),
    ),
  ),
  NATS_CREDS_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'NATS credentials file (JWT and NKey seed), e.g. from nsc' }),
  ),
  NATS_USER: Type.Optional(Type.String({ minLength: 1, description: 'NATS user (with NATS_PASS)' })),
  NATS_PASS: Type.Optional(Secret(Type.String({ minLength: 1, description: 'NATS password' }))),
  NATS_TOKEN: Type.Optional(Secret(Type.String({ minLength: 1, description: 'NATS authentication token' }))),
  NATS_TLS_CA: Type.Optional(
    Type.String({ minLength: 1, description: 'CA certificate file (PEM) the NATS server is verified against' }),
  ),
})
export type NatsEnv = Static<typeof NatsEnvSchema>

export const EventsEnvSchema = Type.Object({
  ...NatsEnvSchema.properties,
  EVENTS_RETENTION: Duration(
    '168h',
    'How long an event stays in the outbox, and so in GET /v1/events (with a relay: at least until published)',
  ),
})
export type EventsEnv = Static<typeof EventsEnvSchema>

const NATS_OPTIONS = ['NATS_CREDS_FILE', 'NATS_USER', 'NATS_PASS', 'NATS_TOKEN', 'NATS_TLS_CA'] as const

export function eventsProblems(env: EventsEnv): Problem[] {
  const problems = natsProblems(env)
  if (env.EVENTS_RETENTION === '0') problems.push(problem('EVENTS_RETENTION', 'must be longer than 0'))
  return problems
}

/** The NATS settings that only make sense together, or not at all. */
export function natsProblems(env: NatsEnv): Problem[] {
  const problems: Problem[] = []
  if (env.NATS_URL === undefined) {
    for (const name of NATS_OPTIONS)
      if (env[name] !== undefined) problems.push(problem(name, 'is used only with NATS_URL'))
  }
  if ((env.NATS_USER === undefined) !== (env.NATS_PASS === undefined)) {
    problems.push(
      problem(env.NATS_USER === undefined ? 'NATS_USER' : 'NATS_PASS', 'required with NATS_USER or NATS_PASS'),
    )
  }
  const ways = [env.NATS_CREDS_FILE, env.NATS_USER, env.NATS_TOKEN].filter((value) => value !== undefined).length
  if (ways > 1)
    problems.push(problem('NATS_CREDS_FILE', 'only one of NATS_CREDS_FILE, NATS_USER and NATS_TOKEN may be set'))
  return problems
}

export function eventsConfig(env: EventsEnv) {
  return {
    retentionMs: parseDuration(env.EVENTS_RETENTION),
    nats: natsSettings(env),
  }
}

/** The NATS servers and credentials, or undefined without NATS_URL. */
export function natsSettings(env: NatsEnv) {
  return env.NATS_URL === undefined
    ? undefined
    : {
        servers: env.NATS_URL.split(','),
        credsFile: env.NATS_CREDS_FILE,
        user: env.NATS_USER,
        pass: env.NATS_PASS,
        token: env.NATS_TOKEN,
        tlsCaFile: env.NATS_TLS_CA,
      }
}
export type EventsConfig = ReturnType<typeof eventsConfig>

/** The events settings as logged: where NATS is and how the relay signs in, never a secret. */
export function describeEvents(events: EventsConfig) {
  if (events.nats === undefined) return events
  const { servers, pass, token, ...rest } = events.nats
  const hosts = servers.map((server) => {
    const url = new URL(server)
    return `${url.protocol}//${url.host}`
  })
  return { ...events, nats: { ...rest, servers: hosts, pass: pass && '***', token: token && '***' } }
}
