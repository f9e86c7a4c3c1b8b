// How much each caller may ask, counted by rate-limiter-flexible in memory or, when REDIS_URL is set, in Redis so
// that the replicas share one count: a budget of requests, and a smaller one of refused bearer tokens.
// Fail-open: when Redis does not answer, calls are served unlimited (and a warning is logged) rather than refused,
// so that a limiter outage does not become an API outage.
import type { Redis } from 'ioredis'
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'
import type { Config } from '../config/config.ts'
import type { Logger } from '../logger.ts'

type LimitsConfig = Config['rateLimit']

/** What one budget says of a caller: its size, what is left, and when its window ends. */
export interface BudgetState {
  limit: number
  remaining: number
  resetSeconds: number
}

export interface RequestBudget {
  /** Counts one call against `key`; `exceeded` when it was one too many. */
  take(key: string): Promise<BudgetState & { exceeded: boolean }>
  readonly detail: string
}

export interface FailureBudget {
  /** The state of a spent budget, asked before a token is looked at; undefined while some is left. */
  spent(key: string): Promise<BudgetState | undefined>
  /** Counts one refused token; true when it is the one that spends the budget. */
  failed(key: string): Promise<boolean>
  readonly detail: string
}

export interface Budgets {
  /** Undefined when RATE_LIMIT_MAX=0. */
  requests: RequestBudget | undefined
  /** Undefined when AUTH_FAILURE_LIMIT=0. */
  failures: FailureBudget | undefined
  close(): Promise<void>
}

/** The budgets of the configuration; with REDIS_URL, connected to Redis (loaded only then). */
export async function createBudgets(config: LimitsConfig, logger: Logger): Promise<Budgets> {
  if (config.max === 0 && config.authFailures.max === 0) {
    return { requests: undefined, failures: undefined, close: async () => {} }
  }
  const redis = config.redisUrl === undefined ? undefined : await connectRedis(config.redisUrl, logger)
  const counter = (name: string, points: number, windowMs: number): RateLimiterAbstract => {
    const options = {
      points,
      duration: Math.max(1, Math.ceil(windowMs / 1000)),
      keyPrefix: `${config.namespace}${name}`,
    }
    return redis === undefined
      ? new RateLimiterMemory(options)
      : new RateLimiterRedis({ ...options, storeClient: redis })
  }
  return {
    requests: config.max > 0 ? requestBudget(counter('requests', config.max, config.windowMs), config) : undefined,
    failures:
      config.authFailures.max > 0
        ? failureBudget(counter('auth-failures', config.authFailures.max, config.authFailures.windowMs), config)
        : undefined,
    close: async () => redis?.disconnect(),
  }
}

async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new (await import('ioredis')).Redis(url, {
    // Fail fast instead of queueing commands while Redis is away.
    connectTimeout: 500,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  })
  redis.on('error', (error) => logger.warn({ err: error }, 'rate limit store unavailable; not limiting'))
  return redis
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

function requestBudget(counter: RateLimiterAbstract, config: LimitsConfig): RequestBudget {
  const unlimited = { limit: config.max, remaining: config.max, resetSeconds: 0, exceeded: false }
  const stateOf = (result: RateLimiterRes, exceeded: boolean) => ({
    limit: config.max,
    remaining: result.remainingPoints,
    resetSeconds: seconds(result.msBeforeNext),
    exceeded,
  })
  return {
    detail: `rate limit of ${config.max} requests per ${describeWindow(config.windowMs)} exceeded`,
    take: (key) =>
      counter.consume(key).then(
        (result) => stateOf(result, false),
        // A refusal comes as the counter's state; anything else is the store failing, and fails open.
        (refusal: unknown) => (refusal instanceof RateLimiterRes ? stateOf(refusal, true) : unlimited),
      ),
  }
}

function failureBudget(counter: RateLimiterAbstract, config: LimitsConfig): FailureBudget {
  const { max, windowMs } = config.authFailures
  return {
    detail: `too many refused bearer tokens from this address; at most ${max} per ${describeWindow(windowMs)}`,
    spent: (key) =>
      counter.get(key).then(
        (state) =>
          state !== null && state.consumedPoints >= max
            ? { limit: max, remaining: 0, resetSeconds: seconds(state.msBeforeNext) }
            : undefined,
        () => undefined,
      ),
    failed: (key) =>
      counter.penalty(key).then(
        (state) => state.consumedPoints === max,
        () => false,
      ),
  }
}

function describeWindow(ms: number): string {
  const [amount, unit] = ms % 60_000 === 0 ? [ms / 60_000, 'minute'] : [ms / 1000, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}
