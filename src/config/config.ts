// The service's configuration: the sections' TypeBox schemas as one environment schema, validated once at start-up,
// every problem reported the same way, then mapped to a typed, frozen object.
import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { Ajv } from 'ajv'
import { type Static, Type } from 'typebox'
import { ApiEnvSchema, apiConfig } from './api.ts'
import { AuthEnvSchema, authConfig, authProblems } from './auth.ts'
import { DatabaseEnvSchema, databaseConfig, databaseProblems, describeDatabase } from './database.ts'
import { describeEvents, EventsEnvSchema, eventsConfig, eventsProblems } from './events.ts'
import { describeRateLimit, LimitsEnvSchema, rateLimitConfig } from './limits.ts'
import { describeTracing, ObservabilityEnvSchema, observabilityConfig } from './observability.ts'
import { formatProblems, type Problem, schemaProblem } from './problems.ts'
import { ServerEnvSchema, serverConfig, serverProblems } from './server.ts'

export { LOG_LEVELS } from './observability.ts'
export type { TrustProxy } from './server.ts'

/** The sections of the environment, in the order the configuration reference (docs/configuration.md) lists them. */
export const ENV_SECTIONS = [
  { title: 'Server', schema: ServerEnvSchema },
  { title: 'Logs, metrics and traces', schema: ObservabilityEnvSchema },
  { title: 'Database', schema: DatabaseEnvSchema },
  { title: 'Authentication', schema: AuthEnvSchema },
  { title: 'Limits', schema: LimitsEnvSchema },
  { title: 'API', schema: ApiEnvSchema },
  { title: 'Events', schema: EventsEnvSchema },
] as const

export const EnvSchema = Type.Object({
  ...ServerEnvSchema.properties,
  ...ObservabilityEnvSchema.properties,
  ...DatabaseEnvSchema.properties,
  ...AuthEnvSchema.properties,
  ...LimitsEnvSchema.properties,
  ...ApiEnvSchema.properties,
  ...EventsEnvSchema.properties,
})
export type Env = Static<typeof EnvSchema>

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

// No meta-schema check of our own schema at every start (see src/http/pipeline/validation.ts).
const validateEnv = new Ajv({
  coerceTypes: true,
  useDefaults: true,
  allErrors: true,
  strict: false,
  validateSchema: false,
}).compile(EnvSchema)

/** Parses the environment into the frozen configuration, or throws a ConfigError naming every bad variable. */
export function parseConfig(source: Readonly<Record<string, string | undefined>>) {
  // An empty assignment (FOO=) means "not set", as in most .env tooling.
  const env: Record<string, unknown> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    const value = source[name]
    if (value !== undefined && value !== '') env[name] = value
  }

  const problems: Problem[] = validateEnv(env)
    ? []
    : (validateEnv.errors ?? []).map((error) => schemaProblem(error, EnvSchema))
  // The sections' rules run even when the schema already refused something, so one start-up names every bad variable.
  const parsed = env as Env
  problems.push(
    ...serverProblems(parsed),
    ...databaseProblems(parsed),
    ...authProblems(parsed),
    ...eventsProblems(parsed),
  )
  if (problems.length > 0) throw new ConfigError(formatProblems(problems, EnvSchema, source))
  return deepFreeze(toConfig(parsed))
}
export type Config = ReturnType<typeof parseConfig>

function toConfig(env: Env) {
  const { server, timeZone } = serverConfig(env)
  const { log, metrics, tracing } = observabilityConfig(env)
  const { auth, environment } = authConfig(env)
  const { docs, writes, cors } = apiConfig(env)
  return {
    server,
    log,
    database: databaseConfig(env),
    docs,
    writes,
    auth,
    environment,
    rateLimit: rateLimitConfig(env),
    cors,
    events: eventsConfig(env),
    metrics,
    tracing,
    timeZone,
  }
}

/** What is safe to log about the configuration: everything except credentials. */
export function describeConfig(config: Config) {
  return {
    ...config,
    database: describeDatabase(config.database),
    rateLimit: describeRateLimit(config.rateLimit),
    tracing: describeTracing(config.tracing),
    events: describeEvents(config.events),
  }
}

/** The process environment merged over a .env file in the working directory (real variables win). */
export function readEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  dotenvPath = '.env',
): Record<string, string | undefined> {
  const fromFile = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, 'utf8')) : {}
  return { ...fromFile, ...env }
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === 'object') deepFreeze(child)
  }
  return Object.freeze(value)
}
