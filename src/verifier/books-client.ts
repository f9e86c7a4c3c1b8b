// The verifier's side of the books service: the generated BookService client, over native gRPC or Connect, behind
// the resilience policies that belong on the calling side. Every call has a deadline (sent to the server too);
// UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are retried with exponential backoff and full jitter,
// waiting at least what a RetryInfo asks; a circuit breaker stops calling a service that keeps failing and lets a
// trial call through after a pause; calls go round robin over every address the service's name resolves to.
import { lookup } from 'node:dns/promises'
import { create } from '@bufbuild/protobuf'
import { durationMs, FieldMaskSchema } from '@bufbuild/protobuf/wkt'
import { Code, ConnectError, createClient, type Interceptor, type Transport } from '@connectrpc/connect'
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node'
import { context, propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  type IRetryBackoffContext,
  retry,
} from 'cockatiel'
import ipaddr from 'ipaddr.js'
import { BookInputSchema, BookService, BookStatus } from '../gen/books/v1/books_pb.js'
import { RetryInfoSchema } from '../gen/google/rpc/error_details_pb.js'
import { tracer } from '../observability/tracing.ts'

export interface BooksClientOptions {
  /** http://host:port: native gRPC (the GRPC_PORT) or Connect (the HTTP port), as `protocol` says. */
  baseUrl: string
  protocol: 'grpc' | 'connect'
  /** A bearer token carrying books:verify; none when the books service runs without authentication. */
  token: (() => string | undefined) | undefined
  /** The deadline of each call. */
  callTimeoutMs: number
  retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number }
  breaker: { consecutiveFailures: number; halfOpenAfterMs: number }
  /** How often the service's name is resolved again, for the addresses of new replicas. */
  resolveEveryMs: number
  /** Every address of a name; DNS unless told (tests name their own). */
  resolve?: (host: string) => Promise<string[]>
  /** Told of every call that went out (each attempt): its method and how it ended (a gRPC code name). */
  onCall?: (method: string, code: string) => void
}

const resolveAll = async (host: string) => (await lookup(host, { all: true })).map(({ address }) => address)

/** What a status change came to: done, or the reason it was not, each a normal outcome. */
export type StatusChange = 'changed' | 'moved_on' | 'not_found'

/** Codes that say "not now": worth another attempt. */
const TRANSIENT = new Set([Code.Unavailable, Code.ResourceExhausted, Code.DeadlineExceeded])
/** Codes that say the service, not the request, is failing: they count towards opening the breaker. */
const SERVICE_FAILURES = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown])

const codeOf = (error: unknown) => (error instanceof ConnectError ? error.code : undefined)

/** The delay a RetryInfo detail asks for, in milliseconds. */
function retryInfoDelayMs(error: unknown): number | undefined {
  if (!(error instanceof ConnectError)) return undefined
  const [info] = error.findDetails(RetryInfoSchema)
  return info?.retryDelay === undefined ? undefined : durationMs(info.retryDelay)
}

/**
 * A client span per call, a child of the active span, whose context goes with the call (traceparent); and the
 * call's method and code told to `onCall`.
 */
