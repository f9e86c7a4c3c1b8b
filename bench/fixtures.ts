// What every benchmark run needs around the service: a seeded throwaway database, a JWT the service accepts, an
// OTLP receiver standing in for a collector, and the production settings that tie them together.
import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import postgres from 'postgres'

const run = promisify(execFile)

export interface SeededDatabase {
  url: string
  books: number
  /** Seconds bench/seed.sql took: the insert, the index builds, VACUUM ANALYZE and a checkpoint. */
  seedSeconds: number
  /** Back to the seeded books: created ones deleted (seeded ids start with zeros), VACUUM ANALYZE, CHECKPOINT. */
  reset(): Promise<void>
  drop(): Promise<void>
}

let databases = 0

/** A fresh database, migrated, with `books` books by `authors` authors (1,000 unless told) from bench/seed.sql. */
export async function createSeededDatabase(options: {
  adminUrl: string
  books: number
  authors?: number
}): Promise<SeededDatabase> {
  const admin = postgres(options.adminUrl, { max: 1, onnotice: () => {} })
  const name = `myapp_bench_${process.pid}_${Date.now()}_${++databases}`
  await admin.unsafe(`CREATE DATABASE ${name}`)
  const url = new URL(options.adminUrl)
  url.pathname = `/${name}`
  const databaseUrl = url.toString()
  const drop = async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
  let seedSeconds: number
  try {
    await run(process.execPath, ['src/migrate.ts', 'up'], { env: { ...process.env, DATABASE_URL: databaseUrl } })
    const started = performance.now()
    await run('psql', [
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-v',
      `books=${Math.trunc(options.books)}`,
      '-v',
      `authors=${Math.trunc(options.authors ?? 1000)}`,
      '-f',
      'bench/seed.sql',
      databaseUrl,
    ])
    seedSeconds = Number(((performance.now() - started) / 1000).toFixed(1))
  } catch (error) {
    await drop()
    throw error
  }
  return {
    url: databaseUrl,
    books: options.books,
    seedSeconds,
    async reset() {
      await run('psql', [
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        "DELETE FROM books WHERE id > '00000000-ffff-ffff-ffff-ffffffffffff'",
        // The outbox the earlier runs' writes filled: no run starts behind another's events.
        '-c',
        'TRUNCATE outbox',
        '-c',
        'VACUUM (ANALYZE) books',
        // Dirty pages and WAL of earlier write runs are flushed now, not during the next measurement.
        '-c',
        'CHECKPOINT',
        databaseUrl,
      ])
    },
    drop,
  }
}

export interface JwtFixture {
  publicKeyPem: string
  token: string
}

/** A key pair and a token with both scopes: production mode verifies a bearer token on every /v1 request. */
export async function jwtFixture(): Promise<JwtFixture> {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const token = await new SignJWT({ scope: 'books:read books:write' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://issuer.bench.invalid')
    .setAudience('myapp')
    .setSubject('bench')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey)
  return { publicKeyPem: await exportSPKI(publicKey), token }
}

/** An OTLP/HTTP receiver that accepts and counts span exports, standing in for a collector. */
export async function otlpSink() {
  let exports = 0
  let bytes = 0
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    request.on('end', () => {
      exports++
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ exports, bytes }),
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/** The service's environment in production mode, every feature on, as the production overlay sets it. */
export function productionSettings(
  base: { databaseUrl: string; jwt: JwtFixture; otlpUrl: string },
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    NODE_ENV: 'production',
    APP_ENV: 'production',
    DATABASE_URL: base.databaseUrl,
    SERVER_HOST: '127.0.0.1',
    AUTH_MODE: 'jwt',
    AUTH_JWT_ISSUER: 'https://issuer.bench.invalid',
    AUTH_JWT_AUDIENCE: 'myapp',
    AUTH_JWT_PUBLIC_KEY: base.jwt.publicKeyPem,
    AUTH_JWT_ALGORITHMS: 'ES256',
    // On, as in production, but high enough that one load generator's address is never limited.
    RATE_LIMIT_MAX: '1000000000',
    // As the production overlay (deploy/k8s/overlays/prod).
    DOCS_ENABLED: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: base.otlpUrl,
    ...overrides,
  }
}
