// The RPC pipeline, the same stages as REST's in the same order (src/app.ts): observability (a metric, a SERVER
// span continuing the caller's trace, one log line per call), then the admission step every door runs
// (src/admission/admission.ts) against the method's declared access. Each stage answers with a status code instead
// of a problem.

import { Code, ConnectError, type Interceptor } from '@connectrpc/connect'
import {
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api'
import type { Admit, Refusal } from '../../admission/admission.ts'
import type { Operation } from '../../admission/operation.ts'
import type { Logger } from '../../logger.ts'
import type { Metrics } from '../../observability/metrics.ts'
import { tracer } from '../../observability/tracing.ts'
import { CLIENT_ADDRESS, PRINCIPAL } from '../toolkit/calls.ts'
import { codeName, toConnectError } from './errors.ts'

export interface RpcPipeline {
  logger: Logger
  metrics: Metrics | undefined
  traced: boolean
  /** The admission step every door runs (src/admission/admission.ts). */
  admit: Admit
  /** Per procedure path (/books.v1.BookService/GetBook): the operation it serves. */
  operations: ReadonlyMap<string, Operation>
}

const PROTOCOLS: Record<string, string> = {
  'application/grpc': 'grpc',
  'application/grpc+proto': 'grpc',
  'application/grpc-web': 'grpc_web',
  'application/grpc-web+proto': 'grpc_web',
  'application/json': 'connect',
  'application/proto': 'connect',
}
function protocolOf(contentType: string | null): string {
  if (contentType === null) return 'connect'
  const exact = PROTOCOLS[contentType]
  if (exact !== undefined) return exact
  return PROTOCOLS[contentType.split(';')[0]?.trim() ?? ''] ?? 'connect'
}

/** The trace context's fields, read from the metadata by name: the propagators ask for two or three. */
const METADATA: TextMapGetter<Headers> = {
  get: (header, key) => header.get(key) ?? undefined,
  keys: (header) => [...header.keys()],
}

export function interceptors(pipeline: RpcPipeline): Interceptor[] {
  return [observe(pipeline), admit(pipeline)]
}

/** Metrics, the span and the log line: outermost, so that a refused call is measured, traced and logged too. */
function observe({ logger, metrics, traced }: RpcPipeline): Interceptor {
  return (next) => async (request) => {
    const started = performance.now()
    const method = `${request.service.typeName}/${request.method.name}`
    const protocol = protocolOf(request.header.get('content-type'))
    // On the HTTP port the request's HTTP span is already current; on the gRPC port the caller's context is read
    // from the metadata. Only when tracing: an untraced call has no span to parent.
    const parent = !traced
      ? context.active()
      : trace.getSpan(context.active()) === undefined
        ? propagation.extract(context.active(), request.header, METADATA)
        : context.active()
    const span: Span | undefined = traced ? tracer().startSpan(method, { kind: SpanKind.SERVER }, parent) : undefined
    // Attributes only for a span that is recorded, as on REST: the samplers decide on the trace id alone.
    if (span?.isRecording()) span.setAttributes(rpcAttributes(request, protocol))
    let code = 'UNKNOWN'
    let failure: ConnectError | undefined
    try {
      const run = () => next(request)
      const response = await (span === undefined ? run() : context.with(trace.setSpan(parent, span), run))
      // Past its deadline, or cancelled, the caller has been told so and has gone: the call counts as that.
      if (request.signal.aborted) throw ConnectError.from(request.signal.reason, Code.Canceled)
      code = 'OK'
      return response
    } catch (error) {
      failure = toConnectError(error, logger)
      code = codeName(failure.code)
      throw failure
    } finally {
      const seconds = (performance.now() - started) / 1000
      metrics?.rpcServerDuration.observe({ rpc_method: method, protocol, code }, seconds)
      // Read before the span ends: an ended span no longer records.
      const ids =
        span === undefined || !span.isRecording()
          ? {}
          : { trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId }
      if (span !== undefined) {
        span.setAttribute('rpc.grpc.status_code', failure?.code ?? 0)
        if (failure !== undefined && isServerFault(failure.code)) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
      }
      const fields = {
        rpc_method: method,
        protocol,
        code,
        remote_ip: request.contextValues.get(CLIENT_ADDRESS),
        agent: request.header.get('user-agent') ?? '',
        latency: Number((seconds * 1000).toFixed(3)),
        ...ids,
      }
      logger.info(failure === undefined ? fields : { ...fields, message_detail: failure.rawMessage }, 'call')
    }
  }
}

const isServerFault = (code: Code) =>
  code === Code.Internal || code === Code.Unknown || code === Code.Unavailable || code === Code.DataLoss

function rpcAttributes(request: Parameters<Parameters<Interceptor>[0]>[0], protocol: string) {
  return {
    'rpc.system': protocol === 'connect' ? 'connect_rpc' : 'grpc',
    'rpc.service': request.service.typeName,
    'rpc.method': request.method.name,
  }
}

/** The admission step, with what the call and its method declare; its refusals as status codes. */
function admit({ admit, operations, logger }: RpcPipeline): Interceptor {
  return (next) => async (request) => {
    const operation = operations.get(`/${request.service.typeName}/${request.method.name}`)
    if (operation === undefined) throw new ConnectError('no such method', Code.Unimplemented)
    const admission = await admit({
      client: request.contextValues.get(CLIENT_ADDRESS),
      authorization: request.header.get('authorization') ?? undefined,
      operation,
      log: logger,
    })
    if (admission.refusal !== undefined) throw connectErrorOf(admission.refusal)
    request.contextValues.set(PRINCIPAL, admission.principal)
    return next(request)
  }
}

function connectErrorOf(refusal: Refusal): ConnectError {
  switch (refusal.kind) {
    case 'unauthenticated':
      return new ConnectError(
        refusal.error === 'invalid_request' ? 'the authorization metadata must be "Bearer <JWT>"' : refusal.detail,
        Code.Unauthenticated,
      )
    case 'forbidden':
      return new ConnectError(refusal.detail, Code.PermissionDenied)
    case 'rate-limited':
    case 'token-budget-spent': {
      const { limit, resetSeconds } = refusal.budget
      return new ConnectError(refusal.detail, Code.ResourceExhausted, {
        'retry-after': String(resetSeconds),
        'ratelimit-limit': String(limit),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(resetSeconds),
      })
    }
  }
}
