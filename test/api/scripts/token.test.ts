// npm run token (scripts/token.ts): its printed settings make the service trust its tokens, in jwt mode. The
// script runs as a child process in a temporary working directory, so the key pair it makes on first use lands in
// that directory's ./data and never in the repository's.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { decodeJwt, importSPKI, jwtVerify } from 'jose'
import { describe } from '../../helpers/describe.ts'
import { bodyOf, jsonRequest, startService, type TestService } from '../../helpers/service.ts'

const SCRIPT = fileURLToPath(new URL('../../../scripts/token.ts', import.meta.url))
const ISSUER = 'http://localhost/myapp-dev'
const AUDIENCE = 'myapp'
const book = { title: 'The Lathe of Heaven', author: 'Ursula K. Le Guin', published_date: '1971-01-01' }

// Without the runner's APP_ENV, so that only what a test sets (or its .env) decides.
const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'APP_ENV'))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: { ...inherited, ...env } }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') reject(error)
      else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr })
    })
  })
}

const token = (cwd: string, args: string[] = [], env: Record<string, string> = {}) =>
  run(process.execPath, [SCRIPT, ...args], cwd, env)

const EXPORT = /^export ([A-Za-z_][A-Za-z0-9_]*)='((?:[^']|'\\'')*)'\n/

/** The settings of the export lines, each value read as a shell reads a single-quoted word, and the last line. */
function parseOutput({ code, stdout, stderr }: Run): { settings: Record<string, string>; token: string } {
  assert.equal(code, 0, stderr)
  const lastLine = stdout.lastIndexOf('\n', stdout.length - 2) + 1
  let rest = stdout.slice(0, lastLine)
  const settings: Record<string, string> = {}
  while (rest !== '') {
    const match = EXPORT.exec(rest)
    assert.ok(match, `not an export line: ${rest.split('\n')[0]}`)
    settings[match[1] as string] = (match[2] as string).replaceAll(`'\\''`, "'")
    rest = rest.slice(match[0].length)
  }
  return { settings, token: stdout.slice(lastLine).trimEnd() }
}

const bearer = (value: string) => ({ authorization: `Bearer ${value}` })

