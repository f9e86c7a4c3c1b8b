// The verifier's configuration: its own environment schema, read by the same machinery as the books service's
// (src/config/environment.ts), with the logging section they share.
import { type Static, Type } from 'typebox'
import { parseDuration } from '../config/duration.ts'
import { deepFreeze, environmentReader } from '../config/environment.ts'
import { LOG_LEVELS } from '../config/observability.ts'
import { type Problem, problem } from '../config/problems.ts'
import { Duration, HttpUrl, Secret } from '../config/variables.ts'
import { parseAllowList } from './image-check.ts'

export const VerifierEnvSchema = Type.Object({
  VERIFIER_BOOKS_URL: HttpUrl(
    'Where the books service answers: its HTTP port, which serves the event feed and the calls over Connect ' +
      '(default http://127.0.0.1:8080). A name that resolves to several addresses is balanced over all of them',
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
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info', description: 'Log level' }),
})
export type VerifierEnv = Static<typeof VerifierEnvSchema>

function verifierProblems(env: VerifierEnv): Problem[] {
  const problems: Problem[] = []
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
  const env = readEnv({ VERIFIER_BOOKS_URL: 'http://127.0.0.1:8080', ...source })
  const allow = allowList(env.VERIFIER_ALLOW_HOSTS)
  return deepFreeze({
    books: {
      url: env.VERIFIER_BOOKS_URL.replace(/\/$/, ''),
      // The feed is served on the HTTP port, and so are the calls over Connect.
      protocol: 'connect' as const,
      tokenFile: env.VERIFIER_TOKEN_FILE,
      token: env.VERIFIER_TOKEN,
      callTimeoutMs: parseDuration(env.VERIFIER_CALL_TIMEOUT),
    },
    images: { allow, deadlineMs: parseDuration(env.VERIFIER_IMAGE_TIMEOUT), maxBytes: 4096, maxRedirects: 3 },
    feed: { positionFile: env.VERIFIER_FEED_POSITION_FILE },
    server: { host: env.SERVER_HOST, port: env.SERVER_PORT },
    log: { level: env.LOG_LEVEL },
  })
}
export type VerifierConfig = ReturnType<typeof parseVerifierConfig>
