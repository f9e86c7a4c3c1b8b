// Limits per client address, shared by all replicas through Redis when REDIS_URL is set: a budget of requests
// on /v1, counted before anything else reads the request, and a smaller budget of refused bearer tokens.
// Fail-open: when Redis does not answer, requests are served unlimited (and a warning is logged) rather than
// refused: a limiter outage should not become an API outage.
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterRes,
} from 'rate-limiter-flexible'
import type { Config } from '../../config/config.ts'
import { HttpError } from '../toolkit/problem.ts'

type RateLimitConfig = Config['rateLimit']

/**
 * The client a limit counts against: request.ip, which SERVER_TRUST_PROXY decides. An IPv6 client is its /64,
 * the block one host is usually given, so that walking its addresses does not buy a fresh budget.
 */
const clientOf = (request: Caller) => normalizeIP(request.ip, 64)

/** Who a limit counts: a client address, and where to log about it. A FastifyRequest is one. */
export interface Caller {
  ip: string
  log: Pick<FastifyRequest['log'], 'warn'>
}

const isLimited = (request: FastifyRequest) => request.url.startsWith('/v1/')

export interface Limits {
  /** The budget of requests, for doors other than /v1 (RPC) to count in; undefined when RATE_LIMIT_MAX=0. */
  requests: RequestBudget | undefined
  /** The budget of refused bearer tokens; undefined when AUTH_FAILURE_LIMIT=0. */
  authFailures: AuthFailureBudget | undefined
}

/** What one more request from a caller leaves of its budget. */
export interface BudgetAnswer {
  allowed: boolean
  limit: number
  remaining: number
  resetSeconds: number
  /** The refusal's text, when not allowed. */
  detail: string
}

export interface RequestBudget {
  /** Counts one request of the caller, in the same budget as its /v1 requests. */
  take(caller: Caller): Promise<BudgetAnswer>
}

/**
 * Adds the request budget as an onRequest hook, so register it before every hook that can refuse a request:
 * refused, malformed and unauthenticated requests are counted too, and every answer on /v1 carries RateLimit-*.
 */
export async function registerRateLimit(app: FastifyInstance, config: RateLimitConfig): Promise<Limits> {
  if (config.max === 0 && config.authFailures.max === 0) return { requests: undefined, authFailures: undefined }
  const redis = config.redisUrl === undefined ? undefined : await connectRedis(app, config.redisUrl)
  return {
    requests: config.max > 0 ? await addRequestBudget(app, config, redis) : undefined,
    authFailures: config.authFailures.max === 0 ? undefined : authFailureBudget(config, redis),
  }
}

async function connectRedis(app: FastifyInstance, url: string): Promise<Redis> {
  // ioredis is loaded only when a Redis store is configured.
  const redis = new (await import('ioredis')).Redis(url, {
    // Fail fast instead of queueing commands while Redis is away.
    connectTimeout: 500,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  })
  redis.on('error', (error) => app.log.warn({ err: error }, 'rate limit store unavailable; not limiting'))
  app.addHook('onClose', async () => {
    redis.disconnect()
  })
  return redis
}

async function addRequestBudget(
  app: FastifyInstance,
  config: RateLimitConfig,
  redis: Redis | undefined,
): Promise<RequestBudget> {
  // The plugin's store and counting only: its own hooks would run after every app-wide hook, authentication's
  // included, so this hook takes their place.
  await app.register(rateLimit, {
    global: false,
    max: config.max,
    timeWindow: config.windowMs,
    redis,
    nameSpace: config.namespace,
    skipOnError: true,
    keyGenerator: clientOf,
  })
  const count = app.createRateLimit()
  const window = describeWindow(config.windowMs)

  app.addHook('onRequest', (request, reply, done) => {
    if (!isLimited(request)) return done()
    count(request).then((limit) => {
      if (limit.isAllowed) return done()
      reply
        .header('ratelimit-limit', limit.max)
        .header('ratelimit-remaining', limit.remaining)
        .header('ratelimit-reset', limit.ttlInSeconds)
      if (!limit.isExceeded) return done()
      done(
        new HttpError(429, exceeded(limit.max), {
          headers: { 'retry-after': String(Math.max(1, limit.ttlInSeconds)) },
        }),
      )
    }, done)
  })
  const exceeded = (max: number) => `rate limit of ${max} requests per ${window} exceeded`

  return {
    // The plugin's counting reads only the key (from the caller's address) and the route's own settings, which a
    // call through another door has none of.
    take: (caller) =>
      count({ ip: caller.ip, routeOptions: { config: {} } } as unknown as FastifyRequest).then((limit) => ({
        allowed: limit.isAllowed || !limit.isExceeded,
        limit: limit.isAllowed ? config.max : limit.max,
        remaining: limit.isAllowed ? config.max : limit.remaining,
        resetSeconds: limit.isAllowed ? 0 : Math.max(1, limit.ttlInSeconds),
        detail: exceeded(config.max),
      })),
  }
}

function describeWindow(ms: number): string {
  const [amount, unit] = ms % 60_000 === 0 ? [ms / 60_000, 'minute'] : [ms / 1000, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}

export interface AuthFailureBudget {
  /** The 429 for a client whose budget is spent, given before its token is looked at; undefined while some is left. */
  refusal(caller: Caller): Promise<HttpError | undefined>
  /** Counts one token of the caller that was refused. */
  failed(caller: Caller): Promise<void>
}

/**
 * rate-limiter-flexible's counters (in memory, or in Redis shared by the replicas): a refused token adds a point,
 * and a client with AUTH_FAILURE_LIMIT points in the window gets 429. Only refused tokens count, so a good token is
 * never turned away because guesses or other good tokens were in flight; what is checked at once from one address
 * can pass the budget by that many before the 429s begin.
 */
function authFailureBudget(config: RateLimitConfig, redis: Redis | undefined): AuthFailureBudget {
  const { max, windowMs } = config.authFailures
  const options = {
    points: max,
    duration: Math.max(1, Math.ceil(windowMs / 1000)),
    keyPrefix: `${config.namespace}auth-failures`,
  }
  const counter: RateLimiterAbstract =
    redis === undefined ? new RateLimiterMemory(options) : new RateLimiterRedis({ ...options, storeClient: redis })
  const refused = (state: RateLimiterRes) => {
    const seconds = String(Math.max(1, Math.ceil(state.msBeforeNext / 1000)))
    return new HttpError(
      429,
      `too many refused bearer tokens from this address; at most ${max} per ${describeWindow(windowMs)}`,
      {
        headers: {
          'retry-after': seconds,
          'ratelimit-limit': String(max),
          'ratelimit-remaining': '0',
          'ratelimit-reset': seconds,
        },
      },
    )
  }
  // Fail-open, as the request budget: a store that does not answer refuses no one.
  return {
    refusal: (caller) =>
      counter.get(clientOf(caller)).then(
        (state) => (state !== null && state.consumedPoints >= max ? refused(state) : undefined),
        () => undefined,
      ),
    failed: (caller) => {
      const client = clientOf(caller)
      return counter.penalty(client).then(
        (state) => {
          if (state.consumedPoints === max)
            caller.log.warn({ client }, 'authentication failure budget used up; refusing tokens')
        },
        () => {},
      )
    },
  }
}