const observed =
  (onCall: BooksClientOptions['onCall']): Interceptor =>
  (next) =>
  (request) =>
    tracer().startActiveSpan(
      `${request.service.typeName}/${request.method.name}`,
      { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc', 'rpc.method': request.method.name } },
      async (span) => {
        const carrier: Record<string, string> = {}
        propagation.inject(context.active(), carrier)
        for (const [name, value] of Object.entries(carrier)) request.header.set(name, value)
        try {
          const response = await next(request)
          onCall?.(request.method.name, 'OK')
          return response
        } catch (error) {
          const code = ConnectError.from(error).code
          // As gRPC names codes: FAILED_PRECONDITION, not FailedPrecondition.
          onCall?.(request.method.name, (Code[code] ?? 'Unknown').replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase())
          span.setAttribute('rpc.grpc.status_code', code)
          span.setStatus({ code: SpanStatusCode.ERROR })
          throw error
        } finally {
          span.end()
        }
      },
    )

/** One replica of the books service: its address, its transport, and its own breaker. */
interface Endpoint {
  address: string
  transport: Transport
  breaker: CircuitBreakerPolicy
}

/**
 * The books service's replicas: every address its name resolves to, each with a transport and a circuit breaker
 * of its own, used in turn. One long-lived HTTP/2 connection would otherwise send every call to the one replica
 * it reached, whatever a Service in front balances per connection; and a breaker per replica takes a failing one
 * out of the turn (outlier ejection) while the others serve, instead of stopping every call.
 */
function replicas(options: BooksClientOptions, onBreakerChange: (address: string, state: CircuitState) => void) {
  const base = new URL(options.baseUrl)
  const host = base.hostname.replace(/^\[|\]$/g, '')
  const endpointAt = (address: string): Endpoint => {
    const url = new URL(base)
    url.hostname = address.includes(':') ? `[${address}]` : address
    const baseUrl = url.toString().replace(/\/$/, '')
    const interceptors = [observed(options.onCall)]
    const transport =
      options.protocol === 'grpc'
        ? createGrpcTransport({ baseUrl, interceptors })
        : // The HTTP port speaks HTTP/1.1 (no h2c).
          createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: true, interceptors })
    const breaker = circuitBreaker(
      handleWhen((error) => SERVICE_FAILURES.has(codeOf(error) as Code)),
      {
        halfOpenAfter: options.breaker.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(options.breaker.consecutiveFailures),
      },
    )
    breaker.onStateChange((state) => onBreakerChange(address, state))
    return { address, transport, breaker }
  }
  let endpoints = new Map<string, Endpoint>()
  let next = 0
  let resolvedAt = Number.NEGATIVE_INFINITY

  async function refresh() {
    const addresses = ipaddr.isValid(host) ? [host] : (await (options.resolve ?? resolveAll)(host)).sort()
    const kept = new Map<string, Endpoint>()
    for (const address of addresses) kept.set(address, endpoints.get(address) ?? endpointAt(address))
    endpoints = kept
    resolvedAt = Date.now()
  }

  return {
    /** The next replica in turn whose breaker lets calls through; when none does, the next in turn anyway. */
    async pick(): Promise<Endpoint> {
      if (endpoints.size === 0 || Date.now() - resolvedAt > options.resolveEveryMs) {
        // A failed lookup keeps the addresses known so far.
        await refresh().catch((error: unknown) => {
          if (endpoints.size === 0) throw error
        })
      }
      const all = [...endpoints.values()]
      for (let tried = 0; tried < all.length; tried++) {
        next = (next + 1) % all.length
        const endpoint = all[next] as Endpoint
        if (endpoint.breaker.state !== CircuitState.Open) return endpoint
      }
      // Every breaker is open: the call is refused at once, by the breaker.
      return all[next] as Endpoint
    },
    addresses: () => [...endpoints.keys()],
    /** How many replicas' breakers are open, of how many. */
    open: () => {
      const all = [...endpoints.values()]
      return { open: all.filter(({ breaker }) => breaker.state === CircuitState.Open).length, of: all.length }
    },
  }
}

export function createBooksClient(options: BooksClientOptions) {
  const breakerListeners: ((address: string, state: string) => void)[] = []
  const balancer = replicas(options, (address, state) => {
    for (const listener of breakerListeners) listener(address, CircuitState[state])
  })
  const retries = retry(
    handleWhen((error) => TRANSIENT.has(codeOf(error) as Code)),
    {
      maxAttempts: options.retry.maxAttempts,
      backoff: new DelegateBackoff<IRetryBackoffContext<unknown>>((context) => {
        // Full jitter: anywhere in [0, initial × 2^attempt), capped; never sooner than the server asked.
        const ceiling = Math.min(options.retry.maxDelayMs, options.retry.initialDelayMs * 2 ** context.attempt)
        const asked = 'error' in context.result ? retryInfoDelayMs(context.result.error) : undefined
        return Math.max(asked ?? 0, Math.random() * ceiling)
      }),
    },
  )

  const headers = (): Record<string, string> => {
    const token = options.token?.()
    return token === undefined ? {} : { authorization: `Bearer ${token}` }
  }

  return {
    /**
     * Sets the book's status, only while it is at `expectedVersion` (the version of the event that asked): a
     * book that moved on is left to its newer event. Each attempt goes to the next replica in turn, through that
     * replica's breaker: an open breaker fails the attempt at once, and that is not retried.
     */
    async setStatus(id: string, status: 'verified', expectedVersion: number): Promise<StatusChange> {
      try {
        await retries.execute(async ({ signal }) => {
          const endpoint = await balancer.pick()
          return endpoint.breaker.execute(() =>
            createClient(BookService, endpoint.transport).updateBook(
              {
                id,
                expectedVersion,
                book: create(BookInputSchema, {
                  status: status === 'verified' ? BookStatus.VERIFIED : BookStatus.PENDING,
                }),
                updateMask: create(FieldMaskSchema, { paths: ['status'] }),
              },
              { timeoutMs: options.callTimeoutMs, headers: headers(), signal },
            ),
          )
        })
        return 'changed'
      } catch (error) {
        if (codeOf(error) === Code.FailedPrecondition) return 'moved_on'
        if (codeOf(error) === Code.NotFound) return 'not_found'
        throw error
      }
    },
    /** open: every replica's breaker is open, so no call goes out; partly: some are. */
    breakerState: (): 'closed' | 'partly_open' | 'open' => {
      const { open, of } = balancer.open()
      return open === 0 ? 'closed' : open === of ? 'open' : 'partly_open'
    },
    openBreakers: () => balancer.open(),
    onBreakerChange: (listener: (address: string, state: string) => void) => breakerListeners.push(listener),
    onRetry: (listener: (delayMs: number) => void) => retries.onRetry(({ delay }) => listener(delay)),
    addresses: () => balancer.addresses(),
  }
}
export type BooksClient = ReturnType<typeof createBooksClient>

/** Whether an error is the breaker refusing to call: the service is known to be failing right now. */
export const isBreakerOpen = (error: unknown) => error instanceof BrokenCircuitError
