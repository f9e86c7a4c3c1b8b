// Limits per client address, shared by all replicas through Redis when REDIS_URL is set: a budget of requests
// on /v1, counted before anything else reads the request, and a smaller budget of refused bearer tokens.
// Fail-open: when Redis does not answer, requests are served unlimited (and a warning is logged) rather than
// refused: a limiter outage should not become an API outage.
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
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

/** One authentication attempt, counted as a failure unless it is forgiven. */
export interface AuthAttempt {
  /** A 429 when the client has no failures left in this window: the token is not to be checked at all. */
  refused: HttpError | undefined
  /** The token was good: the attempt does not count. */
  forgive(): void
}

export interface AuthFailureBudget {
  /** Charges an attempt before its token is checked, so that concurrent guesses cannot overrun the budget. */
  charge(request: Caller): Promise<AuthAttempt>
}

/** Counts per key in fixed windows; the window starts with the key's first count. */
interface WindowCounter {
  /** Adds one: the count in this window and the milliseconds until it ends. */
  increment(key: string): Promise<{ count: number; resetMs: number }>
  /** Takes one back, while the window lasts. */
  decrement(key: string): Promise<void>
}

function authFailureBudget(config: RateLimitConfig, redis: Redis | undefined): AuthFailureBudget {
  const { max, windowMs } = config.authFailures
  // Not the plugin's store: it cannot take a count back, and forgiving a good token needs that.
  const counter =
    redis === undefined
      ? new MemoryCounter(windowMs)
      : new RedisCounter(redis, `${config.namespace}auth-failures:`, windowMs)
  const unlimited: AuthAttempt = { refused: undefined, forgive: () => {} }
  return {
    charge: (request) => {
      const client = clientOf(request)
      return counter.increment(client).then(
        ({ count, resetMs }) => {
          if (count <= max) return { refused: undefined, forgive: () => void counter.decrement(client).catch(() => {}) }
          if (count === max + 1) request.log.warn({ client }, 'authentication failure budget used up; refusing tokens')
          const seconds = String(Math.max(1, Math.ceil(resetMs / 1000)))
          const refused = new HttpError(
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
          return { refused, forgive: () => {} }
        },
        () => unlimited,
      )
    },
  }
}

class MemoryCounter implements WindowCounter {
  static readonly MAX_KEYS = 10_000
  // In the order the windows started, so the first entries are the first to end.
  readonly #windows = new Map<string, { count: number; endsAt: number }>()
  readonly #windowMs: number

  constructor(windowMs: number) {
    this.#windowMs = windowMs
  }

  async increment(key: string) {
    const now = Date.now()
    let window = this.#windows.get(key)
    if (window === undefined || window.endsAt <= now) {
      this.#windows.delete(key)
      this.#forgetEnded(now)
      window = { count: 0, endsAt: now + this.#windowMs }
      this.#windows.set(key, window)
    }
    window.count += 1
    return { count: window.count, resetMs: window.endsAt - now }
  }

  async decrement(key: string) {
    const window = this.#windows.get(key)
    if (window !== undefined && window.endsAt > Date.now() && window.count > 0) window.count -= 1
  }

  #forgetEnded(now: number) {
    for (const [key, window] of this.#windows) {
      if (window.endsAt > now && this.#windows.size < MemoryCounter.MAX_KEYS) return
      this.#windows.delete(key)
    }
  }
}

interface CounterCommands {
  windowIncrement(key: string, windowMs: number): Promise<[count: number, resetMs: number]>
  windowDecrement(key: string): Promise<number>
}

class RedisCounter implements WindowCounter {
  readonly #redis: Redis & CounterCommands
  readonly #prefix: string
  readonly #windowMs: number

  constructor(redis: Redis, prefix: string, windowMs: number) {
    redis.defineCommand('windowIncrement', {
      numberOfKeys: 1,
      lua: `local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return {count, redis.call('PTTL', KEYS[1])}`,
    })
    // Never creates the key: a window that ended stays ended.
    redis.defineCommand('windowDecrement', {
      numberOfKeys: 1,
      lua: `if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
        return 0`,
    })
    this.#redis = redis as Redis & CounterCommands
    this.#prefix = prefix
    this.#windowMs = windowMs
  }

  async increment(key: string) {
    const [count, resetMs] = await this.#redis.windowIncrement(this.#prefix + key, this.#windowMs)
    return { count, resetMs }
  }

  async decrement(key: string) {
    await this.#redis.windowDecrement(this.#prefix + key)
  }
}
