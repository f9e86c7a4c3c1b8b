// The service's configuration: the sections' TypeBox schemas as one environment schema, validated once at start-up,
// every problem reported the same way, then mapped to a typed, frozen object.
import { type Static, Type } from 'typebox'
import { ApiEnvSchema, apiConfig } from './api.ts'
import { AuthEnvSchema, authConfig, authProblems } from './auth.ts'
import { DatabaseEnvSchema, databaseConfig, databaseProblems, describeDatabase } from './database.ts'
import { ConfigError, deepFreeze, environmentReader, readEnvironment } from './environment.ts'
import { describeEvents, EventsEnvSchema, eventsConfig, eventsProblems } from './events.ts'
import { describeRateLimit, LimitsEnvSchema, rateLimitConfig } from './limits.ts'
import { describeTracing, ObservabilityEnvSchema, observabilityConfig } from './observability.ts'
import { ServerEnvSchema, serverConfig, serverProblems } from './server.ts'

export { LOG_LEVELS } from './observability.ts'
export type { TrustProxy } from './server.ts'
export { ConfigError, readEnvironment }

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

const readEnv = environmentReader(EnvSchema, (env) => [
  ...serverProblems(env),
  ...databaseProblems(env),
  ...authProblems(env),
  ...eventsProblems(env),
])

/** Parses the environment into the frozen configuration, or throws a ConfigError naming every bad variable. */
export function parseConfig(source: Readonly<Record<string, string | undefined>>) {
  return deepFreeze(toConfig(readEnv(source)))
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
