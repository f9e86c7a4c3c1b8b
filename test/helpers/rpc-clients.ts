// What the RPC tests share: the service with its gRPC port, a Connect-ES client per protocol, tokens, and the
// details an RPC error carries.
import assert from 'node:assert/strict'
import { durationMs, type Timestamp } from '@bufbuild/protobuf/wkt'
import { type Client, ConnectError, createClient, type Transport } from '@connectrpc/connect'
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { BookService } from '../../src/gen/books/v1/books_pb.js'
import { BadRequestSchema, RetryInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js'
import { BACKENDS, type Backend, skipReason, startService, type TestService } from './service.ts'
import { freePort } from './tools.ts'

/** Connect JSON, Connect binary and gRPC-Web on the HTTP port; native gRPC on GRPC_PORT. */
export const PROTOCOLS = ['connect-json', 'connect-binary', 'grpc-web', 'grpc'] as const
export type Protocol = (typeof PROTOCOLS)[number]

export interface RpcService extends TestService {
  grpcPort: number
  grpcUrl: string
}

export async function startRpcService(backend: Backend, env: Record<string, string> = {}): Promise<RpcService> {
  const grpcPort = await freePort()
  const service = await startService(backend, { GRPC_PORT: String(grpcPort), ...env })
  return Object.assign(service, { grpcPort, grpcUrl: `http://127.0.0.1:${grpcPort}` })
}

/**
 * The PostgreSQL server when the run selected it (TEST_BACKENDS) and it answers, since it starts in a fraction of
 * the time PGlite takes; else PGlite, so that `npm test` never reaches for a server.
 */
export async function quickBackend(): Promise<Backend> {
  return BACKENDS.includes('postgres') && (await skipReason('postgres')) === false ? 'postgres' : 'embedded'
}

export function transportOf(service: RpcService, protocol: Protocol): Transport {
  switch (protocol) {
    case 'connect-json':
      return createConnectTransport({ baseUrl: service.baseUrl, httpVersion: '1.1' })
    case 'connect-binary':
      return createConnectTransport({ baseUrl: service.baseUrl, httpVersion: '1.1', useBinaryFormat: true })
    case 'grpc-web':
      return createGrpcWebTransport({ baseUrl: service.baseUrl, httpVersion: '1.1' })
    case 'grpc':
      return createGrpcTransport({ baseUrl: service.grpcUrl })
  }
}

export type BookClient = Client<typeof BookService>

export const bookClient = (service: RpcService, protocol: Protocol): BookClient =>
  createClient(BookService, transportOf(service, protocol))

/** The error a call fails with; the assertion fails when the call succeeds. */
export async function rpcFailure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call
  } catch (error) {
    assert.ok(error instanceof ConnectError, `a ConnectError, not ${String(error)}`)
    return error
  }
  assert.fail('the call succeeded')
}

/** The google.rpc.BadRequest field violations, as REST's `errors` map has them: description by field. */
export function fieldViolations(error: ConnectError): Record<string, string> | undefined {
  const [badRequest] = error.findDetails(BadRequestSchema)
  if (badRequest === undefined) return undefined
  return Object.fromEntries(badRequest.fieldViolations.map(({ field, description }) => [field, description]))
}

/** The google.rpc.RetryInfo delay in milliseconds, when the error carries one. */
export function retryDelayMs(error: ConnectError): number | undefined {
  const [retry] = error.findDetails(RetryInfoSchema)
  return retry?.retryDelay === undefined ? undefined : durationMs(retry.retryDelay)
}

const ISSUER = 'https://auth.test/'
const AUDIENCE = 'myapp'
const { privateKey, publicKey } = await generateKeyPair('ES256')
const stranger = await generateKeyPair('ES256')

export const JWT_ENV = {
  AUTH_MODE: 'jwt',
  AUTH_JWT_ISSUER: ISSUER,
  AUTH_JWT_AUDIENCE: AUDIENCE,
  AUTH_JWT_ALGORITHMS: 'ES256',
  AUTH_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
  // The table sends several bad tokens from one address; the failure budget has its own tests.
  AUTH_FAILURE_LIMIT: '0',
}

/** A token from the configured issuer with these scopes; `signer: 'stranger'` signs it with a key nobody trusts. */
export function signedToken(scope: string, options: { subject?: string; signer?: 'issuer' | 'stranger' } = {}) {
  return new SignJWT({ sub: options.subject ?? 'tester', scope })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(options.signer === 'stranger' ? stranger.privateKey : privateKey)
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/**
 * An RFC 3339 UTC instant as REST shows it, to the microsecond: from an RPC Timestamp, or from protojson's text
 * (which drops trailing zero digits in threes).
 */
export function restTimestamp(instant: Timestamp | string): string {
  if (typeof instant === 'string') {
    const [whole, fraction = ''] = instant.replace(/Z$/, '').split('.')
    return `${whole}.${fraction.padEnd(6, '0')}Z`
  }
  const whole = new Date(Number(instant.seconds) * 1000).toISOString().slice(0, 19)
  return `${whole}.${String(Math.floor(instant.nanos / 1000)).padStart(6, '0')}Z`
}

/** The number in a strong ETag such as "3". */
export function etagVersion(response: Response): number {
  const etag = response.headers.get('etag')
  assert.match(etag ?? '', /^"\d+"$/, `a strong numeric ETag, not ${etag}`)
  return Number(etag?.slice(1, -1))
}
