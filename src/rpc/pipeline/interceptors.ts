// The RPC pipeline, the same stages as REST's in the same order (src/app.ts): observability (a metric, a SERVER
// span continuing the caller's trace, one log line per call), then the rate limit, then authentication against the
// method's declared access. Each stage answers with a status code instead of a problem.

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
import type { Access } from '../../auth/access.ts'
import { bearerToken, missingScope, type Principal, TokenRejected, type TokenVerifier } from '../../auth/tokens.ts'
import type { AuthFailureBudget, RequestBudget } from '../../http/pipeline/rate-limit.ts'
import type { Logger } from '../../logger.ts'
import type { Metrics } from '../../observability/metrics.ts'
import { tracer } from '../../observability/tracing.ts'
import { CLIENT_ADDRESS, PRINCIPAL } from '../toolkit/calls.ts'
import { codeName, toConnectError } from './errors.ts'

export interface RpcPipeline {
  logger: Logger
  metrics: Metrics | undefined
  traced: boolean
  requests: RequestBudget | undefined
  authFailures: AuthFailureBudget | undefined
  /** Undefined with AUTH_MODE=none. */
  tokens: TokenVerifier | undefined
  publicReads: boolean
  /** Per procedure path (/books.v1.BookService/GetBook): its declared access. */
  access: ReadonlyMap<string, Access>
  /** Methods without side effects, which AUTH_PUBLIC_READS opens like REST's GET. */
  reads: ReadonlySet<string>
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
  return [observe(pipeline), limit(pipeline), authenticate(pipeline)]
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

/** The same budget as /v1's requests: a call counts as one request of its client. */
function limit({ requests, logger }: RpcPipeline): Interceptor {
  return (next) => async (request) => {
    if (requests === undefined) return next(request)
    const answer = await requests.take({ ip: request.contextValues.get(CLIENT_ADDRESS), log: logger })
    if (!answer.allowed) {
      throw new ConnectError(answer.detail, Code.ResourceExhausted, {
        'retry-after': String(answer.resetSeconds),
        'ratelimit-limit': String(answer.limit),
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(answer.resetSeconds),
      })
    }
    return next(request)
  }
}

/** The bearer token in the `authorization` metadata, against the method's declared access. */
function authenticate({ tokens, access, reads, publicReads, authFailures, logger }: RpcPipeline): Interceptor {
  return (next) => async (request) => {
    const procedure = `/${request.service.typeName}/${request.method.name}`
    const declared = access.get(procedure)
    if (declared === undefined) throw new ConnectError('no such method', Code.Unimplemented)
    if (tokens === undefined || declared.kind === 'public') return next(request)
    const header = request.header.get('authorization')
    if (header === null) {
      if (publicReads && reads.has(procedure)) return next(request)
      throw new ConnectError('a bearer token is required', Code.Unauthenticated)
    }
    const token = bearerToken(header)
    let principal: Principal | undefined = token === undefined ? undefined : tokens.remembered(token)
    if (principal === undefined) {
      const caller = { ip: request.contextValues.get(CLIENT_ADDRESS), log: logger }
      const refused = await authFailures?.refusal(caller)
      if (refused !== undefined) throw new ConnectError(refused.message, Code.ResourceExhausted)
      if (token === undefined) {
        await authFailures?.failed(caller)
        throw new ConnectError('the authorization metadata must be "Bearer <JWT>"', Code.Unauthenticated)
      }
      try {
        principal = await tokens.verify(token)
      } catch (error) {
        if (!(error instanceof TokenRejected)) throw error
        const reason = error.cause as Error
        logger.info({ err: { name: reason.name, message: reason.message } }, 'token rejected')
        await authFailures?.failed(caller)
        throw new ConnectError(error.message, Code.Unauthenticated)
      }
    }
    if (!principal.scopes.has(declared.scope)) {
      throw new ConnectError(missingScope(declared.scope), Code.PermissionDenied)
    }
    request.contextValues.set(PRINCIPAL, principal)
    return next(request)
  }
}