describe('npm run token', () => {
  let root: string
  let folders = 0
  /** A fresh working directory: no ./data, no .env. */
  const workdir = () => {
    const folder = join(root, String(++folders))
    mkdirSync(folder)
    return folder
  }
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'myapp-token-'))
  })
  after(() => rmSync(root, { recursive: true, force: true }))

  describe('with the service trusting its key', () => {
    // One working directory, so every run signs with the key the service was started with.
    let cwd: string
    let settings: Record<string, string>
    let service: TestService
    before(async () => {
      cwd = workdir()
      ;({ settings } = parseOutput(await token(cwd)))
      service = await startService('embedded', settings)
    })
    after(() => service?.close())

    it('when the service runs with the printed settings, then a books:write token creates a book, a books:read token may not, and no token is refused', async () => {
      assert.equal(settings.AUTH_MODE, 'jwt')
      assert.equal(settings.AUTH_JWT_ISSUER, ISSUER)
      assert.equal(settings.AUTH_JWT_AUDIENCE, AUDIENCE)
      assert.match(
        settings.AUTH_JWT_PUBLIC_KEY ?? '',
        /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----$/,
      )
      const writer = parseOutput(await token(cwd, ['--scope', 'books:write']))
      const reader = parseOutput(await token(cwd, ['--scope', 'books:read']))

      const created = await service.fetch('/v1/books', jsonRequest('POST', book, bearer(writer.token)))
      assert.equal(created.status, 201)
      const forbidden = await service.fetch('/v1/books', jsonRequest('POST', book, bearer(reader.token)))
      assert.equal(forbidden.status, 403)
      assert.equal((await service.fetch('/v1/books', jsonRequest('POST', book))).status, 401)
      assert.equal((await service.fetch('/v1/books', { headers: bearer(reader.token) })).status, 200)
    })

    it('when --sub names the subject, then the token carries it and the service keeps that subject’s idempotency keys apart', async () => {
      const alice = parseOutput(await token(cwd, ['--sub', 'alice']))
      const bob = parseOutput(await token(cwd, ['--sub', 'bob']))
      const claims = decodeJwt(alice.token)
      assert.equal(claims.sub, 'alice')
      assert.equal(claims.iss, ISSUER)
      assert.equal(claims.aud, AUDIENCE)
      assert.equal(claims.scope, 'books:read books:write', 'the default scope')
      assert.equal((claims.exp as number) - (claims.iat as number), 3600, 'the default lifetime, an hour')
      assert.equal(decodeJwt(parseOutput(await token(cwd)).token).sub, 'dev', 'the default subject')

      const post = (who: { token: string }) =>
        service.fetch('/v1/books', jsonRequest('POST', book, { ...bearer(who.token), 'idempotency-key': 'same-key' }))
      const first = await post(alice)
      assert.equal(first.status, 201)
      const replay = await post(alice)
      assert.equal(replay.headers.get('idempotent-replayed'), 'true', 'alice’s retry is answered with her first answer')
      const other = await post(bob)
      assert.equal(other.status, 201)
      assert.equal(other.headers.get('idempotent-replayed'), null, 'bob’s key is his own')
      assert.notEqual((await bodyOf(other)).id, (await bodyOf(first)).id)
    })
  })

  it('when --scope repeats or lists several, then the token carries each scope once; --ttl sets its lifetime', async () => {
    const { token: value } = parseOutput(
      await token(workdir(), ['--scope', 'books:read', '--scope', 'books:write books:read', '--ttl', '5m']),
    )
    const claims = decodeJwt(value)
    assert.equal(claims.scope, 'books:read books:write')
    assert.equal((claims.exp as number) - (claims.iat as number), 300)
  })

  it('when run again, then it reuses the key pair made on first use, the private key readable by its owner only', async () => {
    const cwd = workdir()
    const keys = join(cwd, 'data', 'dev-jwt')
    const first = parseOutput(await token(cwd))
    const privateKey = readFileSync(join(keys, 'private.pem'), 'utf8')
    assert.equal(statSync(join(keys, 'private.pem')).mode & 0o777, 0o600)
    assert.equal(statSync(keys).mode & 0o777, 0o700)
    assert.equal(first.settings.AUTH_JWT_PUBLIC_KEY, readFileSync(join(keys, 'public.pem'), 'utf8').trim())

    const second = parseOutput(await token(cwd))
    assert.equal(second.settings.AUTH_JWT_PUBLIC_KEY, first.settings.AUTH_JWT_PUBLIC_KEY)
    assert.equal(readFileSync(join(keys, 'private.pem'), 'utf8'), privateKey)
    assert.equal(statSync(join(keys, 'private.pem')).mode & 0o777, 0o600)
    const key = await importSPKI(first.settings.AUTH_JWT_PUBLIC_KEY as string, 'RS256')
    for (const { token: value } of [first, second]) {
      await jwtVerify(value, key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] })
    }
  })

  it('when APP_ENV=production, from the environment or from .env, then it refuses in one line, prints nothing and makes no key', async () => {
    const fromEnvironment = workdir()
    const fromDotenv = workdir()
    writeFileSync(join(fromDotenv, '.env'), 'LOG_LEVEL=info\nAPP_ENV=production\n')
    for (const [cwd, result] of [
      [fromEnvironment, await token(fromEnvironment, ['--scope', 'books:write'], { APP_ENV: 'production' })],
      [fromDotenv, await token(fromDotenv, ['--scope', 'books:write'])],
    ] as const) {
      assert.notEqual(result.code, 0)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /^[^\n]*APP_ENV=production[^\n]*\n$/)
      assert.equal(existsSync(join(cwd, 'data')), false)
    }
  })

  it('when a flag is unknown, then it prints the usage on stderr, nothing on stdout, and exits 2', async () => {
    const cwd = workdir()
    const result = await token(cwd, ['--scopes', 'books:write'])
    assert.equal(result.code, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /'--scopes'[\s\S]*usage: npm run --silent token -- /)
    assert.equal(existsSync(join(cwd, 'data')), false)
  })

  it('when sh evaluates the output with the README’s recipe, then the shell has the settings and the token', async () => {
    // The recipe with "$@" (node scripts/token.ts) where the README has npm run --silent token --.
    const recipe = `out=$("$@" --scope books:write); eval "$(printf '%s\\n' "$out" | sed '$d')"; token=$(printf '%s\\n' "$out" | tail -n 1)
printf '%s\\n' "$AUTH_MODE" "$AUTH_JWT_ISSUER" "$token" "$AUTH_JWT_PUBLIC_KEY"`
    const result = await run('sh', ['-c', recipe, 'sh', process.execPath, SCRIPT], workdir())
    assert.equal(result.code, 0, result.stderr)
    const [mode, issuer, value, ...publicKey] = result.stdout.trimEnd().split('\n')
    assert.equal(mode, 'jwt')
    assert.equal(issuer, ISSUER)
    const { payload } = await jwtVerify(value as string, await importSPKI(publicKey.join('\n'), 'RS256'), {
      issuer: ISSUER,
      audience: AUDIENCE,
    })
    assert.equal(payload.scope, 'books:write')
  })
})
