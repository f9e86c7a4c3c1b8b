// The W3C traceparent of the span that is active now (the request's, when tracing is on), for an event to carry:
// a consumer continues the trace from it. Read from OpenTelemetry's context, so the core needs no transport.
import { isSpanContextValid, trace } from '@opentelemetry/api'

/** `00-<trace id>-<span id>-<flags>`, or null outside a traced span (tracing off, or no request). */
export function activeTraceparent(): string | null {
  const span = trace.getActiveSpan()?.spanContext()
  if (span === undefined || !isSpanContextValid(span)) return null
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}
