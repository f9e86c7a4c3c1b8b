// Structured JSON logs on stdout (pino); `npm run dev` pipes them through pino-pretty.
import { trace } from '@opentelemetry/api'
import { pino } from 'pino'

const CENSORED = '[redacted]'
const SECRET_HEADERS = new Set(['authorization', 'cookie', 'set-cookie', 'proxy-authorization'])

/**
 * Headers with credentials censored. Secrets are kept out of the log by serializers on the keys that can carry
 * them (headers, req), which cost nothing on a line without those keys, and by describeConfig for the
 * configuration; pino's path redaction walked every line and took a fifth of the request log's cost.
 */
function censorHeaders(headers: unknown) {
  if (headers === null || typeof headers !== 'object') return headers
  const copy: Record<string, unknown> = { ...headers }
  for (const name of Object.keys(copy)) if (SECRET_HEADERS.has(name.toLowerCase())) copy[name] = CENSORED
  return copy
}

function censorRequest(request: unknown) {
  if (request === null || typeof request !== 'object') return request
  const { headers, ...rest } = request as { headers?: unknown }
  return headers === undefined ? rest : { ...rest, headers: censorHeaders(headers) }
}

// Drivers attach a failed statement's parameters to the error; they may hold personal data.
function serializeError(error: Error) {
  const {
    params: _params,
    parameters: _parameters,
    ...rest
  } = pino.stdSerializers.err(error) as Record<string, unknown>
  return rest
}

/** trace_id and span_id of the active span, on every line written inside a traced request. */
function traceIds() {
  const span = trace.getActiveSpan()
  if (span === undefined) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

export function createLogger(level: string, destination?: pino.DestinationStream) {
  return pino(
    {
      level,
      base: { service: 'myapp' },
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError, headers: censorHeaders, req: censorRequest },
      mixin: traceIds,
    },
    // Asynchronous by default: a synchronous write per line cost a quarter of the CPU of a /livez request. Lines
    // written while a write is in flight are batched into the next one; pino flushes synchronously on exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  )
}
export type Logger = ReturnType<typeof createLogger>
