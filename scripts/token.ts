// npm run --silent token -- --scope books:write: a bearer token for trying AUTH_MODE=jwt on this machine, signed
// with a development key pair kept in ./data, and the settings that make the service trust that key.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { readEnvironment } from '../src/config/config.ts'
import { parseDuration } from '../src/config/duration.ts'

const USAGE = `usage: npm run --silent token -- [--scope SCOPE]... [--sub NAME] [--ttl DURATION]
Prints export lines for a POSIX shell's eval (AUTH_MODE=jwt, the issuer, the audience and the development
public key), then on the last line a token signed with the development key in ./data/dev-jwt.
  --scope  a scope, or several separated by spaces; may repeat (default: books:read books:write)
  --sub    the token's subject (default: dev)
  --ttl    how long the token is good, as 30m or 2h (default: 1h)`

// Relative to the working directory, like the embedded database's ./data/pglite and the .env file: npm run starts
// scripts in the repository root.
const DATA = 'data'
const KEYS = join(DATA, 'dev-jwt')
const ALGORITHM = 'RS256'
const ISSUER = 'http://localhost/myapp-dev'
const AUDIENCE = 'myapp'

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}

function parseArguments() {
  try {
    const { values } = parseArgs({
      options: {
        scope: { type: 'string', multiple: true, default: ['books:read books:write'] },
        sub: { type: 'string', default: 'dev' },
        ttl: { type: 'string', default: '1h' },
        help: { type: 'boolean', short: 'h' },
      },
    })
    return values
  } catch (error) {
    return usageError((error as Error).message)
  }
}

function ttlSeconds(text: string): number {
  let ms: number
  try {
    ms = parseDuration(text)
  } catch {
    return usageError(`--ttl ${text}: not a duration such as 30m or 2h`)
  }
  if (ms < 1000) usageError(`--ttl ${text}: a token needs at least a second`)
  return Math.floor(ms / 1000)
}

/** The key pair in ./data/dev-jwt, made on first use. */
function developmentKeys(): { privateKey: string; publicKey: string } {
  if (!existsSync(KEYS)) {
    mkdirSync(DATA, { recursive: true })
    // Made in a folder of its own (mkdtemp: mode 0700) and renamed into place, so that a failed or concurrent
    // first run never leaves half a pair; the run that loses the race uses the winner's.
    const staging = mkdtempSync(join(DATA, '.dev-jwt-'))
    const pair = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    })
    writeFileSync(join(staging, 'private.pem'), pair.privateKey, { mode: 0o600 })
    writeFileSync(join(staging, 'public.pem'), pair.publicKey)
    try {
      renameSync(staging, KEYS)
    } catch (error) {
      rmSync(staging, { recursive: true, force: true })
      if (!['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error
    }
  }
  return {
    privateKey: readFileSync(join(KEYS, 'private.pem'), 'utf8'),
    publicKey: readFileSync(join(KEYS, 'public.pem'), 'utf8'),
  }
}

/** A POSIX shell word for any text: single quotes, each ' in it written as '\''. */
const shellQuote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`

const options = parseArguments()
if (options.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const scope = options.scope.flatMap((item) => item.split(' ')).filter(Boolean)
if (scope.length === 0) usageError('--scope: name at least one scope')
if (options.sub === '') usageError('--sub: name a subject')
const ttl = ttlSeconds(options.ttl)

// Before anything is written: a key whose private half lies in ./data must never be what production trusts.
if (readEnvironment().APP_ENV === 'production') {
  process.stderr.write('npm run token: refused with APP_ENV=production; its keys and tokens are for development\n')
  process.exit(1)
}

const keys = developmentKeys()
const now = Math.floor(Date.now() / 1000)
const token = await new SignJWT({ scope: [...new Set(scope)].join(' ') })
  .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
  .setIssuer(ISSUER)
  .setAudience(AUDIENCE)
  .setSubject(options.sub)
  .setIssuedAt(now)
  .setExpirationTime(now + ttl)
  .sign(createPrivateKey(keys.privateKey))

const settings: Record<string, string> = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_ISSUER: ISSUER,
  AUTH_JWT_AUDIENCE: AUDIENCE,
  AUTH_JWT_PUBLIC_KEY: keys.publicKey.trim(),
  // Set although they are the defaults, so that a .env kept for another issuer cannot undo the lines above: the
  // service refuses a JWKS URL beside a public key, and an empty variable means unset, even over the .env file.
  AUTH_JWT_JWKS_URL: '',
  AUTH_JWT_ALGORITHMS: ALGORITHM,
}
const lines = Object.entries(settings).map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
process.stdout.write(`${lines.join('')}${token}\n`)
