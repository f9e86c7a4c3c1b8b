// OpenTelemetry tracing: W3C trace context in, spans out over OTLP/HTTP. Nothing is set up without an endpoint.
import { context, propagation, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace'
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import packageJson from '../../package.json' with { type: 'json' }
import type { Config } from '../config/config.ts'

export const tracer = () => trace.getTracer('myapp', packageJson.version)

/** Runs `work` as `span`'s work: an error is recorded on the span and thrown on, and the span ends either way. */
export async function endingSpan<T>(span: Span, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    span.recordException(error as Error)
    span.setStatus({ code: SpanStatusCode.ERROR })
    throw error
  } finally {
    span.end()
  }
}

function samplerFor(name: string, ratio: number): Sampler {
  const root = {
    always_on: new AlwaysOnSampler(),
    always_off: new AlwaysOffSampler(),
    traceidratio: new TraceIdRatioBasedSampler(ratio),
  }
  switch (name) {
    case 'always_on':
    case 'always_off':
    case 'traceidratio':
      return root[name]
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: root.always_off })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: root.traceidratio })
    default:
      return new ParentBasedSampler({ root: root.always_on })
  }
}

export interface Tracing {
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
}

/** Registers the global tracer provider when an OTLP endpoint is configured; undefined otherwise. */
export function startTracing(config: Config['tracing']): Tracing | undefined {
  if (config.tracesUrl === undefined) return undefined
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  )
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: config.serviceName,
      [ATTR_SERVICE_VERSION]: packageJson.version,
    }),
    sampler: samplerFor(config.sampler, config.samplerRatio),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url: config.tracesUrl, headers: config.headers }),
        scheduledDelayMillis: config.exportDelayMs,
      }),
    ],
  })
  trace.setGlobalTracerProvider(provider)
  return {
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown()
      trace.disable()
      context.disable()
      propagation.disable()
    },
  }
}
