// Structured JSON logs on stdout (pino); `npm run dev` pipes them through pino-pretty.
import { trace } from '@opentelemetry/api'
import { pino } from 'pino'

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.DB_PASS',
  '*.DATABASE_URL',
]

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
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError },
      mixin: traceIds,
    },
    // Asynchronous by default: a synchronous write per line cost a quarter of the CPU of a /livez request. Lines
    // written while a write is in flight are batched into the next one; pino flushes synchronously on exit.
    destination ?? pino.destination({ dest: 1, sync: false }),
  )
}
export type Logger = ReturnType<typeof createLogger>
