// How much each client may ask: requests per window, and refused bearer tokens per window, counted in Redis when
// replicas share the budget.
import { type Static, Type } from 'typebox'
import { parseDuration } from './duration.ts'
import { Duration, Matching, Secret } from './variables.ts'

export const LimitsEnvSchema = Type.Object({
  RATE_LIMIT_MAX: Type.Integer({
    minimum: 0,
    default: 600,
    description:
      'Requests per caller (token subject, else client address) per window, REST and RPC, whatever their answer; probes, metrics and documents are not counted; 0 = off',
  }),
  RATE_LIMIT_WINDOW: Duration('1m', 'Rate limit window'),
  AUTH_FAILURE_LIMIT: Type.Integer({
    minimum: 0,
    default: 20,
    description: 'Refused bearer tokens per client address per window before its tokens get 429; 0 = off',
  }),
  AUTH_FAILURE_WINDOW: Duration('1m', 'Window of AUTH_FAILURE_LIMIT'),
  REDIS_URL: Type.Optional(
    Secret(
      Matching('^rediss?://', 'must be a redis:// or rediss:// URL', {
        description: 'Redis that the replicas share both limits through; unset, each process counts alone',
      }),
    ),
  ),
})
export type LimitsEnv = Static<typeof LimitsEnvSchema>

export function rateLimitConfig(env: LimitsEnv) {
  return {
    max: env.RATE_LIMIT_MAX,
    windowMs: parseDuration(env.RATE_LIMIT_WINDOW),
    redisUrl: env.REDIS_URL,
    namespace: 'myapp-rate-limit:',
    authFailures: { max: env.AUTH_FAILURE_LIMIT, windowMs: parseDuration(env.AUTH_FAILURE_WINDOW) },
  }
}

/** The rate limit settings as logged: whether Redis is used, never its URL with its password. */
export function describeRateLimit(rateLimit: ReturnType<typeof rateLimitConfig>) {
  return { ...rateLimit, redisUrl: rateLimit.redisUrl === undefined ? undefined : '[set]' }
}
