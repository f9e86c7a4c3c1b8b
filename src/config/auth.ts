// Who may call the API: no authentication, or bearer tokens verified against an issuer's keys; and the environment,
// because production refuses to run without authentication unless told to.
import { type Static, Type } from 'typebox'
import { parseDuration } from './duration.ts'
import { type Problem, problem } from './problems.ts'
import { Duration, Flag, HttpUrl, Matching, Secret } from './variables.ts'

const ALGORITHM = '(RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA)'

export const AuthEnvSchema = Type.Object({
  APP_ENV: Type.Enum(['development', 'production'], {
    default: 'development',
    description: 'production refuses to start without authentication unless AUTH_ALLOW_NONE=true',
  }),
  AUTH_MODE: Type.Enum(['none', 'jwt'], {
    default: 'none',
    description: 'none, or jwt: bearer tokens on the /v1 routes that declare a scope',
  }),
  AUTH_ALLOW_NONE: Flag('Allow AUTH_MODE=none with APP_ENV=production'),
  AUTH_JWT_ISSUER: Type.Optional(Type.String({ minLength: 1, description: 'Required iss claim (jwt mode)' })),
  AUTH_JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1, description: 'Required aud claim (jwt mode)' })),
  AUTH_JWT_JWKS_URL: Type.Optional(
    HttpUrl(
      'URL of the signing keys (JWKS), cached and refetched on an unknown key id; jwt mode needs this or AUTH_JWT_PUBLIC_KEY',
    ),
  ),
  AUTH_JWT_PUBLIC_KEY: Type.Optional(
    Secret(Type.String({ minLength: 1, description: 'Signing key as PEM (SPKI), instead of AUTH_JWT_JWKS_URL' })),
  ),
  AUTH_JWT_ALGORITHMS: Matching(`^${ALGORITHM}(,${ALGORITHM})*$`, 'must list RS*, PS*, ES* or EdDSA algorithms', {
    default: 'RS256',
    description: 'Accepted signature algorithms, comma-separated (never none or HMAC)',
  }),
  AUTH_CLOCK_SKEW: Duration('30s', 'Leeway for exp and nbf'),
  AUTH_PUBLIC_READS: Flag('In jwt mode, GET and HEAD requests need no token'),
})
export type AuthEnv = Static<typeof AuthEnvSchema>

export function authProblems(env: AuthEnv): Problem[] {
  const problems: Problem[] = []
  if (env.AUTH_MODE === 'jwt') {
    for (const name of ['AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE'] as const) {
      if (env[name] === undefined) problems.push(problem(name, 'required when AUTH_MODE=jwt'))
    }
    if ((env.AUTH_JWT_JWKS_URL === undefined) === (env.AUTH_JWT_PUBLIC_KEY === undefined)) {
      problems.push(
        problem('AUTH_JWT_JWKS_URL', 'set exactly one of AUTH_JWT_JWKS_URL and AUTH_JWT_PUBLIC_KEY when AUTH_MODE=jwt'),
      )
    }
  } else if (env.APP_ENV === 'production' && !env.AUTH_ALLOW_NONE) {
    problems.push(
      problem(
        'AUTH_MODE',
        'must be jwt when APP_ENV=production (or set AUTH_ALLOW_NONE=true to run without authentication)',
      ),
    )
  }
  return problems
}

export function authConfig(env: AuthEnv) {
  return {
    auth:
      env.AUTH_MODE === 'jwt'
        ? {
            mode: 'jwt' as const,
            // Present: authProblems refuses jwt mode without them.
            issuer: env.AUTH_JWT_ISSUER as string,
            audience: env.AUTH_JWT_AUDIENCE as string,
            jwksUrl: env.AUTH_JWT_JWKS_URL,
            publicKey: env.AUTH_JWT_PUBLIC_KEY,
            algorithms: env.AUTH_JWT_ALGORITHMS.split(','),
            clockSkewSeconds: parseDuration(env.AUTH_CLOCK_SKEW) / 1000,
            publicReads: env.AUTH_PUBLIC_READS,
          }
        : { mode: 'none' as const },
    environment: env.APP_ENV,
  }
}
