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
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  type IRetryBackoffContext,
  retry,
  wrap,
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

/** A client span per call, a child of the active span, whose context goes with the call (traceparent). */
const traced: Interceptor = (next) => (request) =>
  tracer().startActiveSpan(
    `${request.service.typeName}/${request.method.name}`,
    { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc', 'rpc.method': request.method.name } },
    async (span) => {
      const carrier: Record<string, string> = {}
      propagation.inject(context.active(), carrier)
      for (const [name, value] of Object.entries(carrier)) request.header.set(name, value)
      try {
        return await next(request)
      } catch (error) {
        span.setAttribute('rpc.grpc.status_code', ConnectError.from(error).code)
        span.setStatus({ code: SpanStatusCode.ERROR })
        throw error
      } finally {
        span.end()
      }
    },
  )

/**
 * Transports to every address `host` resolves to, used in turn. One long-lived HTTP/2 connection would otherwise
 * send every call to the one replica it reached, whatever a Service in front balances per connection.
 */
function roundRobin(options: BooksClientOptions) {
  const base = new URL(options.baseUrl)
  const host = base.hostname.replace(/^\[|\]$/g, '')
  const transportTo = (address: string): Transport => {
    const url = new URL(base)
    url.hostname = address.includes(':') ? `[${address}]` : address
    const baseUrl = url.toString().replace(/\/$/, '')
    return options.protocol === 'grpc'
      ? createGrpcTransport({ baseUrl, interceptors: [traced] })
      : // The HTTP port speaks HTTP/1.1 (no h2c).
        createConnectTransport({ baseUrl, httpVersion: '1.1', useBinaryFormat: true, interceptors: [traced] })
  }
  let transports = new Map<string, Transport>()
  let next = 0
  let resolvedAt = Number.NEGATIVE_INFINITY

  async function refresh() {
    const addresses = ipaddr.isValid(host) ? [host] : (await (options.resolve ?? resolveAll)(host)).sort()
    const kept = new Map<string, Transport>()
    for (const address of addresses) kept.set(address, transports.get(address) ?? transportTo(address))
    transports = kept
    resolvedAt = Date.now()
  }

  return {
    async pick(): Promise<Transport> {
      if (transports.size === 0 || Date.now() - resolvedAt > options.resolveEveryMs) {
        // A failed lookup keeps the addresses known so far.
        await refresh().catch((error: unknown) => {
          if (transports.size === 0) throw error
        })
      }
      const all = [...transports.values()]
      next = (next + 1) % all.length
      return all[next] as Transport
    },
    addresses: () => [...transports.keys()],
  }
}

export function createBooksClient(options: BooksClientOptions) {
  const balancer = roundRobin(options)
  const breaker = circuitBreaker(
    handleWhen((error) => SERVICE_FAILURES.has(codeOf(error) as Code)),
    {
      halfOpenAfter: options.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.breaker.consecutiveFailures),
    },
  )
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
  // The breaker inside the retries: an open breaker fails an attempt at once, and is not retried.
  const policy = wrap(retries, breaker)

  const headers = (): Record<string, string> => {
    const token = options.token?.()
    return token === undefined ? {} : { authorization: `Bearer ${token}` }
  }

  return {
    /**
     * Sets the book's status, only while it is at `expectedVersion` (the version of the event that asked): a
     * book that moved on is left to its newer event.
     */
    async setStatus(id: string, status: 'verified', expectedVersion: number): Promise<StatusChange> {
      try {
        await policy.execute(async ({ signal }) => {
          const client = createClient(BookService, await balancer.pick())
          return client.updateBook(
            {
              id,
              expectedVersion,
              book: create(BookInputSchema, {
                status: status === 'verified' ? BookStatus.VERIFIED : BookStatus.PENDING,
              }),
              updateMask: create(FieldMaskSchema, { paths: ['status'] }),
            },
            { timeoutMs: options.callTimeoutMs, headers: headers(), signal },
          )
        })
        return 'changed'
      } catch (error) {
        if (codeOf(error) === Code.FailedPrecondition) return 'moved_on'
        if (codeOf(error) === Code.NotFound) return 'not_found'
        throw error
      }
    },
    breakerState: (): 'closed' | 'open' | 'half_open' | 'isolated' =>
      (
        ({
          [CircuitState.Closed]: 'closed',
          [CircuitState.Open]: 'open',
          [CircuitState.HalfOpen]: 'half_open',
          [CircuitState.Isolated]: 'isolated',
        }) as const
      )[breaker.state],
    onBreakerChange: (listener: (state: string) => void) =>
      breaker.onStateChange((state) => listener(CircuitState[state])),
    onRetry: (listener: (delayMs: number) => void) => retries.onRetry(({ delay }) => listener(delay)),
    addresses: () => balancer.addresses(),
  }
}
export type BooksClient = ReturnType<typeof createBooksClient>

/** Whether an error is the breaker refusing to call: the service is known to be failing right now. */
export const isBreakerOpen = (error: unknown) => error instanceof BrokenCircuitError
