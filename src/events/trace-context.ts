// W3C trace context for the events: the traceparent of the span that is active now (the request's, when tracing is
// on), for an event to carry, and the way back from a stored traceparent to a context the relay's publish span
// continues. Read from and written to OpenTelemetry's context, so the core needs no transport.
import {
  type Context,
  defaultTextMapGetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'

// Not the global propagator: a traceparent is what the events carry, whatever else the service propagates.
const w3c = new W3CTraceContextPropagator()

/** `00-<trace id>-<span id>-<flags>`, or null for no span (tracing off, or no request). */
export function traceparentOf(span: SpanContext | undefined): string | null {
  if (span === undefined || !isSpanContextValid(span)) return null
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** The traceparent of the span that is active now, or null outside a traced span. */
export function activeTraceparent(): string | null {
  return traceparentOf(trace.getActiveSpan()?.spanContext())
}

/** A context whose (remote) parent span is the one `traceparent` names; the root context for none or a bad one. */
export function contextOf(traceparent: string | null): Context {
  if (traceparent === null) return ROOT_CONTEXT
  return w3c.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter)
}
