// Logs, metrics and traces: how much the service says about itself, and where its spans go.
import { type Static, Type } from 'typebox'
import { Flag, HttpUrl, Secret } from './variables.ts'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const ObservabilityEnvSchema = Type.Object({
  SERVER_DEBUG: Flag('Debug logging (same as LOG_LEVEL=debug)'),
  LOG_LEVEL: Type.Optional(
    Type.Enum(LOG_LEVELS, {
      description: 'Log level; wins over SERVER_DEBUG (default info, or debug with SERVER_DEBUG=true)',
    }),
  ),
  METRICS_ENABLED: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at /metrics' }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(
    HttpUrl(
      'OTLP/HTTP collector base URL such as http://127.0.0.1:4318 (traces go to /v1/traces); no tracing without one',
    ),
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(
    HttpUrl('Full OTLP/HTTP traces URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT'),
  ),
  OTEL_EXPORTER_OTLP_HEADERS: Type.Optional(
    Secret(Type.String({ description: 'Headers sent to the collector, k1=v1,k2=v2 with URL-encoded values' })),
  ),
  OTEL_SERVICE_NAME: Type.String({ default: 'myapp', minLength: 1, description: 'service.name of the spans' }),
  OTEL_TRACES_SAMPLER: Type.Enum(
    [
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ],
    {
      default: 'parentbased_traceidratio',
      description: "Which traces to record (default: a caller's choice, else a ratio)",
    },
  ),
  OTEL_TRACES_SAMPLER_ARG: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'Ratio for *traceidratio (default 0.1: every tenth trace that starts here)',
  }),
  OTEL_BSP_SCHEDULE_DELAY: Type.Integer({
    minimum: 1,
    default: 5000,
    description: 'Milliseconds between span exports',
  }),
  OTEL_SDK_DISABLED: Flag('Turn tracing off even with an endpoint set'),
})
export type ObservabilityEnv = Static<typeof ObservabilityEnvSchema>

export function observabilityConfig(env: ObservabilityEnv) {
  const tracesUrl =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined
      ? undefined
      : `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`)
  return {
    log: { level: env.LOG_LEVEL ?? (env.SERVER_DEBUG ? 'debug' : 'info') },
    metrics: { enabled: env.METRICS_ENABLED },
    tracing: {
      tracesUrl: env.OTEL_SDK_DISABLED ? undefined : tracesUrl,
      headers: parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
      serviceName: env.OTEL_SERVICE_NAME,
      sampler: env.OTEL_TRACES_SAMPLER,
      samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
      exportDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
    },
  }
}

type Tracing = ReturnType<typeof observabilityConfig>['tracing']

/** The tracing settings as logged: the collector's header names, never their values. */
export function describeTracing(tracing: Tracing) {
  return { ...tracing, headers: Object.keys(tracing.headers) }
}

/** OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value pairs, values URL-encoded (the OTel spec's format). */
function parseHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const pair of (text ?? '').split(',')) {
    const at = pair.indexOf('=')
    if (at > 0) headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return headers
}
