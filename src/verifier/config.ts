// The verifier's configuration: its own environment schema, read by the same machinery as the books service's
// (src/config/environment.ts), with the logging section they share.
import { type Static, Type } from 'typebox'
import { parseDuration } from '../config/duration.ts'
import { deepFreeze, environmentReader } from '../config/environment.ts'
import { NatsEnvSchema, natsProblems, natsSettings } from '../config/events.ts'
import { ObservabilityEnvSchema, observabilityConfig } from '../config/observability.ts'
import { type Problem, problem } from '../config/problems.ts'
import { Duration, HttpUrl, Secret } from '../config/variables.ts'
import { parseAllowList } from './image-check.ts'

export const VerifierEnvSchema = Type.Object({
  VERIFIER_BOOKS_URL: {
    ...HttpUrl(
      'Where the books service answers: its HTTP port, which serves the event feed and the calls over Connect, ' +
        'or with NATS_URL its GRPC_PORT (VERIFIER_BOOKS_PROTOCOL=grpc). A name that resolves to several ' +
        'addresses is balanced over all of them',
    ),
    default: 'http://127.0.0.1:8080',
  },
  VERIFIER_BOOKS_PROTOCOL: Type.Enum(['connect', 'grpc'], {
    default: 'connect',
    description: 'connect for the HTTP port, grpc for the GRPC_PORT (with NATS_URL: the feed needs the HTTP port)',
  }),
  // JetStream, as the books service's relay reaches it; without NATS_URL the verifier follows the feed.
  ...NatsEnvSchema.properties,
  VERIFIER_CONCURRENCY: Type.Integer({ default: 4, minimum: 1, maximum: 256, description: 'Events handled at once' }),
  VERIFIER_MAX_DELIVER: Type.Integer({
    default: 5,
    minimum: 2,
    maximum: 100,
    description: 'Deliveries of an event that keeps failing before it goes to the dead-letter subject',
  }),
  VERIFIER_ACK_WAIT: Duration(
    '30s',
    'How long an event may be in a replica’s hands unacknowledged before JetStream delivers it again (a replica ' +
      'that died holding it)',
  ),
  VERIFIER_REDELIVERY_DELAY: Duration(
    '1s',
    'The first wait before an event is delivered again; the next ones are 5, 30 and 60 times it',
  ),
  VERIFIER_TOKEN_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'A file holding the bearer token (books:verify) the verifier sends, read again on every call so that a ' +
        'rotated token is used; none when the books service runs without authentication',
    }),
  ),
  VERIFIER_TOKEN: Type.Optional(
    Secret(
      Type.String({ minLength: 1, description: 'The bearer token itself, for local runs; VERIFIER_TOKEN_FILE wins' }),
    ),
  ),
  VERIFIER_ALLOW_HOSTS: Type.String({
    default: '',
    description:
      'Addresses or CIDR ranges, comma-separated, the image check may reach although they are not public ' +
      '(loopback for local runs and tests)',
  }),
  VERIFIER_IMAGE_TIMEOUT: Duration('5s', 'Deadline of one image check, redirects included'),
  VERIFIER_CALL_TIMEOUT: Duration('2s', 'Deadline of one call to the books service'),
  VERIFIER_FEED_POSITION_FILE: Type.String({
    default: 'data/verifier-feed-position',
    minLength: 1,
    description: 'Where the position in the books service’s event feed is kept between runs',
  }),
  SERVER_HOST: Type.String({ default: '0.0.0.0', description: 'Address of the probes and metrics' }),
  SERVER_PORT: Type.Integer({
    default: 8081,
    minimum: 0,
    maximum: 65535,
    description: 'Port of the probes and metrics',
  }),
  // Logs and traces as the books service's (LOG_LEVEL, OTEL_*).
  ...ObservabilityEnvSchema.properties,
})
export type VerifierEnv = Static<typeof VerifierEnvSchema>

function verifierProblems(env: VerifierEnv): Problem[] {
  const problems = natsProblems(env)
  if (env.VERIFIER_BOOKS_PROTOCOL === 'grpc' && env.NATS_URL === undefined) {
    problems.push(problem('VERIFIER_BOOKS_PROTOCOL', 'grpc needs NATS_URL: the event feed is on the HTTP port'))
  }
  try {
    parseAllowList(allowList(env.VERIFIER_ALLOW_HOSTS ?? ''))
  } catch {
    problems.push(problem('VERIFIER_ALLOW_HOSTS', 'must be addresses or CIDR ranges, comma-separated'))
  }
  return problems
}

const allowList = (text: string) =>
  text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)

const readEnv = environmentReader(VerifierEnvSchema, verifierProblems)

/** Parses the environment into the verifier's frozen configuration, or throws a ConfigError naming every bad one. */
export function parseVerifierConfig(source: Readonly<Record<string, string | undefined>>) {
  // The shared OTEL_SERVICE_NAME defaults to the books service's name.
  const env = readEnv({ OTEL_SERVICE_NAME: 'myapp-verifier', ...source })
  const { log, tracing } = observabilityConfig(env)
  const allow = allowList(env.VERIFIER_ALLOW_HOSTS)
  return deepFreeze({
    books: {
      url: env.VERIFIER_BOOKS_URL.replace(/\/$/, ''),
      protocol: env.VERIFIER_BOOKS_PROTOCOL,
      tokenFile: env.VERIFIER_TOKEN_FILE,
      token: env.VERIFIER_TOKEN,
      callTimeoutMs: parseDuration(env.VERIFIER_CALL_TIMEOUT),
    },
    images: { allow, deadlineMs: parseDuration(env.VERIFIER_IMAGE_TIMEOUT), maxBytes: 4096, maxRedirects: 3 },
    feed: { positionFile: env.VERIFIER_FEED_POSITION_FILE },
    /** JetStream, when NATS_URL is set; else the feed. */
    nats: natsSettings(env),
    consumer: {
      concurrency: env.VERIFIER_CONCURRENCY,
      maxDeliver: env.VERIFIER_MAX_DELIVER,
      ackWaitMs: parseDuration(env.VERIFIER_ACK_WAIT),
      backoffMs: [1, 5, 30, 60]
        .slice(0, env.VERIFIER_MAX_DELIVER - 1)
        .map((times) => times * parseDuration(env.VERIFIER_REDELIVERY_DELAY)),
    },
    server: { host: env.SERVER_HOST, port: env.SERVER_PORT },
    log,
    tracing,
  })
}
export type VerifierConfig = ReturnType<typeof parseVerifierConfig>
