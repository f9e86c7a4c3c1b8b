// What the rate-limit tests share: a jwt-mode service behind a trusted proxy on 127.0.0.1, so that one test can be
// many clients; valid tokens and guessed ones; client addresses no earlier run used; a bounded parallel runner.
import { randomInt } from 'node:crypto'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { type Backend, startService, type TestService } from './service.ts'

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const { privateKey, publicKey } = await generateKeyPair('ES256')
const publicKeyPem = await exportSPKI(publicKey)

/** A valid token; each call gives a new one (its jti), so no instance has verified it before. */
export const goodToken = (scope = 'books:read books:write', subject = 'reader') =>
  new SignJWT({ sub: subject, scope, jti: String(randomInt(2 ** 47)) })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('5m')
    .sign(privateKey)

/** A guess: a well-formed token whose signature is random, so that every one is verified and refused. */
export const badToken = (template: string) => {
  const [header, payload] = template.split('.')
  return `${header}.${payload}.${Buffer.from(Array.from({ length: 64 }, () => randomInt(256))).toString('base64url')}`
}

/** A subject of its own for each run and test, for the same reason as freshAddress. */
export const freshSubject = () => `user-${randomInt(2 ** 47)}`

/** An address of its own for each run and test (198.18.0.0/15), so that a shared Redis holds no earlier counts. */
export const freshAddress = () => `198.${18 + randomInt(2)}.${randomInt(256)}.${1 + randomInt(254)}`

/** Requests come through a trusted proxy on 127.0.0.1 that names the client: several clients from one test. */
export const from = (address: string, headers: Record<string, string> = {}) => ({
  'x-forwarded-for': address,
  ...headers,
})
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export function jwtService(backend: Backend, env: Record<string, string>): Promise<TestService> {
  return startService(backend, {
    AUTH_MODE: 'jwt',
    AUTH_JWT_ISSUER: ISSUER,
    AUTH_JWT_AUDIENCE: AUDIENCE,
    AUTH_JWT_ALGORITHMS: 'ES256',
    AUTH_JWT_PUBLIC_KEY: publicKeyPem,
    SERVER_TRUST_PROXY: '127.0.0.1',
    ...env,
  })
}

/** Runs `count` calls of `call`, at most `concurrency` at a time; results in call order. */
export async function inParallel<T>(
  count: number,
  concurrency: number,
  call: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++
        results[index] = await call(index)
      }
    }),
  )
  return results
}

export function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}
